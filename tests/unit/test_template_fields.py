"""The paths a template reads, found on its syntax tree (`Template.reads`)."""

from __future__ import annotations

from router.core.template_fields import FieldRead
from router.core.templates import Template


def paths(source: str) -> list[tuple[str, ...]]:
    return [read.path for read in Template(source).reads]


def test_attribute_and_item_chains_are_whole_paths() -> None:
    assert paths("{{ variables.customer_tier }} {{ transcript[0]['content'] }}") == [
        ("transcript", "0", "content"),
        ("variables", "customer_tier"),
    ]


def test_every_branch_is_read_not_only_the_one_a_call_takes() -> None:
    source = "{% if status == 'FAILED' %}{{ errorMessage }}{% else %}{{ summray }}{% endif %}"
    assert paths(source) == [("errorMessage",), ("status",), ("summray",)]


def test_names_the_template_assigns_start_no_path() -> None:
    source = (
        "{% set tier = variables.tier %}{{ tier.name }}"
        "{% for call in calls %}{{ call.id }}{% endfor %}"
        "{% macro m(x) %}{{ x.y }}{% endmacro %}"
    )
    assert paths(source) == [("calls",), ("variables", "tier")]


def test_a_called_method_is_marked_and_left_out_of_the_value_path() -> None:
    (read,) = Template("{{ summary.upper() }}").reads
    assert read == FieldRead(("summary", "upper"), 1, called=True)
    assert read.value_path == ("summary",)


def test_a_lookup_by_a_computed_key_ends_the_path_and_the_key_is_read_too() -> None:
    assert paths("{{ variables[key].x }}") == [("key",), ("variables",)]


def test_lines_are_the_templates_own() -> None:
    reads = Template("line one\n\n{{ staus }}").reads
    assert [(read.path, read.line) for read in reads] == [(("staus",), 3)]
