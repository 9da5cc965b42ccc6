"""Regular expressions for `regex` conditions, run by RE2 in time linear in the text.

Python's `re` backtracks: `(?i)voicemail.*full` over an 80 KB summary takes seconds
and its cost grows with the square of the length. RE2 (`google-re2`) never backtracks,
so it has no back-references or look-around; `compile_search` refuses such a pattern
with a message naming the construct, for `check` to report at the pattern.

Patterns and texts go to RE2 as UTF-8 bytes: `.` and `(?i)` work on characters, and a
text holding a lone surrogate (valid JSON, invalid UTF-8) is searched, not an error.
"""

from __future__ import annotations

from collections.abc import Callable

import re2

Search = Callable[[str], bool]

# RE2 reports the fragment it stopped at; these name what the author wrote.
_UNSUPPORTED: tuple[tuple[str, str], ...] = (
    ("(?=", "look-ahead (?=...)"),
    ("(?!", "negative look-ahead (?!...)"),
    ("(?<=", "look-behind (?<=...)"),
    ("(?<!", "negative look-behind (?<!...)"),
    ("(?>", "atomic group (?>...)"),
    ("(?(", "conditional group (?(...)...)"),
    ("(?#", "comment group (?#...)"),
    ("(?P=", "back-reference (?P=name)"),
    ("(?x", "verbose flag (?x)"),
    ("\\k", "back-reference \\k<name>"),
    ("\\Z", "\\Z (write \\z for the end of the text)"),
    ("\\G", "\\G"),
    ("++", "possessive quantifier ++"),
    ("*+", "possessive quantifier *+"),
    ("?+", "possessive quantifier ?+"),
)


class RegexError(ValueError):
    """A pattern RE2 cannot run; the message names the problem, not the pattern."""


def _options() -> re2.Options:
    options = re2.Options()
    options.log_errors = False  # RE2 would print every refused pattern to stderr
    return options


def compile_search(pattern: str) -> Search:
    """A predicate: does `pattern` occur anywhere in a text (as `re.search` would)?

    Raises `RegexError` for a pattern RE2 cannot compile.
    """
    try:
        encoded = pattern.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise RegexError("the pattern is not valid Unicode text") from exc
    try:
        compiled = re2.compile(encoded, options=_options())
    except re2.error as exc:
        raise RegexError(_describe(pattern, exc)) from None
    search = compiled.search

    def occurs_in(text: str) -> bool:
        return search(text.encode("utf-8", "surrogatepass")) is not None

    return occurs_in


def _describe(pattern: str, exc: re2.error) -> str:
    detail = exc.args[0] if exc.args else b""
    reason = detail.decode("utf-8", "replace") if isinstance(detail, bytes) else str(detail)
    if reason.startswith("invalid escape sequence: \\") and reason[-1:].isdigit():
        construct = f"back-reference {reason.rsplit(' ', 1)[-1]}"
    else:
        fragment = reason.rsplit(": ", 1)[-1]
        construct = next(
            (
                name
                for prefix, name in _UNSUPPORTED
                if fragment.startswith(prefix) and prefix in pattern
            ),
            "",
        )
        if fragment == "(?P" and "(?P=" in pattern:
            construct = "back-reference (?P=name)"
    if construct:
        return f"{construct} is not supported (regex conditions use RE2, which runs in linear time)"
    return reason
