"""Rule evaluation cost: microseconds per event with 10, 100 and 1,000 rules.

The rules are generated rules.yaml text (a mix of equality, lists, comparisons,
regexes, `contains`, nested paths and `any`/`not`), parsed and compiled by
`router.config.schema.parse_config` as the service does, then `router.rules.matching.route` runs
over samples/failed-outbound.json; the figure is timeit's best of several repeats.
Two mixes: `global` cycles through the shapes, so one rule in eight matches every
call (125 of 1,000 fire); `per-tenant` keeps the first 10 rules global and scopes
every other rule to one organisation or agent, the way a large rules.yaml grows.

    python bench/rules_eval.py 10 100 1000
"""

from __future__ import annotations

import json
import sys
import timeit
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SAMPLE = ROOT / "samples" / "failed-outbound.json"

HEADER = """\
version: 1
sinks:
  crm: {type: http, url: "http://127.0.0.1:9/none"}
  console: {type: log}
rules:
"""

CONDITIONS = [
    "{{status: FAILED, sipTrunkId: trunk-{i}}}",
    "{{direction: INBOUND, durationSeconds: {{lt: {i}}}}}",
    "{{hangupCause: {{in: [VOICEMAIL_DETECTED, NO_ANSWER, BUSY_{i}]}}}}",
    "{{variables.customer_tier: {{in: [gold, platinum-{i}]}}, status: {{ne: CANCELED}}}}",
    "{{any: [{{status: CANCELED}}, {{errorMessage: {{contains: 'SIP {i}'}}}}]}}",
    "{{agentName: {{regex: '^Agent{i}$'}}}}",
    "{{not: {{organizationId: org_{i}}}, toNumber: {{startswith: '+44'}}}}",
    "{{metrics.latency.p50: {{gt: {i}}}, recordingUrl: {{exists: true}}}}",
]


MIXES = ("global", "per-tenant")


def rules_yaml(count: int, mix: str = "global") -> str:
    """rules.yaml text with `count` rules of varied conditions."""
    lines = [HEADER]
    for i in range(count):
        condition = CONDITIONS[i % len(CONDITIONS)].format(i=i)
        if mix == "per-tenant" and i >= 10:
            scope = f"organizationId: org_{i}" if i % 2 else f"agentId: agent-{i}"
            condition = f"{{{scope}, all: [{condition}]}}"
        sink = "crm" if i % 3 else "console"
        lines.append(f"  - name: rule-{i}\n    when: {condition}\n    to: [{sink}]\n")
    return "".join(lines)


def measure(count: int, mix: str = "global", repeat: int = 7, budget: float = 0.2) -> dict:
    from router.config.schema import parse_config
    from router.rules.matching import route

    config = parse_config(rules_yaml(count, mix), f"generated-{count}.yaml", environ={})
    event = json.loads(SAMPLE.read_text())
    routed = route(config.rules, event)
    timer = timeit.Timer(lambda: route(config.rules, event))
    number, _ = timer.autorange()
    number = max(1, int(number * budget / 0.2))
    best = min(timer.repeat(repeat=repeat, number=number)) / number
    return {
        "mix": mix,
        "rules": count,
        "matched": len(routed.matched),
        "deliveries": len(routed.deliveries),
        "us_per_event": round(best * 1e6, 2),
        "loops": number,
        "repeat": repeat,
    }


def main() -> None:
    counts = [int(x) for x in sys.argv[1:]] or [10, 100, 1000]
    print(json.dumps([measure(count, mix) for mix in MIXES for count in counts]))


if __name__ == "__main__":
    main()
