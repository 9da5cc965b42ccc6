"""What `check` says about templates: call fields the schema does not have (at load, from
the templates' syntax trees), and every template rendered for each packaged sample and a
sparse call (the required fields only): a value some call lacks is a warning naming it,
a template that cannot render an error."""

from __future__ import annotations

from router.config import parse_config, sample_findings
from router.core.samples import sparse_call

RULES = """\
version: 1
sinks:
  crm:
    type: http
    url: https://crm.example.com/calls?token=S3CRET-TOKEN-VALUE
    body: |
      {"tier": {{ variables.customer_tier }},
       "first": "{{ transcript[0].content }}",
       "guarded": {{ variables.customer_tier | default("standard") | tojson }},
       "summary": {{ summary }},
       "typo": "{{ agentNme }}"}
rules:
  - name: all
    to: [crm]
"""


def messages(text: str) -> tuple[list[str], list[str]]:
    config = parse_config(text, "rules.yaml", environ={})
    found = sample_findings(config)
    return [str(e) for e in found.errors], [str(w) for w in found.warnings]


def test_a_sparse_call_has_only_the_required_fields() -> None:
    assert sorted(sparse_call()) == sorted(
        ["id", "direction", "status", "fromNumber", "toNumber", "organizationId", "agentId"]
    )


def test_each_value_some_call_lacks_is_one_warning_naming_the_calls() -> None:
    errors, warnings = messages(RULES)
    assert errors == []
    assert warnings == [
        "rules.yaml:6:11: sink 'crm': body: variables.customer_tier is missing from sample"
        " minimal-canceled and a sparse call (only the required fields): it renders empty"
        " there (null as a whole JSON value); give it a default (| default('…')) or test it"
        " ({% if %})",
        "rules.yaml:6:11: sink 'crm': body: transcript.0.content is missing from samples"
        " failed-outbound, minimal-canceled and a sparse call (only the required fields): it"
        " renders empty there (null as a whole JSON value); give it a default (| default('…'))"
        " or test it ({% if %})",
    ], "a default, a null field and a field the schema lacks (warned at load) are no warning"


def test_a_field_the_schema_does_not_have_is_warned_at_load_with_its_template_line() -> None:
    config = parse_config(RULES, "rules.yaml", environ={})
    assert [str(warning) for warning in config.warnings] == [
        "rules.yaml:6:11: sink 'crm': body: 'agentNme' is not a field of RevRing's post-call"
        " event (did you mean 'agentName'?) (template line 5)"
    ]


def test_a_template_that_cannot_render_is_an_error_found_once_without_secrets() -> None:
    errors, _ = messages(RULES.replace('"guarded": ', '"guarded": {{ status + 1 }}, "x": '))
    assert len(errors) == 1
    assert errors[0].startswith("rules.yaml:6:11: sink 'crm': body: template failed: TypeError")
    assert errors[0].endswith("(rendered with the sample call 'completed-inbound')")
    assert "S3CRET" not in errors[0]


def test_a_template_failing_only_on_a_sparse_call_is_an_error_too() -> None:
    body = '{"day": "{{ initiatedAt[:10] }}", "ms": {{ durationSeconds * 1000 }}}'
    text = (
        RULES.split("    body: |")[0] + f"    body: '{body}'\nrules: [{{name: all, to: [crm]}}]\n"
    )
    errors, _ = messages(text)
    assert errors == [
        "rules.yaml:6:11: sink 'crm': body: template failed: TypeError: unsupported operand"
        " type(s) for *: 'NoneType' and 'int' (rendered with the sample call 'failed-outbound')"
    ]


def test_a_digests_values_in_a_template_single_calls_also_use_are_named() -> None:
    text = """\
version: 1
sinks:
  ops: {type: log, text: "{{ count }} calls since {{ window_start }}"}
rules:
  - {name: grouped, to: [ops], group: {by: [status], window: 1m}}
  - {name: single, to: [ops]}
"""
    errors, warnings = messages(text)
    assert errors == []
    assert warnings == [
        f"rules.yaml:3:26: sink 'ops': text: {name} is given to a digest only (a grouped rule's"
        " delivery), and rule 'single' sends single calls here: it renders empty there"
        for name in ("count", "window_start")
    ]
    assert messages(text.replace("  - {name: single, to: [ops]}\n", "")) == ([], [])
