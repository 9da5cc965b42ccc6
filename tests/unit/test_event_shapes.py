"""What the router never routes on by shape is kept as sent, whatever its shape
(DESIGN.md section 5): `metrics`, `variables`, transcript entries and numeric timestamps
outside the years 1 to 9999. Any JSON value there is accepted, rules simply find
nothing in it, and every sink's default message still builds, alone or in a digest."""

from __future__ import annotations

import copy
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from router.config.schema import parse_config
from router.core.events import parse_event
from router.rules.matching import route
from sinks.base import DeliveryRequest, Digest, SinkResources
from sinks.registry import build_sink
from tests.conftest import sample

RULES = """version: 1
sinks:
  slack-hook: {type: slack, webhook_url: "https://hooks.slack.com/services/T/B/X"}
  slack-bot:
    type: slack
    token: xoxb-0000
    channel: "#ops"
    signing_secret: s3cret
    actions: {silence_by: [variables.tier, metrics], acknowledge: true}
  mail: {type: email, host: smtp.example.com, from: router@example.com, to: [ops@example.com]}
  teams: {type: teams, webhook_url: "https://example.webhook.office.com/x"}
  pager: {type: pagerduty, routing_key: "0123456789abcdef0123456789abcdef"}
  crm: {type: http, url: "https://crm.example.com/calls"}
  lines: {type: log}
rules:
  - name: gold
    when: {variables.tier: gold}
    to: [crm]
  - name: slow
    when: {metrics.latencyMs: {gt: 100}}
    to: [crm]
  - name: everything
    to: [slack-hook, slack-bot, mail, teams, pager, crm, lines]
"""
CONFIG = parse_config(RULES, "rules.yaml", environ={})

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=20,
)
numbers = st.integers() | st.floats(allow_nan=False, allow_infinity=False)


def build_every_sink(event: dict[str, Any]) -> None:
    for name, sink_settings in CONFIG.sinks.items():
        sink = build_sink(name, sink_settings, SinkResources())
        single = DeliveryRequest(
            delivery_id="d1", event_id=event["id"], sink=name, rule="everything", event=event
        )
        sink.build(single)
        digest = Digest({"variables.tier": event.get("variables")}, "t0", "t1", [event, event])
        sink.build(
            DeliveryRequest(
                delivery_id="d2",
                event_id=event["id"],
                sink=name,
                rule="everything",
                event=event,
                digest=digest,
            )
        )


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(
    metrics=json_values,
    variables=json_values,
    entries=st.lists(json_values, max_size=5),
    ended=numbers,
    started=numbers,
)
def test_any_json_in_the_free_fields_is_accepted_and_every_sink_builds(
    metrics: Any, variables: Any, entries: list[Any], ended: Any, started: Any
) -> None:
    event = copy.deepcopy(sample("completed-inbound"))
    event.update(
        metrics=metrics, variables=variables, transcript=entries, endedAt=ended, startedAt=started
    )
    parse_event(event)
    matched = [rule.name for rule in route(CONFIG.rules, event).matched]
    if not (isinstance(variables, dict) and variables.get("tier") == "gold"):
        assert "gold" not in matched
    build_every_sink(event)


def test_a_rule_on_a_field_of_variables_finds_nothing_in_variables_that_are_not_an_object() -> None:
    for variables in (5, ["gold"], "gold", [{"tier": "gold"}], None):
        event = {**sample("failed-outbound"), "variables": variables}
        parse_event(event)
        assert [rule.name for rule in route(CONFIG.rules, event).matched] == ["everything"]


def test_transcripts_of_any_entries_show_in_the_default_messages() -> None:
    event = {
        **sample("completed-inbound"),
        "transcript": [[1, 2], 3, None, {"role": ["a"], "content": {"x": 1}}, "caller: hi"],
        "endedAt": -6.1e16,
        "startedAt": -6.1e16,
    }
    parse_event(event)
    build_every_sink(event)


def test_a_timestamp_outside_the_years_1_to_9999_reads_as_null_in_the_slack_alert() -> None:
    sink = build_sink("slack-hook", CONFIG.sinks["slack-hook"], SinkResources())
    shown = []
    for started in (-6.1e16, 1795186931):
        event = {**sample("completed-inbound"), "startedAt": started}
        request = DeliveryRequest(
            delivery_id="d", event_id=event["id"], sink="slack-hook", rule="r", event=event
        )
        shown.append("<!date^" in json.dumps(sink.build(request)))
    assert shown == [False, True]
