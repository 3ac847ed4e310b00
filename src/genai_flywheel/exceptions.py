"""The project's exception hierarchy.

Every error a user can cause names the bad value and the fix, so a failed task's log says what to change.
"""

from __future__ import annotations


class FlywheelError(Exception):
    """Base class of every error raised by genai-flywheel."""


class ConfigError(FlywheelError):
    """The configuration file is missing, malformed, or names something that does not exist."""


class FilterSyntaxError(FlywheelError):
    """A trace selection filter does not parse.

    ``position`` is the 0-based character offset of the offending token in ``text``.
    """

    def __init__(self, message: str, text: str = "", position: int = 0) -> None:
        self.text = text
        self.position = position
        pointer = ""
        if text:
            pointer = f"\n  {text}\n  {' ' * position}^"
        super().__init__(f"{message} (at position {position}){pointer}")


class DataContractError(FlywheelError):
    """A batch as a whole breaks a declared data-contract condition (bad rows alone are quarantined)."""


class ScorerError(FlywheelError):
    """A scorer cannot be loaded or is not an MLflow scorer."""


class NotificationError(FlywheelError):
    """A notification channel (a webhook) did not take a notification after its retries."""


class StoreError(FlywheelError):
    """The metrics store or an MLflow store could not be read or written."""


class GateFailedError(FlywheelError):
    """A development evaluation did not meet a declared gate threshold."""


class SimulationError(FlywheelError):
    """The traffic simulator could not write every trace it generated."""
