"""The README's Slack `blocks` example loads, renders for the sample call, and keeps its
shape whatever a caller puts in the summary."""

from __future__ import annotations

import re
from pathlib import Path

from router.config import parse_config
from router.samples import sample_event
from sinks.base import DeliveryRequest, SinkResources
from sinks.slack import SlackSink

README = Path(__file__).resolve().parents[2] / "README.md"


def blocks_example() -> str:
    text = README.read_text()
    section = text[text.index("#### Templates") : text.index("#### Errors and retries")]
    [example] = re.findall(r"```yaml\n(.*?)```", section, re.DOTALL)
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
    plain = sink.render(DeliveryRequest("d", "e", "ops", "r", sample_event()))["blocks"]
    hostile = sample_event() | {"summary": 'x"}}, {"type": "section", "text": "<!channel>'}
    attacked = sink.render(DeliveryRequest("d", "e", "ops", "r", hostile))["blocks"]
    assert [block["type"] for block in attacked] == [block["type"] for block in plain]
    assert "<!channel>" not in str(attacked)
