"""The static HTML report of the monitor and the loop: headline numbers, inline SVG charts, alerts, the
judge calibration against the reviewers, curated datasets and development evaluations, in one
self-contained file (callers may add annotated windows and sections of their own).

``render_report(data_root, apps, out, ...)`` writes it; ``summarize(data_root, app)`` returns the headline
numbers as a dict (for the CLI). Nothing heavy is imported until one of them is called.
"""

from genai_flywheel.report.data import summarize
from genai_flywheel.report.render import render_html, render_report

__all__ = ["render_html", "render_report", "summarize"]
