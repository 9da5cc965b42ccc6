"""The getting started page's first rule, and the typo it then shows caught, do what the
page shows: `check` and `route` print the documented lines for them."""

from __future__ import annotations

from pathlib import Path

import pytest

from router.cli.main import main
from tests.docs import ROOT, blocks, section

PAGE = "getting-started.md"


@pytest.mark.parametrize("title", ["Your first rule", "A typo, caught before it costs a call"])
def test_check_and_route_print_what_the_page_shows(
    title: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    text = section(PAGE, title)
    [rules] = blocks(text, "yaml")
    [session] = blocks(text, "console")
    (tmp_path / "my-rules.yaml").write_text(rules)
    (tmp_path / "samples").symlink_to(ROOT / "samples")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SLACK_WEBHOOK_URL", raising=False)
    shown: list[str] = []
    printed: list[str] = []
    for line in session.splitlines():
        if line.startswith("$ revring-router "):
            main(line.removeprefix("$ revring-router ").split())
            captured = capsys.readouterr()
            printed += (captured.out + captured.err).splitlines()
        else:
            shown.append(line)
    for line in shown:
        assert line in printed, f"the page shows {line!r}, the command printed {printed}"
