"""Bounds on rendering a rules.yaml template (DESIGN.md section 6: "Rendering is bounded
(time and output size), at check and at send"): the Jinja2 sandbox that `router.core.templates`
compiles every template with.

A render gets `RENDER_SECONDS` of time and `OUTPUT_CHARS` of output. Going past either,
or asking one operation for more than `OUTPUT_CHARS` at once, raises `RenderLimitExceeded`
naming the bound, which `router.core.templates` reports as a template error: a `check` error,
and a permanent delivery failure at send.

- Time: a deadline (set by `start_render` for one render) is checked where a template
  can repeat work: every few iterations of each `{% for %}` loop (its iterable is wrapped
  for it), every call (macros, `loop()` of a recursive loop, methods), every filter that
  is not merely structural and every intercepted operator. Straight-line code between
  them is as long as the template's text.
- Size: output is counted as it is joined (the template's, and every captured block's,
  macro's and `{% filter %}`'s); a value printed, concatenated with `~` or given to a
  filter that turns it into text is measured first (its printed size is estimated, and
  the count stops once past the bound, so a list holding one long text many times costs
  no more than the bound). Repetition (`*`), powers, `%` and `format()` widths, padding
  methods (`center`, `ljust`, `zfill`…), `replace`, `join`, `translate`, `batch`,
  `slice`, `indent` and `lipsum` are checked before they run: a single C-level operation
  cannot be stopped by a deadline.
- Intercepting `*`, `**`, `%` and `+` also keeps Jinja from folding constant expressions
  at compile time, so `{{ 'a' * 3000000000 }}` costs nothing to compile (a `check` or a
  reload would otherwise build the text while compiling).
"""

from __future__ import annotations

import functools
import re
import time
import types
from collections import deque
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from contextvars import ContextVar, Token
from dataclasses import fields, is_dataclass
from string import Formatter
from typing import Any, cast

from jinja2 import nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import Namespace, _PassArg, generate_lorem_ipsum
from markupsafe import Markup

OUTPUT_CHARS = 4 * 1024 * 1024  # a whole 1 MiB call as JSON, escaped, fits several times
RENDER_SECONDS = 1.0  # real alerts render in well under a millisecond
INT_BITS = 65_536  # about 19,700 digits (Python prints at most 4,300 anyway)
_LOOP_CHECK_EVERY = 16  # iterations between two looks at the clock


class RenderLimitExceeded(Exception):
    """A render went past one of the bounds; the message names it."""


class _Budget:
    __slots__ = ("context", "deadline", "seconds", "trusted")

    def __init__(self, seconds: float, context: Mapping[str, Any] | None) -> None:
        self.seconds = seconds
        self.deadline = time.monotonic() + seconds
        self.context = context
        self.trusted: frozenset[int] | None = None

    def trusts(self, value: Any) -> bool:
        """Whether `value` is one of the call's own objects (`event` and the lists and
        mappings at its top): decoded from JSON, so nothing in them is shared or repeated,
        and what they print is as long as the call is. Measuring them is left out."""
        if self.trusted is None:
            event = None if self.context is None else self.context.get("event")
            containers = event.values() if isinstance(event, dict) else ()
            self.trusted = frozenset(
                [id(event), *(id(item) for item in containers if type(item) in (dict, list))]
            )
        return id(value) in self.trusted


_BUDGET: ContextVar[_Budget | None] = ContextVar("template_render_budget", default=None)


def start_render(
    context: Mapping[str, Any] | None = None, seconds: float | None = None
) -> Token[_Budget | None]:
    """Start the time bound of one render of `context` (size bounds always hold); give
    the token back to `end_render` when it is over."""
    budget = _Budget(RENDER_SECONDS if seconds is None else seconds, context)
    return _BUDGET.set(budget)


def end_render(token: Token[_Budget | None]) -> None:
    _BUDGET.reset(token)


def _out_of_time(budget: _Budget) -> RenderLimitExceeded:
    return RenderLimitExceeded(
        f"rendering took longer than the {budget.seconds:g} s a template may take"
    )


def tick() -> None:
    """Raise `RenderLimitExceeded` when the current render is past its deadline."""
    budget = _BUDGET.get()
    if budget is not None and time.monotonic() > budget.deadline:
        raise _out_of_time(budget)


def _too_large(what: str) -> RenderLimitExceeded:
    return RenderLimitExceeded(
        f"{what} would make more than {OUTPUT_CHARS:,} characters, the size a template's"
        " output may have"
    )


# -- measuring what a value prints as --------------------------------------------------


_COLLECTIONS: tuple[type[Collection[Any]], ...] = (
    list,
    tuple,
    set,
    frozenset,
    deque,
    type({}.keys()),
    type({}.values()),
    type({}.items()),
)


def measure(value: Any, limit: int = OUTPUT_CHARS) -> int:
    """About how many characters `value` prints as (str() or JSON), counted until past
    `limit`: the work is bounded by `limit` whatever the value shares or repeats."""
    if isinstance(value, str | bytes):
        return len(value)
    total = 0
    stack = [value]
    pop, extend = stack.pop, stack.extend
    while stack:
        item = pop()
        kind = type(item)
        if kind is str:  # the common kinds first, by type: this runs on calls' data
            total += len(item) + 2
        elif kind is dict:
            total += 2 + 4 * len(item)
            if total <= limit:
                extend(item.keys())
                extend(item.values())
        elif kind is list or kind is tuple:
            total += 2 + 2 * len(item)
            if total <= limit:
                extend(item)
        elif kind in _SHORT:
            total += 8
        else:
            total += _measure_other(item, stack)
        if total > limit:
            return total
    return total


_SHORT = frozenset({int, float, bool, type(None)})


def _measure_other(item: Any, stack: list[Any]) -> int:
    """The size of a value of a less common kind; what it holds goes on `stack`."""
    if isinstance(item, str | bytes | bytearray):
        return len(item) + 2
    if isinstance(item, int):
        return item.bit_length() // 3 + 1
    if isinstance(item, Mapping):
        stack.extend(item.keys())
        stack.extend(item.values())
        return 2 + 4 * len(item)
    if isinstance(item, _COLLECTIONS):
        stack.extend(item)
        return 2 + 2 * len(item)
    if isinstance(item, Namespace):
        stack.append(dict(item._Namespace__attrs))
        return 0
    if is_dataclass(item) and not isinstance(item, type):
        stack.extend(getattr(item, field.name) for field in fields(item))
        return 2
    return 24  # floats, dates, undefined values, functions: short


# Values short enough to print whatever they hold (an int past `INT_BITS` cannot be made).
_SCALARS = frozenset({str, Markup, int, float, bool, type(None)})


def check_size(value: Any, what: str) -> None:
    """Refuse a value (other than text, taken as it is, and the call's own data) that
    prints past `OUTPUT_CHARS`."""
    if type(value) in _SCALARS or isinstance(value, str):
        return
    budget = _BUDGET.get()
    if budget is not None and budget.trusts(value):
        return
    if measure(value) > OUTPUT_CHARS:
        raise _too_large(what)


def _check_chars(count: Any, what: str) -> None:
    if isinstance(count, int) and count > OUTPUT_CHARS:
        raise _too_large(what)


def bounded_concat(parts: Iterable[str], limit: int = OUTPUT_CHARS) -> str:
    """`"".join(parts)`, refused once the text passes `limit`."""
    pieces: list[str] = []
    append = pieces.append
    size = 0
    for piece in parts:
        size += len(piece)
        if size > limit:
            raise _too_large("the template's output")
        append(piece)
    return "".join(pieces)


def check_output(text: str) -> None:
    """Refuse a finished output past `OUTPUT_CHARS` (a JSON template's, whose values are
    written twice while it renders: see `BoundedSandbox`)."""
    if len(text) > OUTPUT_CHARS:
        raise _too_large("the template's output")


# -- operators ----------------------------------------------------------------------------

_SEQUENCE = (str, bytes, list, tuple)
_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")


def _repeat(left: Any, right: Any) -> None:
    if isinstance(left, int) and isinstance(right, int):
        if left.bit_length() + right.bit_length() > INT_BITS:
            raise RenderLimitExceeded(f"a product would pass {INT_BITS:,} bits")
        return
    sequence, times = (left, right) if isinstance(right, int) else (right, left)
    if not (isinstance(sequence, _SEQUENCE) and isinstance(times, int) and times > 1):
        return
    if times > OUTPUT_CHARS or measure(sequence, OUTPUT_CHARS // times + 1) * times > (
        OUTPUT_CHARS
    ):
        raise _too_large(f"repeating a {type(sequence).__name__} {times:,} times")


def _power(left: Any, right: Any) -> None:
    if (
        isinstance(left, int)
        and isinstance(right, int)
        and right > 1
        and left not in (0, 1, -1)
        and left.bit_length() * right > INT_BITS
    ):
        raise RenderLimitExceeded(f"a power would pass {INT_BITS:,} bits")


def _percent(left: Any, right: Any) -> None:
    if not isinstance(left, str | bytes):
        return
    text = left if isinstance(left, str) else left.decode("latin-1")
    for match in _PERCENT_SPEC.finditer(text):
        for number in match.groups():
            if number == "*":
                raise RenderLimitExceeded(
                    "a width or precision taken from the arguments (%*) is not allowed in"
                    " templates; write the number"
                )
            if number is not None and (len(number) > 9 or int(number) > OUTPUT_CHARS):
                raise _too_large(f"formatting to a width of {number}")
    check_size(right, "formatting with %")


def _add(left: Any, right: Any) -> None:
    both = isinstance(left, _SEQUENCE) and isinstance(right, _SEQUENCE)
    if both and measure(left) + measure(right) > OUTPUT_CHARS:
        raise _too_large(f"adding two {type(left).__name__}s")


_BINOP_CHECKS: dict[str, Callable[[Any, Any], None]] = {
    "*": _repeat,
    "**": _power,
    "%": _percent,
    "+": _add,
}


# -- calls ---------------------------------------------------------------------------------


def _check_format(text: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    try:
        parsed = list(Formatter().parse(text))
    except ValueError:
        return  # str.format itself says what is wrong
    for _literal, _field, spec, _conversion in parsed:
        if not spec:
            continue
        if "{" in spec:
            raise RenderLimitExceeded(
                "a format spec taken from the arguments ({:{}}) is not allowed in templates;"
                " write the width"
            )
        for number in re.findall(r"\d+", spec):
            if len(number) > 9 or int(number) > OUTPUT_CHARS:
                raise _too_large(f"formatting to a width of {number}")
    check_size([args, dict(kwargs)], "format()")


def _padding(text: str | bytes, width: Any = 0, *_: Any) -> None:
    _check_chars(width, f"padding to a width of {width}")


def _expandtabs(text: str | bytes, tabsize: Any = 8) -> None:
    if isinstance(tabsize, int) and tabsize > 1:
        _check_chars(len(text) * tabsize, f"expanding tabs to {tabsize}")


def _replace(text: str | bytes, old: Any = "", new: Any = "", count: Any = -1) -> None:
    if not isinstance(old, str | bytes) or not isinstance(new, str | bytes):
        return
    grows = len(new) - len(old)
    if grows <= 0:
        return
    places = len(text) + 1 if not old else text.count(old)  # type: ignore[arg-type]
    if isinstance(count, int) and count >= 0:
        places = min(places, count)
    _check_chars(len(text) + places * grows, "replacing")


def _join(separator: str | bytes, items: Any = ()) -> None:
    _check_chars(len(separator) * len(items), "joining")
    check_size(items, "joining")


def _translate(text: str | bytes, table: Any = None, *_: Any) -> None:
    if isinstance(table, Mapping):
        longest = max((measure(value) for value in table.values()), default=0)
        _check_chars(len(text) * longest, "translating")


_STRING_METHOD_CHECKS: dict[str, Callable[..., None]] = {
    "center": _padding,
    "ljust": _padding,
    "rjust": _padding,
    "zfill": _padding,
    "expandtabs": _expandtabs,
    "replace": _replace,
    "join": _join,
    "translate": _translate,
}


def _lipsum(n: Any = 5, html: Any = True, min: Any = 20, max: Any = 100) -> None:
    if isinstance(n, int) and isinstance(max, int):
        _check_chars(n * max * 12, f"lipsum({n}, max={max})")


# -- filters -------------------------------------------------------------------------------

# Filters that never turn their input into text nor make it larger: not wrapped (`list`,
# `sum` and `length` of a digest's calls must work however large the digest).
_STRUCTURAL_FILTERS = frozenset(
    {
        "abs", "attr", "count", "d", "default", "dictsort", "first", "float", "groupby",
        "int", "items", "last", "length", "list", "map", "max", "min", "random", "reject",
        "rejectattr", "reverse", "round", "safe", "select", "selectattr", "sort", "sum",
        "unique", "filesizeformat", "wordcount",
    }
)  # fmt: skip


def _collected(items: Any, what: str) -> list[Any]:
    """`items` as a list, measured item by item (a generator is never kept whole past the
    bound)."""
    collected: list[Any] = []
    total = 0
    for item in items:
        total += measure(item, OUTPUT_CHARS - total) + 2
        if total > OUTPUT_CHARS:
            raise _too_large(what)
        collected.append(item)
    return collected


def _batch(what: str, value: Any, linecount: Any = 1, fill_with: Any = None) -> Any:
    if fill_with is not None:
        _check_chars(linecount, f"batch({linecount}) with a fill")
    return value


def _slice(what: str, value: Any, slices: Any = 1, fill_with: Any = None) -> Any:
    _check_chars(slices, f"slice({slices})")
    return value


def _center(what: str, value: Any, width: Any = 80) -> Any:
    check_size(value, what)
    _check_chars(width, f"centring in a width of {width}")
    return value


def _indent(what: str, value: Any, width: Any = 4, first: Any = False, blank: Any = False) -> Any:
    check_size(value, what)
    text = str(value)
    step = len(width) if isinstance(width, str) else width
    if isinstance(step, int):
        _check_chars(len(text) + step * (text.count("\n") + 1), f"indenting by {width!r}")
    return value


def _format(what: str, value: Any, *args: Any, **kwargs: Any) -> Any:
    check_size(value, what)
    _percent(str(value), kwargs or args)
    return value


def _replace_filter(what: str, value: Any, old: Any, new: Any, count: Any = None) -> Any:
    check_size(value, what)
    _replace(str(value), old, new, -1 if count is None else count)
    return value


def _join_filter(what: str, value: Any, d: Any = "", attribute: Any = None) -> Any:
    # With an attribute, only that attribute of each item is printed (a digest's calls
    # joined by id): the items themselves may be large.
    if isinstance(value, str):
        items: Any = value
    else:
        items = _collected(value, what) if attribute is None else list(value)
    if isinstance(d, str):
        _check_chars(len(d) * len(items), what)
    return items


_FILTER_CHECKS: dict[str, Callable[..., Any]] = {
    "batch": _batch,
    "slice": _slice,
    "center": _center,
    "indent": _indent,
    "format": _format,
    "replace": _replace_filter,
    "join": _join_filter,
}


def _guarded_filter(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    """`function` with its input measured (text is taken as it is) and its arguments
    checked before it runs; Jinja's pass_context / pass_environment marks are kept."""
    skip = 0 if _PassArg.from_obj(function) is None else 1
    what = f"the {name} filter"
    check = _FILTER_CHECKS.get(name)

    @functools.wraps(function)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        budget = _BUDGET.get()
        if budget is not None and time.monotonic() > budget.deadline:
            raise _out_of_time(budget)
        if len(args) > skip:
            value = args[skip]
            if check is not None:
                value = check(what, *args[skip:], **kwargs)
                if value is not args[skip]:
                    args = (*args[:skip], value, *args[skip + 1 :])
            elif (
                type(value) not in _SCALARS
                and not isinstance(value, str)
                and not (budget is not None and budget.trusts(value))
                and measure(value) > OUTPUT_CHARS
            ):
                raise _too_large(what)
        return function(*args, **kwargs)

    return guarded


# -- loops and `~` -------------------------------------------------------------------------

LOOP_FILTER = "_bounded_loop"
PRINTABLE_FILTER = "_measured"


class _PacedIterable:
    """An iterable of a `{% for %}` loop, looking at the clock every few items."""

    __slots__ = ("items",)

    def __init__(self, items: Any) -> None:
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[Any]:
        budget = _BUDGET.get()
        if budget is None:
            yield from self.items
            return
        deadline = budget.deadline
        for index, item in enumerate(self.items):
            if not index % _LOOP_CHECK_EVERY and time.monotonic() > deadline:
                raise _out_of_time(budget)
            yield item


def _measured(value: Any) -> Any:
    if measure(value) > OUTPUT_CHARS:  # text too: `~` in a loop doubles it each time
        raise _too_large("text made with ~")
    return value


class _BoundedCodeGenerator(CodeGenerator):
    """Jinja's code generator, after wrapping each loop's iterable (`_PacedIterable`) and
    each operand of `~` (measured before it becomes text) in a filter of the sandbox's;
    slices go through the sandbox's `getitem`."""

    def visit_Template(self, node: nodes.Template, frame: Frame | None = None) -> None:
        for loop in node.find_all(nodes.For):
            loop.iter = nodes.Filter(
                loop.iter, LOOP_FILTER, [], [], None, None, lineno=loop.iter.lineno
            )
        for concat in node.find_all(nodes.Concat):
            concat.nodes = [
                nodes.Filter(part, PRINTABLE_FILTER, [], [], None, None, lineno=part.lineno)
                for part in concat.nodes
            ]
        super().visit_Template(node, frame)

    def visit_Getitem(self, node: nodes.Getitem, frame: Frame) -> None:
        # Jinja subscripts a slice (`endedAt[:10]`) directly, so slicing a null would fail
        # where any other subscript gives a missing value: a slice goes through the
        # sandbox's `getitem` like the rest.
        if not isinstance(node.arg, nodes.Slice):
            super().visit_Getitem(node, frame)
            return
        self.write("environment.getitem(")
        self.visit(node.node, frame)
        self.write(", slice(")
        for index, part in enumerate((node.arg.start, node.arg.stop, node.arg.step)):
            self.write(", " if index else "")
            if part is None:
                self.write("None")
            else:
                self.visit(part, frame)
        self.write("))")


_METHODS = (types.MethodType, types.BuiltinMethodType)
_FORMAT_METHODS = ("format", "format_map")


class BoundedSandbox(ImmutableSandboxedEnvironment):
    """Jinja2's immutable sandbox with the bounds of this module. Call `guard_filters()`
    once every filter is registered.

    `output_factor`: how much longer than its finished output a template's rendered text
    may be. A JSON template's finalizer writes each value twice, escaped once more for a
    string (router.core.json_printing), and its output is checked again once placed
    (`check_output`)."""

    code_generator_class = _BoundedCodeGenerator
    intercepted_binops = frozenset(_BINOP_CHECKS)
    concat = staticmethod(bounded_concat)

    def __init__(self, *, output_factor: int = 1, **options: Any) -> None:
        finalize = options.pop("finalize", None)
        super().__init__(finalize=self._finalizer(finalize), **options)
        self._lipsum = self.globals.get("lipsum", generate_lorem_ipsum)
        if output_factor != 1:
            limit = OUTPUT_CHARS * output_factor
            self.concat = functools.partial(bounded_concat, limit=limit)

    @staticmethod
    def _finalizer(finalize: Callable[[Any], Any] | None) -> Callable[[Any], Any]:
        """`finalize` (what every `{{ }}` value goes through) measuring the value first."""
        then = finalize or (lambda value: value)

        def measured(value: Any) -> Any:
            if type(value) not in _SCALARS:
                check_size(value, "a printed value")
            return then(value)

        return measured

    def guard_filters(self) -> None:
        for name, function in list(self.filters.items()):
            if name not in _STRUCTURAL_FILTERS:
                self.filters[name] = _guarded_filter(name, function)
        self.filters[LOOP_FILTER] = _PacedIterable
        self.filters[PRINTABLE_FILTER] = _measured

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        tick()
        _BINOP_CHECKS[operator](left, right)
        return super().call_binop(context, operator, left, right)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        # Called on every attribute a template reads: the base class's own first test,
        # so that the common case costs no more than it did.
        if not isinstance(value, _METHODS) or value.__name__ not in _FORMAT_METHODS:
            return None
        wrapper = super().wrap_str_format(value)
        if wrapper is None:
            return None
        text = cast(str, value.__self__)  # the base class wraps only a str's methods
        is_map = value.__name__ == "format_map"

        def checked(*args: Any, **kwargs: Any) -> str:
            tick()
            if is_map and len(args) == 1 and isinstance(args[0], Mapping):
                _check_format(text, (), args[0])
            else:
                _check_format(text, args, kwargs)
            return wrapper(*args, **kwargs)

        return functools.update_wrapper(checked, value)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        tick()
        owner = getattr(__obj, "__self__", None)
        if isinstance(owner, str | bytes):
            check = _STRING_METHOD_CHECKS.get(getattr(__obj, "__name__", ""))
            if check is not None:
                if check is _join and args and not isinstance(args[0], list | tuple | str):
                    args = (_collected(args[0], "joining"), *args[1:])
                check(owner, *args, **kwargs)
        elif __obj is __self._lipsum:
            _lipsum(*args, **kwargs)
        return super().call(__context, __obj, *args, **kwargs)
