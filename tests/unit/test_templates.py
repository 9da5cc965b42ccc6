"""Templates of rules.yaml (router/core/templates.py): filters, kinds, strictness, sandbox."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from router.core.events import OPTIONAL_FIELDS
from router.core.templates import (
    Template,
    TemplateKind,
    TemplateRenderError,
    compile_template,
    event_context,
    human_duration,
    mask_phone,
    transcript_excerpt,
)

ALL_LINE_BREAKS = [chr(code) for code in range(0x3000) if len(f"a{chr(code)}b".splitlines()) == 2]


def render(source: str, kind: TemplateKind = TemplateKind.TEXT, **context: Any) -> str:
    return Template(source, kind).render(context)


@pytest.mark.parametrize(
    ("number", "masked"),
    [
        ("+14155550123", "+1415•••0123"),
        (" +14155550123 ", "+1415•••0123"),
        ("+442071838750", "+4420•••8750"),
        ("1234567890", "12345•••7890"),
        ("123456789", "•••"),
        ("1234", "•••"),
        ("12", "•••"),
        ("", ""),
        (None, ""),
        (14155550123, "+1415•••0123"),
    ],
)
def test_mask_phone(number: Any, masked: str) -> None:
    assert mask_phone(number) == masked


def test_mask_phone_with_nothing_kept_at_the_end_shows_no_tail() -> None:
    assert mask_phone("+14155550123", keep_start=2, keep_end=0) == "+1•••"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (108, "1m 48s"),
        (3725, "1h 2m 5s"),
        (0, "0s"),
        (59.6, "1m 0s"),
        (3600, "1h 0m 0s"),
        (None, "-"),
        (True, "-"),
        ("42", "42s"),
        ("soon", "soon"),
        (-5, "-5"),
        (float("inf"), "inf"),
        (float("nan"), "nan"),
    ],
)
def test_human_duration(seconds: Any, text: str) -> None:
    assert human_duration(seconds) == text


def test_transcript_excerpt_with_role_and_content() -> None:
    transcript = [
        {"role": "agent", "content": "Hello, Acme Dental."},
        {"role": "user", "content": "Hi!"},
    ]
    assert transcript_excerpt(transcript) == "agent: Hello, Acme Dental.\nuser: Hi!"


def test_transcript_excerpt_with_speaker_and_text_and_plain_strings() -> None:
    transcript = [{"speaker": "caller", "text": "hello"}, "agent: hi there", {"name": "bot"}]
    assert transcript_excerpt(transcript) == "caller: hello\n?: agent: hi there\nbot: "


@pytest.mark.parametrize("empty", [None, [], "", {}, 42])
def test_transcript_excerpt_of_nothing_is_empty(empty: Any) -> None:
    assert transcript_excerpt(empty) == ""


def test_transcript_excerpt_of_a_plain_string() -> None:
    assert transcript_excerpt("agent: hello") == "agent: hello"


def test_transcript_excerpt_stops_at_max_lines_with_an_ellipsis() -> None:
    transcript = [{"role": "agent", "content": str(n)} for n in range(10)]
    assert transcript_excerpt(transcript, max_lines=2) == "agent: 0\nagent: 1…"


def test_transcript_excerpt_stops_at_max_chars() -> None:
    transcript = [{"role": "user", "content": "x" * 100}]
    excerpt = transcript_excerpt(transcript, max_chars=20)
    assert len(excerpt) == 20
    assert excerpt == "user: " + "x" * 13 + "…"


def test_transcript_excerpt_cut_by_lines_keeps_the_ellipsis_within_max_chars() -> None:
    transcript = [{"role": "user", "content": "abcdef"}] * 3
    excerpt = transcript_excerpt(transcript, max_lines=1, max_chars=len("user: abcdef"))
    assert excerpt == "user: abcde…"


@given(
    lines=st.lists(st.text(max_size=30), max_size=12),
    max_lines=st.integers(min_value=1, max_value=8),
    max_chars=st.integers(min_value=1, max_value=120),
)
@example(lines=["abc", "def"], max_lines=1, max_chars=6)
def test_transcript_excerpt_never_exceeds_max_chars(
    lines: list[str], max_lines: int, max_chars: int
) -> None:
    excerpt = transcript_excerpt(lines, max_lines=max_lines, max_chars=max_chars)
    assert len(excerpt) <= max_chars


def test_filters_are_available_in_templates() -> None:
    text = render(
        "{{ fromNumber | mask_phone }} {{ durationSeconds | human_duration }}",
        fromNumber="+14155550123",
        durationSeconds=108,
    )
    assert text == "+1415•••0123 1m 48s"


def test_slack_kind_escapes_printed_values_but_keeps_literal_text() -> None:
    text = render(
        "<!here> {{ summary }} & {{ transcript | transcript_excerpt }}",
        TemplateKind.SLACK,
        summary="<!channel> <https://evil.example|click> & more",
        transcript=[{"role": "user", "content": "<@U123>"}],
    )
    assert text == (
        "<!here> &lt;!channel&gt; &lt;https://evil.example|click&gt; &amp; more"
        " & user: &lt;@U123&gt;"
    )


def test_text_kind_prints_values_as_they_are() -> None:
    assert render("{{ x }}", x="<b> & </b>") == "<b> & </b>"


@pytest.mark.parametrize("separator", ALL_LINE_BREAKS)
def test_header_kind_drops_every_line_break(separator: str) -> None:
    text = render("Call {{ id }}", TemplateKind.HEADER, id=f"abc{separator}Bcc: x@example.com")
    assert len(text.splitlines()) == 1
    assert separator not in text


def test_header_kind_drops_line_breaks_of_the_template_itself() -> None:
    assert render("a\r\nb {{ x }}\n", TemplateKind.HEADER, x="c") == "a b c"


def test_json_kind_accepts_valid_json() -> None:
    text = render('{"id": {{ id | tojson }}, "n": {{ n }}}', TemplateKind.JSON, id='a"b', n=3)
    assert json.loads(text) == {"id": 'a"b', "n": 3}


def test_json_kind_rejects_invalid_json_at_render() -> None:
    template = Template('{"id": {{ id }},}', TemplateKind.JSON)
    with pytest.raises(TemplateRenderError, match="valid JSON"):
        template.render({"id": "not quoted"})


def test_a_value_the_call_lacks_renders_empty() -> None:
    assert render("{{ status }} [{{ customerTier }}]", status="FAILED") == "FAILED []"
    assert render("[{{ variables.tier.name | upper }}]", variables=None) == "[]"
    assert render("[{{ transcript[0].content }}]", transcript=None) == "[]"


def test_a_missing_value_renders_empty_in_every_kind() -> None:
    for kind in (TemplateKind.SLACK, TemplateKind.HEADER, TemplateKind.HTML):
        assert render("[{{ variables.tier }}]", kind, variables={}) == "[]"


def test_a_missing_value_is_false_and_takes_a_default() -> None:
    source = "{{ 'gold' if variables.tier == 'gold' else 'other' }}"
    source += " {{ variables.tier | default('-') }}"
    assert render(source, variables=None) == "other -"


def test_a_render_error_of_another_kind_still_fails() -> None:
    with pytest.raises(TemplateRenderError, match="TypeError"):
        render("{{ status + 1 }}", status="FAILED")


def test_a_syntax_error_is_a_value_error_naming_the_template_line() -> None:
    with pytest.raises(ValueError, match="template line 3"):
        Template("one\ntwo\n{{ status }")


def test_an_unknown_filter_fails_at_compile() -> None:
    with pytest.raises(ValueError, match="no_such_filter"):
        Template("{{ status | no_such_filter }}")


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ x.__class__.__init__.__globals__ }}",
        "{{ x.append(1) }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ ''.format.__self__ }}",
    ],
)
def test_the_sandbox_blocks_internals(source: str) -> None:
    with pytest.raises(TemplateRenderError):
        Template(source).render({"x": []})


def test_runaway_recursion_is_a_render_error() -> None:
    template = Template("{% macro r() %}{{ r() }}{% endmacro %}{{ r() }}")
    with pytest.raises(TemplateRenderError):
        template.render({})


def test_errors_inside_filters_are_render_errors() -> None:
    with pytest.raises(TemplateRenderError):
        render("{{ 1 / x }}", x=0)
    with pytest.raises(TemplateRenderError):
        render("{{ x | mask_phone(keep_start='a') }}", x="+14155550123")


def test_compile_template_passes_templates_through_and_rejects_non_strings() -> None:
    template = Template("x")
    assert compile_template(template) is template
    assert compile_template("{{ a }}", TemplateKind.SLACK).kind is TemplateKind.SLACK
    with pytest.raises(ValueError, match="int"):
        compile_template(5)


def test_event_context_fills_absent_optional_fields_with_none() -> None:
    event = {"id": "c1", "status": "CANCELED", "custom": 1}
    context = event_context(event, rule="r", sink="s")
    assert all(context[name] is None for name in OPTIONAL_FIELDS if name not in event)
    assert context["summary"] is None
    assert context["custom"] == 1
    assert context["event"] is event
    assert (context["rule"], context["sink"]) == ("r", "s")
    assert Template("{{ status }}{{ summary }}{{ endedAt }}").render(context) == "CANCELED"


def test_event_context_keeps_present_values() -> None:
    context = event_context({"summary": "s", "durationSeconds": 5})
    assert context["summary"] == "s"
    assert context["durationSeconds"] == 5


printable_values = st.one_of(
    st.text(),
    st.integers(),
    st.lists(st.text(max_size=5), max_size=4),
    st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=3),
)

SLACK_VALUE = Template("{{ x }}", TemplateKind.SLACK)
SLACK_FILTERED = Template(
    "{{ x | string | upper }}|{{ x | transcript_excerpt }}", TemplateKind.SLACK
)


@given(printable_values)
def test_slack_rendering_of_a_value_never_carries_angle_brackets(value: Any) -> None:
    assert not {"<", ">"} & set(SLACK_VALUE.render({"x": value}))
    assert not {"<", ">"} & set(SLACK_FILTERED.render({"x": value}))
