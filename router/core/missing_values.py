"""What a template gets for a value the call lacks, and the count of those it printed.

A call may lack any optional field, and what it holds under `variables`, `metrics` or a
transcript entry has no fixed shape. A template naming such a value (`{{
variables.customer_tier }}` on a call without variables, `{{ transcript[0].content }}`
on a call without a transcript, a name the call does not have) gets a `MissingValue`:

- printed, it is empty text; a JSON template prints it as `""` inside a string and as
  `null` where a whole value stands (`router.core.json_printing`), and `tojson` gives
  `null`;
- every operation on it gives it back (an attribute, an item, a call, arithmetic, an
  ordering), so `variables.customer_tier.name | upper` is missing too, not an error;
- it is false, empty and equal to nothing but another missing value, so `{% if %}`,
  `default(...)`, `or` and `is defined` see it as absent (and do not count it).

A field the call has as `null` is not missing: it is `None`, printed empty as before.

Each missing value printed is noted in the tally of the render under way, if one is
open (`tallied`): the delivery engine counts them per sink, `check` names them. An
attribute the sandbox refuses (`__class__`), or any missing `__name__`, is no missing
value: using it still fails.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, NoReturn

import jinja2


class MissingValue(jinja2.Undefined):
    """A value a template named that the call lacks (see the module's docstring)."""

    __slots__ = ()

    def _usable(self) -> bool:
        # A refused attribute (the sandbox's SecurityError), or a missing one that names
        # Python's internals (`''.format.__self__`), keeps failing.
        name = self._undefined_name
        internal = isinstance(name, str) and name.startswith("__")
        return self._undefined_exception is jinja2.UndefinedError and not internal

    def _same(self, *args: Any, **kwargs: Any) -> MissingValue:
        if not self._usable():
            self._fail_with_undefined_error()
        return self

    def __getattr__(self, name: str) -> MissingValue:
        if name[:2] == "__" and name[-2:] == "__":
            raise AttributeError(name)
        return self._same()

    # Jinja's Undefined types these as failing (Never); a missing value gives itself back.
    __getitem__ = __call__ = _same  # type: ignore[assignment]
    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _same  # type: ignore[assignment]
    __truediv__ = __rtruediv__ = __floordiv__ = __rfloordiv__ = _same  # type: ignore[assignment]
    __mod__ = __rmod__ = __pow__ = __rpow__ = __pos__ = __neg__ = _same  # type: ignore[assignment]
    __lt__ = __le__ = __gt__ = __ge__ = _same  # type: ignore[assignment]
    __round__ = __abs__ = __trunc__ = __floor__ = __ceil__ = _same

    def _not_a_number(self) -> NoReturn:
        # A TypeError: the `int` and `float` filters then give their default.
        raise TypeError("a missing value is not a number")

    __int__ = __float__ = __complex__ = _not_a_number

    def __str__(self) -> str:
        if not self._usable():
            self._fail_with_undefined_error()
        note_printed(self)
        return ""

    def __html__(self) -> str:
        return str(self)

    def __repr__(self) -> str:
        return "MissingValue"


def missing_name(value: MissingValue) -> str | None:
    """The name or key that was missing (`customer_tier` for `variables.customer_tier`,
    `0` for `transcript[0]`), None for Jinja's own empty values (an inline `if` without
    `else`), which are no missing value."""
    name = value._undefined_name
    if isinstance(name, slice):
        return f"[{_bound(name.start)}:{_bound(name.stop)}]"
    return None if name is None else str(name)


def _bound(value: Any) -> str:
    return "" if value is None else str(value)


class MissingValues:
    """The missing values one render (or a delivery's renders) printed, by name."""

    __slots__ = ("names", "noted_elsewhere")

    def __init__(self) -> None:
        self.names: Counter[str] = Counter()
        self.noted_elsewhere = 0  # counted by a render in another process

    @property
    def count(self) -> int:
        return self.names.total() + self.noted_elsewhere


_TALLY: ContextVar[MissingValues | None] = ContextVar("template_missing_values", default=None)


@contextmanager
def tallied() -> Iterator[MissingValues]:
    """Count the missing values the templates rendered inside the block print (renders in
    a thread started with `asyncio.to_thread` count too: it copies the context)."""
    tally = MissingValues()
    token = _TALLY.set(tally)
    try:
        yield tally
    finally:
        _TALLY.reset(token)


def note_printed(value: MissingValue) -> None:
    name = missing_name(value)
    tally = _TALLY.get()
    if name is not None and tally is not None:
        tally.names[name] += 1


def note_elsewhere(count: int) -> None:
    """Add `count` missing values printed by a render in another process."""
    tally = _TALLY.get()
    if tally is not None and count:
        tally.noted_elsewhere += count


def printed_as_none(value: Any) -> Any:
    """`value`, or None (noted as printed) when it is a missing value: how JSON prints one.
    Jinja's own empty values come back as they are."""
    if isinstance(value, MissingValue) and missing_name(value) is not None:
        if not value._usable():
            value._fail_with_undefined_error()
        note_printed(value)
        return None
    return value


def json_default(value: Any) -> Any:
    """`default` for `json.dumps` in templates: a missing value (or Jinja's empty one) is
    `null`; anything else its text."""
    if isinstance(value, jinja2.Undefined):
        printed_as_none(value)
        return None
    return str(value)
