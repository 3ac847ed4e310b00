"""Data contracts: Great Expectations suites for trace tables and curated records, with quarantine."""

from genai_flywheel.quality.contract import ContractResult, validate_records, validate_traces
from genai_flywheel.quality.suites import (
    EVAL_DATASET_SUITE_NAME,
    EVAL_DATASET_SUITE_VERSION,
    TRACE_SUITE_NAME,
    TRACE_SUITE_VERSION,
    eval_dataset_suite,
    trace_contract_suite,
)

__all__ = [
    "EVAL_DATASET_SUITE_NAME",
    "EVAL_DATASET_SUITE_VERSION",
    "TRACE_SUITE_NAME",
    "TRACE_SUITE_VERSION",
    "ContractResult",
    "eval_dataset_suite",
    "trace_contract_suite",
    "validate_records",
    "validate_traces",
]
