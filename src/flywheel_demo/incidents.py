"""The demo's planted incidents in the report: their windows hatched on the charts, and a section matching
each one against the alerts raised in it (detected or not, by which rules, how late), and the rules that
fired outside every planted window. The section is laid out by ``templates/incidents.html.j2`` (package
data, autoescaped, built on the report's macros); this module gathers what it shows.

The simulator's ground truth (:func:`flywheel_demo.simulate.ground_truth`) names the incidents;
:func:`report_extras` turns it into the keyword arguments of
:func:`genai_flywheel.report.render_report` (``annotations``, ``extra_sections``, ``notes``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from genai_flywheel.exceptions import DataContractError
from genai_flywheel.metrics.intervals import iso
from genai_flywheel.report.data import Annotation, AppData, utc
from genai_flywheel.report.fragments import window
from genai_flywheel.report.templating import render

GroundTruth = Mapping[str, Any] | list[Any]


def _parse_time(value: Any, where: str) -> datetime:
    if isinstance(value, datetime):
        return utc(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return utc(datetime.fromtimestamp(value / 1000.0, UTC))  # epoch milliseconds, as in the traces
    if isinstance(value, str):
        try:
            return utc(datetime.fromisoformat(value.strip().replace("Z", "+00:00")))
        except ValueError:
            pass
    raise DataContractError(
        f"ground truth {where} = {value!r} is not a time; use an ISO 8601 string such as "
        "'2026-01-05T13:00:00Z', epoch milliseconds, or a datetime"
    )


def _field(item: Mapping[str, Any], names: tuple[str, ...]) -> Any:
    for name in names:
        if item.get(name) is not None:
            return item[name]
    return None


def parse_incidents(ground_truth: GroundTruth | None, app: str) -> list[Annotation]:
    """The planted incident windows of ``ground_truth`` that concern ``app``, sorted by (start, name).

    Accepted shapes: the simulator's dict ``{"incidents": {name: {kind, start, end, ...}}, ...}`` (or with a
    list ``[{name, kind, start, end, ...}]``), or a bare
    list of ``{name, start, end}`` windows. Times are ISO 8601 strings, epoch milliseconds or datetimes
    (``start_ms``/``end_ms`` are read too). An incident (or the whole dict) with an ``app`` key naming
    another application is skipped.
    """
    if ground_truth is None:
        return []
    if isinstance(ground_truth, Mapping):
        owner = ground_truth.get("app")
        if isinstance(owner, str) and owner != app:
            return []
        items = ground_truth.get("incidents")
        if isinstance(items, Mapping):  # the simulator keys its incidents by name
            items = [{"name": name, **info} for name, info in items.items() if isinstance(info, Mapping)]
        if not isinstance(items, list):
            raise DataContractError(
                f"ground truth has no 'incidents' list (keys: {sorted(map(str, ground_truth))}); pass the "
                "simulator's ground-truth dict or a list of {name, start, end} windows"
            )
    elif isinstance(ground_truth, list):
        items = ground_truth
    else:
        raise DataContractError(
            f"ground truth must be a dict or a list, got {type(ground_truth).__name__}; pass the "
            "simulator's ground-truth dict or a list of {name, start, end} windows"
        )
    incidents: list[Annotation] = []
    for i, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise DataContractError(f"ground truth incidents[{i}] = {item!r} is not a dict with name/start/end")
        if item.get("app") not in (None, app):
            continue
        start_raw = _field(item, ("start", "start_ms", "start_time", "window_start"))
        end_raw = _field(item, ("end", "end_ms", "end_time", "window_end"))
        if start_raw is None or end_raw is None:
            raise DataContractError(
                f"ground truth incidents[{i}] ({item.get('name', '?')!r}) lacks a start or end; give both"
            )
        start = _parse_time(start_raw, f"incidents[{i}].start")
        end = _parse_time(end_raw, f"incidents[{i}].end")
        if end <= start:
            raise DataContractError(
                f"ground truth incidents[{i}] ends at {iso(end)}, not after its start {iso(start)}; swap them"
            )
        kind = str(item.get("kind") or "")
        name = str(item.get("name") or kind or f"incident {i + 1}")
        description = str(item.get("description") or "")
        incidents.append(Annotation(name, start, end, kind, description))
    incidents.sort(key=lambda x: (x.start, x.name))
    return incidents


def overlaps(start: datetime, end: datetime, window_start: datetime, window_end: datetime) -> bool:
    """True when ``[start, end)`` and ``[window_start, window_end)`` share time."""
    return start < window_end and end > window_start


@dataclass(frozen=True)
class Detection:
    """What the alerts did during one planted incident."""

    incident: Annotation
    rules: tuple[str, ...]  # rules whose evaluation was firing on an interval overlapping the window
    first_firing: tuple[datetime, datetime] | None  # the earliest such interval
    delay_s: float | None  # from the incident start to the end of that interval (alerts fire at its end)

    @property
    def detected(self) -> bool:
        """At least one rule fired during the window."""
        return bool(self.rules)


def detections(incidents: Sequence[Annotation], events: tuple[dict[str, Any], ...]) -> list[Detection]:
    """For each incident, the rules that were firing in an interval overlapping its window."""
    firing = [e for e in events if e["evaluation"] == "firing"]
    result = []
    for inc in incidents:
        hits = [e for e in firing if overlaps(e["interval_start"], e["interval_end"], inc.start, inc.end)]
        if not hits:
            result.append(Detection(inc, (), None, None))
            continue
        first = min(hits, key=lambda e: (e["interval_start"], e["rule"]))
        delay = max(0.0, (first["interval_end"] - inc.start).total_seconds())
        result.append(
            Detection(
                inc,
                tuple(sorted({e["rule"] for e in hits})),
                (first["interval_start"], first["interval_end"]),
                delay,
            )
        )
    return result


def firing_outside(incidents: Sequence[Annotation], events: tuple[dict[str, Any], ...]) -> dict[str, int]:
    """Per rule, the firing intervals that overlap no planted incident (candidate false alarms)."""
    counts: Counter[str] = Counter()
    for e in events:
        if e["evaluation"] != "firing":
            continue
        if not any(overlaps(e["interval_start"], e["interval_end"], i.start, i.end) for i in incidents):
            counts[e["rule"]] += 1
    return dict(sorted(counts.items()))


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "n/a"
    minutes = int(round(seconds / 60))
    hours, mins = divmod(minutes, 60)
    if hours and mins:
        return f"{hours} h {mins} min"
    return f"{hours} h" if hours else f"{mins} min"


def incidents_table(incidents: Sequence[Annotation], events: tuple[dict[str, Any], ...]) -> str:
    """The report section of planted ``incidents`` vs the alert ``events`` raised in their windows (``""``
    without incidents); HTML with every value escaped."""
    if not incidents:
        return ""
    rows = [
        {
            "detected": d.detected,
            "cells": [
                d.incident.name,
                d.incident.kind or "n/a",
                window(d.incident.start, d.incident.end),
                ", ".join(d.rules) or "none",
                window(*d.first_firing) if d.first_firing else "n/a",
                _duration(d.delay_s),
            ],
        }
        for d in detections(incidents, events)
    ]
    return render("incidents.html.j2", "flywheel_demo", rows=rows, outside=firing_outside(incidents, events))


def report_extras(ground_truth: GroundTruth | None, apps: Sequence[str]) -> dict[str, Any]:
    """Keyword arguments of :func:`genai_flywheel.report.render_report` showing the planted incidents of
    ``ground_truth``: their windows hatched on the charts of each of ``apps`` and, per application, the
    section matching them against its alerts. Empty without a ground truth."""
    if ground_truth is None:
        return {}
    annotations = {app: parse_incidents(ground_truth, app) for app in apps}

    def section(data: AppData) -> str:
        return incidents_table(annotations.get(data.app, ()), data.events)

    return {
        "annotations": annotations,
        "extra_sections": [section],
        "notes": ["Planted incident windows from the simulator's ground truth are hatched."],
    }
