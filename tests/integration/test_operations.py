"""Operating the router: metrics that move, hot reload, and secrets kept out of logs and
admin answers."""

from __future__ import annotations

import logging

from tests.conftest import fresh_event
from tests.receivers import Receiver
from tests.service import ADMIN_TOKEN, API_KEY, parts, post_event, running_service, wait_for

SECRET_URL_PATH = "/services/T000/B000/very-secret-webhook-path"
SECRET_TOKEN = "crm-bearer-token-that-must-not-leak"
SECRET_SIGNING = "whsec_c2VjcmV0LXNpZ25pbmcta2V5LXZhbHVl"


def rules(receiver_url: str, *, rule_status: str = "FAILED") -> str:
    return f"""
version: 1
defaults:
  retry: {{max_attempts: 3, initial_delay: 100ms, max_delay: 200ms}}
sinks:
  crm:
    type: http
    url: "{receiver_url}"
    headers: {{Authorization: "Bearer {SECRET_TOKEN}"}}
    signing_secret: "{SECRET_SIGNING}"
  slack:
    type: slack
    webhook_url: "{receiver_url.rsplit("/", 1)[0]}{SECRET_URL_PATH}"
rules:
  - name: chosen
    when: {{status: {rule_status}}}
    to: [crm]
"""


def sample_value(metrics, name: str, labels: dict[str, str]) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


async def test_metrics_move_as_events_flow(tmp_path, write_rules, receiver):
    receiver.answer = lambda request, n: 500 if n == 1 else 200
    path = write_rules(rules(receiver.url()))
    async with running_service(path, tmp_path / "r.db") as client:
        *_, metrics = parts(client)
        event = fresh_event(status="FAILED")
        await post_event(client, event)
        await post_event(client, event)
        await client.post("/webhooks/revring", json={}, headers={"x-api-key": API_KEY})
        await client.post("/webhooks/revring", json={})
        await wait_for(lambda: len(receiver.delivered_ids()) == 1)
        await wait_for(
            lambda: (
                sample_value(
                    metrics,
                    "revring_router_deliveries_total",
                    {"sink": "crm", "outcome": "delivered"},
                )
                == 1
            )
        )
        text = await (await client.get("/metrics")).text()
    p = "revring_router_"
    assert f'{p}events_received_total{{outcome="accepted",status="FAILED"}} 1.0' in text
    assert f'{p}events_received_total{{outcome="duplicate",status="FAILED"}} 1.0' in text
    assert f'{p}events_rejected_total{{reason="invalid_event"}} 1.0' in text
    assert f'{p}events_rejected_total{{reason="unauthorized"}} 1.0' in text
    assert f'{p}rule_matches_total{{rule="chosen"}} 1.0' in text
    assert f'{p}deliveries_total{{outcome="retried",sink="crm"}} 1.0' in text
    assert f'{p}deliveries_total{{outcome="delivered",sink="crm"}} 1.0' in text
    assert f'{p}delivery_attempt_duration_seconds_count{{sink="crm"}} 2.0' in text
    assert f'{p}deliveries_pending{{sink="crm"}} 0.0' in text
    assert f"{p}config_last_reload_successful 1.0" in text
    assert f"{p}config_last_reload_success_timestamp_seconds" in text


async def test_a_broken_rules_file_keeps_the_old_rules_routing(tmp_path, write_rules, receiver):
    path = write_rules(rules(receiver.url()))
    async with running_service(path, tmp_path / "r.db", watch_interval=0.05) as client:
        _, _, runtime, metrics = parts(client)
        before = runtime.config
        path.write_text("version: 1\nsinks:\n  crm: {type: http}\nrules: [{name: x, to: [nope]}]\n")
        await wait_for(
            lambda: sample_value(metrics, "revring_router_config_last_reload_successful", {}) == 0
        )
        assert runtime.config is before
        auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        answer = await client.post("/admin/reload", headers=auth)
        assert answer.status == 400
        errors = (await answer.json())["errors"]
        assert any(":3:" in e and "url" in e for e in errors)
        assert any("nope" in e for e in errors)
        event = fresh_event(status="FAILED")
        response = await post_event(client, event)
        assert (await response.json())["deliveries"] == 1
        await wait_for(lambda: receiver.delivered_ids() == [event["id"]])


async def test_a_valid_edit_takes_effect_without_a_restart(tmp_path, write_rules, receiver):
    path = write_rules(rules(receiver.url(), rule_status="FAILED"))
    async with running_service(path, tmp_path / "r.db", watch_interval=0.05) as client:
        *_, runtime, _ = parts(client)
        completed = fresh_event("completed-inbound")
        assert (await (await post_event(client, completed)).json())["deliveries"] == 0
        path.write_text(rules(receiver.url(), rule_status="COMPLETED"))
        await wait_for(lambda: runtime.config.path and _rule_status(runtime) == "COMPLETED")
        again = fresh_event("completed-inbound")
        assert (await (await post_event(client, again)).json())["deliveries"] == 1
        await wait_for(lambda: receiver.delivered_ids() == [again["id"]])


def _rule_status(runtime) -> str:
    return runtime.config.settings.rules[0].when["status"]


async def test_no_secret_appears_in_logs_or_admin_answers(tmp_path, write_rules, caplog):
    failing = await Receiver(answer=lambda request, n: 404).start()
    path = write_rules(rules(failing.url()))
    caplog.set_level(logging.DEBUG)
    try:
        async with running_service(path, tmp_path / "r.db", watch_interval=0.05) as client:
            store, *_ = parts(client)
            await post_event(client, fresh_event(status="FAILED"))
            await wait_for(lambda: _dead(store))
            auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
            answers = []
            listed = await client.get("/admin/deliveries", headers=auth)
            answers.append(await listed.text())
            [delivery] = await listed.json()
            answers.append(
                await (await client.get(f"/admin/deliveries/{delivery['id']}", headers=auth)).text()
            )
            answers.append(await (await client.post("/admin/reload", headers=auth)).text())
            path.write_text(rules(failing.url()) + "\n  broken: [")
            answers.append(await (await client.post("/admin/reload", headers=auth)).text())
            answers.append(await (await client.get("/metrics")).text())
    finally:
        await failing.close()
    logged = "\n".join(record.getMessage() + str(record.__dict__) for record in caplog.records)
    everything = logged + "\n".join(answers)
    for secret in (SECRET_TOKEN, SECRET_URL_PATH, SECRET_SIGNING, "very-secret", "+14155550199"):
        assert secret not in everything, secret
    assert "404" in everything  # the failure itself is reported


async def _dead(store) -> bool:
    return bool(await store.list_deliveries("dead"))


async def test_admin_api_is_hidden_without_a_token_and_guarded_with_one(tmp_path, write_rules):
    path = write_rules("version: 1\n")
    async with running_service(path, tmp_path / "a.db", admin_token=None) as client:
        assert (await client.get("/admin/deliveries")).status == 404
    async with running_service(path, tmp_path / "b.db") as client:
        assert (await client.get("/admin/deliveries")).status == 401
        wrong = {"Authorization": "Bearer nope"}
        assert (await client.get("/admin/deliveries", headers=wrong)).status == 401
        right = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        assert (await client.get("/admin/deliveries?status=bogus", headers=right)).status == 400
        assert (await client.post("/admin/deliveries/nope/replay", headers=right)).status == 404
