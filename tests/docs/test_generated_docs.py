"""The generated reference pages are committed as docs/gen_reference.py writes them, so
the command line and HTTP API references cannot drift from the parser and the app."""

from __future__ import annotations

import importlib.util
from types import ModuleType

import pytest

from router.cli.main import build_parser
from tests.docs import DOCS, page


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_reference", DOCS / "gen_reference.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_cli_page_is_what_the_generator_writes() -> None:
    assert page("reference/cli.md") == generator().cli_page(), (
        "docs/reference/cli.md is stale: run `python docs/gen_reference.py`"
    )


def test_the_http_api_page_is_what_the_generator_writes() -> None:
    assert page("reference/http-api.md") == generator().http_api_page(), (
        "docs/reference/http-api.md is stale: run `python docs/gen_reference.py`"
    )


def test_the_cli_page_does_not_depend_on_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROUTER_STORE", "postgresql://secret@db/x")
    monkeypatch.setenv("COLUMNS", "40")
    assert generator().cli_page() == page("reference/cli.md")


def test_every_command_and_option_has_its_place() -> None:
    text = page("reference/cli.md")
    commands = build_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    for name, parser in commands.items():
        assert f"## `revring-router {name}`" in text
        for action in parser._actions:
            for flag in action.option_strings:
                if flag not in ("-h", "--help"):
                    assert f"`{flag}`" in text
    for nested in ("silence add", "silence list", "silence expire", "sink pause", "sink resume"):
        assert f"## `revring-router {nested}`" in text
