"""What a template sees: a call's fields never shadow the template environment's globals."""

from __future__ import annotations

import json

from router.core.templates import Template, event_context
from sinks.base import DeliveryRequest
from sinks.http import HttpSinkConfig, build_request

CALL = {
    "id": "call-1",
    "status": "FAILED",
    "range": "north",
    "namespace": "tenant-a",
    "dict": 1,
    "cycler": 2,
    "joiner": 3,
    "lipsum": 4,
}
USES_GLOBALS = (
    "{% set seen = namespace(n=0) %}{% for i in range(3) %}{% set seen.n = seen.n + i %}"
    "{% endfor %}{{ seen.n }} {{ dict(a=1).a }} {{ event.range }} {{ event.namespace }}"
)


def test_fields_named_like_globals_do_not_shadow_them() -> None:
    rendered = Template(USES_GLOBALS).render(event_context(CALL, rule="r"))
    assert rendered == "3 1 north tenant-a"


def test_other_fields_stay_at_the_top_level() -> None:
    context = event_context(CALL, rule="r")
    assert (context["id"], context["status"], context["rule"]) == ("call-1", "FAILED", "r")
    assert context["event"]["range"] == "north"


def test_an_http_body_using_range_still_delivers_for_a_call_with_a_range_field() -> None:
    body = '{"steps": [{% for i in range(2) %}{{ i }}{{ "," if not loop.last }}{% endfor %}]}'
    config = HttpSinkConfig(type="http", url="https://crm.example.com/calls", body=body)
    request = DeliveryRequest("del-1", "call-1", "crm", "rule", CALL)
    assert json.loads(build_request(config, request, now=0).body) == {"steps": [0, 1]}
