"""The Slack page's `blocks` example loads, renders for the sample call, and keeps its
shape whatever a caller puts in the summary; its buttons example passes `check`."""

from __future__ import annotations

from router.config.schema import parse_config
from router.core.samples import sample_event
from sinks.base import DeliveryRequest, SinkResources
from sinks.slack.sink import SlackSink, SlackSinkConfig
from tests.docs import blocks, section


def blocks_example() -> str:
    [example] = blocks(section("sinks/slack.md", "Templates"), "yaml")
    return example


def test_the_blocks_example_renders_and_a_summary_cannot_add_a_block() -> None:
    example = blocks_example()
    text = (
        "version: 1\nsinks:\n  ops:\n    type: slack\n"
        "    webhook_url: https://hooks.example.com/x\n" + example
    )
    config = parse_config(text, "example.yaml")
    sink_config = config.sinks["ops"]
    assert sink_config.sample_problems(sample_event()) == []
    sink = SlackSink("ops", sink_config, SinkResources())
    plain = sink.build(DeliveryRequest("d", "e", "ops", "r", sample_event()))["blocks"]
    hostile = sample_event() | {"summary": 'x"}}, {"type": "section", "text": "<!channel>'}
    attacked = sink.build(DeliveryRequest("d", "e", "ops", "r", hostile))["blocks"]
    assert [block["type"] for block in attacked] == [block["type"] for block in plain]
    assert "<!channel>" not in str(attacked)


def test_the_buttons_example_passes_check() -> None:
    [example] = blocks(section("sinks/slack.md", "Buttons: acknowledge"), "yaml")
    environ = {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s"}
    rules = "rules:\n  - name: failed\n    when: {status: FAILED}\n    to: [ops-slack]\n"
    config = parse_config("version: 1\n" + example + rules, "rules.yaml", environ=environ)
    sink = config.sinks["ops-slack"]
    assert isinstance(sink, SlackSinkConfig) and sink.buttons_on
    assert sink.effective_actions.silence_by == ("sipTrunkId",)
