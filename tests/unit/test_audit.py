"""The audit's pure parts (DESIGN.md section 14): details masked (secrets, phone numbers)
and bounded, a record as shown, the filters of `GET /admin/audit` and `revring-router
audit` with each problem naming its parameter, the console's rows and cursor, the
actor of a command, and migration 10's reading of an old Slack click."""

from __future__ import annotations

import getpass
import json
from datetime import UTC, datetime

import pytest

from router.cli.audit import cli_actor
from router.operators import (
    AuditQueryInvalid,
    audit_filters,
    audit_json,
    audit_record,
    backfill_target,
    mask_details,
)
from router.store import AuditFilters, AuditRecord
from router.store.migrations import slack_click_audited
from router.web.ui.audit import audit_cursor, details_text

NOW = 1_800_000_000.0


def test_the_values_of_keys_that_name_credentials_are_masked_wherever_they_are() -> None:
    masked = mask_details(
        {
            "token": "tok-123456abcdef",
            "password": "hunter2hunter2",
            "headers": {"Authorization": "Bearer abc", "X-Api-Key": "k-1", "Accept": "json"},
            "signing_secret": "s3cr3t",
            "tokens": [],  # nothing to hide
            "comment": "rotated the key",
        }
    )
    assert masked == {
        "token": "***",
        "password": "***",
        "headers": {"Authorization": "***", "X-Api-Key": "***", "Accept": "json"},
        "signing_secret": "***",
        "tokens": [],
        "comment": "rotated the key",
    }


def test_phone_numbers_are_masked_in_text_in_number_fields_and_as_numbers() -> None:
    masked = mask_details(
        {
            "comment": "caller +1 (415) 555-0142 asked us to stop; ticket 2026-12-07",
            "phone": "+44 20 7183 8750",
            "from_number": "anonymous",
            "notes": ["also 415.555.0199"],
            "digits": 14155550142,
            "count": 12,
            "phone_hash": "9f86d081884c7d659a2feaa0c55ad015",
        }
    )
    assert "555-0142" not in masked["comment"] and "0142" in masked["comment"]
    assert "2026-12-07" in masked["comment"], "dates are not numbers"
    assert masked["phone"] == "+4420•••8750"
    assert masked["from_number"] != "anonymous", "a number field is masked whole"
    assert "555.0199" not in masked["notes"][0]
    assert masked["digits"] != 14155550142 and masked["count"] == 12
    assert masked["phone_hash"] == "9f86d081884c7d659a2feaa0c55ad015", "a salted hash is kept"


def test_details_are_bounded_in_length_entries_and_depth() -> None:
    masked = mask_details(
        {"long": "x" * 2000, "many": list(range(200)), "deep": {"a": {"b": {"c": {"d": 1}}}}}
    )
    assert len(masked["long"]) == 500 and masked["long"].endswith("…")
    assert masked["many"] == list(range(50))
    assert masked["deep"] == {"a": {"b": {"c": "…"}}}
    assert mask_details(None) == {} and mask_details({}) == {}


def test_a_record_masks_its_details_and_target_and_shows_as_json() -> None:
    record = audit_record(
        "cli:ops", "forget", "phone:+1 415 555 0142", {"password": "pw", "n": 1}, NOW
    )
    assert (record.actor, record.action, record.at) == ("cli:ops", "forget", NOW)
    assert "555 0142" not in record.target
    assert json.loads(record.details) == {"password": "***", "n": 1}
    assert audit_record("", "reload", "rules.yaml").actor == "unknown"
    shown = audit_json(record)
    assert shown["at"] == datetime.fromtimestamp(NOW, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    assert shown["details"] == {"password": "***", "n": 1}
    odd = AuditRecord("x", NOW, "token", "replay", "t", "not json")
    assert audit_json(odd)["details"] == {"text": "not json"}


def test_the_filters_read_a_duration_or_an_iso_time_and_the_names() -> None:
    filters, limit = audit_filters(since="2h", actor="token", action="replay", now=NOW)
    assert filters == AuditFilters(since=NOW - 7200, actor="token", action="replay")
    assert limit == 100
    at_nine = datetime(2026, 12, 7, 9, 0, tzinfo=UTC).timestamp()
    assert audit_filters(since="2026-12-07T09:00:00Z", now=NOW)[0].since == at_nine
    assert audit_filters(since="2026-12-07T09:00:00", now=NOW)[0].since == at_nine, "UTC"
    assert audit_filters(since="2026-12-07T10:00:00+01:00", now=NOW)[0].since == at_nine
    assert audit_filters(since="", actor="", action="", limit="", now=NOW) == (AuditFilters(), 100)
    assert audit_filters(limit="1000", now=NOW)[1] == 1000


@pytest.mark.parametrize(
    ("asked", "parameter"),
    [
        ({"since": "yesterday"}, "since"),
        ({"since": "2"}, "since"),  # a number without a unit is no duration
        ({"limit": "0"}, "limit"),
        ({"limit": "1001"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"actor": "a" * 201}, "actor"),
        ({"action": "re\x00play"}, "action"),
    ],
)
def test_a_bad_filter_names_its_parameter(asked: dict[str, str], parameter: str) -> None:
    with pytest.raises(AuditQueryInvalid) as raised:
        audit_filters(**asked, now=NOW)
    assert raised.value.parameter == parameter
    assert str(raised.value).startswith(f"{parameter}: ")


def test_a_backfill_names_its_first_calls() -> None:
    assert backfill_target(["a", "b"]) == "calls:a,b"
    assert backfill_target(["a", "b", "c", "d", "e"]) == "calls:a,b,c (+2)"


def test_the_console_shows_details_one_a_line_and_reads_its_cursor() -> None:
    record = AuditRecord("x", NOW, "token", "reload", "rules.yaml", '{"rules": 3, "sinks": ["a"]}')
    assert details_text(record) == 'rules: 3\nsinks: ["a"]'
    assert audit_cursor({}) is None
    assert audit_cursor({"before_at": "12.5", "before_id": "r1"}) == (12.5, "r1")
    with pytest.raises(AuditQueryInvalid):
        audit_cursor({"before_at": "nan", "before_id": "r1"})
    with pytest.raises(AuditQueryInvalid):
        audit_cursor({"before_at": "12.5"})


def test_a_command_acts_as_cli_and_the_os_user(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(getpass, "getuser", lambda: "alice")
    assert cli_actor() == "cli:alice"

    def nobody() -> str:
        raise OSError("No username set in the environment")

    monkeypatch.setattr(getpass, "getuser", nobody)
    assert cli_actor().startswith("cli:uid-")


def test_an_old_slack_click_reads_as_an_audit_record() -> None:
    click = {
        "id": "k1",
        "at": NOW,
        "user_id": "U0ALICE",
        "user_name": "alice",
        "channel": "",
        "action": "silence",
        "target": "call:c1",
        "outcome": "silenced",
        "detail": "silence s1 for 1h",
    }
    moved = slack_click_audited(click)
    assert (moved["actor"], moved["action"], moved["target"]) == (
        "slack:U0ALICE",
        "silence.create",
        "call:c1",
    )
    assert json.loads(str(moved["details"])) == {
        "outcome": "silenced",
        "user_name": "alice",
        "detail": "silence s1 for 1h",
    }
    assert slack_click_audited({**click, "action": "acknowledge"})["action"] == "acknowledge"


async def test_a_bulk_replay_is_recorded_on_its_sink_or_rule_with_its_count() -> None:
    from router.operators import AuditTrail, BulkReplay
    from router.store import AttemptRecord, IngestRecord, NewDelivery, open_store

    store = open_store("memory://")
    await store.open()
    try:
        counted: list[str] = []
        trail = AuditTrail(store, counted.append, clock=lambda: NOW)
        assert await trail.replay_many("cli:ops", BulkReplay("dead", rule="r")) == 0
        assert await store.list_audit(AuditFilters()) == [], "nothing replayed: no record"
        await store.ingest(IngestRecord("e", b"{}", NOW, [NewDelivery("e:crm", "crm", "r")]))
        [claimed] = await store.claim("crm", 1, "w", 30.0, NOW)
        await store.finish(claimed.id, "w", AttemptRecord(1, NOW, 0.1, "dead", 400, "no"))
        assert await trail.replay_many("cli:ops", BulkReplay("dead", rule="r")) == 1
        [record] = await store.list_audit(AuditFilters())
        assert (record.actor, record.action, record.target) == ("cli:ops", "replay", "rule:r")
        assert json.loads(record.details) == {"status": "dead", "rule": "r", "count": 1}
        assert counted == ["replay"]
    finally:
        await store.close()
