"""Markup injected into any value the report shows (application, metric, rule, dataset, candidate and
scorer names, gate messages, file problems, link labels, a caller's annotated windows and header notes,
and the demo's planted incidents in its extra section) comes out as text."""

from __future__ import annotations

import re
from datetime import timedelta

from flywheel_demo.incidents import report_extras
from genai_flywheel.report import render_html
from genai_flywheel.report.charts import Point
from genai_flywheel.report.data import Annotation, AppData
from tests.unit.report.report_helpers import T0, H, points


def hostile(what: str) -> str:
    """A value that would run script, or at least add an element, if it were not escaped."""
    return f"<img src=x onerror=alert('{what}')>"


def escaped(what: str) -> str:
    return f"&lt;img src=x onerror=alert(&#x27;{what}&#x27;)&gt;"


SCORER, FEEDBACK, ERROR, SPAN = hostile("scorer"), hostile("feedback"), hostile("error"), hostile("span")
ALERTED = hostile("alerted-metric")


def _points(value: float) -> tuple[Point, ...]:
    return points([value] * 3)


def _event(i: int, kind: str, status: str) -> dict:
    return {
        "interval_start": T0 + i * H,
        "interval_end": T0 + (i + 1) * H,
        "firing_since": T0,
        "rule": hostile("rule"),
        "metric": ALERTED,
        "op": ">",
        "threshold": 0.5,
        "severity": hostile("severity"),
        "status": status,
        "kind": kind,
        "evaluation": hostile("evaluation"),
        "value": 0.9,
        "ci_low": 0.8,
        "ci_high": 0.95,
        "n": 50,
        "notified": True,
    }


def test_every_value_of_the_report_is_escaped() -> None:
    stats = {"n": 3, "candidate_mean": 0.9, "production_mean": 0.5, "diff": 0.4, "ci_low": 0.1, "ci_high": 0.6}
    data = AppData(
        app=hostile("app"),
        intervals=tuple((T0 + i * H, T0 + (i + 1) * H) for i in range(3)),
        metrics={
            "volume": _points(100),
            "latency_p95_ms": _points(900),
            f"span.{SPAN}.latency_p95_ms": _points(500),
            "error_rate": _points(0.1),
            f"error_rate.{ERROR}": _points(0.1),
            f"scorer.{SCORER}.pass_rate": _points(0.8),
            f"scorer.{SCORER}.n": _points(10),
            f"feedback.{FEEDBACK}.positive_rate": _points(0.7),
            ALERTED: _points(0.9),
        },
        events=(_event(0, "fired", "firing"), _event(1, "resolved", "ok")),
        datasets=(
            {
                "dataset": hostile("dataset"),
                "version": hostile("version"),
                "records": 3,
                "per_rule": {hostile("curation-rule"): 3},
                "digest": hostile("digest"),
            },
        ),
        evaluations=(
            {
                "_run": hostile("run"),
                "candidate": hostile("candidate"),
                "dataset": {"name": hostile("eval-dataset"), "version": 1},
                "n_records": hostile("records"),
                "candidate_errors": hostile("candidate-errors"),
                "scorers": {hostile("eval-scorer"): stats},
                "rules": {hostile("eval-rule"): {"x": stats}},
                "gate": {
                    "passed": False,
                    "checks": [
                        {
                            "gate": hostile("gate"),
                            "criterion": hostile("criterion"),
                            "passed": False,
                            "message": hostile("gate-message"),
                        }
                    ],
                },
            },
        ),
        problems=(hostile("problem"),),
    )
    # The demo's planted incidents: hatched windows, its extra section (detected or not) and a header note.
    incident = {"name": hostile("incident"), "kind": hostile("kind"), "start": T0, "end": T0 + timedelta(hours=2)}
    demo = report_extras([incident], [data.app])
    deploy = Annotation(hostile("annotation"), T0 + H, T0 + 2 * H, hostile("annotation-kind"), hostile("description"))
    page = render_html(
        [data],
        title=hostile("title"),
        annotations={data.app: [*demo["annotations"][data.app], deploy]},
        extra_sections=demo["extra_sections"],
        notes=[*demo["notes"], hostile("note")],
        links={hostile("link-label"): "http://127.0.0.1:5000/?q=<x>"},
    )
    assert "<img" not in page and "onerror=alert('" not in page
    for what in ("app", "title", "link-label", "rule", "severity", "evaluation", "alerted-metric", "dataset",
                 "version", "curation-rule", "run", "candidate", "eval-dataset", "records", "candidate-errors",
                 "eval-scorer", "eval-rule", "gate", "criterion", "gate-message", "problem", "incident", "kind",
                 "scorer", "feedback", "error", "span", "annotation", "note"):  # fmt: skip
        assert escaped(what) in page, what
    assert '<table class="incidents">' in page  # the extra section is written as the markup it is
    assert 'href="http://127.0.0.1:5000/?q=&lt;x&gt;"' in page  # a URL is escaped for its attribute
    # The app name in the section's id and in the navigation's link is escaped too.
    assert f'<section class="app" id="app-{escaped("app")}"' in page
    assert f'<a href="#app-{escaped("app")}">{escaped("app")}</a>' in page
    # Only the elements the templates write: nothing a value brought in.
    tags = set(re.findall(r"<([a-zA-Z][a-zA-Z0-9]*)", page))
    assert tags <= {
        "html", "head", "meta", "title", "style", "body", "header", "h1", "h2", "h3", "h4", "nav", "ul", "li",
        "a", "p", "main", "section", "dl", "div", "dt", "dd", "small", "table", "caption", "thead", "tbody",
        "tr", "th", "td", "figure", "svg", "desc", "defs", "pattern", "path", "g", "text", "line", "rect",
        "circle", "span", "footer", "clipPath", "polyline",
    }, tags  # fmt: skip
