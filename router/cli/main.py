"""The `revring-router` command: serve, check, route, deliveries, replay, backfill,
calls, release, forget; silence and sink (`router.cli.controls`); user
(`router.cli.users`); audit (`router.cli.audit`). Every change a command makes is recorded
in the audit as `cli:<os user>`."""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from router import __version__
from router.cli.audit import add_audit_command, cli_actor
from router.cli.controls import add_control_commands
from router.cli.stores import existing_store, store_failed
from router.cli.users import add_user_commands
from router.config import Config, ConfigError, SourceError, check_findings, load_config
from router.core.collector import settle_after_start
from router.core.events import EventRejected, TooDeep, decode_json, parse_event
from router.core.logs import printable
from router.engine import preview
from router.engine.preview import Preview, lookup
from router.operators import (
    AuditTrail,
    BulkReplay,
    acknowledge_delivery,
    backfill_target,
    to_silence,
)
from router.rules import Silence, explain
from router.store import (
    Acknowledgement,
    CallFilters,
    DeliveryView,
    EventView,
    StoreError,
    open_store,
)

if TYPE_CHECKING:
    from router.web import ConnectionLimits, ServiceSettings

log = logging.getLogger("router.cli.main")

DEFAULT_STORE = "sqlite:///data/router.db"


def _env(name: str, default: str) -> str:
    return os.environ.get(name) or default


def _port_number(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 < port < 65536:
        raise argparse.ArgumentTypeError(f"must be a port number (1-65535), got {text!r}")
    return port


def _days(text: str) -> float:
    try:
        days = float(text)
    except ValueError:
        days = -1.0
    if not 0 <= days < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number of days (0 or more), got {text!r}")
    return days


def _count(text: str) -> int:
    try:
        count = int(text)
    except ValueError:
        count = 0
    if count < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number, 1 or more, got {text!r}")
    return count


def _instant(text: str) -> datetime:
    try:
        instant = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be an ISO 8601 time such as 2026-12-24T10:00:00Z, got {text!r}"
        ) from None
    if instant.tzinfo is None:
        raise argparse.ArgumentTypeError(
            f"needs a time zone (Z or an offset such as +01:00), got {text!r}"
        )
    return instant


# Options whose default comes from the environment, read when the command runs (not
# when the parser is built) so a bad value is an error of the command that uses it.
_ENV_DEFAULTS: tuple[tuple[str, str, Callable[[str], Any], str], ...] = (
    ("port", "ROUTER_PORT", _port_number, "8080"),
    ("retention_days", "ROUTER_RETENTION_DAYS", _days, "30"),
)


def _apply_env_defaults(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    for dest, variable, convert, fallback in _ENV_DEFAULTS:
        if dest in vars(args) and getattr(args, dest) is None:
            try:
                setattr(args, dest, convert(_env(variable, fallback)))
            except argparse.ArgumentTypeError as exc:
                parser.error(f"{variable} {exc}")


class SettingError(Exception):
    """An environment variable with a value `serve` cannot use."""


def _positive_setting(name: str, default: float, *, whole: bool = False) -> float:
    """The positive number in environment variable `name`, or `default` when unset."""
    text = os.environ.get(name) or ""
    if not text:
        return default
    try:
        value = int(text) if whole else float(text)
        if not 0 < value < float("inf"):
            raise ValueError
    except ValueError:
        kind = "whole number" if whole else "number"
        raise SettingError(f"{name} must be a positive {kind}, got {text!r}") from None
    return value


def _count_setting(name: str, default: int) -> int:
    """The whole number, 0 or more, in environment variable `name`, or `default` when unset."""
    text = (os.environ.get(name) or "").strip()
    if not text:
        return default
    if not text.isdigit() or not text.isascii():
        raise SettingError(f"{name} must be a whole number, 0 or more, got {text!r}")
    return int(text)


def _check_phone_region() -> None:
    """Refuse a `ROUTER_PHONE_REGION` that names no region phone numbers can be read in."""
    from router.core.phones import REGION_VARIABLE, region_problem

    problem = region_problem(os.environ.get(REGION_VARIABLE))
    if problem is not None:
        raise SettingError(problem)


def _located(problem: SourceError, severity: str) -> str:
    """`FILE:LINE:COL: error: message` (or `warning:`), as compilers and linters print."""
    where = f"{problem.file}:{problem.position.line}:{problem.position.column}"
    return f"{where}: {severity}: {problem.message}"


def _print_errors(exc: ConfigError) -> None:
    for error in exc.errors:
        print(_located(error, "error"))
    count = len(exc.errors)
    print(f"{count} problem{'s' if count != 1 else ''} found", file=sys.stderr)


def _load_or_report(path: str) -> Config | None:
    try:
        return load_config(path)
    except ConfigError as exc:
        _print_errors(exc)
        return None


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def cmd_check(args: argparse.Namespace) -> int:
    config = _load_or_report(args.config)
    if config is None:
        return 1
    problems = check_findings(config)
    for problem, severity in problems:
        print(_located(problem, severity))
    errors = sum(severity == "error" for _, severity in problems)
    warnings = len(problems) - errors
    if errors or (args.strict and warnings):
        counted = [_plural(errors, "error")] if errors else []
        if warnings:
            strict = " (--strict: they count as errors)" if args.strict else ""
            counted.append(f"{_plural(warnings, 'warning')}{strict}")
        print(f"{args.config}: {' and '.join(counted)}", file=sys.stderr)
        return 1
    print(f"{args.config}: OK ({len(config.rules)} rules, {len(config.sinks)} sinks)")
    return 0


def _read_event(path: str) -> dict[str, Any] | None:
    try:
        payload = decode_json(Path(path).read_bytes(), refuse_deep=True)
    except OSError as exc:
        print(f"{path}: cannot read: {exc.strerror}", file=sys.stderr)
        return None
    except TooDeep as exc:
        for item in exc.problems:
            print(f"{path}: invalid event: {item}", file=sys.stderr)
        return None
    except ValueError as exc:
        print(f"{path}: malformed JSON: {exc}", file=sys.stderr)
        return None
    try:
        parse_event(payload)
    except EventRejected as exc:
        for item in exc.problems:
            print(f"{path}: invalid event: {item}", file=sys.stderr)
        return None
    return payload


def cmd_route(args: argparse.Namespace) -> int:
    config = _load_or_report(args.config)
    if config is None:
        return 1
    event = _read_event(args.event)
    if event is None:
        return 1
    instant = args.at or datetime.now(UTC)
    silences: list[Silence] = []
    if args.store:
        try:
            silences = asyncio.run(_silences_in(args.store, instant.timestamp()))
        except (StoreError, ValueError) as error:
            return store_failed("route", error)
    result = preview(config, event, instant, render=args.render, silences=silences)
    failures = _rule_failures(config, result)
    problems = check_findings(config) if args.render else []
    if args.json:
        document = _route_json(result, failures, problems, render=args.render)
        print(json.dumps(document, indent=2, ensure_ascii=False, default=str))
        return 0
    cause = f" / {printable(event['hangupCause'])}" if event.get("hangupCause") else ""
    print(
        f"event {printable(event['id'])}: {printable(event.get('direction'))} "
        f"{printable(event.get('status'))}{cause}"
    )
    if not result.matched:
        print("matched no rule: nothing would be delivered")
    else:
        _print_matched(result, event)
    if args.explain and any(failures.values()):
        print("rules that did not match:")
        for name, failed in failures.items():
            if failed is not None:
                print(f"  {name}: {printable(failed)}")
    if result.matched:
        _print_sink_outcomes(result, instant, render=args.render)
    if args.render:
        _print_rendered(result)
        if problems:
            print(f"\n--- what check says about {args.config} ---")
            for problem, severity in problems:
                print(_located(problem, severity))
    return 0


def _rule_failures(config: Config, result: Preview) -> dict[str, str | None]:
    """For each rule, in file order, why it did not match the call (None: it matched)."""
    matched = {rule.name for rule in result.matched}
    stopped_by = next((rule.name for rule in result.matched if rule.stop), None)
    failures: dict[str, str | None] = {}
    for rule, settings in zip(config.rules, config.settings.rules, strict=True):
        if rule.name in matched:
            failures[rule.name] = None
        elif stopped_by is not None and stopped_by in failures:
            failures[rule.name] = f"not tried: rule {stopped_by!r} matched first and has stop: true"
        else:
            failures[rule.name] = explain(settings.when, result.event) or "does not match"
    return failures


def _print_matched(result: Preview, event: dict[str, Any]) -> None:
    print("matched rules:")
    for rule in result.matched:
        extra = " (stop)" if rule.stop else ""
        if rule.group is not None:
            key = ", ".join(
                f"{path}={printable(repr(lookup(event, path)))}" for path in rule.group.by
            )
            extra += f" (grouped by {key}; window {rule.group.window:g}s)"
        print(f"  {rule.name} -> {', '.join(rule.to)}{extra}")


def _print_sink_outcomes(result: Preview, instant: datetime, *, render: bool) -> None:
    print(f"deliveries at {instant.isoformat()}:")
    for delivery in result.deliveries:
        unconfigured = delivery.missing_settings
        note = f"  [not configured: {', '.join(unconfigured)} empty]" if unconfigured else ""
        reason = delivery.muted_reason
        if reason:
            outcome = f"muted ({reason}): not sent"
        elif render and delivery.render_error is not None:
            outcome = "cannot render: it would go dead on its first attempt (see below)"
        else:
            outcome = "send"
        print(
            f"  {delivery.sink} (type {delivery.sink_type}, rule {delivery.rule.name}):"
            f" {outcome}{note}"
        )


def _print_rendered(result: Preview) -> None:
    for delivery in result.deliveries:
        if delivery.muted_reason:
            continue
        kind = f", digest of rule {delivery.rule.name} with this call alone"
        kind = kind if delivery.digest else ""
        print(f"\n--- {delivery.sink} ({delivery.sink_type}{kind}) ---")
        if delivery.render_error is not None:
            print(f"cannot render: {printable(delivery.render_error)}")
            continue
        rendered = delivery.message
        print(
            rendered
            if isinstance(rendered, str)
            else json.dumps(rendered, indent=2, ensure_ascii=False, default=str)
        )
        if delivery.missing_values:
            lacking = ", ".join(delivery.missing_values)
            print(f"(this call lacks {printable(lacking)}: rendered empty)")


def _route_json(
    result: Preview,
    failures: dict[str, str | None],
    problems: list[tuple[SourceError, str]],
    *,
    render: bool,
) -> dict[str, Any]:
    """`route --json`: the rules (matched or why not) and the sinks (sent or muted);
    with `--render`, each message and what `check` says."""
    sinks = []
    for delivery in result.deliveries:
        entry: dict[str, Any] = {
            "name": delivery.sink,
            "outcome": "muted" if delivery.muted_reason else "send",
            "muted_reason": delivery.muted_reason,
            "rule": delivery.rule.name,
            "type": delivery.sink_type,
        }
        if render and not delivery.muted_reason:
            entry["message"] = delivery.message
            entry["render_error"] = delivery.render_error
            entry["missing_values"] = list(delivery.missing_values)
        sinks.append(entry)
    document: dict[str, Any] = {
        "event_id": result.event.get("id"),
        "rules": [
            {"name": name, "matched": failed is None, "failed": failed}
            for name, failed in failures.items()
        ],
        "sinks": sinks,
    }
    if render:
        document["problems"] = [
            {
                "severity": severity,
                "file": problem.file,
                "line": problem.position.line,
                "column": problem.position.column,
                "message": problem.message,
            }
            for problem, severity in problems
        ]
    return document


async def _silences_in(url: str, now: float) -> list[Silence]:
    """The silences of the store not over at `now` (`route --store`)."""
    async with existing_store(url) as store:
        return [to_silence(record) for record in await store.list_silences(ended_after=now)]


def _when(timestamp: float | None) -> str:
    if timestamp is None:
        return "-"
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _kind(view: DeliveryView) -> str:
    if view.kind != "digest":
        return view.kind
    return f"digest ({view.calls} call{'' if view.calls == 1 else 's'})"


def _print_rows(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """A table with a header, columns as wide as their widest cell; every cell printable
    (ids, errors and summaries may hold control characters from a caller)."""
    cells = [[printable(cell) for cell in row] for row in [header, *rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    for row in cells:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))


def _print_deliveries(views: Sequence[DeliveryView]) -> None:
    header = (
        "ID",
        "EVENT",
        "SINK",
        "RULE",
        "KIND",
        "STATUS",
        "ATTEMPTS",
        "NEXT ATTEMPT",
        "LAST ERROR / MUTED BY",
    )
    rows = [
        (
            v.id,
            v.event_id,
            v.sink,
            v.rule,
            _kind(v),
            v.status,
            str(v.attempts),
            _when(v.next_attempt_at) if v.status == "pending" else "-",
            ((v.muted_reason if v.status == "muted" else v.last_error) or "")[:60],
        )
        for v in views
    ]
    _print_rows(header, rows)


def cmd_deliveries(args: argparse.Namespace) -> int:
    from router.web.admin import acknowledgements_of, delivery_json

    async def run() -> tuple[list[DeliveryView], dict[str, Acknowledgement]]:
        async with existing_store(args.store) as store:
            views = await store.list_deliveries(
                args.status, args.sink, args.limit, rule=args.rule, call=args.call
            )
            return views, await acknowledgements_of(store, views) if args.json else {}

    try:
        views, acknowledged = asyncio.run(run())
    except (StoreError, ValueError) as error:
        return store_failed("deliveries", error)
    if args.json:
        for view in views:
            print(json.dumps(delivery_json(view, acknowledged.get(view.id))))
    elif not views:
        print(f"no deliveries of call {printable(args.call)}" if args.call else "no deliveries")
    else:
        _print_deliveries(views)
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    async def run() -> int:
        async with existing_store(args.store) as store:
            trail = AuditTrail(store)
            if args.delivery:
                if not await trail.replay(cli_actor(), args.delivery):
                    known = await store.get_delivery(args.delivery) is not None
                    reason = "is being sent right now; try again" if known else "does not exist"
                    print(f"delivery {args.delivery!r} {reason}", file=sys.stderr)
                    return 1
                print(f"requeued delivery {args.delivery}")
                return 0
            wanted = (
                BulkReplay("muted", args.sink, args.rule)
                if args.status == "muted"
                else BulkReplay("dead", args.sink, args.rule)
            )
            count = await trail.replay_many(cli_actor(), wanted)
            print(
                f"requeued {count} {args.status} deliver{'y' if count == 1 else 'ies'}"
                f"{f' of sink {args.sink}' if args.sink else ''}"
                f"{f' of rule {args.rule}' if args.rule else ''}"
            )
            return 0

    try:
        return asyncio.run(run())
    except (StoreError, ValueError) as error:
        return store_failed("replay", error)


def cmd_ack(args: argparse.Namespace) -> int:
    """Acknowledge a delivery's alert (its call for its rule, or its digest), recorded and
    audited as `cli:<os user>`: that rule's escalation of the call stops (DESIGN.md
    section 16)."""

    async def run() -> int:
        async with existing_store(args.store) as store:
            trail = AuditTrail(store)
            done = await acknowledge_delivery(
                trail, store, args.delivery_id, cli_actor(), time.time(), channel="cli"
            )
            if done is None:
                print(f"delivery {args.delivery_id!r} does not exist", file=sys.stderr)
                return 1
            first = done.acknowledgement
            when = datetime.fromtimestamp(first.at, UTC).isoformat(timespec="seconds")
            if done.first:
                print(
                    f"acknowledged delivery {args.delivery_id}"
                    f" ({first.kind} {first.target_id}, rule {first.rule})"
                )
            else:
                print(
                    f"delivery {args.delivery_id} was acknowledged already by"
                    f" {first.user_name or first.user_id} at {when}"
                )
            return 0

    try:
        return asyncio.run(run())
    except (StoreError, ValueError) as error:
        return store_failed("ack", error)


def cmd_backfill(args: argparse.Namespace) -> int:
    from router.revring import api_from_env, dry_run
    from router.revring.backfill import MAX_IDS, IdsError, Progress, read_ids

    try:
        api = api_from_env()
    except ValueError as exc:
        print(f"revring-router backfill: {exc}", file=sys.stderr)
        return 2
    if api is None:
        print(
            "revring-router backfill: set ROUTER_REVRING_API_KEY (an API key from the"
            " RevRing dashboard) to fetch calls",
            file=sys.stderr,
        )
        return 2
    ids: list[str] = []
    if args.ids:
        try:
            ids = read_ids(Path(args.ids).read_text(encoding="utf-8-sig"))
        except OSError as exc:
            print(f"{args.ids}: cannot read: {exc.strerror}", file=sys.stderr)
            return 2
        except (IdsError, UnicodeDecodeError, csv.Error) as exc:
            print(f"{args.ids}: {exc}", file=sys.stderr)
            return 2
    else:
        from router.revring.backfill import unique_ids

        ids = unique_ids(args.id)
    if not ids:
        print("revring-router backfill: no call ids given", file=sys.stderr)
        return 2
    if len(ids) > MAX_IDS:
        print(f"revring-router backfill: at most {MAX_IDS} ids at once", file=sys.stderr)
        return 2
    config = _load_or_report(args.config)
    if config is None:
        return 1

    async def run() -> Any:
        progress = Progress(len(ids))
        try:
            if args.dry_run:
                return await dry_run(ids, api, config, progress)
            return await _backfill_into_store(args, ids, api, progress)
        finally:
            await api.close()

    try:
        summary = asyncio.run(run())
    except (StoreError, ValueError) as error:
        return store_failed("backfill", error)
    for line in summary.would_route:
        print(f"would route {line}")
    for call_id in summary.not_found:
        print(f"not found: {printable(call_id)}")
    for call_id, why in summary.failed:
        print(f"failed: {printable(call_id)}: {printable(why)}")
    print(summary.line())
    return 0 if summary.ok else 1


async def _backfill_into_store(
    args: argparse.Namespace, ids: list[str], api: Any, progress: Any
) -> Any:
    """Ingest through the webhook's own path, into the store a running server shares: its
    delivery engine picks the new deliveries up (at its next poll on SQLite)."""
    from router.config import Runtime
    from router.core.metrics import Metrics
    from router.engine import Intake
    from router.revring import backfill
    from sinks.base import SinkResources

    metrics = Metrics()
    runtime = Runtime(args.config, metrics, SinkResources())
    runtime.load("backfill")
    store = open_store(args.store, serving=False)
    await store.open()
    intake = Intake(runtime, store, metrics)
    try:
        summary = await backfill(ids, api, intake.ingest_body, progress)
        details = summary.to_json()
        await AuditTrail(store).record(cli_actor(), "backfill", backfill_target(ids), details)
        return summary
    finally:
        intake.close()
        await store.close()
        await runtime.close()


def cmd_calls(args: argparse.Namespace) -> int:
    """Stored calls, newest first: every call, or those a search (`--q`), a call status or
    a verification state (verify mode's held calls: `--verification pending`) picks."""
    from router.core.call_search import SearchInvalid, call_filters
    from router.web.admin import call_json

    try:
        filters = replace(
            call_filters(args.q or "", args.status or ""), verification=args.verification
        )
    except SearchInvalid as exc:
        print(f"revring-router calls: --q: {exc}", file=sys.stderr)
        return 2

    async def run() -> list[EventView]:
        async with existing_store(args.store) as store:
            return await store.list_events(filters, None, args.limit)

    try:
        views = asyncio.run(run())
    except (StoreError, ValueError) as error:
        return store_failed("calls", error)
    shown = [call_json(view) for view in views]
    if args.json:
        for call in shown:
            print(json.dumps(call))
    elif not shown:
        print("no calls match" if filters != CallFilters() else "no calls")
    else:
        _print_calls(shown, verification=filters.verification is not None)
    return 0


def cmd_forget(args: argparse.Namespace) -> int:
    """Forget a caller on request (DESIGN.md section 15): their calls and everything that
    goes with them deleted, the number `[erased]` wherever else it stays; the counts.
    `--dry-run`: the counts alone."""
    from router.core.phones import mask_phone
    from router.operators import (
        ForgetRequest,
        RequestInvalid,
        forget_caller,
        parse_phone,
        report_lines,
    )

    try:
        _check_phone_region()
        number = parse_phone(args.phone)
    except SettingError as exc:  # numbers cannot be read in no region
        print(f"revring-router forget: {exc}", file=sys.stderr)
        return 2
    except RequestInvalid as exc:
        print(f"revring-router forget: --{exc.errors[0]}", file=sys.stderr)
        return 2

    async def run() -> Any:
        async with existing_store(args.store) as store:
            wanted = ForgetRequest(number, args.dry_run)
            return await forget_caller(store, wanted, cli_actor(), AuditTrail(store))

    try:
        report = asyncio.run(run())
    except (StoreError, ValueError) as error:
        return store_failed("forget", error)
    if args.dry_run:
        print(f"dry run: forgetting the caller {mask_phone(number)} would delete or rewrite")
    else:
        print(f"forgot the caller {mask_phone(number)}")
    for line in report_lines(report):
        print(line)
    return 0


def _print_calls(calls: Sequence[dict[str, Any]], *, verification: bool) -> None:
    header: tuple[str, ...] = (
        "RECEIVED (UTC)",
        "ID",
        "DIRECTION",
        "STATUS",
        "FROM",
        "TO",
        "SUMMARY",
    )
    rows: list[tuple[str, ...]] = [
        (
            _when(call["received_at"]),
            call["id"],
            call["direction"],
            call["status"],
            call["from_number"] or "-",
            call["to_number"] or "-",
            " ".join((call["summary"] or "").split())[:60],
        )
        for call in calls
    ]
    if verification:
        header += ("VERIFICATION", "CHECKS")
        rows = [
            (*row, call["verification"] or "-", str(call["verify_attempts"]))
            for row, call in zip(rows, calls, strict=True)
        ]
    _print_rows(header, rows)


def cmd_release(args: argparse.Namespace) -> int:
    """Route a held or not-verified call by hand, with the body as posted."""
    from router.revring import release

    config = _load_or_report(args.config)
    if config is None:
        return 1

    async def run() -> Any:
        async with existing_store(args.store) as store:
            trail = AuditTrail(store)
            audit = trail.entry(cli_actor(), "release", f"call:{args.id}")
            return await release(store, config.rules, args.id, audit)

    try:
        released = asyncio.run(run())
    except (StoreError, ValueError) as error:
        return store_failed("release", error)
    if released.outcome == "unknown":
        print(f"no call {printable(args.id)!r}", file=sys.stderr)
        return 1
    if released.outcome == "not_held":
        print(
            f"call {printable(args.id)} is not held (verification:"
            f" {released.verification or 'none'})",
            file=sys.stderr,
        )
        return 1
    print(f"released call {printable(args.id)}: {released.deliveries} deliveries")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from router.core.logs import setup_logging
    from router.web import ApiKeys, ServiceSettings

    setup_logging(args.log_format)
    api_keys = ApiKeys.from_env(os.environ.get("ROUTER_API_KEYS"))
    if not api_keys and not args.no_auth:
        print(
            "revring-router: refusing to start without an API key: set ROUTER_API_KEYS "
            "(comma-separated) or pass --no-auth",
            file=sys.stderr,
        )
        return 2
    from router.engine import EngineSettings, IngestLimits, default_worker_count
    from router.web import ConnectionLimits
    from router.web.connections import default_max_connections

    try:
        _check_phone_region()
        engine = EngineSettings(
            lease_seconds=_positive_setting("ROUTER_LEASE_SECONDS", EngineSettings.lease_seconds)
        )
        ingest = IngestLimits(
            body_timeout=_positive_setting("ROUTER_BODY_TIMEOUT", IngestLimits.body_timeout),
            max_parse_bytes=int(
                _positive_setting(
                    "ROUTER_MAX_PARSE_BYTES", IngestLimits.max_parse_bytes, whole=True
                )
            ),
            store_timeout=_positive_setting("ROUTER_STORE_TIMEOUT", IngestLimits.store_timeout),
            parse_workers=_count_setting("ROUTER_PARSE_WORKERS", default_worker_count()),
        )
        limits = ConnectionLimits(
            header_timeout=_positive_setting(
                "ROUTER_HEADER_TIMEOUT", ConnectionLimits.header_timeout
            ),
            idle_timeout=_positive_setting("ROUTER_IDLE_TIMEOUT", ConnectionLimits.idle_timeout),
            max_connections=int(
                _positive_setting("ROUTER_MAX_CONNECTIONS", default_max_connections(), whole=True)
            ),
            shutdown_grace=_positive_setting(
                "ROUTER_SHUTDOWN_GRACE", ConnectionLimits.shutdown_grace
            ),
        )
    except SettingError as exc:
        print(f"revring-router: {exc}", file=sys.stderr)
        return 2
    from router.revring import api_from_env

    try:
        revring_api = api_from_env()
    except ValueError as exc:
        print(f"revring-router: {exc}", file=sys.stderr)
        return 2
    verify = (os.environ.get("ROUTER_VERIFY_CALLS") or "").strip().lower()
    if verify not in ("", "off", "revring"):
        print(
            f"revring-router: ROUTER_VERIFY_CALLS must be revring or off, got {verify!r}",
            file=sys.stderr,
        )
        return 2
    if verify == "revring" and revring_api is None:
        print(
            "revring-router: ROUTER_VERIFY_CALLS=revring needs ROUTER_REVRING_API_KEY",
            file=sys.stderr,
        )
        return 2
    from router.operators import OidcSettingError, oidc_settings_from_env

    try:
        oidc = oidc_settings_from_env(os.environ)
    except OidcSettingError as exc:
        print(f"revring-router: {exc}", file=sys.stderr)
        return 2
    settings = ServiceSettings(
        config_path=args.config,
        store_url=args.store,
        api_keys=None if args.no_auth else api_keys,
        admin_token=os.environ.get("ROUTER_ADMIN_TOKEN") or None,
        users_file=os.environ.get("ROUTER_USERS_FILE") or None,
        retention_days=args.retention_days,
        engine=engine,
        ingest=ingest,
        revring_api=revring_api,
        verify_calls=verify == "revring",
        oidc=oidc,
        public_url=os.environ.get("ROUTER_PUBLIC_URL") or None,
    )
    try:
        return _run_event_loop(_serve(settings, limits, args.host, args.port), args.loop)
    except KeyboardInterrupt:
        return 0


async def _serve(settings: ServiceSettings, limits: ConnectionLimits, host: str, port: int) -> int:
    from aiohttp import web

    from router.web import GuardedSite, build_app
    from router.web.app import ENGINE, RUNTIME
    from router.web.connections import LISTEN_BACKLOG, listening_sockets

    # The port first: a `serve` that cannot listen (another one holds the port) exits
    # before it opens the store, starts a delivery worker or sends anything (DESIGN §3).
    # Connections that arrive while the rest starts wait in the kernel's backlog.
    try:
        listeners = listening_sockets(host, port, LISTEN_BACKLOG)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        log.error("cannot listen on %s:%d: %s", host, port, reason)
        print(f"revring-router: cannot listen on {host}:{port}: {reason}", file=sys.stderr)
        return 1
    try:
        app = build_app(settings)
        runner = web.AppRunner(
            app,
            access_log=None,
            handle_signals=False,
            shutdown_timeout=10,
            **limits.handler_kwargs(),
        )
        await runner.setup()
    except ConfigError as exc:
        _close_all(listeners)
        invalid = exc.errors[0].file if exc.errors else settings.config_path
        for error in exc.errors:
            log.error(
                "bad %s: %s",
                "rules.yaml" if error.file == settings.config_path else "users file",
                error,
            )
        print(f"revring-router: {invalid} is invalid:", file=sys.stderr)
        _print_errors(exc)
        return 1
    except Exception as exc:
        _close_all(listeners)
        log.error("cannot start: %s", exc)
        print(f"revring-router: cannot start: {exc}", file=sys.stderr)
        return 1
    # The long-lived objects out of the collector's way (router.core.collector).
    settle_after_start()
    site = GuardedSite(runner, host, port, limits, listeners=listeners)
    await site.start()
    runtime = app[RUNTIME]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    loop.add_signal_handler(signal.SIGHUP, runtime.reload_soon, "SIGHUP")
    log.info(
        "revring-router %s listening on http://%s:%d (store %s; %d rules, %d sinks from %s)",
        __version__,
        host,
        port,
        settings.store_url.split("://")[0],
        len(runtime.config.rules),
        len(runtime.config.sinks),
        settings.config_path,
    )
    await stop.wait()
    app[ENGINE].stop_began = loop.time()  # sends get what is left of the drain after requests
    await site.finish_requests(limits.shutdown_grace)  # the requests already started
    log.info("shutting down: finishing in-flight deliveries")
    await runner.cleanup()
    log.info("stopped")
    return 0


def _close_all(sockets: Sequence[socket.socket]) -> None:
    for sock in sockets:
        sock.close()


def _run_event_loop(main: Coroutine[Any, Any, int], loop: str) -> int:
    """Run the service on uvloop when it is installed (and asked for), else asyncio's loop."""
    if loop in ("auto", "uvloop"):
        try:
            import uvloop
        except ImportError:
            if loop == "uvloop":
                raise SystemExit(
                    "revring-router: --loop uvloop, but uvloop is not installed"
                ) from None
        else:
            return uvloop.run(main)
    return asyncio.run(main)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="revring-router",
        description="Route RevRing post-call webhooks to Slack, email and HTTP/CRM endpoints.",
    )
    parser.add_argument("--version", action="version", version=f"revring-router {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    config_default = _env("ROUTER_CONFIG", "rules.yaml")
    store_default = _env("ROUTER_STORE", DEFAULT_STORE)

    serve = commands.add_parser("serve", help="run the service")
    serve.add_argument("--config", default=config_default)
    serve.add_argument(
        "--host",
        default=_env("ROUTER_HOST", "127.0.0.1"),
        help="address to listen on (default: ROUTER_HOST, else 127.0.0.1; 0.0.0.0: every"
        " interface)",
    )
    serve.add_argument("--port", type=_port_number, help="default: ROUTER_PORT, else 8080")
    serve.add_argument("--store", default=store_default)
    serve.add_argument("--no-auth", action="store_true", help="accept webhooks without a key")
    serve.add_argument(
        "--loop",
        choices=["auto", "uvloop", "asyncio"],
        default=_env("ROUTER_EVENT_LOOP", "auto"),
        help="event loop (auto: uvloop when installed)",
    )
    serve.add_argument(
        "--log-format",
        choices=["json", "text"],
        default=_env("ROUTER_LOG_FORMAT", "json"),
        help="one JSON object per log line, or plain text (default: ROUTER_LOG_FORMAT, else json)",
    )
    serve.add_argument(
        "--retention-days",
        type=_days,
        help="purge delivered events older than this (0: keep forever; "
        "default: ROUTER_RETENTION_DAYS, else 30)",
    )
    serve.set_defaults(func=cmd_serve)

    check = commands.add_parser("check", help="validate rules.yaml")
    check.add_argument("--config", default=config_default)
    check.add_argument(
        "--strict",
        action="store_true",
        help="warnings count as errors: exit 1 on any (for CI)",
    )
    check.set_defaults(func=cmd_check)

    route_cmd = commands.add_parser("route", help="show where an event would go; sends nothing")
    route_cmd.add_argument("event", metavar="EVENT.json", help="a call's JSON body, as posted")
    route_cmd.add_argument("--config", default=config_default)
    route_cmd.add_argument("--render", action="store_true", help="show the rendered messages")
    route_cmd.add_argument(
        "--explain",
        action="store_true",
        help="for each rule that did not match, its first failing condition and the call's value",
    )
    route_cmd.add_argument(
        "--json",
        action="store_true",
        help="print one JSON document: rules (matched, failed) and sinks (outcome, muted_reason)",
    )
    route_cmd.add_argument(
        "--at",
        type=_instant,
        metavar="TIME",
        help="judge time intervals at this ISO 8601 time (default: now), e.g. 2026-12-24T10:00:00Z",
    )
    route_cmd.add_argument(
        "--store", metavar="URL", help="apply the silences stored there (default: none)"
    )
    route_cmd.set_defaults(func=cmd_route)

    deliveries = commands.add_parser("deliveries", help="list deliveries, newest first")
    deliveries.add_argument(
        "--status",
        choices=["pending", "delivered", "dead", "muted"],
        help="only deliveries in this state",
    )
    deliveries.add_argument("--sink", metavar="NAME", help="only this sink's deliveries")
    deliveries.add_argument("--rule", metavar="NAME", help="only this rule's deliveries")
    deliveries.add_argument(
        "--call",
        metavar="CALL_ID",
        help="only this call's deliveries (and the digests it joined)",
    )
    deliveries.add_argument("--store", default=store_default)
    deliveries.add_argument(
        "--limit", type=_count, default=100, metavar="N", help="at most this many"
    )
    deliveries.add_argument("--json", action="store_true", help="one JSON object per line")
    deliveries.set_defaults(func=cmd_deliveries)

    replay = commands.add_parser("replay", help="put deliveries back in the queue")
    target = replay.add_mutually_exclusive_group(required=True)
    target.add_argument("--delivery", metavar="ID", help="this delivery (any state)")
    target.add_argument("--status", choices=["dead", "muted"], help="every delivery in this state")
    replay.add_argument("--sink", metavar="NAME", help="with --status: only this sink's deliveries")
    replay.add_argument("--rule", metavar="NAME", help="with --status: only this rule's deliveries")
    replay.add_argument("--store", default=store_default)
    replay.set_defaults(func=cmd_replay)

    ack = commands.add_parser(
        "ack", help="acknowledge an alert (stops its escalation)", description=cmd_ack.__doc__
    )
    ack.add_argument("delivery_id", metavar="DELIVERY_ID", help="any delivery of the alert")
    ack.add_argument("--store", default=store_default)
    ack.set_defaults(func=cmd_ack)

    backfill_cmd = commands.add_parser(
        "backfill", help="fetch calls from RevRing's API by id and ingest them"
    )
    source = backfill_cmd.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--ids", metavar="FILE", help="call ids, one a line, or a CSV with an `id` column"
    )
    source.add_argument("--id", metavar="ID", nargs="+", action="extend", help="call ids")
    backfill_cmd.add_argument(
        "--dry-run", action="store_true", help="show where each call would go; write nothing"
    )
    backfill_cmd.add_argument("--config", default=config_default)
    backfill_cmd.add_argument("--store", default=store_default)
    backfill_cmd.set_defaults(func=cmd_backfill)

    calls = commands.add_parser("calls", help="list stored calls, newest first")
    calls.add_argument(
        "--q",
        metavar="TEXT",
        help="a phone number in any common format (the calls from or to it), or words the"
        " summary or transcript holds (all of them, any case, each also the start of a"
        " longer word; through the store's full-text index)",
    )
    calls.add_argument(
        "--status",
        metavar="S",
        help="only calls of this status (COMPLETED, FAILED, ...; any case)",
    )
    calls.add_argument(
        "--verification",
        choices=["pending", "not_verified", "verified", "released"],
        help="verify mode: only calls in this state (pending: held, waiting for RevRing)",
    )
    calls.add_argument("--store", default=store_default)
    calls.add_argument("--limit", type=_count, default=100, metavar="N", help="at most this many")
    calls.add_argument("--json", action="store_true", help="one JSON object per line")
    calls.set_defaults(func=cmd_calls)

    release_cmd = commands.add_parser(
        "release", help="route a held or not-verified call by hand, as posted"
    )
    release_cmd.add_argument("id", metavar="CALL_ID", help="the held call to route")
    release_cmd.add_argument("--config", default=config_default)
    release_cmd.add_argument("--store", default=store_default)
    release_cmd.set_defaults(func=cmd_release)

    forget_cmd = commands.add_parser(
        "forget", help="erase a caller's calls and their number (on request: GDPR, CCPA)"
    )
    forget_cmd.add_argument(
        "--phone",
        metavar="NUMBER",
        required=True,
        help="the caller's number in any common format (+1 415-555-0142, (415) 555-0142;"
        " without a country code it is read in ROUTER_PHONE_REGION)",
    )
    forget_cmd.add_argument(
        "--dry-run", action="store_true", help="print the counts; change nothing"
    )
    forget_cmd.add_argument("--store", default=store_default)
    forget_cmd.set_defaults(func=cmd_forget)

    add_control_commands(commands, config_default, store_default)
    add_user_commands(commands, store_default)
    add_audit_command(commands, store_default)
    _describe_shared_options(parser)
    return parser


# Options of many commands, described once: (metavar, help).
SHARED_OPTIONS = {
    "--config": ("FILE", "the rules.yaml to read (default: ROUTER_CONFIG, else rules.yaml)"),
    "--store": (
        "URL",
        "the store: sqlite:///path.db, sqlite:////abs/path.db or postgresql://… (default:"
        " ROUTER_STORE, else sqlite:///data/router.db)",
    ),
}


def _describe_shared_options(parser: argparse.ArgumentParser) -> None:
    """Give every `SHARED_OPTIONS` option of every command its metavar, and its help where
    the command wrote none of its own."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for command in action.choices.values():
                _describe_shared_options(command)
        for flag in action.option_strings:
            if flag in SHARED_OPTIONS:
                metavar, help_text = SHARED_OPTIONS[flag]
                action.metavar = action.metavar or metavar
                action.help = action.help or help_text


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _apply_env_defaults(parser, args)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
