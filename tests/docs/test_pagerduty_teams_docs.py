"""The PagerDuty and Teams pages stay true: their examples load, pass the
same checks `revring-router check` makes, and render what the text says."""

from __future__ import annotations

import json

from router.config.schema import parse_config
from router.core.samples import sample_event
from sinks.base import DeliveryRequest, SinkResources
from sinks.pagerduty import PagerDutySink, PagerDutySinkConfig
from sinks.teams.sink import TeamsSink, TeamsSinkConfig
from tests.docs import ROOT, blocks, page

ENVIRONMENT = {
    "PAGERDUTY_ROUTING_KEY": "R0UTINGKEYsecret0123456789abcdef",
    "TEAMS_WEBHOOK_URL": "https://prod-01.westus.logic.azure.com/workflows/abc/invoke?sig=S",
}


def section_blocks(name: str) -> list[str]:
    return blocks(page(name), "yaml")


def request() -> DeliveryRequest:
    event = sample_event()
    return DeliveryRequest("dlv-1", event["id"], "sink", "r", event)


def test_the_pagerduty_example_loads_and_pages_gold_customers_critically() -> None:
    [example] = section_blocks("sinks/pagerduty.md")
    config = parse_config("version: 1\n" + example, "rules.yaml", ENVIRONMENT)
    [sink] = config.sinks.values()
    assert isinstance(sink, PagerDutySinkConfig)
    assert sink.sample_problems(sample_event()) == []
    rendered = PagerDutySink("oncall", sink, SinkResources()).preview(request())
    assert rendered["payload"]["severity"] == "critical"  # the sample call's tier is gold
    assert rendered["routing_key"] == "***"


def test_the_teams_examples_load_and_the_card_renders_as_described() -> None:
    example, card = section_blocks("sinks/teams.md")
    config = parse_config("version: 1\n" + example + card, "rules.yaml", ENVIRONMENT)
    [sink] = config.sinks.values()
    assert isinstance(sink, TeamsSinkConfig) and sink.card is not None
    assert sink.sample_problems(sample_event()) == []
    rendered = TeamsSink("ops-teams", sink, SinkResources()).preview(request())
    content = rendered["attachments"][0]["content"]
    assert content["body"][0]["text"] == "**COMPLETED** call from +1415•••0123"
    assert content["actions"][0]["url"] == "https://recordings.example.com/3c90c3cc.mp3"


def test_the_pagerduty_page_shows_the_event_sent_for_the_failed_sample() -> None:
    [example] = section_blocks("sinks/pagerduty.md")
    [shown] = blocks(page("sinks/pagerduty.md"), "json")
    config = parse_config("version: 1\n" + example, "rules.yaml", ENVIRONMENT)
    event = json.loads((ROOT / "samples" / "failed-outbound.json").read_text())
    request = DeliveryRequest("dlv-1", event["id"], "oncall", "failed-calls", event)
    rendered = PagerDutySink("oncall", config.sinks["oncall"], SinkResources()).preview(request)
    assert rendered == json.loads(shown)
