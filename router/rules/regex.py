"""Regular expressions for `regex` conditions, run by RE2 in time linear in the text.

Python's `re` backtracks: `(?i)voicemail.*full` over an 80 KB summary takes seconds
and its cost grows with the square of the length. RE2 (`google-re2`) never backtracks,
so it has no back-references or look-around; `compile_search` refuses such a pattern
with a message naming the construct, for `check` to report at the pattern.

Patterns and texts go to RE2 as UTF-8 bytes: `.` and `(?i)` work on characters, and a
text holding a lone surrogate (valid JSON, invalid UTF-8) is searched, not an error.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

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


SearchMany = Callable[[str], "list[int] | None"]


def compile_search_set(patterns: Sequence[str], *, literal: bool = False) -> SearchMany:
    """One pass over a text for many patterns: the positions (in `patterns`) of those
    that occur in it, in no particular order, or None when RE2 could not answer.

    Each pattern means what `compile_search` makes of it (or, with `literal`, the text
    itself, found as `in` finds a substring). RE2's set search cannot fall back when its
    DFA runs out of memory, so an empty pattern, which occurs in every text, is searched
    first: when it is not among the results, the answer is None and the caller tests
    each pattern alone. Raises `RegexError` when the patterns cannot be run together.
    """
    options = _options()
    if literal:
        # Latin-1 over the UTF-8 bytes: a byte-for-byte search, which finds exactly the
        # substrings (UTF-8 is self-synchronising), lone surrogates included.
        options.literal = True
        options.encoding = re2.Options.Encoding.LATIN1
    searcher = re2.Set.SearchSet(options)
    try:
        searcher.Add(b"")
        for pattern in patterns:
            searcher.Add(pattern.encode("utf-8", "surrogatepass" if literal else "strict"))
        searcher.Compile()
    except (re2.error, UnicodeEncodeError) as exc:
        raise RegexError("the patterns cannot be searched together") from exc
    match = searcher.Match

    def occurring(text: str) -> list[int] | None:
        found = match(text.encode("utf-8", "surrogatepass"))
        if not found or 0 not in found:
            return None
        return [position - 1 for position in found if position]

    return occurring
