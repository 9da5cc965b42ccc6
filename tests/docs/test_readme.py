"""The README stays a short front page: the two commands, a picture, and links into the
documentation that all resolve (mkdocs checks the site's own links, not the README's)."""

from __future__ import annotations

import re

from tests.docs import ROOT, blocks

README = (ROOT / "README.md").read_text()


def test_every_relative_link_and_picture_of_the_readme_exists() -> None:
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", README)
    relative = [target for target in targets if not re.match(r"https?://", target)]
    assert len(relative) >= 10
    for target in relative:
        assert (ROOT / target).exists(), f"README.md links to {target}, which does not exist"


def test_the_readme_shows_the_quick_start_and_the_test_command() -> None:
    commands = "\n".join(blocks(README, "sh"))
    assert "ROUTER_API_KEYS=dev-key revring-router serve" in commands
    assert "python -m pytest" in commands
    assert "](docs/slack-alert-failed.png)" in README
