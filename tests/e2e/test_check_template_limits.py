"""`revring-router check` on templates that would run too long or build too much, as a
user runs it: each is an error at the template's own line, naming the bound, and `check`
ends (DESIGN.md section 6: rendering is bounded at check and at send)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.test_cli_rules import run

RULES = """\
version: 1
sinks:
  console:
    type: log
    text: "%s"
rules: [{name: all, to: [console]}]
"""


@pytest.mark.parametrize(
    ("text", "bound"),
    [
        (
            # Nothing printed: the size bound cannot trip first on a slow machine.
            "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
            "rendering took longer than the 1 s a template may take",
        ),
        (
            "{{ 'a' * 3000000000 }}",
            "repeating a str 3,000,000,000 times would make more than 4,194,304 characters,"
            " the size a template's output may have",
        ),
    ],
)
def test_check_stops_a_template_past_a_bound_at_its_line(
    tmp_path: Path, text: str, bound: str
) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(RULES % text)
    result = run("check", "--config", str(path))  # 60 s at most: it used to run for hours
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        f"{path}:5:11: error: sink 'console': text: template stopped at template line 1:"
        f" {bound} (rendered with the sample call 'completed-inbound')"
    ]
