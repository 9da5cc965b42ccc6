"""The pure parts of `router.engine.parse_workers`: how many workers by default, and the key a
worker compiles rules.yaml under (it changes with anything that changes the rules)."""

from __future__ import annotations

import os

import pytest

from router.config.schema import parse_config
from router.config.yaml_source import named_variables
from router.engine.parse_workers import RulesSource, default_worker_count

RULES = """
version: 1
sinks:
  crm: {type: http, url: "${CRM_URL:-}"}
rules:
  - name: failed
    when: {status: "${WANTED:-FAILED}"}
    to: [crm]
"""


@pytest.mark.parametrize(("cpus", "workers"), [(1, 1), (2, 1), (3, 2), (64, 2)])
def test_one_worker_fewer_than_the_cpus_between_1_and_2(monkeypatch, cpus, workers):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cpus)), raising=False)
    assert default_worker_count() == workers


def test_the_variables_a_file_names_are_all_it_needs_of_the_environment():
    environ = {"CRM_URL": "https://crm", "WANTED": "", "OTHER": "secret"}
    assert named_variables(RULES + "# $${ESCAPED}\n", environ) == {
        "CRM_URL": "https://crm",
        "WANTED": "",
    }


def test_the_rules_key_follows_the_text_the_file_and_the_variables():
    def key(text: str = RULES, file: str = "rules.yaml", **environ: str) -> str:
        return RulesSource.of(parse_config(text, file, environ)).key

    assert key() == key()
    assert key(OTHER="x") == key()  # a variable the file does not name
    assert key(WANTED="COMPLETED") != key()
    assert key(CRM_URL="https://crm") != key()
    assert key(RULES.replace("failed", "failures")) != key()
    assert key(file="other.yaml") != key()
