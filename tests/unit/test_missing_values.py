"""A value the call lacks renders empty in every kind of template (`""` inside a JSON
string, `null` as a whole JSON value), never fails a render, and is counted."""

from __future__ import annotations

import json
from typing import Any

import pytest

from router.core.missing_values import MissingValue, note_elsewhere, tallied
from router.core.templates import Template, TemplateKind, TemplateRenderError, event_context


def render(source: str, kind: TemplateKind = TemplateKind.TEXT, **event: Any) -> str:
    return Template(source, kind).render(event_context({"id": "c1", **event}))


def test_a_call_without_variables_renders_its_variables_empty() -> None:
    assert render("[{{ variables.customer_tier }}]") == "[]"
    assert render("[{{ variables.customer_tier.name }}]", variables={"other": 1}) == "[]"
    assert render("[{{ variables['customer_tier'] | upper }}]") == "[]"


def test_in_json_a_missing_value_is_an_empty_string_or_null() -> None:
    source = (
        '{"inside": "tier {{ variables.customer_tier }}", "whole": {{ variables.customer_tier }},'
        ' "tojson": {{ variables.customer_tier | tojson }}, "null": {{ summary }}}'
    )
    for kind in (TemplateKind.JSON, TemplateKind.SLACK_JSON, TemplateKind.TEAMS_JSON):
        assert json.loads(render(source, kind)) == {
            "inside": "tier ",
            "whole": None,
            "tojson": None,
            "null": None,
        }


def test_text_tojson_of_a_missing_value_is_null() -> None:
    assert render("{{ variables.tier | tojson }}") == "null"
    assert render("{{ variables.tier | tojson }}", TemplateKind.SLACK) == "null"


@pytest.mark.parametrize(
    "source",
    [
        "{{ variables.n + 1 }}",
        "{{ variables.n * 2 }}",
        "{{ variables.items() }}",
        "{{ transcript[0].content }}",
        "{{ (variables.n > 3) }}",
        "{{ variables.n | round | abs }}",
        "{{ variables.phone | mask_phone }}{{ variables.d | human_duration }}",
    ],
)
def test_every_operation_on_a_missing_value_is_missing(source: str) -> None:
    assert render(source) == ""


def test_slicing_a_null_or_missing_value_is_missing_and_slices_still_slice() -> None:
    assert render("[{{ endedAt[:10] }}]", endedAt=None) == "[]"
    assert render("[{{ (endedAt or startedAt)[11:16] }}]") == "[]"
    assert render("{{ endedAt[:10] }}", endedAt="2026-11-20T15:04:01Z") == "2026-11-20"
    assert render("{{ [1, 2, 3, 4][::2] }} {{ 'abcdef'[-2:] }}") == "[1, 3] ef"
    with tallied() as missing:
        render("{{ endedAt[:10] }}")
    assert dict(missing.names) == {"[:10]": 1}


def test_a_missing_value_reads_as_absent() -> None:
    assert render("{{ variables.tier | default('standard') }}") == "standard"
    assert render("{{ variables.tier or 'standard' }}") == "standard"
    assert render("{{ 'yes' if variables.tier is defined else 'no' }}") == "no"
    assert render("{{ variables.n | int }}") == "0"
    assert render("{% for x in variables.list %}x{% endfor %}.") == "."


def test_the_sandbox_still_refuses_internals() -> None:
    for source in ("{{ variables.__class__ }}", "{{ ''.format.__self__ }}"):
        with pytest.raises(TemplateRenderError):
            render(source)


def test_a_render_error_of_another_kind_still_fails() -> None:
    with pytest.raises(TemplateRenderError, match="TypeError"):
        render("{{ status + 1 }}", status="FAILED")


def test_printed_missing_values_are_counted_by_name() -> None:
    template = Template(
        "{{ variables.tier }} {{ variables.tier | upper }} {{ staus }}"
        " {{ variables.tier | default('-') }} {{ 'x' if false }} {{ summary }}"
    )
    with tallied() as missing:
        template.render(event_context({"id": "c1"}))
    assert dict(missing.names) == {"tier": 2, "staus": 1}
    assert missing.count == 3, "a default, Jinja's empty if and a null field are no missing value"


def test_counts_from_elsewhere_add_up_and_nothing_counts_outside_a_tally() -> None:
    render("{{ variables.tier }}")  # no tally open: nothing to count into
    with tallied() as missing:
        note_elsewhere(2)
        render("{{ variables.tier }}")
    assert missing.count == 3


def test_a_missing_value_is_the_environments_undefined() -> None:
    template = Template("{{ nothing }}")
    assert template._compiled.environment.undefined is MissingValue
