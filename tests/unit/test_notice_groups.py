"""Notices of one sink sent as one message (`on_dead`, DESIGN.md section 16): what a
grouped notice says and how each sink shows it; a single one stays as it was alone."""

from __future__ import annotations

import json
from email import message_from_bytes

from hypothesis import given
from hypothesis import strategies as st

from router.engine.notices import NoticeMaker, dead_notice
from router.engine.requests import notice_request, notices_request
from router.store import ClaimedDelivery, DeadDelivery
from sinks.base import DeliveryRequest, SinkResources
from sinks.notices import (
    GROUP_KIND,
    LISTED,
    grouped_notice,
    notice_json,
    notice_summary,
    notice_text,
    notice_title,
)
from sinks.registry import build_sink

CALLER = "+14155550142"
PUBLIC = "https://router.example.com"


def notice_of(number: int, sink: str = "crm", error: str = "HTTP 400 Bad Request: nope") -> dict:
    dead = DeadDelivery(f"d-{number}", f"call-{number}", sink, "failed-calls", error)
    call = {"id": f"call-{number}", "status": "FAILED", "fromNumber": CALLER}
    return dead_notice(dead, call, PUBLIC)


def claimed(notice: dict, number: int) -> ClaimedDelivery:
    return ClaimedDelivery(f"n-{number}", "", "alerts", "failed-calls", b"", 0, 0, 1.0,
                           float(number), notice=json.dumps(notice))  # fmt: skip


def request_of(notices: list[dict]) -> DeliveryRequest:
    return notices_request([claimed(notice, n) for n, notice in enumerate(notices)])


THREE = [notice_of(1), notice_of(2), notice_of(3, sink="erp", error="HTTP 422: bad field")]


def test_one_notice_alone_is_the_request_it_always_was() -> None:
    one = claimed(notice_of(1), 1)
    assert notices_request([one]) == notice_request(one, one.notice or "")
    assert grouped_notice([notice_of(1)]) == notice_of(1)


def test_the_grouped_json_holds_each_notice_as_it_would_go_alone() -> None:
    request = request_of(THREE)
    assert request.delivery_id == "n-0" and request.event == {}
    document = notice_json(request.notice or {})
    assert list(document) == ["notice", "count", "notices"]
    assert (document["notice"], document["count"]) == (GROUP_KIND, 3)
    assert document["notices"] == [notice_json(one) for one in THREE]


def test_the_summary_counts_each_sink_rule_and_error_most_first() -> None:
    grouped = grouped_notice([notice_of(1, "erp", "E"), notice_of(2), notice_of(3)])
    assert notice_summary(grouped) == [
        ("crm (rule failed-calls)", 2, "HTTP 400 Bad Request: nope"),
        ("erp (rule failed-calls)", 1, "E"),
    ]
    assert notice_title(grouped) == "3 deliveries went dead"


@given(st.lists(st.sampled_from(["crm", "erp", "ops"]), min_size=2, max_size=60))
def test_the_summary_and_the_list_account_for_every_notice(sinks: list[str]) -> None:
    grouped = grouped_notice([notice_of(n, sink) for n, sink in enumerate(sinks)])
    assert sum(count for _, count, _ in notice_summary(grouped)) == len(sinks)
    text = notice_text(grouped)
    listed = sum(f"delivery d-{n} (" in text for n in range(len(sinks)))
    assert listed == min(len(sinks), LISTED)
    if len(sinks) > LISTED:
        assert f"and {len(sinks) - LISTED} more" in text


def test_http_and_log_sinks_send_the_grouped_json() -> None:
    from sinks.http import HttpSinkConfig
    from sinks.log import LogSinkConfig

    config = HttpSinkConfig(type="http", url="https://crm.example/hook", body='{"x": "{{ id }}"}')
    built = build_sink("alerts", config, SinkResources()).build(request_of(THREE))
    document = json.loads(built.body)
    assert document["count"] == 3 and [n["delivery_id"] for n in document["notices"]] == [
        "d-1", "d-2", "d-3",
    ]  # fmt: skip
    assert CALLER not in built.body.decode()
    line = json.loads(build_sink("l", LogSinkConfig(type="log"), SinkResources()).build(
        request_of(THREE)))  # fmt: skip
    assert line["notice"] == GROUP_KIND and len(line["notices"]) == 3


def test_slack_shows_one_message_with_the_summary_and_every_listed_link() -> None:
    from sinks.slack.sink import SlackSinkConfig

    config = SlackSinkConfig(type="slack", token="xoxb-t", channel="#ops")
    notices = [notice_of(n) for n in range(30)]
    message = build_sink("alerts", config, SinkResources()).build(request_of(notices))
    assert message["text"] == "30 deliveries went dead"
    shown = json.dumps(message["blocks"], ensure_ascii=False)
    assert "crm (rule failed-calls): 30 × HTTP 400 Bad Request: nope" in shown
    for n in range(LISTED):
        assert f"<{PUBLIC}/ui/deliveries/d-{n}|delivery d-{n} (crm, call call-{n})>" in shown
    assert f"d-{LISTED}|" not in shown and f"and {30 - LISTED} more" in shown
    assert CALLER not in shown and '"actions"' not in shown
    assert all(len(json.dumps(block)) < 3100 for block in message["blocks"])


def test_slack_escapes_what_a_grouped_notice_carries() -> None:
    from sinks.slack.sink import SlackSinkConfig

    config = SlackSinkConfig(type="slack", webhook_url="https://hooks.example/x")
    evil = [notice_of(1, error="<!channel> <https://x|y>"), notice_of(2)]
    message = build_sink("alerts", config, SinkResources()).build(request_of(evil))
    assert "<!channel>" not in json.dumps(message)


def test_email_teams_and_pagerduty_show_the_group() -> None:
    from sinks.email.settings import EmailSinkConfig
    from sinks.pagerduty import PagerDutySinkConfig
    from sinks.teams.sink import TeamsSinkConfig

    request = request_of(THREE)
    email = EmailSinkConfig(type="email", host="localhost", to=["ops@example.com"],
                            **{"from": "router@example.com"})  # fmt: skip
    message = message_from_bytes(build_sink("e", email, SinkResources()).build(request))
    assert message["Subject"] == "3 deliveries went dead"
    body = message.get_payload(decode=True).decode().replace("\r\n", "\n")
    assert body == notice_text(request.notice or {})
    assert "crm (rule failed-calls): 2 × HTTP 400 Bad Request: nope" in body
    assert f"delivery d-3 (erp, call call-3): {PUBLIC}/ui/deliveries/d-3" in body
    assert CALLER not in body
    teams = TeamsSinkConfig(type="teams", webhook_url="https://example.webhook.office.com/x")
    card = json.loads(build_sink("t", teams, SinkResources()).build(request).body)
    content = card["attachments"][0]["content"]
    assert content["body"][0]["text"] == "3 deliveries went dead"
    assert "d-1" in json.dumps(content) and "d-3" in json.dumps(content)
    pager = PagerDutySinkConfig(type="pagerduty", routing_key="R" * 32)
    event = json.loads(build_sink("p", pager, SinkResources()).build(request).body)
    summary = event["payload"]["summary"]
    assert summary == "3 deliveries went dead: HTTP 400 Bad Request: nope"
    assert event["dedup_key"] == "revring-dead-d-1"
    assert event["payload"]["custom_details"]["count"] == 3


def test_the_maker_holds_each_notice_for_the_window() -> None:
    maker = NoticeMaker(lambda sink: ("alerts", "ops"), hold=2.5)
    dead = DeadDelivery("d-1", "call-1", "crm", "r", "HTTP 400")
    assert [notice.hold for notice in maker.notices_of(dead, {})] == [2.5, 2.5]


def test_stream_sinks_publish_the_notice_json_whatever_their_body_template() -> None:
    from sinks.nats import NatsSinkConfig
    from sinks.redis_stream import RedisStreamSinkConfig

    redis = RedisStreamSinkConfig(type="redis_stream", url="redis://127.0.0.1/0", stream="s",
                                  body='{"x": "{{ id }}"}')  # fmt: skip
    nats = NatsSinkConfig(type="nats", url="nats://127.0.0.1:4222", subject="calls")
    for config in (redis, nats):
        sink = build_sink("stream", config, SinkResources())
        assert json.loads(sink.build(request_of(THREE)).body) == notice_json(grouped_notice(THREE))
        single = claimed(notice_of(1), 1)
        assert json.loads(sink.build(notices_request([single])).body) == notice_of(1)
