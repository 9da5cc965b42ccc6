"""Grouped rules, pure parts: group keys from events, the store join built at ingest,
`group` settings checked at load, and the digest layouts of Slack and email."""

from __future__ import annotations

import json
from typing import Any

import pytest

from router.config.schema import ConfigError, parse_config
from router.engine.prepare import group_join
from router.rules.matching import CompiledRule, GroupSpec, group_key, group_key_json
from router.store import GroupJoin
from sinks.base import DeliveryRequest, Digest
from sinks.email.templates import alert_text, build_alert
from sinks.slack.message import build_message
from tests.conftest import sample

EVENT: dict[str, Any] = {
    "id": "call-1",
    "sipTrunkId": "trunk-main",
    "variables": {"tier": "gold", "region": {"b": 2, "a": 1}},
    "legs": [{"carrier": "acme"}],
}


def test_a_key_holds_the_values_at_the_by_paths_in_by_order() -> None:
    spec = GroupSpec(("variables.tier", "sipTrunkId"), 120.0)
    assert list(group_key(spec, EVENT).items()) == [
        ("variables.tier", "gold"),
        ("sipTrunkId", "trunk-main"),
    ]


def test_a_missing_value_is_a_null_key_value() -> None:
    spec = GroupSpec(("agentId", "variables.nothing", "sipTrunkId.deeper"), 60.0)
    assert group_key(spec, EVENT) == dict.fromkeys(spec.by)


def test_paths_reach_into_lists_as_in_when() -> None:
    assert group_key(GroupSpec(("legs.0.carrier",), 1.0), EVENT) == {"legs.0.carrier": "acme"}


def test_equal_keys_give_equal_text_whatever_the_order_inside_values() -> None:
    spec = GroupSpec(("variables.region",), 1.0)
    reordered = EVENT | {"variables": {"region": {"a": 1, "b": 2}}}
    first = group_key_json(group_key(spec, EVENT))
    assert first == group_key_json(group_key(spec, reordered))
    assert first == '{"variables.region":{"a":1,"b":2}}'
    assert json.loads(group_key_json({"sipTrunkId": None})) == {"sipTrunkId": None}


def test_different_values_give_different_keys() -> None:
    spec = GroupSpec(("sipTrunkId",), 1.0)
    other = EVENT | {"sipTrunkId": "trunk-backup"}
    assert group_key_json(group_key(spec, EVENT)) != group_key_json(group_key(spec, other))


def test_ingest_joins_a_digest_only_for_grouped_rules() -> None:
    grouped = CompiledRule(
        "outage", lambda event: True, ("ops",), group=GroupSpec(("sipTrunkId",), 120.0, 100)
    )
    plain = CompiledRule("all", lambda event: True, ("ops",))
    assert group_join(grouped, EVENT) == GroupJoin('{"sipTrunkId":"trunk-main"}', 120.0, 100)
    assert group_join(plain, EVENT) is None


RULES = """version: 1
sinks:
  console: {type: log}
rules:
  - name: outage
    to: [console]
    group: {by: %s, window: 2m}
"""


@pytest.mark.parametrize("by", ['["variables..tier"]', '[""]', '[".sipTrunkId"]', '["a. "]'])
def test_a_group_by_that_is_not_a_dotted_path_is_a_check_error(by: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(RULES % by, "rules.yaml", environ={})
    [error] = caught.value.errors
    assert "is not a field path" in str(error)
    assert str(error).startswith("rules.yaml:7:")


def test_a_valid_group_by_compiles() -> None:
    config = parse_config(RULES % "[sipTrunkId, variables.tier]", "rules.yaml", environ={})
    assert config.rules[0].group == GroupSpec(("sipTrunkId", "variables.tier"), 120.0, None)


def digest_of(count: int) -> Digest:
    failed = sample("failed-outbound")
    calls = [failed | {"id": f"call-{n}"} for n in range(count)]
    return Digest(
        {"sipTrunkId": "trunk-main"},
        "2026-11-20T15:00:00+00:00",
        "2026-11-20T15:02:00+00:00",
        calls,
    )


def test_email_digest_adds_the_full_list_after_the_first_calls() -> None:
    digest = digest_of(25)
    alert = build_alert({}, rule="outage", sink="mail", delivery_id="d", digest=digest, masked=True)
    text = alert_text(alert)
    assert "… and 15 more" in text
    full = text.split("All 25 calls:")[1]
    assert [f"call-{n}" in full for n in range(25)] == [True] * 25
    assert full.index("1. ") < full.index("25. ")


def test_email_digest_of_few_calls_lists_them_once() -> None:
    alert = build_alert(
        {}, rule="outage", sink="mail", delivery_id="d", digest=digest_of(2), masked=True
    )
    assert "All 2 calls" not in alert_text(alert)


def test_slack_digest_header_counts_and_names_a_null_key() -> None:
    digest = Digest({"sipTrunkId": None}, "a", "b", [sample("failed-outbound")])
    request = DeliveryRequest("d", "e", "ops", "outage", digest.calls[0], digest=digest)
    header = build_message(request)["blocks"][0]["text"]["text"]
    assert header == ":bellhop_bell: 1 call (outage) · sipTrunkId=none"
