"""`regex` conditions run on RE2: linear in the text, and what RE2 cannot run is a
`check` error at the pattern."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from router.config.schema import ConfigError, parse_config
from router.rules.matching import ConditionErrors, compile_when
from router.rules.regex import RegexError, compile_search, compile_search_set

HEAD = """version: 1
sinks:
  console: {type: log}
rules:
  - name: voicemail
    when:
      summary:
        regex: """


def check_errors(pattern_yaml: str) -> list[str]:
    text = HEAD + pattern_yaml + "\n    to: [console]\n"
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "rules.yaml", environ={})
    return [str(error) for error in caught.value.errors]


@pytest.mark.parametrize(
    ("pattern_yaml", "construct"),
    [
        (r"'(a)\1'", r"back-reference \1"),
        (r"'(?P<x>a)(?P=x)'", "back-reference (?P=name)"),
        (r"'(?P<x>a)\k<x>'", r"back-reference \k<name>"),
        ("'full(?=y)'", "look-ahead (?=...)"),
        ("'full(?!y)'", "negative look-ahead (?!...)"),
        ("'(?<=voice)mail'", "look-behind (?<=...)"),
        ("'(?<!voice)mail'", "negative look-behind (?<!...)"),
        ("'(?>a|ab)c'", "atomic group (?>...)"),
        ("'a++'", "possessive quantifier ++"),
        (r"'full\Z'", r"\Z (write \z for the end of the text)"),
    ],
)
def test_check_refuses_what_re2_cannot_run_naming_the_construct(
    pattern_yaml: str, construct: str
) -> None:
    (error,) = check_errors(pattern_yaml)
    assert error.startswith("rules.yaml:8:16: rule 'voicemail': summary: invalid regex ")
    assert f"{construct} is not supported" in error
    assert "RE2" in error


def test_a_plain_syntax_error_keeps_re2s_words() -> None:
    (error,) = check_errors("'VOICE(MAIL'")
    assert error == "rules.yaml:8:16: rule 'voicemail': summary: invalid regex 'VOICE(MAIL': " + (
        "missing ): VOICE(MAIL"
    )


@pytest.mark.parametrize(
    ("pattern", "text", "found"),
    [
        ("mail", "left a voicemail today", True),  # anywhere, as re.search
        ("^mail", "voicemail", False),
        ("^voice", "voicemail", True),
        ("full$", "mailbox full", True),
        ("(?i)VOICEMAIL.*FULL", "Voicemail box is full", True),
        ("(?i)ÉTÉ", "un été chaud", True),  # case folding beyond ASCII
        ("^.{3}$", "été", True),  # . is one character, not one byte
        (r"SIP (4\d\d|503)", "SIP 486 busy", True),
        (r"\bfull\b", "fullness", False),
        ("a|b", "", False),
    ],
)
def test_regex_keeps_the_meaning_of_a_search(pattern: str, text: str, found: bool) -> None:
    assert compile_when({"summary": {"regex": pattern}})({"summary": text}) is found


def test_a_text_with_a_lone_surrogate_is_searched_not_an_error() -> None:
    condition = compile_when({"summary": {"regex": "full"}})
    assert condition({"summary": "box \ud83d full"})
    assert not condition({"summary": "\ud83d"})


def test_a_pattern_that_is_not_unicode_text_is_refused() -> None:
    with pytest.raises(ConditionErrors) as caught:
        compile_when({"summary": {"regex": "a\udc80"}})
    assert "not valid Unicode" in caught.value.errors[0].message


# -- many patterns in one search (the rule index) -----------------------------------------

SET_PATTERNS = [
    "mail",
    "^mail",
    "^voice",
    "full$",
    "(?i)VOICEMAIL.*FULL",
    "(?i)ÉTÉ",
    "^.{3}$",
    r"SIP (4\d\d|503)",
    r"\bfull\b",
    "a|b",
    "",
    "^$",
    "\\.",
    "[^a-z]",
]
SET_TEXTS = st.text(alphabet="mailvoceMAILfuÉétéSP 45036\ud83d.", max_size=16)


@settings(max_examples=300)
@given(st.lists(st.sampled_from(SET_PATTERNS), min_size=1, max_size=6, unique=True), SET_TEXTS)
def test_a_set_search_finds_what_each_pattern_finds_alone(patterns: list[str], text: str) -> None:
    alone = [i for i, pattern in enumerate(patterns) if compile_search(pattern)(text)]
    found = compile_search_set(patterns)(text)
    assert found is not None and sorted(found) == alone


@settings(max_examples=300)
@given(st.lists(SET_TEXTS, min_size=1, max_size=6, unique=True), SET_TEXTS)
def test_a_literal_set_search_finds_the_substrings(needles: list[str], text: str) -> None:
    found = compile_search_set(needles, literal=True)(text)
    assert found is not None
    assert sorted(found) == [i for i, needle in enumerate(needles) if needle in text]


def test_a_set_that_re2_cannot_build_is_refused() -> None:
    with pytest.raises(RegexError):
        compile_search_set(["a\udc80"])
