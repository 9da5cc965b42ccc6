"""rules.yaml reading with positions and `${VAR}` interpolation (router/config/yaml_source.py)."""

from __future__ import annotations

import pytest

from router.config.yaml_source import Position, interpolate, load_yaml_with_positions

DOCUMENT = """\
defaults:
  retry: {max_attempts: 10}
sinks:
  crm:
    url: https://crm.example.com
    headers:
      - a
      -   b
"""


def load(text: str, **environ: str):
    return load_yaml_with_positions(text, "rules.yaml", environ)


def messages(text: str, **environ: str) -> list[str]:
    return [str(error) for error in load(text, **environ).errors]


def test_positions_of_values_are_one_based() -> None:
    document = load(DOCUMENT)
    assert document.errors == []
    assert document.values[("sinks", "crm", "url")] == Position(5, 10)
    assert document.values[("defaults", "retry", "max_attempts")] == Position(2, 25)
    assert document.values[("sinks", "crm", "headers", 1)] == Position(8, 11)
    assert document.values[()] == Position(1, 1)


def test_positions_of_keys_are_one_based() -> None:
    document = load(DOCUMENT)
    assert document.keys[("sinks",)] == Position(3, 1)
    assert document.keys[("sinks", "crm", "url")] == Position(5, 5)
    assert document.keys[("defaults", "retry", "max_attempts")] == Position(2, 11)


def test_position_of_falls_back_to_the_nearest_ancestor() -> None:
    document = load(DOCUMENT)
    assert document.position_of(("sinks", "crm", "timeout")) == Position(5, 5)
    assert document.position_of(("sinks", "crm", "url"), key=True) == Position(5, 5)
    error = document.error(("sinks", "crm", "url"), "bad url")
    assert str(error) == "rules.yaml:5:10: bad url"


def test_data_is_plain_python() -> None:
    assert load(DOCUMENT).data == {
        "defaults": {"retry": {"max_attempts": 10}},
        "sinks": {"crm": {"url": "https://crm.example.com", "headers": ["a", "b"]}},
    }


def test_a_duplicate_key_is_reported_with_both_lines() -> None:
    document = load("sinks:\n  a: 1\n  b: 2\n  a: 3\n")
    assert [str(error) for error in document.errors] == [
        "rules.yaml:4:3: duplicate key 'a' (first defined at line 2)"
    ]
    assert document.data == {"sinks": {"a": 1, "b": 2}}


def test_variables_are_replaced_from_the_environment() -> None:
    document = load("url: https://${HOST}/hook/${PATH_PART}\n", HOST="x.example", PATH_PART="p")
    assert document.errors == []
    assert document.data == {"url": "https://x.example/hook/p"}


def test_a_default_is_used_when_the_variable_is_unset_or_empty() -> None:
    text = "a: ${UNSET:-fallback}\nb: ${EMPTY:-fallback}\nc: ${SET:-fallback}\nd: ${EMPTY}\n"
    document = load(text, EMPTY="", SET="given")
    assert document.errors == []
    assert document.data == {"a": "fallback", "b": "fallback", "c": "given", "d": ""}


def test_an_empty_default_is_allowed() -> None:
    assert load("a: x${UNSET:-}y\n").data == {"a": "xy"}


def test_double_dollar_writes_a_literal() -> None:
    document = load("a: $${NOT_A_VAR} and ${V}\n", V="v")
    assert document.errors == []
    assert document.data == {"a": "${NOT_A_VAR} and v"}


def test_an_unset_variable_is_an_error_at_its_node_naming_it() -> None:
    text = "sinks:\n  slack:\n    webhook_url: ${SLACK_WEBHOOK_URL}\n"
    assert messages(text) == [
        "rules.yaml:3:18: environment variable SLACK_WEBHOOK_URL is not set "
        "(set it, or give a default: ${SLACK_WEBHOOK_URL:-default})"
    ]


def test_every_unset_variable_is_reported() -> None:
    found = messages("a: ${ONE}-${TWO}\nb:\n  - ${THREE}\n")
    assert [message.split(": ", 1)[0] for message in found] == [
        "rules.yaml:1:4",
        "rules.yaml:1:4",
        "rules.yaml:3:5",
    ]
    assert ["ONE" in found[0], "TWO" in found[1], "THREE" in found[2]] == [True, True, True]


def test_variables_are_not_replaced_in_keys_or_non_strings() -> None:
    document = load("${K}: 5\nn: 5\n", K="key")
    assert document.data == {"${K}": 5, "n": 5}


def test_interpolate_reports_unset_names() -> None:
    assert interpolate("${A}${B:-b}${C}", {"C": "c"}) == ("bc", ["A"])


@pytest.mark.parametrize(
    ("text", "position", "fragment"),
    [
        ("a: 1\nb: [1, 2\n", "3:1", "invalid YAML"),
        ("a:\n  b: 1\n c: 2\n", "3:2", "invalid YAML"),
        ("a: 'open\n", "2:1", "invalid YAML"),
        ("a: 1\n---\nb: 2\n", "2:1", "invalid YAML"),
    ],
)
def test_a_yaml_syntax_error_is_located(text: str, position: str, fragment: str) -> None:
    document = load(text)
    assert document.data is None
    assert len(document.errors) == 1
    assert str(document.errors[0]).startswith(f"rules.yaml:{position}: {fragment}")


@pytest.mark.parametrize("text", ["", "   \n", "# only a comment\n"])
def test_an_empty_document_is_an_empty_mapping(text: str) -> None:
    document = load(text)
    assert document.errors == []
    assert document.data == {}
    assert document.position_of(("anything",)) == Position(1, 1)


@pytest.mark.parametrize(
    ("text", "position"),
    [
        ("a: 1\nb: !!python/name:os.system x\n", "2:4"),
        ("a: !custom x\n", "1:4"),
        ("a: !!int abc\n", "1:4"),
    ],
)
def test_an_unreadable_value_is_a_located_error_not_an_exception(text: str, position: str) -> None:
    found = messages(text)
    assert len(found) == 1
    assert found[0].startswith(f"rules.yaml:{position}: invalid value")


def test_merge_keys_are_refused() -> None:
    found = messages("base: &b {x: 1}\nother:\n  <<: *b\n")
    assert found == ["rules.yaml:3:3: YAML merge keys (<<) are not supported"]


def test_a_non_scalar_key_is_refused() -> None:
    assert messages("? [a, b]\n: 1\n") == ["rules.yaml:1:3: a key must be a plain value"]


def test_alias_expansion_is_bounded():
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for level in range(1, 8):
        previous = f"*a{level - 1}"
        lines.append(f"a{level}: &a{level} [{', '.join([previous] * 10)}]")
    document = load_yaml_with_positions("\n".join(lines) + "\n", "bomb.yaml", {})
    assert document.data is None
    assert ["document too large" in e.message for e in document.errors] == [True]
