"""The HTTP / CRM sink's page stays true: its examples load, render JSON, and its
verifier works."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import pytest

from router.config.schema import parse_config
from router.core.samples import sample_event
from sinks.base import DeliveryRequest, SinkResources
from sinks.http import HttpSink, HttpSinkConfig, build_request
from tests import docs


def blocks(language: str) -> list[str]:
    return docs.blocks(docs.page("sinks/http.md"), language)


def environ_for(text: str) -> dict[str, str]:
    names = set(re.findall(r"\$\{(\w+)", text))
    return {
        name: "https://crm.example.com" if name.endswith("_URL") else f"value-of-{name.lower()}"
        for name in names
    }


@pytest.mark.parametrize("example", blocks("yaml"), ids=lambda text: text.split()[2])
def test_every_yaml_example_loads_and_renders_json_for_the_sample(example: str) -> None:
    text = "version: 1\n" + example
    config = parse_config(text, "example.yaml", environ_for(text))
    [(name, sink_config)] = config.sinks.items()
    assert isinstance(sink_config, HttpSinkConfig)
    assert sink_config.sample_problems(sample_event()) == []
    request = DeliveryRequest("dlv-1", "e", name, "r", sample_event())
    rendered = HttpSink(name, sink_config, SinkResources()).preview(request)
    assert isinstance(rendered["body"], dict)
    assert "value-of" not in json.dumps(rendered)


@pytest.mark.parametrize(
    "secret", ["whsec_" + base64.b64encode(b"k" * 24).decode(), "raw secret"], ids=["whsec", "raw"]
)
def test_the_by_hand_verifier_accepts_our_signature_and_rejects_a_tampered_body(
    secret: str,
) -> None:
    namespace: dict[str, Any] = {}
    exec(blocks("python")[-1], namespace)
    verify = namespace["is_signed_by_router"]
    config = HttpSinkConfig.model_validate(
        {"type": "http", "url": "https://crm.example.com/", "signing_secret": secret}
    )
    request = DeliveryRequest("dlv-3", "e", "crm", "r", sample_event(), payload=b'{"a": 1}')
    outgoing = build_request(config, request, now=1_790_000_000)
    assert verify(secret, outgoing.body, outgoing.headers)
    assert not verify(secret, b'{"a": 2}', outgoing.headers)
