"""Fast checks of the contract helpers that do not need Great Expectations."""

from __future__ import annotations

import pytest

from genai_flywheel.exceptions import ConfigError, DataContractError
from genai_flywheel.quality import validate_records, validate_traces
from genai_flywheel.quality.contract import ROW_INDEX_COLUMN
from genai_flywheel.quality.suites import JSON_KIND_LABELS, JSON_KINDS, json_kind


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ('{"q": "hi"}', "object"),
        ("{}", "empty_object"),
        ("[1, 2]", "array"),
        ('"text"', "string"),
        ("3.5", "number"),
        ("true", "boolean"),
        ("null", "null"),
        ("{not json", "invalid"),
        ("", "invalid"),
        (None, "missing"),
    ],
)
def test_json_kind(text: str | None, kind: str) -> None:
    assert json_kind(text) == kind


def test_every_json_kind_has_a_label() -> None:
    assert set(JSON_KIND_LABELS) == set(JSON_KINDS)


def test_unknown_record_suite_names_the_known_ones() -> None:
    import pyarrow as pa

    with pytest.raises(ConfigError, match=r"'golden'.*eval_dataset"):
        validate_records(pa.table({"record_id": ["r"]}), "golden")  # type: ignore[arg-type]


@pytest.mark.parametrize("fraction", [-0.1, 1.5])
def test_max_bad_fraction_out_of_range(fraction: float) -> None:
    import pyarrow as pa

    with pytest.raises(ConfigError, match=str(fraction)):
        validate_traces(pa.table({"trace_id": ["tr-1"]}), max_bad_fraction=fraction)


def test_reserved_row_index_column_is_refused() -> None:
    import pyarrow as pa

    with pytest.raises(DataContractError, match=ROW_INDEX_COLUMN):
        validate_traces(pa.table({ROW_INDEX_COLUMN: [1]}))
