"""The `revring-router` command (also `python -m router`): argument parsing, one
function per command, and printing for a person or as JSON. The top layer: it may use
every package below it, and none uses it."""

from __future__ import annotations

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """Run the command line; the exit status."""
    from router.cli.main import main as run

    return run(argv)
