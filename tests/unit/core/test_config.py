"""The configuration file: what is accepted, and errors that name the key and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from genai_flywheel.config import load_config, parse_config
from genai_flywheel.exceptions import ConfigError

ROOT = Path(__file__).resolve().parents[3]


def _base() -> dict:
    return yaml.safe_load((ROOT / "flywheel.yaml").read_text())


def test_shipped_config_is_valid() -> None:
    cfg = load_config(ROOT / "flywheel.yaml")
    app = cfg.app("support-assistant")
    assert app.schedule == "0 */6 * * *"
    assert {s.name for s in app.scorers} >= {"relevance", "groundedness", "refusal", "pii", "latency_slo"}
    assert app.start_date.tzinfo is not None


def test_unknown_key_is_named_with_the_fix() -> None:
    data = _base()
    data["applications"][0]["sampling"]["rte"] = 0.3
    with pytest.raises(ConfigError) as err:
        parse_config(data, "flywheel.yaml")
    assert "applications[0].sampling.rte" in str(err.value)
    assert "remove it or check its spelling" in str(err.value)


def test_out_of_range_rate_names_the_value() -> None:
    data = _base()
    data["applications"][0]["sampling"]["rate"] = 1.5
    with pytest.raises(ConfigError) as err:
        parse_config(data)
    assert "applications[0].sampling.rate" in str(err.value)
    assert "1.5" in str(err.value)


@pytest.mark.parametrize("schedule", ["@hourly", "0 * * *", "every hour"])
def test_schedule_must_be_five_field_cron(schedule: str) -> None:
    data = _base()
    data["applications"][0]["schedule"] = schedule
    with pytest.raises(ConfigError, match="5-field cron"):
        parse_config(data)


def test_duplicate_names_are_rejected() -> None:
    data = _base()
    data["applications"][0]["scorers"].append({"name": "relevance"})
    with pytest.raises(ConfigError, match="repeated: \\['relevance'\\]"):
        parse_config(data)
    data = _base()
    data["applications"].append(data["applications"][0])
    with pytest.raises(ConfigError, match="application names must be unique"):
        parse_config(data)


def test_scorer_ref_must_be_module_function() -> None:
    data = _base()
    data["applications"][0]["scorers"].append({"name": "mine", "ref": "not a ref"})
    with pytest.raises(ConfigError, match=r"applications\[0\]\.scorers\[7\]\.ref"):
        parse_config(data)


def test_missing_file_and_bad_yaml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found; set \\$FLYWHEEL_CONFIG"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("applications: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


def test_unknown_application_lists_the_configured_ones() -> None:
    cfg = load_config(ROOT / "flywheel.yaml")
    with pytest.raises(ConfigError, match="configured: support-assistant"):
        cfg.app("nope")


def test_data_root_env_overrides_the_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cfg = load_config(ROOT / "flywheel.yaml")
    monkeypatch.setenv("FLYWHEEL_DATA_ROOT", str(tmp_path))
    assert cfg.data_path() == tmp_path
    monkeypatch.delenv("FLYWHEEL_DATA_ROOT")
    assert cfg.data_path() == Path("./data")
