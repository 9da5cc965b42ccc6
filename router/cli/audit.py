"""`revring-router audit` (DESIGN.md sections 3 and 14): the recorded changes, newest
first, filtered by time, actor and action; and the actor of every change a command makes,
`cli:<os user>`.

Read-only: it never creates a store (exit 2 where there is none, `router.cli.stores`);
exit 2 too for a filter it cannot use, naming it."""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from collections.abc import Mapping
from typing import Any

from router.cli.stores import existing_store, with_existing_store
from router.core.logs import printable
from router.operators import (
    AuditQueryInvalid,
    audit_filters,
    audit_json,
    record_audit,
)
from router.store import Store, StoreError

INVALID = 2
DETAILS_SHOWN = 80  # characters of the details a table row shows


def cli_actor() -> str:
    """Who runs this command, as the audit names them: `cli:<os user>` (`cli:uid-N` when
    the system knows no name for the user)."""
    try:
        name = getpass.getuser()
    except (OSError, KeyError):  # no LOGNAME/USER and no passwd entry (a bare container)
        name = f"uid-{os.getuid()}" if hasattr(os, "getuid") else "unknown"
    return f"cli:{name}"


async def record_cli_change(
    store_url: str,
    action: str,
    target: str,
    details: Mapping[str, Any] | None = None,
) -> str | None:
    """Record a change a command made outside the store (`user add`, ...) in the audit
    of the store at `store_url`, as `cli_actor()`; None when recorded, else why not (the
    command says so and still succeeds: its change is made)."""
    try:
        async with existing_store(store_url) as store:
            await record_audit(store, cli_actor(), action, target, details)
    except (StoreError, ValueError) as error:
        return " ".join(str(error).split()) or type(error).__name__
    return None


def cmd_audit(args: argparse.Namespace) -> int:
    try:
        filters, limit = audit_filters(
            since=args.since, actor=args.actor, action=args.action, limit=args.limit
        )
    except AuditQueryInvalid as exc:
        print(f"revring-router audit: --{exc}", file=sys.stderr)
        return INVALID

    async def show(store: Store) -> int:
        records = [audit_json(record) for record in await store.list_audit(filters, limit)]
        if args.json:
            for record in records:
                print(json.dumps(record, ensure_ascii=False))
        elif not records:
            filtered = args.since or args.actor or args.action
            print("no recorded change matches" if filtered else "nothing recorded")
        else:
            _print_records(records)
        return 0

    return with_existing_store("audit", args.store, show)


def _print_records(records: list[dict[str, Any]]) -> None:
    header = ("TIME (UTC)", "ACTOR", "ACTION", "TARGET", "DETAILS")
    rows = [
        tuple(
            printable(cell)
            for cell in (
                record["at"].replace("T", " ").removesuffix("Z")[:19],
                record["actor"],
                record["action"],
                record["target"],
                _details(record["details"]),
            )
        )
        for record in records
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )


def _details(details: dict[str, Any]) -> str:
    text = " ".join(
        f"{name}={value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)}"
        for name, value in details.items()
        if value not in (None, "", [], {})
    )
    return text if len(text) <= DETAILS_SHOWN else text[: DETAILS_SHOWN - 1] + "…"


def add_audit_command(commands: Any, store_default: str) -> None:
    """Add `audit` to the `revring-router` subcommands."""
    audit = commands.add_parser("audit", help="list recorded changes, newest first")
    audit.add_argument(
        "--since",
        metavar="TIME",
        help="only changes since then: an ISO 8601 time (2026-12-07T09:00:00Z; no zone:"
        " UTC) or a duration back from now (30m, 2h, 7d)",
    )
    audit.add_argument(
        "--actor", metavar="NAME", help="only this actor's (alice, token, cli:bob, slack:U0123)"
    )
    audit.add_argument(
        "--action", metavar="A", help="only this action (replay, silence.create, signin, ...)"
    )
    audit.add_argument("--limit", type=int, default=100, metavar="N", help="at most this many")
    audit.add_argument("--json", action="store_true", help="one JSON object per line")
    audit.add_argument("--store", default=store_default)
    audit.set_defaults(func=cmd_audit)
