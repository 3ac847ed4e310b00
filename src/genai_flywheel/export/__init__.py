"""Fine-tuning export: good and human-corrected production interactions as redacted chat-format JSONL.

Stages (one Airflow task each, files under one run folder): :func:`select_examples`, :func:`build_jsonl`,
:func:`log_export`. Pure parts: :mod:`.pii` (:class:`Redactor`), :mod:`.finetune` (selection, building,
:func:`validate_chat_jsonl`).
"""

from genai_flywheel.export.finetune import (
    BuildOptions,
    ChatValidation,
    SelectionOptions,
    build_examples,
    normalize_message,
    select_from_traces,
    split_of,
    validate_chat_jsonl,
    validate_example,
)
from genai_flywheel.export.pii import RedactionCounts, Redactor, luhn_valid
from genai_flywheel.export.stages import ExportParams, build_jsonl, log_export, select_examples

__all__ = [
    "BuildOptions",
    "ChatValidation",
    "ExportParams",
    "RedactionCounts",
    "Redactor",
    "SelectionOptions",
    "build_examples",
    "build_jsonl",
    "log_export",
    "luhn_valid",
    "normalize_message",
    "select_examples",
    "select_from_traces",
    "split_of",
    "validate_chat_jsonl",
    "validate_example",
]
