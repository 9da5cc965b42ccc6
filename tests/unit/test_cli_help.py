"""Every option and argument of every command says what it is for in `--help` (and so in
the generated reference, docs/reference/cli.md)."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

from router.cli.main import build_parser


def commands(
    parser: argparse.ArgumentParser, path: str = "revring-router"
) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, command in action.choices.items():
                yield from commands(command, f"{path} {name}")


def test_every_option_of_every_command_has_help() -> None:
    undescribed = [
        f"{path} {'/'.join(action.option_strings) or action.metavar or action.dest}"
        for path, parser in commands(build_parser())
        for action in parser._actions
        if not isinstance(action, argparse._SubParsersAction) and not (action.help or "").strip()
    ]
    assert undescribed == []


def test_every_command_has_help() -> None:
    for _, parser in commands(build_parser()):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                described = {choice.dest: choice.help for choice in action._choices_actions}
                assert all(described.get(name) for name in action.choices), described
