"""What a notice of a dead delivery says (`on_dead`, DESIGN.md section 16), how each
sink shows it, and what `check` says about `on_dead`."""

from __future__ import annotations

import json
from email import message_from_bytes

import pytest

from router.config.schema import ConfigError, parse_config
from router.engine.notices import NoticeMaker, console_base, dead_notice, masked_call
from router.engine.requests import notice_request
from router.store import ClaimedDelivery, DeadDelivery
from sinks.base import SinkResources
from sinks.notices import notice_json, notice_text
from sinks.registry import build_sink, sink_class

CALLER = "+14155550142"
CALL = {
    "id": "call-1",
    "status": "FAILED",
    "direction": "OUTBOUND",
    "fromNumber": CALLER,
    "toNumber": "+442071838750",
    "summary": f"Asked to be called back on {CALLER}",
    "sipTrunkId": "sip-7",
    "transcript": [{"role": "user", "content": "a long conversation"}],
}
DEAD = DeadDelivery("d-1", "call-1", "crm", "failed-calls", "HTTP 400 Bad Request: nope")


def test_a_notice_names_the_sink_rule_error_ids_masked_call_and_link() -> None:
    notice = dead_notice(DEAD, CALL, "https://router.example.com")
    assert notice_json(notice) == notice
    assert list(notice) == [
        "notice", "sink", "rule", "delivery_id", "event_id", "error", "call", "link",
    ]  # fmt: skip
    assert notice["notice"] == "delivery_dead"
    assert (notice["sink"], notice["rule"], notice["error"]) == ("crm", "failed-calls", DEAD.error)
    assert (notice["delivery_id"], notice["event_id"]) == ("d-1", "call-1")
    assert notice["link"] == "https://router.example.com/ui/deliveries/d-1"
    assert CALLER not in json.dumps(notice)
    assert "transcript" not in notice["call"]
    assert notice["call"]["status"] == "FAILED" and notice["call"]["sipTrunkId"] == "sip-7"
    assert dead_notice(DEAD, CALL, None)["link"] is None


def test_the_call_is_masked_at_any_depth() -> None:
    masked = masked_call({"fromNumber": CALLER, "variables": {"callback": CALLER}})
    assert masked["fromNumber"].startswith("+1415") and masked["fromNumber"].endswith("0142")
    assert CALLER not in json.dumps(masked)


def test_notices_go_to_each_listed_sink_and_never_of_a_notice() -> None:
    ids = iter(["n1", "n2"])
    maker = NoticeMaker(
        lambda sink: ("alerts", "ops") if sink == "crm" else (), None, lambda: next(ids)
    )
    payload = json.dumps(CALL).encode()
    made = maker.notices_of(DeadDelivery("d-1", "call-1", "crm", "r", "boom", payload))
    assert [(n.id, n.sink, n.rule, n.notice_of) for n in made] == [
        ("n1", "alerts", "r", "d-1"),
        ("n2", "ops", "r", "d-1"),
    ]
    assert json.loads(made[0].notice)["call"]["id"] == "call-1"
    assert maker.notices_of(DeadDelivery("d-2", "", "crm", "r", "x", None, notice="{}")) == []
    assert maker.notices_of(DeadDelivery("d-3", "c", "email", "r", "x")) == []


def test_the_public_url_must_be_an_http_base() -> None:
    assert console_base(None) is None and console_base(" ") is None
    assert console_base("https://router.example.com/") == "https://router.example.com"
    with pytest.raises(ValueError, match="ROUTER_PUBLIC_URL"):
        console_base("router.example.com")


def request_for(notice: dict) -> object:
    claimed = ClaimedDelivery("n1", "", "alerts", "failed-calls", b"", 0, 0, 1.0, 1.0,
                              notice=json.dumps(notice))  # fmt: skip
    return notice_request(claimed, claimed.notice or "")


NOTICE = dead_notice(DEAD, CALL, "https://router.example.com")


def test_an_http_sink_sends_the_notice_as_json_whatever_its_body_template() -> None:
    from sinks.http import HttpSinkConfig

    config = HttpSinkConfig(type="http", url="https://crm.example/hook", body='{"x": "{{ id }}"}')
    sink = build_sink("alerts", config, SinkResources())
    built = sink.build(request_for(NOTICE))
    assert json.loads(built.body) == NOTICE
    assert built.headers["Content-Type"] == "application/json"


def test_a_log_sink_writes_the_notice_as_its_json() -> None:
    from sinks.log import LogSinkConfig

    sink = build_sink("alerts", LogSinkConfig(type="log"), SinkResources())
    line = json.loads(sink.build(request_for(NOTICE)))
    assert {name: line[name] for name in NOTICE} == NOTICE


def test_slack_shows_the_notice_as_a_message_without_buttons() -> None:
    from sinks.slack.sink import SlackSinkConfig

    config = SlackSinkConfig(type="slack", token="xoxb-t", channel="#ops", signing_secret="s",
                             thread_by=["sipTrunkId"])  # fmt: skip
    message = build_sink("alerts", config, SinkResources()).build(request_for(NOTICE))
    assert message["text"] == "Delivery dead: crm (rule failed-calls)"
    shown = json.dumps(message["blocks"])
    assert "HTTP 400 Bad Request: nope" in shown and "d-1" in shown
    assert "https://router.example.com/ui/deliveries/d-1" in shown
    assert '"actions"' not in shown and "revring_thread_key" not in message
    assert CALLER not in shown


def test_slack_escapes_what_a_notice_carries() -> None:
    from sinks.slack.sink import SlackSinkConfig

    evil = dead_notice(
        DeadDelivery("d-1", "c", "crm", "r", "HTTP 400: <!channel> <https://x|y>"), {}, None
    )
    config = SlackSinkConfig(type="slack", webhook_url="https://hooks.example/x")
    message = build_sink("alerts", config, SinkResources()).build(request_for(evil))
    assert "<!channel>" not in json.dumps(message)


def test_email_shows_the_notice_in_plain_words() -> None:
    from sinks.email.settings import EmailSinkConfig

    settings = {"from": "router@example.com", "subject": "{{ status }} call"}
    config = EmailSinkConfig(type="email", host="localhost", to=["ops@example.com"], **settings)
    payload = build_sink("alerts", config, SinkResources()).build(request_for(NOTICE))
    message = message_from_bytes(payload)
    assert message["Subject"] == "Delivery dead: crm (rule failed-calls)"
    body = message.get_payload(decode=True).decode()
    assert body.replace("\r\n", "\n") == notice_text(NOTICE)
    assert "Error: HTTP 400 Bad Request: nope" in body
    assert "Console: https://router.example.com/ui/deliveries/d-1" in body
    assert CALLER not in body


def test_teams_and_pagerduty_show_the_notice() -> None:
    from sinks.pagerduty import PagerDutySinkConfig
    from sinks.teams.sink import TeamsSinkConfig

    teams = TeamsSinkConfig(type="teams", webhook_url="https://example.webhook.office.com/x")
    body = json.loads(build_sink("t", teams, SinkResources()).build(request_for(NOTICE)).body)
    card = body["attachments"][0]["content"]
    assert card["body"][0]["text"].startswith("Delivery dead: crm")
    assert card["actions"][0]["url"] == "https://router.example.com/ui/deliveries/d-1"
    pager = PagerDutySinkConfig(type="pagerduty", routing_key="R" * 32)
    event = json.loads(build_sink("p", pager, SinkResources()).build(request_for(NOTICE)).body)
    assert event["payload"]["summary"].startswith("Delivery dead: crm (rule failed-calls)")
    assert event["payload"]["custom_details"]["delivery_id"] == "d-1"
    assert event["links"][0]["href"] == "https://router.example.com/ui/deliveries/d-1"


RULES = """version: 1
sinks:
  crm:
    type: http
    url: https://crm.example/hook
    on_dead: [alerts, ops-email]
  alerts: {type: log}
rules:
  - name: all
    to: [crm]
"""


def test_check_errors_on_an_unknown_on_dead_sink_at_its_place() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(RULES, "rules.yaml", environ={})
    [error] = [str(error) for error in caught.value.errors]
    assert error == (
        "rules.yaml:6:23: sink 'crm': on_dead names undefined sink 'ops-email' (sinks: crm, alerts)"
    )


def test_on_dead_takes_one_sink_or_a_list() -> None:
    config = parse_config(RULES.replace("[alerts, ops-email]", "alerts"), "r.yaml", environ={})
    assert config.sinks["crm"].on_dead == ("alerts",)
    assert config.sinks["alerts"].on_dead == ()
    assert sink_class(config.sinks["crm"]) is not None
