"""Acting from an alert's buttons (DESIGN.md section 12), end to end: the real router
sends an alert with buttons to a fake Slack, the fake posts signed clicks back to
`POST /slack/interactions`, and records what comes back to the click's `response_url`
or to `chat.update`."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from router.store import AuditFilters, DeliveryView
from tests.conftest import fresh_event
from tests.service import ADMIN_TOKEN, parts, post_event, running_service, wait_for
from tests.slack_fake import SIGNING_SECRET, WEBHOOK_PATH, FakeSlack, signed_request

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
TRUNK = "trunk-carrier-a"


def rules(slack: FakeSlack, *, extra_actions: str = "", bot: bool = False) -> str:
    if bot:
        mode = f'token: xoxb-test\n    channel: "#ops-alerts"\n    api_url: "{slack.base}/api/"'
    else:
        mode = f'webhook_url: "{slack.base}{WEBHOOK_PATH}"'
    return f"""
version: 1
sinks:
  ops-slack:
    type: slack
    {mode}
    signing_secret: "{SIGNING_SECRET}"
    actions:
      silence_by: [sipTrunkId]
      silence_for: [1h, 4h]
{extra_actions}
  trunks-slack:
    type: slack
    webhook_url: "{slack.base}{WEBHOOK_PATH}"
    signing_secret: "other-apps-secret"
rules:
  - name: failed-calls
    when: {{status: FAILED}}
    to: [ops-slack]
  - name: trunk-digest
    when: {{status: CANCELED}}
    to: [trunks-slack]
    group: {{by: [sipTrunkId], window: 200ms}}
"""


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    fake = await FakeSlack().start()
    yield fake
    await fake.close()


async def alert(client: Any, slack: FakeSlack, **changes: Any) -> dict[str, Any]:
    """Post a FAILED call and return the alert Slack received for it."""
    before = len(slack.posted)
    event = fresh_event(status="FAILED", **{"sipTrunkId": TRUNK, **changes})
    assert (await post_event(client, event)).status == 200
    await wait_for(lambda: len(slack.posted) > before)
    return slack.posted[-1]


async def click(client: Any, body: bytes, headers: dict[str, str]) -> int:
    answer = await client.post("/slack/interactions", data=body, headers=headers)
    assert await answer.read() == b""
    return answer.status


async def silences(client: Any) -> list[dict[str, Any]]:
    answer = await client.get("/admin/silences", headers=ADMIN)
    assert answer.status == 200
    return await answer.json()


@dataclass(frozen=True)
class Click:
    """A click as the audit holds it (DESIGN.md section 14)."""

    user_id: str
    action: str
    outcome: str
    channel: str
    target: str


async def audit(client: Any) -> list[Click]:
    """The clicks audited, newest first, as recorded in the audit."""
    store, *_ = parts(client)
    clicks = []
    for record in await store.list_audit(AuditFilters()):
        assert record.actor.startswith("slack:")
        details = json.loads(record.details)
        clicks.append(
            Click(
                record.actor.removeprefix("slack:"),
                record.action,
                details["outcome"],
                details.get("channel", ""),
                record.target,
            )
        )
    return clicks


async def test_an_alert_carries_the_buttons_and_a_silence_click_mutes_the_next_similar_call(
    tmp_path, write_rules, slack
):
    async with running_service(write_rules(rules(slack)), tmp_path / "r.db") as client:
        message = await alert(client, slack)
        [actions] = [block for block in message["blocks"] if block["type"] == "actions"]
        labels = [element["text"]["text"] for element in actions["elements"]]
        assert labels == [
            ":eyes: Acknowledge",
            ":no_bell: Silence similar for 1h",
            ":no_bell: Silence similar for 4h",
        ]
        assert all(SIGNING_SECRET not in element["value"] for element in actions["elements"])

        payload = slack.click_payload(message, "revring:silence:1h")
        assert await click(client, *signed_request(payload)) == 200
        await wait_for(lambda: slack.responses)

        [silence] = await silences(client)
        assert silence["when"] == {"sipTrunkId": TRUNK}
        assert silence["sinks"] == ["ops-slack"]
        assert silence["state"] == "active"
        assert "alice (U0ALICE)" in silence["comment"]
        assert "#ops-alerts (C0ALERTS)" in silence["comment"]
        [update] = slack.responses
        assert update["replace_original"] is True
        outcome = update["blocks"][-1]["elements"][0]["text"]
        assert outcome.startswith(":no_bell: Silenced for 1h by <@U0ALICE> until <!date^")
        assert update["blocks"][0] == message["blocks"][0]  # the alert itself is kept

        similar = fresh_event(status="FAILED", sipTrunkId=TRUNK)
        other_trunk = fresh_event(status="FAILED", sipTrunkId="trunk-carrier-b")
        await post_event(client, similar)
        await post_event(client, other_trunk)
        answer = await client.get("/admin/deliveries", params={"status": "muted"}, headers=ADMIN)
        [muted] = await answer.json()
        assert muted["event_id"] == similar["id"]
        assert muted["muted_reason"] == f"silence:{silence['id']}"
        [entry] = await audit(client)
        assert (entry.user_id, entry.action, entry.outcome) == (
            "U0ALICE",
            "silence.create",
            "silenced",
        )
        assert entry.target == f"silence:{silence['id']}"
        assert entry.channel == "#ops-alerts (C0ALERTS)"
        metrics = await (await client.get("/metrics")).text()
        assert (
            'revring_router_slack_actions_total{action="silence",outcome="silenced"} 1.0' in metrics
        )
        assert 'revring_router_audit_events_total{action="silence.create"} 1.0' in metrics


async def test_a_second_click_extends_the_silence_instead_of_stacking_another(
    tmp_path, write_rules, slack
):
    async with running_service(write_rules(rules(slack)), tmp_path / "r.db") as client:
        message = await alert(client, slack)
        assert (
            await click(client, *signed_request(slack.click_payload(message, "revring:silence:1h")))
            == 200
        )
        await wait_for(lambda: len(slack.responses) == 1)
        [first] = await silences(client)

        payload = slack.click_payload(message, "revring:silence:4h", user="U0BOB", user_name="bob")
        assert await click(client, *signed_request(payload)) == 200
        await wait_for(lambda: len(slack.responses) == 2)

        [extended] = await silences(client)
        assert extended["id"] == first["id"]
        assert extended["ends_at"] > first["ends_at"]
        outcome = slack.responses[-1]["blocks"][-1]["elements"][0]["text"]
        assert outcome.startswith(":no_bell: Silence extended for 4h by <@U0BOB>")
        assert [entry.outcome for entry in await audit(client)] == ["extended", "silenced"]


async def test_acknowledge_is_recorded_on_the_call_and_shown_in_the_admin_api(
    tmp_path, write_rules, slack
):
    async with running_service(write_rules(rules(slack)), tmp_path / "r.db") as client:
        message = await alert(client, slack)
        assert (
            await click(client, *signed_request(slack.click_payload(message, "revring:ack"))) == 200
        )
        await wait_for(lambda: slack.responses)
        outcome = slack.responses[0]["blocks"][-1]["elements"][0]["text"]
        assert outcome.startswith(":eyes: Acknowledged by <@U0ALICE> at <!date^")

        [delivery] = await (await client.get("/admin/deliveries", headers=ADMIN)).json()
        assert delivery["acknowledged_by"] == "U0ALICE"
        assert delivery["acknowledged_at"].endswith("Z")
        one = await (await client.get(f"/admin/deliveries/{delivery['id']}", headers=ADMIN)).json()
        assert (one["acknowledged_by"], one["acknowledged_at"]) == (
            "U0ALICE",
            delivery["acknowledged_at"],
        )
        assert await silences(client) == []

        again = slack.click_payload(message, "revring:ack", user="U0BOB", user_name="bob")
        assert await click(client, *signed_request(again)) == 200
        await wait_for(lambda: len(slack.responses) == 2)
        outcome = slack.responses[1]["blocks"][-1]["elements"][0]["text"]
        assert outcome.startswith(":eyes: Already acknowledged by <@U0ALICE>")
        assert [e.outcome for e in await audit(client)] == [
            "already_acknowledged",
            "acknowledged",
        ]


@pytest.mark.parametrize(
    ("secret", "age", "tamper"),
    [
        ("not-the-signing-secret", 0, False),  # wrong signature
        (SIGNING_SECRET, 301, False),  # stale timestamp (replay), correctly signed
        (SIGNING_SECRET, 0, True),  # body changed after signing
    ],
    ids=["wrong-signature", "stale-timestamp", "tampered-body"],
)
async def test_a_bad_signature_or_a_stale_timestamp_is_401_and_changes_nothing(
    tmp_path, write_rules, slack, secret, age, tamper
):
    async with running_service(write_rules(rules(slack)), tmp_path / "r.db") as client:
        message = await alert(client, slack)
        payload = slack.click_payload(message, "revring:silence:1h")
        body, headers = signed_request(payload, secret=secret, timestamp=int(time.time()) - age)
        if tamper:
            body = body.replace(b"U0ALICE", b"U0MALLO")
        answer = await client.post("/slack/interactions", data=body, headers=headers)
        assert answer.status == 401
        assert "signature" in (await answer.json())["error"]
        await asyncio.sleep(0.3)  # nothing is running in the background either
        assert await silences(client) == []
        assert slack.responses == []
        assert await audit(client) == []


async def test_a_click_signed_by_another_sinks_app_is_401(tmp_path, write_rules, slack):
    async with running_service(write_rules(rules(slack)), tmp_path / "r.db") as client:
        message = await alert(client, slack)
        payload = slack.click_payload(message, "revring:silence:1h")
        body, headers = signed_request(payload, secret="other-apps-secret")
        assert (await client.post("/slack/interactions", data=body, headers=headers)).status == 401
        assert await silences(client) == []


async def test_a_user_outside_allowed_users_gets_an_ephemeral_no_and_nothing_changes(
    tmp_path, write_rules, slack
):
    allowed = "      allowed_users: [U0ALICE]\n      allowed_channels: [ops-alerts]"
    async with running_service(
        write_rules(rules(slack, extra_actions=allowed)), tmp_path / "r.db"
    ) as client:
        message = await alert(client, slack)
        for action in ("revring:silence:1h", "revring:ack"):
            payload = slack.click_payload(message, action, user="U0EVE", user_name="eve")
            assert await click(client, *signed_request(payload)) == 200
        elsewhere = slack.click_payload(message, "revring:ack", channel="C0OTHER", channel_name="x")
        assert await click(client, *signed_request(elsewhere)) == 200
        await wait_for(lambda: len(slack.responses) == 3)

        for response in slack.responses:
            assert response["response_type"] == "ephemeral"
            assert response["replace_original"] is False
            assert "not allowed" in response["text"]
        assert await silences(client) == []
        [delivery] = await (await client.get("/admin/deliveries", headers=ADMIN)).json()
        assert delivery["acknowledged_by"] is None
        assert {entry.outcome for entry in await audit(client)} == {"refused"}

        permitted = slack.click_payload(message, "revring:ack")
        assert await click(client, *signed_request(permitted)) == 200
        await wait_for(lambda: len(slack.responses) == 4)
        assert slack.responses[-1]["replace_original"] is True


async def test_a_user_named_like_an_allowed_user_but_with_another_id_is_refused(
    tmp_path, write_rules, slack
):
    allowed = "      allowed_users: [alice, U0ALICE]"
    async with running_service(
        write_rules(rules(slack, extra_actions=allowed)), tmp_path / "r.db"
    ) as client:
        message = await alert(client, slack)
        for action in ("revring:silence:1h", "revring:ack"):
            payload = slack.click_payload(message, action, user="U0MALLORY", user_name="alice")
            assert await click(client, *signed_request(payload)) == 200
        await wait_for(lambda: len(slack.responses) == 2)
        assert all("not allowed" in response["text"] for response in slack.responses)
        assert await silences(client) == []
        [delivery] = await (await client.get("/admin/deliveries", headers=ADMIN)).json()
        assert delivery["acknowledged_by"] is None

        alice = slack.click_payload(message, "revring:ack", user="U0ALICE", user_name="alice")
        assert await click(client, *signed_request(alice)) == 200
        await wait_for(lambda: len(slack.responses) == 3)
        assert slack.responses[-1]["replace_original"] is True


async def test_the_click_is_answered_while_the_store_is_still_busy(tmp_path, write_rules, slack):
    async with running_service(write_rules(rules(slack)), tmp_path / "r.db") as client:
        message = await alert(client, slack)
        store, *_ = parts(client)
        gate = asyncio.Event()
        reads_waiting: list[str] = []
        get_delivery = store.get_delivery

        async def slow_get_delivery(delivery_id: str) -> DeliveryView | None:
            reads_waiting.append(delivery_id)
            await gate.wait()  # the store hangs until the test lets it go
            return await get_delivery(delivery_id)

        store.get_delivery = slow_get_delivery
        payload = slack.click_payload(message, "revring:silence:1h")
        answer = asyncio.create_task(click(client, *signed_request(payload)))
        await wait_for(lambda: reads_waiting)
        # Answered while the work is still stuck on the store: Slack's 3 s cannot depend on it.
        await wait_for(answer.done)
        assert answer.result() == 200
        assert not gate.is_set() and slack.responses == []

        gate.set()
        await wait_for(lambda: slack.responses)
        [silence] = await silences(client)
        assert silence["when"] == {"sipTrunkId": TRUNK}


async def test_bot_mode_updates_the_message_with_chat_update(tmp_path, write_rules, slack):
    async with running_service(write_rules(rules(slack, bot=True)), tmp_path / "r.db") as client:
        message = await alert(client, slack)
        assert (
            await click(client, *signed_request(slack.click_payload(message, "revring:ack"))) == 200
        )
        await wait_for(lambda: slack.updates)
        [update] = slack.updates
        assert (update["channel"], update["ts"]) == ("C0ALERTS", "1700000000.000100")
        assert "Acknowledged by <@U0ALICE>" in update["blocks"][-1]["elements"][0]["text"]
        assert slack.responses == []


async def test_a_digest_offers_silence_this_trunk_and_acknowledges_the_digest(
    tmp_path, write_rules, slack
):
    async with running_service(write_rules(rules(slack)), tmp_path / "r.db") as client:
        for _ in range(3):
            await post_event(client, fresh_event("minimal-canceled", sipTrunkId=TRUNK))
        await wait_for(lambda: slack.posted)
        [digest] = slack.posted
        [actions] = [block for block in digest["blocks"] if block["type"] == "actions"]
        labels = [element["text"]["text"] for element in actions["elements"]]
        assert ":no_bell: Silence this trunk for 1h" in labels

        payload = slack.click_payload(digest, "revring:silence:1h")
        body, headers = signed_request(payload, secret="other-apps-secret")
        assert await click(client, body, headers) == 200
        await wait_for(lambda: slack.responses)
        [silence] = await silences(client)
        assert (silence["when"], silence["sinks"]) == ({"sipTrunkId": TRUNK}, ["trunks-slack"])

        ack = slack.click_payload(digest, "revring:ack")
        assert await click(client, *signed_request(ack, secret="other-apps-secret")) == 200
        await wait_for(lambda: len(slack.responses) == 2)
        [delivery] = await (await client.get("/admin/deliveries", headers=ADMIN)).json()
        assert delivery["kind"] == "digest" and delivery["acknowledged_by"] == "U0ALICE"
        targets = [entry.target for entry in await audit(client)]
        assert targets == [f"digest:{delivery['id']}", f"silence:{silence['id']}"]
        store, *_ = parts(client)
        [silenced] = await store.list_audit(AuditFilters(action="silence.create"))
        assert f"from the alert on digest:{delivery['id']}" in silenced.details


async def test_an_unreadable_payload_is_400_once_the_signature_holds(tmp_path, write_rules, slack):
    async with running_service(write_rules(rules(slack)), tmp_path / "r.db") as client:
        body, headers = signed_request({"type": "view_submission"})
        answer = await client.post("/slack/interactions", data=body, headers=headers)
        assert answer.status == 400
        assert "block_actions" in (await answer.json())["error"]


async def test_the_consoles_delivery_page_shows_the_acknowledgement(tmp_path, write_rules, slack):
    from tests.integration.test_console import signed_in_page

    async with running_service(write_rules(rules(slack)), tmp_path / "r.db") as client:
        message = await alert(client, slack)
        assert (
            await click(client, *signed_request(slack.click_payload(message, "revring:ack"))) == 200
        )
        await wait_for(lambda: slack.responses)
        [delivery] = await (await client.get("/admin/deliveries", headers=ADMIN)).json()
        page = await signed_in_page(client, f"/ui/deliveries/{delivery['id']}")
        assert "Acknowledged" in page and "alice" in page and "U0ALICE" in page
