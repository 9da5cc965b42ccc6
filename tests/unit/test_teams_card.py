"""Pure pieces of the Teams card: Markdown escaping of call text, fitting a message under
Teams' size limit, and URL settings taken back out of a template's escaping."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from router.core.templates import Template, TemplateKind, teams_escape
from sinks.teams.card import (
    MAX_MESSAGE_BYTES,
    default_call_card,
    fit_message,
    message,
    message_size,
    unescape_urls,
)
from tests.conftest import sample

SPECIAL = set("\\`*_~[]<>")
markdownish = st.text(alphabet=st.sampled_from(list("\\`*_~[]<>()#-+.1 \nab@é")), max_size=60)


def unescaped_specials(text: str) -> list[str]:
    """Characters with a Markdown meaning that no backslash makes literal."""
    found, index = [], 0
    while index < len(text):
        if text[index] == "\\":
            index += 2
            continue
        if text[index] in SPECIAL:
            found.append(text[index])
        index += 1
    return found


@given(markdownish)
def test_escaped_text_has_no_active_markdown_character(text: str) -> None:
    assert unescaped_specials(teams_escape(text)) == []


@given(markdownish)
def test_escaping_loses_nothing(text: str) -> None:
    escaped = teams_escape(text)
    assert unescape_urls({"url": escaped})["url"] == text


def test_list_markers_at_a_line_start_are_escaped_and_others_left() -> None:
    assert teams_escape("- a\n+ b\n12. c\nx - y 3. z") == "\\- a\n\\+ b\n12\\. c\nx - y 3. z"


def test_a_mention_and_a_link_show_as_text() -> None:
    assert teams_escape("<at>All</at> [x](https://e.example)") == (
        "\\<at\\>All\\</at\\> \\[x\\](https://e.example)"
    )


def card_with(**changes: Any) -> dict[str, Any]:
    return message(default_call_card({**sample("completed-inbound"), **changes}, rule="r"))


@settings(max_examples=40, deadline=None)
@given(
    summary=st.text(min_size=0, max_size=40_000),
    turns=st.integers(min_value=0, max_value=200),
    turn=st.text(min_size=0, max_size=3000),
)
def test_any_call_fits_the_limit_as_valid_json(summary: str, turns: int, turn: str) -> None:
    document = card_with(summary=summary, transcript=[{"role": "user", "content": turn}] * turns)
    fitted = fit_message(document)
    assert message_size(fitted) <= MAX_MESSAGE_BYTES
    assert json.loads(json.dumps(fitted)) == fitted
    for block in fitted["attachments"][0]["content"]["body"]:
        text = block.get("text", "")
        if text.endswith("…"):
            before = text[:-1]
            assert (len(before) - len(before.rstrip("\\"))) % 2 == 0  # no escape cut in half


def test_a_message_already_small_is_left_as_it_is() -> None:
    document = card_with()
    assert fit_message(document) == document


def test_long_lists_are_shortened_when_cutting_text_is_not_enough() -> None:
    card = {"type": "AdaptiveCard", "body": [{"type": "TextBlock", "text": "x"}] * 5000}
    fitted = fit_message(message(card))
    assert message_size(fitted) <= MAX_MESSAGE_BYTES
    assert fitted["attachments"][0]["content"]["body"][0] == {"type": "TextBlock", "text": "x"}


def test_the_schema_types_and_urls_are_never_cut() -> None:
    url = "https://recordings.example.com/" + "a" * 2000 + ".mp3"
    document = card_with(summary="s" * 60_000, recordingUrl=url)
    fitted = fit_message(document)
    card = fitted["attachments"][0]["content"]
    assert card["$schema"] == "http://adaptivecards.io/schemas/adaptive-card.json"
    assert card["actions"][0]["url"] == url
    assert fitted["attachments"][0]["contentType"] == "application/vnd.microsoft.card.adaptive"


def test_a_card_template_escapes_what_it_prints_but_not_its_own_markdown() -> None:
    template = Template(
        '{"text": "**{{ status }}**: {{ summary }}", "facts": {{ facts }},'
        ' "whole": {{ facts | tojson }}, "n": {{ n }}}',
        TemplateKind.TEAMS_JSON,
    )
    rendered = json.loads(
        template.render(
            {"status": "FAILED", "summary": '_x_ "q"', "facts": [{"v": "<at>"}], "n": 3}
        )
    )
    assert rendered == {
        "text": '**FAILED**: \\_x\\_ "q"',
        "facts": [{"v": "\\<at\\>"}],
        "whole": [{"v": "\\<at\\>"}],
        "n": 3,
    }
