"""Test doubles shared by test modules: an OpenAI-compatible chat-completions stub server.

``from tests.stubs import OpenAIStub`` for the server; ``openai_stub`` is a pytest fixture (defined in
``tests.stubs.openai_stub``; register it for every module with ``pytest_plugins =
["tests.stubs.openai_stub"]`` in the root ``tests/conftest.py``, or import it into a test module).
"""

import warnings

# ``python -m tests.stubs.openai_stub`` imports this package (and so the module) before running the
# module as __main__; runpy then warns about the second copy, which is harmless here.
warnings.filterwarnings("ignore", message=r"'tests\.stubs\.openai_stub' found in sys\.modules", category=RuntimeWarning)

from tests.stubs.openai_stub import OpenAIStub, default_verdict, openai_stub  # noqa: E402

__all__ = ["OpenAIStub", "default_verdict", "openai_stub"]
