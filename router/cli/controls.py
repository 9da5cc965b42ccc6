"""The operators' commands (DESIGN.md section 3): `silence add|list|expire` and
`sink pause|resume`, acting on the store directly, so a running service (every replica)
applies them within its refresh of the controls (`router.operators.controls`, 1 s).

Exit status: 0 done, 1 the store failed or the silence is unknown, 2 a bad request
(each problem on its own line, naming its field; nothing is stored) or no store there
(they never create one: `router.cli.stores`). Each change is recorded in the audit, in its
own transaction, as `cli:<os user>` (`router.cli.audit`)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from router.cli.audit import cli_actor
from router.cli.stores import with_existing_store
from router.config import ConfigError, load_config
from router.core.logs import printable
from router.operators import (
    EXPIRED_SILENCES_KEPT,
    AuditTrail,
    RequestInvalid,
    parse_pause_request,
    parse_silence_request,
    silence_json,
)
from router.rules import MAX_WHEN_DEPTH
from router.store import OperatorConsole, Operators

INVALID = 2


def _report(command: str, exc: RequestInvalid) -> int:
    for problem in exc.errors:
        print(f"revring-router {command}: {printable(problem)}", file=sys.stderr)
    return INVALID


def _configured_sinks(command: str, path: str) -> set[str] | None:
    try:
        return set(load_config(path).sinks)
    except ConfigError as exc:
        print(
            f"revring-router {command}: cannot check sink names against {path}:"
            f" {len(exc.errors)} error(s) in it (run `revring-router check`)",
            file=sys.stderr,
        )
        return None
    except OSError as exc:
        print(f"revring-router {command}: cannot read {path}: {exc.strerror}", file=sys.stderr)
        return None


def cmd_silence_add(args: argparse.Namespace) -> int:
    try:
        when = json.loads(args.when)
    except ValueError as exc:
        return _report("silence add", RequestInvalid([f"--when: not JSON: {exc}"]))
    except RecursionError:
        deep = f"--when: nested deeper than {MAX_WHEN_DEPTH} levels"
        return _report("silence add", RequestInvalid([deep]))
    body: dict[str, Any] = {"when": when, "for": args.duration, "comment": args.comment}
    if args.starts_at:
        body["starts_at"] = args.starts_at
    known: set[str] = set()
    if args.sink:
        body["sinks"] = args.sink
        found = _configured_sinks("silence add", args.config)
        if found is None:
            return INVALID
        known = found
    try:
        record = parse_silence_request(body, now=time.time(), known_sinks=known)
    except RequestInvalid as exc:
        return _report("silence add", exc)

    async def add(store: OperatorConsole) -> int:
        await AuditTrail(store).add_silence(cli_actor(), record)
        print(record.id)
        return 0

    return with_existing_store("silence add", args.store, add)


def cmd_silence_list(args: argparse.Namespace) -> int:
    async def show(store: Operators) -> int:
        now = time.time()
        records = await store.list_silences(
            ended_after=now - EXPIRED_SILENCES_KEPT if args.all else now
        )
        silences = [silence_json(record, now) for record in records]
        if args.json:
            for silence in silences:
                print(json.dumps(silence))
        elif not silences:
            print("no silences")
        else:
            _print_silences(silences)
        return 0

    return with_existing_store("silence list", args.store, show)


def _print_silences(silences: list[dict[str, Any]]) -> None:
    header = ("ID", "STATE", "STARTS", "ENDS", "SINKS", "WHEN", "COMMENT")
    rows = [
        tuple(
            printable(cell)
            for cell in (
                s["id"],
                s["state"],
                s["starts_at"],
                s["ends_at"],
                ",".join(s["sinks"]) if s["sinks"] else "(all)",
                json.dumps(s["when"], separators=(",", ":"))[:60],
                s["comment"][:40],
            )
        )
        for s in silences
    ]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))


def cmd_silence_expire(args: argparse.Namespace) -> int:
    async def expire(store: OperatorConsole) -> int:
        record = await AuditTrail(store).expire_silence(cli_actor(), args.id, time.time())
        if record is None:
            print(f"revring-router silence expire: no silence {args.id!r}", file=sys.stderr)
            return 1
        print(f"silence {record.id} expired")
        return 0

    return with_existing_store("silence expire", args.store, expire)


def cmd_sink_pause(args: argparse.Namespace) -> int:
    known = _configured_sinks("sink pause", args.config)
    if known is None:
        return INVALID
    body = {"for": args.duration, "comment": args.comment}
    try:
        pause = parse_pause_request(args.name, body, now=time.time(), known_sinks=known)
    except RequestInvalid as exc:
        return _report("sink pause", exc)

    async def hold(store: OperatorConsole) -> int:
        await AuditTrail(store).pause_sink(cli_actor(), pause)
        until = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(pause.until))
        print(f"sink {pause.sink} paused until {until}")
        return 0

    return with_existing_store("sink pause", args.store, hold)


def cmd_sink_resume(args: argparse.Namespace) -> int:
    async def release(store: OperatorConsole) -> int:
        was_paused = await AuditTrail(store).resume_sink(cli_actor(), args.name)
        print(f"sink {args.name} resumed" if was_paused else f"sink {args.name} was not paused")
        return 0

    return with_existing_store("sink resume", args.store, release)


def add_control_commands(commands: Any, config_default: str, store_default: str) -> None:
    """Add `silence` and `sink` to the `revring-router` subcommands."""
    silence = commands.add_parser("silence", help="mute matching calls for a while")
    actions = silence.add_subparsers(dest="action", required=True)
    add = actions.add_parser("add", help="create a silence; prints its id")
    add.add_argument("--when", required=True, metavar="JSON", help="the rules' when syntax")
    add.add_argument(
        "--for", dest="duration", required=True, metavar="DURATION", help="how long: 30m, 4h, 2d"
    )
    add.add_argument(
        "--sink", action="append", metavar="NAME", help="only this sink (repeat for several)"
    )
    add.add_argument("--comment", default="", help="why, for the others")
    add.add_argument("--starts-at", metavar="TIME", help="ISO 8601 (default: now)")
    add.add_argument("--config", default=config_default, help="to check --sink names")
    add.add_argument("--store", default=store_default)
    add.set_defaults(func=cmd_silence_add)
    listing = actions.add_parser("list", help="active and pending silences")
    listing.add_argument("--all", action="store_true", help="expired ones too (30 days)")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    listing.add_argument("--store", default=store_default)
    listing.set_defaults(func=cmd_silence_list)
    expire = actions.add_parser("expire", help="end a silence now")
    expire.add_argument("id", help="the silence's id (silence list shows it)")
    expire.add_argument("--store", default=store_default)
    expire.set_defaults(func=cmd_silence_expire)

    sink = commands.add_parser("sink", help="hold or release a sink's deliveries")
    sink_actions = sink.add_subparsers(dest="action", required=True)
    pause = sink_actions.add_parser("pause", help="hold a sink (deliveries wait, no attempts)")
    pause.add_argument("name", help="the sink, as rules.yaml names it")
    pause.add_argument(
        "--for", dest="duration", required=True, metavar="DURATION", help="how long: 30m, 4h, 2d"
    )
    pause.add_argument("--comment", default="", help="why, for the others")
    pause.add_argument("--config", default=config_default, help="to check the sink name")
    pause.add_argument("--store", default=store_default)
    pause.set_defaults(func=cmd_sink_pause)
    resume = sink_actions.add_parser("resume", help="release a paused sink")
    resume.add_argument("name", help="the sink, as rules.yaml names it")
    resume.add_argument("--store", default=store_default)
    resume.set_defaults(func=cmd_sink_resume)
