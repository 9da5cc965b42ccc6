"""Rendering is bounded in time and output size (router.core.template_limits, DESIGN.md section
6): templates that would build too much or run too long stop with an error naming the
bound, quickly; everything else renders exactly as Jinja2's own sandbox renders it."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jinja2 import StrictUndefined
from jinja2.sandbox import ImmutableSandboxedEnvironment

from router.core import template_limits
from router.core.samples import sample_event
from router.core.template_limits import OUTPUT_CHARS, measure
from router.core.templates import (
    FILTERS,
    Template,
    TemplateKind,
    TemplateRenderError,
    event_context,
)

SIZE_BOUND = f"more than {OUTPUT_CHARS:,} characters, the size a template's output may have"
CONTEXT = event_context(sample_event(), rule="r", sink="s", delivery_id="d")


def refusal(source: str, kind: TemplateKind = TemplateKind.TEXT) -> str:
    with pytest.raises(TemplateRenderError) as caught:
        Template(source, kind).render(CONTEXT)
    return str(caught.value)


@pytest.mark.parametrize(
    ("source", "what"),
    [
        ("{{ 'a' * 5000000 }}", "repeating a str 5,000,000 times"),
        ("{{ 5000000 * 'a' }}", "repeating a str 5,000,000 times"),
        ("{% set l = ['x' * 1000000] * 5 %}{{ l|length }}", "repeating a list 5 times"),
        ("{{ 'a'|center(5000000) }}", "centring in a width of 5000000"),
        ("{{ 'a'.ljust(5000000) }}", "padding to a width of 5000000"),
        ("{{ '7'.zfill(5000000) }}", "padding to a width of 5000000"),
        ("{{ '%5000000s' % 'a' }}", "formatting to a width of 5000000"),
        ("{{ '%.5000000f' % 1 }}", "formatting to a width of 5000000"),
        ("{{ '%5000000d'|format(1) }}", "formatting to a width of 5000000"),
        ("{{ '{:>5000000}'.format(1) }}", "formatting to a width of 5000000"),
        ("{{ 'a\tb'.expandtabs(5000000) }}", "expanding tabs to 5000000"),
        ("{{ ('x' * 1000000).replace('x', 'yyyyy') }}", "replacing"),
        ("{{ ('x' * 1000000)|replace('x', 'yyyyy') }}", "replacing"),
        ("{{ ('a\\n' * 1000)|indent(5000) }}", "indenting by 5000"),
        ("{{ [1]|batch(5000000, 0)|list|length }}", "batch(5000000) with a fill"),
        ("{{ [1]|slice(5000000)|list|length }}", "slice(5000000)"),
        ("{{ lipsum(5000) }}", "lipsum(5000, max=100)"),
        ("{% set a = 'x' * 3000000 %}{{ ','.join([a, a]) }}", "joining"),
        ("{% set a = 'x' * 3000000 %}{{ [a, a]|join }}", "the join filter"),
        ("{% set a = 'x' * 3000000 %}{{ a + a }}", "adding two strs"),
        ("{% set a = 'x' * 3000000 %}{{ [a] + [a] }}", "adding two lists"),
        ("{% set a = 'x' * 3000000 %}{{ a ~ a }}", "the template's output"),
        (
            "{% set ns = namespace(s='ab') %}{% for i in range(30) %}"
            "{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s|length }}",
            "text made with ~",
        ),
        ("{% set l = ['x' * 1000000] %}{% set m = [l, l, l, l, l] %}{{ m }}", "a printed value"),
        ("{% set l = ['x' * 1000000] %}{{ [l, l, l, l, l]|tojson }}", "the tojson filter"),
        ("{% set l = ['x' * 1000000] %}{{ [l, l, l, l, l]|string }}", "the string filter"),
        ("{% set l = ['x' * 1000000] %}{{ '%s' % [l, l, l, l, l] }}", "formatting with %"),
        ("{% for i in range(5) %}{{ 'x' * 1000000 }}{% endfor %}", "the template's output"),
        (
            "{% set x %}{% for i in range(5) %}{{ 'x' * 1000000 }}{% endfor %}{% endset %}"
            "{{ x|length }}",
            "the template's output",
        ),
        (
            "{% macro m() %}{% for i in range(5) %}{{ 'x' * 1000000 }}{% endfor %}{% endmacro %}"
            "{{ m()|length }}",
            "the template's output",
        ),
    ],
)
def test_a_template_building_too_much_stops_naming_the_size_bound(source: str, what: str) -> None:
    problem = refusal(source)
    assert problem.startswith("template stopped")
    assert f"{what} would make {SIZE_BOUND}" in problem


@pytest.mark.parametrize(
    ("source", "bound"),
    [
        ("{{ (10 ** 100000) % 7 }}", "a power would pass 65,536 bits"),
        ("{% set n = 2 ** 30000 %}{{ (n * n * n) % 7 }}", "a product would pass 65,536 bits"),
        ("{{ '%*d' % (5, 1) }}", "(%*) is not allowed in templates"),
        ("{{ '{:{}}'.format(1, 5000000) }}", "({:{}}) is not allowed in templates"),
    ],
)
def test_numbers_and_formats_past_their_bounds_stop(source: str, bound: str) -> None:
    assert bound in refusal(source)


def test_the_line_of_the_template_that_went_past_a_bound_is_named() -> None:
    problem = refusal("first line\nsecond {{ status }}\nthird {{ 'x' * 5000000 }}\n")
    assert problem.startswith("template stopped at template line 3: repeating a str")


def test_a_constant_bomb_costs_nothing_to_compile_and_stops_when_rendered() -> None:
    template = Template("{{ 'a' * 3000000000 }}{{ 'b'|center(3000000000) }}")
    assert "repeating a str 3,000,000,000 times" in refusal(template.source)
    with pytest.raises(TemplateRenderError, match="repeating a str"):
        template.render(CONTEXT)


@pytest.mark.parametrize(
    "source",
    [
        "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
        "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}",
        "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}"
        "{{ f(40) }}",
        "{% for i in range(100000) %}{{ range(100000)|sum }}{% endfor %}",
        "{% for i in range(100000) %}{{ transcript|transcript_excerpt }}{% endfor %}",
        "{% for x in range(100) recursive %}{% if loop.depth < 6 %}{{ loop(range(100)) }}"
        "{% endif %}{% endfor %}",
    ],
)
def test_a_template_running_too_long_stops_naming_the_time_bound(
    source: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(template_limits, "RENDER_SECONDS", 0.05)
    problem = refusal(source)
    assert "rendering took longer than the 0.05 s a template may take" in problem
    assert problem.startswith("template stopped at template line 1: ")


def test_a_large_call_renders_whole_within_the_bounds() -> None:
    call = sample_event()
    call["summary"] = "s" * 900_000  # a call near the 1 MiB body limit
    call["transcript"] = [{"role": "user", "content": '"quoted" \\ ' * 2_000}] * 10
    context = event_context(call, rule="r", sink="s", delivery_id="d")
    body = Template('{"event": {{ event|tojson }}, "summary": "{{ summary }}"}', TemplateKind.JSON)
    assert len(body.render(context)) > 1_800_000
    text = Template("{{ summary }}{{ transcript|tojson }}{{ transcript|transcript_excerpt }}")
    assert text.render(context).startswith("s" * 900_000)


def test_a_digests_calls_are_counted_and_listed_however_many_they_are() -> None:
    calls = [sample_event() | {"summary": "x" * 100_000} for _ in range(60)]
    context = event_context(calls[0], calls=calls, count=len(calls), rule="r")
    source = (
        "{{ calls|length }} {{ calls|selectattr('status', 'eq', 'COMPLETED')|list|length }} "
        "{{ calls|sum(attribute='durationSeconds') }} {{ calls|join(',', attribute='id')|length }}"
    )
    assert Template(source).render(context).startswith("60 60 ")


# -- the bounds change nothing else -----------------------------------------------------


def _plain(kind: TemplateKind) -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False)
    env.filters.update(FILTERS)
    env.policies["json.dumps_kwargs"] = {"sort_keys": False, "ensure_ascii": False}
    return env


SOURCES = [
    "{% for x in transcript %}{{ loop.index }}/{{ loop.length }}{{ '.' if loop.last }}"
    "{{ loop.revindex }}{{ loop.cycle('a', 'b') }}{% endfor %}",
    "{% for x in [] %}no{% else %}empty{% endfor %}{% for k, v in (variables or {}).items() %}"
    "{{ k }}={{ v }};{% endfor %}",
    "{% for x in range(5) if x is odd %}{{ x }}{% endfor %}{% for c in 'abc'|reverse %}{{ c }}"
    "{% endfor %}",
    "{% for i in [[1, [2]], [3]] recursive %}[{% if i is iterable %}{{ loop(i) }}{% else %}"
    "{{ i }}{% endif %}]{% endfor %}",
    "{% macro row(k, v) %}<{{ k }}:{{ v }}>{% endmacro %}{{ row('status', status) }}"
    "{% macro wrap() %}[{{ caller() }}]{% endmacro %}{% call wrap() %}in {{ id }}{% endcall %}",
    "{% set ns = namespace(n=0) %}{% for x in range(10) %}{% set ns.n = ns.n + x %}{% endfor %}"
    "{{ ns.n }}",
    "{% set s %}{{ status }}-{{ direction }}{% endset %}{{ s|upper }}{% filter lower %}ABC"
    "{% endfilter %}",
    "{{ status ~ ' ' ~ (durationSeconds or 0) ~ [1, 2] }} {{ 'x' * 3 }} {{ [1] * 3 }}"
    " {{ 2 ** 10 }}",
    "{{ '%s is %05.1f' % (status, durationSeconds or 0) }} {{ '{:>8}|{}'.format(status, 1) }}",
    "{{ '%-6s|'|format('ab') }} {{ 'a,b'|replace(',', ';') }} {{ 'ab'|center(6) }}"
    " {{ 'a\nb'|indent(2, true) }} {{ ', '.join(['a', 'b']) }} {{ [1, 2]|join('-') }}",
    "{{ range(7)|batch(3, 0)|list }} {{ range(7)|slice(3)|list }} {{ 'x y z'|wordwrap(3) }}"
    " {{ summary|truncate(20) }} {{ transcript|transcript_excerpt(2, 50) }}",
    "{{ event|tojson }} {{ {'a': [1, 2]}|pprint }} {{ (variables or {}).items()|list }}"
    " {{ dict(a=1) }} {{ status|lower|capitalize }} {{ 'a\tb'.expandtabs(4) }}",
    "{{ fromNumber|mask_phone }} {{ durationSeconds|human_duration }} {{ 10 // 3 }} {{ 7 % 3 }}"
    " {{ 1 + 2 }} {{ [1] + [2] }} {{ 'a' + 'b' }} {{ -3|abs }} {{ 2.5|round }}",
]


@pytest.mark.parametrize("source", SOURCES)
def test_within_the_bounds_a_template_renders_as_jinjas_sandbox_renders_it(source: str) -> None:
    expected = _plain(TemplateKind.TEXT).from_string(source).render(CONTEXT)
    assert Template(source).render(CONTEXT) == expected


TEXT = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=20)


@settings(max_examples=200, deadline=None)
@given(TEXT, TEXT, st.integers(-5, 40), st.lists(TEXT, max_size=4))
def test_any_values_render_as_in_jinjas_sandbox(a: str, b: str, n: int, items: list[str]) -> None:
    source = (
        "{{ a ~ b }}|{% for c in a %}{{ loop.index }}{{ c }}{% endfor %}|{{ a|center(n) }}|"
        "{{ '%s-%s' % (a, b) }}|{{ a * n }}|{{ items|join(b) }}|{{ b.join(items) }}|"
        "{{ items * 2 }}|{{ a.ljust(n) }}|{{ (a ~ '\n' ~ b)|indent(n) }}|{{ a.replace(b, a) }}"
    )
    values: dict[str, Any] = {"a": a, "b": b, "n": n, "items": items}
    expected = _plain(TemplateKind.TEXT).from_string(source).render(values)
    assert Template(source).render(values) == expected


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | TEXT,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    )
)
def test_measure_is_within_a_small_factor_of_what_json_prints(value: Any) -> None:
    printed = len(json.dumps(value, ensure_ascii=False))
    assert 6 * measure(value, 10**9) + 2 >= printed  # \u0001 is six characters for one


def test_measure_stops_at_its_limit_however_much_a_value_repeats() -> None:
    one = ["x" * 1000]
    for _ in range(30):
        one = [one, one]  # 2**30 thousand-character texts, through shared references
    assert measure(one, 5000) > 5000
