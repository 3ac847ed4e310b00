"""The GenAI Quality page writes markup injected into any value it shows as text (application, experiment,
metric, rule, dataset, scorer and candidate names, gate messages, MLflow notes, file problems, messages),
and it never links a local file, even where the static report would."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from flywheel_airflow.ui.collect import AppView, BudgetRow
from flywheel_airflow.ui.links import MlflowLinks
from flywheel_airflow.ui.page import HintLink, render_message, render_page

from genai_flywheel.config import load_config
from genai_flywheel.exceptions import ConfigError
from genai_flywheel.report.charts import Point
from tests.unit.report.report_helpers import T0, H, points
from tests.unit.report.test_report_escaping import escaped, hostile
from tests.unit.ui.ui_seed import ROOT


def _points(value: float) -> tuple[Point, ...]:
    return points([value] * 3)


def _view() -> AppView:
    cfg = load_config(ROOT / "flywheel.yaml").applications[0]
    rule = cfg.alerts[0].model_copy(update={"name": hostile("config-rule"), "metric": hostile("rule-metric")})
    # Configured names are validated (letters, digits, '_', '-'); the page must not rely on it.
    app = cfg.model_copy(
        update={
            "name": hostile("app"),
            "mlflow": cfg.mlflow.model_copy(update={"experiment": hostile("experiment")}),
            "judge": cfg.judge.model_copy(update={"model": hostile("judge-model")}),
            "alerts": [rule],
        }
    )
    interval = (T0, T0 + H)
    event = {
        "interval_start": T0,
        "interval_end": T0 + H,
        "rule": hostile("event-rule"),
        "metric": hostile("event-metric"),
        "kind": "fired",
        "status": "firing",
        "value": 0.9,
        "ci_low": 0.8,
        "ci_high": 0.95,
        "n": 50,
        "notified": True,
    }
    return AppView(
        app=app,
        total_intervals=3,
        intervals=tuple((T0 + i * H, T0 + (i + 1) * H) for i in range(3)),
        metrics={
            "volume": _points(100),
            f"scorer.{hostile('scorer')}.pass_rate": _points(0.8),
            f"feedback.{hostile('feedback')}.positive_rate": _points(0.7),
        },
        events=(event,),
        rules=(
            {
                "rule": hostile("status-rule"),
                "metric": "error_rate",
                "op": ">",
                "threshold": 0.1,
                "min_samples": 5,
                "severity": hostile("rule-severity"),
                "status": hostile("status"),
            },
        ),
        firing=(
            {
                "rule": hostile("firing-rule"),
                "severity": hostile("firing-severity"),
                "metric": hostile("firing-metric"),
                "op": ">",
                "threshold": 0.5,
                "since": T0,
                "interval_start": interval[0],
                "interval_end": interval[1],
                "value": 0.9,
                "ci_low": 0.8,
                "ci_high": 0.95,
                "n": 50,
            },
        ),
        budget=(BudgetRow(T0, T0 + timedelta(hours=1), 3, {hostile("budget-scorer"): 3}, 1, 10),),
        datasets=({"dataset": hostile("dataset"), "version": 2, "per_rule": {hostile("curation-rule"): 1}},),
        evaluations=(
            {
                "_run": hostile("run"),
                "candidate": hostile("candidate"),
                "dataset": {"name": hostile("eval-dataset"), "version": 1},
                "scorers": {hostile("eval-scorer"): {"n": 3, "diff": 0.1}},
                "gate": {
                    "passed": False,
                    "checks": [{"gate": "g", "passed": False, "message": hostile("gate-message")}],
                },
            },
        ),
        problems=(hostile("problem"),),
    )


def test_every_value_of_the_page_is_escaped() -> None:
    view = _view()
    mlflow = MlflowLinks("http://m", None, None, None, "http://m/#/experiments", note=hostile("mlflow-note"))
    page = render_page([view], {view.name: mlflow}, intervals=24, root="../")
    assert "<img" not in page and "onerror=alert('" not in page
    for what in ("app", "experiment", "judge-model", "config-rule", "event-rule", "status-rule", "rule-severity",
                 "status", "firing-rule", "firing-severity", "firing-metric", "budget-scorer", "dataset",
                 "curation-rule", "run", "candidate", "eval-dataset", "eval-scorer", "gate-message", "problem",
                 "mlflow-note", "scorer", "feedback"):  # fmt: skip
        assert escaped(what) in page, what
    # In URLs the application name is percent-encoded; in ids and text it is escaped.
    assert 'href="../apps/%3Cimg%20src%3Dx%20onerror%3Dalert%28%27app%27%29%3E"' in page
    assert f'id="app-{escaped("app")}"' in page
    tags = set(re.findall(r"<([a-zA-Z][a-zA-Z0-9]*)", page))
    assert not tags & {"img", "script", "iframe", "object", "embed", "link", "form", "input"}, tags


def test_a_message_and_its_hint_are_text() -> None:
    page = render_message("t<i>", hostile("message"), hint=hostile("hint"), hint_link=HintLink("../", "<b>back</b>"))
    assert escaped("message") in page and escaped("hint") in page and "<img" not in page
    assert '<a href="../">&lt;b&gt;back&lt;/b&gt;</a>' in page and "<title>t&lt;i&gt;</title>" in page


def test_the_page_never_links_a_local_file() -> None:
    view = _view()
    local = MlflowLinks("file:///srv", "1", "file:///srv/traces", "file:///srv/runs", None)
    with pytest.raises(ConfigError, match="'file'.*relative, http: or https: URL"):
        render_page([view], {view.name: local}, intervals=24)
    with pytest.raises(ConfigError, match="'javascript'"):
        render_message("t", "m", hint_link=HintLink("javascript:alert(1)", "x"))
