"""`prepare` with muting: which sinks get a target, which a muted delivery, and under
which rule (DESIGN.md section 6). Pure: no store, no service."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from router.config.schema import parse_config
from router.engine.prepare import MutingMoment, Prepared, prepare
from router.rules.matching import compile_when
from router.rules.muting import Silence
from tests.conftest import fresh_event

RULES = """\
version: 1
time_intervals:
  night:
    - times: [{start_time: '20:00', end_time: '24:00'}]
sinks:
  slack: {type: log}
  crm: {type: log}
rules:
  - name: quiet-at-night
    when: {status: FAILED}
    to: [slack, crm]
    muted_during: [night]
  - name: grouped-crm
    when: {status: FAILED}
    to: [crm]
    group: {by: [status], window: 1m}
"""
NIGHT = datetime(2026, 12, 15, 21, 0, tzinfo=UTC)
DAY = datetime(2026, 12, 15, 10, 0, tzinfo=UTC)


def prepared(instant: datetime, silences: tuple[Silence, ...] = ()) -> Prepared:
    config = parse_config(RULES, "rules.yaml", environ={})
    body = json.dumps(fresh_event(status="FAILED")).encode()
    outcome = prepare(body, config.rules, MutingMoment(config.time_intervals, silences, instant))
    assert isinstance(outcome, Prepared)
    return outcome


def test_by_day_both_sinks_are_targets_under_the_first_rule() -> None:
    outcome = prepared(DAY)
    assert [(sink, rule, group is None) for sink, rule, group in outcome.targets] == [
        ("slack", "quiet-at-night", True),
        ("crm", "quiet-at-night", True),
    ]
    assert outcome.muted == ()


def test_at_night_slack_is_muted_and_the_crm_goes_through_the_live_rule_with_its_group() -> None:
    outcome = prepared(NIGHT)
    assert outcome.muted == (("slack", "quiet-at-night", "time_interval:night"),)
    [(sink, rule, group)] = outcome.targets
    assert (sink, rule) == ("crm", "grouped-crm") and group is not None


def test_a_silence_mutes_the_sinks_it_covers() -> None:
    silence = Silence("s1", compile_when({"status": "FAILED"}), frozenset({"crm"}), DAY, NIGHT)
    outcome = prepared(DAY, (silence,))
    assert outcome.muted == (("crm", "quiet-at-night", "silence:s1"),)
    assert [target[0] for target in outcome.targets] == ["slack"]
