"""Microseconds per event for `router.rules.matching.route` over 10, 100 and 1,000 rules.

Run from the repository root: `python bench/bench_rules.py [--repeat 7]`.
Two mixes of the shapes rules.yaml sees in practice (status, direction and
hang-up cause equality, per-organisation and per-agent routing, duration bounds,
`variables.*` lookups, a few regexes, `any`/`not`): `global` cycles through the
shapes, so a tenth of all rules match every call; `per-tenant` keeps a dozen
global rules and scopes the rest to one organisation or agent each. The events
are shaped like the RevRing samples. Each figure is the best of several timeit repeats, for
`route` (indexed) and for a plain loop over every rule's condition (for scale).
Prints a table; asserts nothing.
"""

from __future__ import annotations

import argparse
import sys
import timeit
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from router.rules.matching import CompiledRule, compile_when, route

STATUSES = ["COMPLETED", "TRANSFERRED", "FAILED", "CANCELED"]
CAUSES = ["USER_ENDED", "VOICEMAIL_DETECTED", "SILENCE_TIMEOUT", "AGENT_ENDED", "NO_ANSWER"]
TIERS = ["gold", "silver", "platinum", "bronze"]

EVENTS: list[dict[str, Any]] = [
    {
        "id": "3c90c3cc-0d44-4b50-8888-8dd25736052a",
        "direction": "INBOUND",
        "status": "COMPLETED",
        "fromNumber": "+14155550123",
        "toNumber": "+14155550199",
        "organizationId": "org_8f2k1",
        "agentId": "7b1e2d40-5a3c-4f0e-9d7a-2c1b0e9f8a11",
        "hangupCause": "USER_ENDED",
        "errorMessage": None,
        "summary": "Caller rescheduled a cleaning to Friday 10am.",
        "metrics": {"latencyMs": {"p50": 620, "p95": 980}, "interruptions": 1},
        "initiatedAt": "2026-11-20T15:02:11Z",
        "durationSeconds": 108,
        "sipTrunkId": "trunk-main",
        "variables": {"direction": "inbound", "language": "en", "customer_tier": "gold"},
    },
    {
        "id": "9d1f6a7e-3b2c-4c8d-a1e0-55f3c2b7d901",
        "direction": "OUTBOUND",
        "status": "FAILED",
        "fromNumber": "+14155550199",
        "toNumber": "+442071838750",
        "organizationId": "org_8f2k1",
        "agentId": "7b1e2d40-5a3c-4f0e-9d7a-2c1b0e9f8a11",
        "hangupCause": None,
        "errorMessage": "SIP 503 Service Unavailable from carrier",
        "metrics": {},
        "initiatedAt": "2026-11-20T15:02:11Z",
        "durationSeconds": None,
        "sipTrunkId": "trunk-main",
        "variables": {"direction": "outbound", "customer_tier": "silver"},
    },
    {
        "id": "5e0c2f1a-8b7d-4e6c-9a3b-2d1f0e9c8b7a",
        "direction": "INBOUND",
        "status": "CANCELED",
        "fromNumber": "+14155550188",
        "toNumber": "+14155550199",
        "organizationId": "org_8f2k1",
        "agentId": "7b1e2d40-5a3c-4f0e-9d7a-2c1b0e9f8a11",
        "initiatedAt": "2026-11-20T16:00:00Z",
    },
    {
        "id": "b2a4c6d8-1e3f-4a5b-8c7d-9e0f1a2b3c4d",
        "direction": "OUTBOUND",
        "status": "COMPLETED",
        "fromNumber": "+14155550199",
        "toNumber": "+14155550177",
        "organizationId": "org_8f2k1",
        "agentId": "7b1e2d40-5a3c-4f0e-9d7a-2c1b0e9f8a11",
        "hangupCause": "VOICEMAIL_DETECTED",
        "summary": "Reached voicemail; left a reminder about the appointment.",
        "durationSeconds": 31,
        "sipTrunkId": "trunk-main",
        "variables": {"direction": "outbound", "customer_tier": "bronze"},
    },
]


def rule_when(i: int) -> dict[str, Any]:
    """The i-th rule's `when`, cycling through realistic shapes."""
    shape = i % 10
    if shape == 0:
        return {"status": STATUSES[i % 4]}
    if shape == 1:
        return {"status": "FAILED", "direction": "OUTBOUND", "sipTrunkId": f"trunk-{i % 7}"}
    if shape == 2:
        return {"hangupCause": CAUSES[i % 5]}
    if shape == 3:
        return {"direction": "INBOUND", "durationSeconds": {"lt": 5 + i % 30}}
    if shape == 4:
        return {"status": "COMPLETED", "variables.customer_tier": [TIERS[i % 4], "platinum"]}
    if shape == 5 and i % 100 == 5:  # a few regexes: one rule in a hundred
        return {"status": "COMPLETED", "summary": {"regex": r"(?i)refund|cancel|complain"}}
    if shape == 5:
        return {"status": "TRANSFERRED", "variables.language": ["en", "es"]}
    if shape == 6:
        return {"any": [{"status": "FAILED"}, {"hangupCause": "SILENCE_TIMEOUT"}]}
    if shape == 7:
        return {"organizationId": f"org_{i}", "not": {"status": "CANCELED"}}
    if shape == 8:
        return {"agentId": f"agent-{i}", "durationSeconds": {"gt": 60}}
    return {"toNumber": {"startswith": "+44"}, "variables.language": {"exists": False}}


def tenant_rule_when(i: int) -> dict[str, Any]:
    """Past the first dozen global rules, each rule is scoped to one organisation or
    agent (the way a large rules.yaml grows) and adds one of the global shapes."""
    if i < 12:
        return rule_when(i)
    scope = {"organizationId": f"org_{i}"} if i % 2 else {"agentId": f"agent-{i}"}
    extra = rule_when(i)
    return {**scope, **{k: v for k, v in extra.items() if k not in scope}}


MIXES = {"global": rule_when, "per-tenant": tenant_rule_when}


def build_rules(count: int, shape: Any = rule_when) -> list[CompiledRule]:
    return [
        CompiledRule(f"rule-{i}", compile_when(shape(i)), (f"sink-{i % 12}",)) for i in range(count)
    ]


def every_rule(rules: list[CompiledRule], event: dict[str, Any]) -> int:
    return sum(1 for rule in rules if rule.condition(event))


def best_microseconds(function: Any, repeat: int, number: int) -> float:
    timer = timeit.Timer(function)
    return min(timer.repeat(repeat=repeat, number=number)) / (number * len(EVENTS)) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="timeit repeats (best is shown)")
    args = parser.parse_args()
    print(
        f"{'mix':>10}  {'rules':>6}  {'route µs/event':>15}  {'every rule µs/event':>20}"
        "  matched/event"
    )
    for mix, shape in MIXES.items():
        for count in (10, 100, 1000):
            rules = build_rules(count, shape)
            number = max(10, 20_000 // count)
            matched = sum(len(route(rules, event).matched) for event in EVENTS) / len(EVENTS)

            def with_route(rules: list[CompiledRule] = rules) -> None:
                for event in EVENTS:
                    route(rules, event)

            def with_loop(rules: list[CompiledRule] = rules) -> None:
                for event in EVENTS:
                    every_rule(rules, event)

            routed = best_microseconds(with_route, args.repeat, number)
            looped = best_microseconds(with_loop, args.repeat, number)
            print(f"{mix:>10}  {count:>6}  {routed:>15.2f}  {looped:>20.2f}  {matched:>13.1f}")


if __name__ == "__main__":
    main()
