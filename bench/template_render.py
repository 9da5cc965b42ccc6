"""µs per render of the shipped and documented templates (router.core.templates), to see what
the rendering bounds (time and output size) cost. Not part of pytest; asserts nothing.

    python bench/template_render.py            # best of 7 timeit repeats per template

Templates: the email sink's default HTML (a call, and a digest of 100 calls), the
Slack `text` of DESIGN.md section 6, the Slack `blocks` and the HTTP `body` of
docs/sinks/, and a HubSpot-style body with a `~` concatenation and `set`s.
"""

from __future__ import annotations

import sys
import timeit
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from router.core.samples import sample_event
from router.core.templates import Template, TemplateKind, event_context
from sinks.base import Digest
from sinks.email.templates import _DEFAULT_HTML, _STATUS_COLOURS, build_alert

SLACK_TEXT = "{{ status }} call from {{ fromNumber | mask_phone }}"
SLACK_BLOCKS = """[
  {"type": "section", "text": {"type": "mrkdwn",
    "text": "*{{ status }}* call, {{ durationSeconds | human_duration }}"}},
  {"type": "section", "text": {"type": "mrkdwn", "text": {{ summary or "no summary" }}}},
  {"type": "context", "elements": [{"type": "mrkdwn", "text": "rule {{ rule }}"}]}
]"""
HTTP_BODY = """{
  "call_id": "{{ id }}",
  "status": "{{ status }}",
  "direction": {{ direction }},
  "from": {{ fromNumber }},
  "to": {{ toNumber }},
  "duration_seconds": {{ durationSeconds }},
  "tier": {{ (variables.customer_tier if variables and variables.customer_tier
             else "standard") | tojson }},
  "title": "{{ status | capitalize }} call: {{ summary or "no summary" }}",
  "summary": {{ summary }},
  "transcript": {{ transcript | tojson }}
}"""
HUBSPOT_BODY = """{% set contact = (variables or {}).get("hubspot_contact_id") %}
{% set statuses = {"COMPLETED": "COMPLETED", "FAILED": "FAILED"} %}
{
  "title": "RevRing {{ direction | lower }} call ({{ status | lower }})",
  "body": {{ ((summary or "No summary") ~ "\\n\\n"
              ~ (transcript | transcript_excerpt(40, 20000))) | trim }},
  "status": "{{ statuses.get(status, "COMPLETED") }}",
  "duration": "{{ ((durationSeconds or 0) * 1000) | round | int }}",
  "contact": {{ contact }}
}"""


def _email_context(digest: Digest | None) -> dict[str, Any]:
    event = sample_event()
    alert = build_alert(event, rule="r", sink="mail", delivery_id="d-1", digest=digest, masked=True)
    return {"alert": alert, "colour": _STATUS_COLOURS.get(alert.status, "#455a64")}


def cases() -> list[tuple[str, Template, dict[str, Any]]]:
    call = event_context(sample_event(), rule="failed-calls", sink="s", delivery_id="d-1")
    digest = Digest({"sipTrunkId": "t"}, "a", "b", [sample_event() for _ in range(100)])
    return [
        ("email default HTML, one call", _DEFAULT_HTML, _email_context(None)),
        ("email default HTML, digest of 100", _DEFAULT_HTML, _email_context(digest)),
        ("slack text (DESIGN §6)", Template(SLACK_TEXT, TemplateKind.SLACK), call),
        ("slack blocks (docs)", Template(SLACK_BLOCKS, TemplateKind.SLACK_JSON), call),
        ("http body (docs)", Template(HTTP_BODY, TemplateKind.JSON), call),
        ("http body, hubspot-like", Template(HUBSPOT_BODY, TemplateKind.JSON), call),
    ]


def main() -> None:
    for name, template, context in cases():
        template.render(context)
        number, _ = timeit.Timer(lambda t=template, c=context: t.render(c)).autorange()
        best = min(
            timeit.repeat(lambda t=template, c=context: t.render(c), number=number, repeat=7)
        )
        print(f"{name:40} {best / number * 1e6:9.1f} µs")


if __name__ == "__main__":
    main()
