"""`preview`: what `route --render` and the console's playground show for a call — the
matched rules, each sink's delivery, and each rendered message or the reason it cannot
render — computed without sending anything."""

from __future__ import annotations

from datetime import UTC, datetime

from router.config.schema import parse_config
from router.engine.preview import preview
from tests.conftest import sample

RULES = """version: 1
sinks:
  ops-slack: {type: slack, webhook_url: ""}
  crm:
    type: http
    url: https://crm.example/hooks/secret-path-123456
    headers: {Authorization: "Bearer crm-secret-token"}
    body: '{"call": "{{ id }}", "broken": {{ id + 1 }}}'
  console: {type: log}
rules:
  - name: failed-calls
    when: {status: FAILED}
    to: [ops-slack, crm]
  - name: everything
    to: [console, ops-slack]
  - name: trunk
    when: {status: FAILED}
    to: [console]
    group: {by: [sipTrunkId], window: 2m}
"""


def test_a_call_gets_its_rules_deliveries_and_messages() -> None:
    config = parse_config(RULES, "rules.yaml", environ={})
    result = preview(
        config, sample("failed-outbound"), at=datetime.fromtimestamp(1_800_000_000.0, UTC)
    )
    assert [rule.name for rule in result.matched] == ["failed-calls", "everything", "trunk"]
    by_sink = {delivery.sink: delivery for delivery in result.deliveries}
    assert list(by_sink) == ["ops-slack", "crm", "console"]
    slack = by_sink["ops-slack"]
    assert slack.rule.name == "failed-calls"
    assert slack.missing_settings == ["webhook_url"]
    assert slack.message["blocks"][0]["text"]["text"] == ":red_circle: FAILED outbound call"
    crm = by_sink["crm"]
    assert crm.message is None and "TypeError" in crm.render_error
    assert "crm-secret-token" not in crm.render_error
    assert by_sink["console"].digest is None, "the first matching rule routing there wins"


def test_a_grouped_rule_previews_a_digest_of_this_call_alone() -> None:
    config = parse_config(
        RULES.replace("to: [console, ops-slack]", "to: [ops-slack]"), "r.yaml", environ={}
    )
    result = preview(
        config, sample("failed-outbound"), at=datetime.fromtimestamp(1_800_000_000.0, UTC)
    )
    (console,) = [d for d in result.deliveries if d.sink == "console"]
    assert console.rule.name == "trunk"
    assert console.digest is not None and console.digest.count == 1
    assert console.digest.window_start == "2027-01-15T08:00:00+00:00"
    assert console.digest.window_end == "2027-01-15T08:02:00+00:00"


def test_secrets_stay_masked_in_a_rendered_request() -> None:
    config = parse_config(RULES.replace("{{ id + 1 }}", "1"), "rules.yaml", environ={})
    (crm,) = [d for d in preview(config, sample("failed-outbound")).deliveries if d.sink == "crm"]
    assert crm.message["url"] == "https://crm.example/***"
    assert crm.message["headers"]["Authorization"] == "***"


def test_without_render_nothing_is_rendered() -> None:
    config = parse_config(RULES, "rules.yaml", environ={})
    result = preview(config, sample("failed-outbound"), render=False)
    assert all(d.message is None and d.render_error is None for d in result.deliveries)


def test_a_call_matching_nothing_has_no_delivery() -> None:
    config = parse_config(
        RULES.replace("  - name: everything\n    to: [console, ops-slack]\n", ""),
        "r.yaml",
        environ={},
    )
    result = preview(config, sample("completed-inbound"))
    assert result.matched == () and result.deliveries == ()


QUIET_RULES = """
version: 1
time_intervals:
  nights:
    - times: [{start_time: "00:00", end_time: "06:00"}]
sinks:
  console: {type: log}
  ops-slack: {type: slack, webhook_url: "https://hooks.slack.test/x"}
rules:
  - name: failed-by-day
    when: {status: FAILED}
    to: [ops-slack]
    muted_during: [nights]
  - name: everything
    to: [console]
"""


def test_a_muted_sink_is_shown_muted_and_not_rendered() -> None:
    config = parse_config(QUIET_RULES, "rules.yaml", environ={})
    night = datetime(2026, 12, 2, 3, 0, tzinfo=UTC)
    by_sink = {d.sink: d for d in preview(config, sample("failed-outbound"), night).deliveries}
    assert by_sink["ops-slack"].muted_reason == "time_interval:nights"
    assert by_sink["ops-slack"].message is None
    assert by_sink["console"].muted_reason is None and by_sink["console"].message is not None
    day = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
    slack = next(d for d in preview(config, sample("failed-outbound"), day).deliveries)
    assert slack.sink == "ops-slack" and slack.muted_reason is None and slack.message
