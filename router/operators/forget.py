"""Forgetting a caller on request (DESIGN.md section 15): the request read and checked,
the store's erasure made of it, and what the audit records of it: a salted hash of the
number, never the number. The CLI (`forget`), the admin API (`POST /admin/forget`) and
the console's page all go through `forget_caller`.

The salt is the store's own random secret (`Erasures.secret`, a row of `settings`),
made on the first erasure: every process sharing the store hashes a number alike (so
two erasures of one number show as one), it outlives a change of `ROUTER_ADMIN_TOKEN`
or any other configured secret, and whoever reads only the audit (an export, a log
shipper) cannot test numbers against the hashes without the store itself.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from dataclasses import asdict, dataclass
from functools import partial
from typing import Any

from router.core.phones import REGION_VARIABLE, e164, erase_number_in, mask_phone, national_digits
from router.core.phones import phone_region as current_region
from router.operators.audit import AuditTrail
from router.operators.silences import RequestInvalid
from router.rules.matching import kind_of
from router.store import Erasure, ErasureCounts, Erasures

log = logging.getLogger("router.operators.forget")

SALT_SETTING = "erasure_salt"
FORGET_FIELDS = ("phone", "dry_run")
MAX_PHONE_CHARACTERS = 64


@dataclass(frozen=True)
class ForgetRequest:
    """A caller to forget: `number` in E.164."""

    number: str
    dry_run: bool = False


@dataclass(frozen=True)
class ForgetReport:
    """What forgetting did (or, in a dry run, would do), and the audit's details of it
    (None for a dry run: nothing changed)."""

    counts: ErasureCounts
    dry_run: bool
    audit: dict[str, Any] | None = None


def parse_phone(text: Any) -> str:
    """A phone number in any common format as E.164, or `RequestInvalid` saying why not;
    the text given is never repeated (it may be most of a number)."""
    if text is None or (isinstance(text, str) and not text.strip()):
        raise RequestInvalid(["phone: required, the caller's number in any common format"])
    if not isinstance(text, str):
        raise RequestInvalid([f"phone: expected a string, not {kind_of(text)}"])
    number = e164(text) if len(text) <= MAX_PHONE_CHARACTERS else None
    if number is None:
        raise RequestInvalid(
            [
                "phone: not a phone number in any common format (with a country code"
                " such as +1 or +44, or without one, read in region"
                f" {current_region()}: {REGION_VARIABLE})"
            ]
        )
    return number


def parse_forget_request(body: Any) -> ForgetRequest:
    """`{"phone": "…", "dry_run": false}` as a request, or `RequestInvalid` naming every
    problem."""
    if not isinstance(body, dict):
        raise RequestInvalid([f"the body must be a JSON object, not {kind_of(body)}"])
    errors = [
        f"{name}: unknown field (expected {', '.join(FORGET_FIELDS)})"
        for name in body
        if name not in FORGET_FIELDS
    ]
    number = None
    try:
        number = parse_phone(body.get("phone"))
    except RequestInvalid as exc:
        errors += exc.errors
    dry_run = body.get("dry_run", False)
    if not isinstance(dry_run, bool):
        errors.append(f"dry_run: expected true or false, not {kind_of(dry_run)}")
    if errors or number is None:
        raise RequestInvalid(errors)
    return ForgetRequest(number, dry_run)


def erasure_of(request: ForgetRequest) -> Erasure:
    """The store's erasure of a caller: their number, its digits, how text loses it."""
    return Erasure(
        number=request.number,
        digits=national_digits(request.number),
        redact=partial(erase_number_in, number=request.number),
        dry_run=request.dry_run,
    )


def number_hash(number: str, salt: str) -> str:
    """The salted hash an audit keeps of an erased number (HMAC-SHA256, hex)."""
    return hmac.new(salt.encode(), number.encode(), hashlib.sha256).hexdigest()


def audit_details(number: str, counts: ErasureCounts, salt: str) -> dict[str, Any]:
    """What the audit records of an erasure: the number's salted hash and the counts."""
    return {"phone_hash": number_hash(number, salt), **asdict(counts)}


def report_json(report: ForgetReport, number: str) -> dict[str, Any]:
    """The admin API's answer: the counts, and the number masked."""
    return {
        "status": "dry_run" if report.dry_run else "forgotten",
        "phone": mask_phone(number),
        "dry_run": report.dry_run,
        **asdict(report.counts),
    }


def report_lines(report: ForgetReport) -> list[str]:
    """The counts as the CLI prints them, one per line."""
    counts = report.counts
    return [
        f"calls deleted: {counts.calls_deleted}",
        f"deliveries deleted: {counts.deliveries_deleted}"
        f" (pending cancelled: {counts.pending_cancelled})",
        f"other calls rewritten: {counts.calls_rewritten}",
        f"attempts rewritten: {counts.attempts_rewritten}",
        f"other rows rewritten: {counts.other_rows_rewritten}",
        "dry run: nothing was changed"
        if report.dry_run
        else "the number now shows as [erased] wherever it stays",
    ]


async def forget_caller(
    store: Erasures, request: ForgetRequest, actor: str, trail: AuditTrail
) -> ForgetReport:
    """Forget a caller (or count, in a dry run) and record it in the audit (`trail`: an
    audit that cannot be written is logged; the erasure stands)."""
    counts = await store.forget(erasure_of(request))
    if request.dry_run:
        return ForgetReport(counts, dry_run=True)
    details = audit_details(request.number, counts, await store.secret(SALT_SETTING))
    await trail.record(actor, "forget", "caller", details)  # a salted hash, never the number
    log.info(
        "caller forgotten: %d calls deleted, %d deliveries (%d pending cancelled), %d other"
        " calls and %d attempts rewritten",
        counts.calls_deleted,
        counts.deliveries_deleted,
        counts.pending_cancelled,
        counts.calls_rewritten,
        counts.attempts_rewritten,
        extra={"actor": actor},
    )
    return ForgetReport(counts, dry_run=False, audit=details)
