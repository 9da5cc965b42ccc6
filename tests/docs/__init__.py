"""Tests of the documentation: the README and the pages under docs/ say what the router
does, and their examples load and run. This module reads the pages, their sections and
fenced blocks, as those tests need them."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.DOTALL | re.MULTILINE)
HEADING = re.compile(r"^(#+) (.*)$")


def page(name: str) -> str:
    """The Markdown of one page, named by its path under docs/ (e.g. "sinks/http.md")."""
    return (DOCS / name).read_text()


def pages() -> list[Path]:
    """Every Markdown page of the site."""
    return sorted(DOCS.rglob("*.md"))


def _headings(text: str) -> list[tuple[int, int, str]]:
    """(line index, level, title) of each heading outside fenced blocks."""
    found, fenced = [], False
    for index, line in enumerate(text.splitlines()):
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and (match := HEADING.match(line)):
            found.append((index, len(match.group(1)), match.group(2)))
    return found


def section(name: str, heading: str) -> str:
    """The part of page `name` under the heading starting with `heading`, up to the next
    heading of the same or a higher level."""
    text = page(name)
    lines = text.splitlines(keepends=True)
    headings = _headings(text)
    start, level = next((i, lvl) for i, lvl, title in headings if title.startswith(heading))
    end = next((i for i, lvl, _ in headings if i > start and lvl <= level), len(lines))
    return "".join(lines[start:end])


def blocks(text: str, language: str) -> list[str]:
    """The bodies of the fenced blocks of `language` in `text`, in order."""
    return [body for lang, body in FENCE.findall(text) if lang == language]
