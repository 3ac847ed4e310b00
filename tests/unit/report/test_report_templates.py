"""The templates ship inside their packages (read through importlib.resources, as from a wheel) and every
one of them compiles."""

from __future__ import annotations

from importlib.resources import files

import pytest

from genai_flywheel.report.templating import environment


@pytest.mark.parametrize(
    ("package", "expected"),
    [
        (
            "genai_flywheel.report",
            {"document.html.j2", "fragments.html.j2", "report.html.j2", "report_app.html.j2"}
            | {"segments.html.j2", "report_segments.html.j2"},
        ),
        (
            "flywheel_airflow.ui",
            {"message.html.j2", "page.html.j2", "page_app.html.j2", "page_base.html.j2"}
            | {"page_segments.html.j2", "segment_history.html.j2"},
        ),
        ("flywheel_demo", {"incidents.html.j2"}),
    ],
)
def test_templates_are_package_data_and_compile(package: str, expected: set[str]) -> None:
    folder = files(package) / "templates"
    names = {entry.name for entry in folder.iterdir() if entry.name.endswith(".j2")}
    assert names == expected
    env = environment("flywheel_airflow.ui", "flywheel_demo")
    for name in sorted(names):
        assert env.get_template(name).filename.endswith(name)


def test_template_lines_join_without_spaces_between_tags_and_with_one_in_text() -> None:
    template = environment().from_string("<p>\n  one\n  two {{ x }}\n  <b>{{ y }}</b>\n</p>")
    assert template.render(x="<x>", y=None) == "<p>one two &lt;x&gt;<b></b></p>"
