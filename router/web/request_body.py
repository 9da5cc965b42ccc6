"""Request bodies, for every route, under the webhook's limits: at most `MAX_BODY_BYTES`
(else 413), complete within the body deadline (`ROUTER_BODY_TIMEOUT`, else 408), and
given up with a 408 when the connection has to make room at the connection cap
(`router.web.connections`); and their text decoded strictly: a body that is not valid in
its charset (UTF-8 unless the `Content-Type` names another), or that names a charset
Python does not know, is a 400, never a 500.

A handler checks the request's credential first (or that its endpoint is configured at
all), then reads the body with `read_body`, `read_text` or `read_form`, never with
aiohttp's `request.read()`, `text()`, `json()` or `post()`: those have no deadline and
answer 500 to a byte they cannot decode. A refusal is a `BodyRefused`; the
`answer_refusals` middleware turns it into a JSON answer, the console into a page.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import parse_qsl

import orjson
from aiohttp import hdrs, web
from multidict import MultiDict, MultiDictProxy

from router.engine.intake import MAX_BODY_BYTES
from router.web.connections import GuardedHandler

FORM_TYPE = "application/x-www-form-urlencoded"
_BODY = web.RequestKey("request_body", bytes)  # the body once read, kept on the request


@dataclass(frozen=True)
class BodyLimits:
    timeout: float = 30.0  # seconds from the start of reading to the whole body
    max_bytes: int = MAX_BODY_BYTES


BODY_LIMITS = web.AppKey("body_limits", BodyLimits)


class BodyRefused(Exception):
    """A body the router will not take: the status to answer, a short reason (the
    webhook's metric label) and a message naming the problem."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message

    @property
    def closes_connection(self) -> bool:
        """A body that did not come in time leaves the connection in the middle of a
        request: it is closed after the answer."""
        return self.status == 408


def _limits_of(request: web.Request) -> BodyLimits:
    return request.config_dict.get(BODY_LIMITS) or BodyLimits()


async def read_body(request: web.Request, limits: BodyLimits | None = None) -> bytes:
    """The whole body (read once, then kept on the request), or `BodyRefused`: 413 when
    it is larger than `limits.max_bytes`, 408 when it has not come within
    `limits.timeout` or the connection had to make room for a newcomer. `limits`:
    the application's (`BODY_LIMITS`) unless given."""
    cached = request.get(_BODY)
    if cached is not None:
        return cached
    limits = limits or _limits_of(request)
    if request.content_length is not None and request.content_length > limits.max_bytes:
        raise _too_large(limits)
    if request.content.is_eof():
        # All of it came with the head (a webhook's few KB, most of the time): taken from
        # the buffer, with no deadline to arm (a timer per request) and no chunk loop.
        body = request.content.read_nowait()
        if len(body) > limits.max_bytes:
            raise _too_large(limits)
        request[_BODY] = body
        return body
    protocol = request.protocol if isinstance(request.protocol, GuardedHandler) else None
    loop = asyncio.get_running_loop()
    gave_way = False
    chunks, size = [], 0
    try:
        async with asyncio.timeout(limits.timeout) as deadline:

            def give_up() -> None:
                nonlocal gave_way
                gave_way = True
                deadline.reschedule(loop.time())

            if protocol is not None:
                protocol.waiting_for_body(give_up)
            try:
                async for chunk in request.content.iter_chunked(64 * 1024):
                    size += len(chunk)
                    if size > limits.max_bytes:
                        raise _too_large(limits)
                    chunks.append(chunk)
            finally:
                if protocol is not None:
                    protocol.body_received()
    except TimeoutError:
        if protocol is not None:
            protocol.close_after_answer()
        if gave_way:
            raise BodyRefused(
                408,
                "body_timeout",
                "request body not received in time: the server is at its connection limit",
            ) from None
        raise BodyRefused(
            408, "body_timeout", f"request body not received within {limits.timeout:g} seconds"
        ) from None
    body = b"".join(chunks)
    request[_BODY] = body
    return body


def _too_large(limits: BodyLimits) -> BodyRefused:
    return BodyRefused(413, "too_large", f"body larger than {limits.max_bytes} bytes")


def _charset(request: web.Request) -> str:
    return request.charset or "utf-8"


def _decoded(body: bytes, charset: str) -> str:
    named = repr(charset[:40])
    try:
        return body.decode(charset)
    except LookupError:
        raise BodyRefused(
            400, "unknown_charset", f"the Content-Type names an unknown charset: {named}"
        ) from None
    except UnicodeDecodeError as exc:
        raise BodyRefused(
            400, "not_text", f"the body is not valid {named} text (byte {exc.start})"
        ) from None


async def read_text(request: web.Request) -> str:
    """The body as text, in the charset its `Content-Type` names (UTF-8 when none): a
    JSON body, for example. `BodyRefused` (400) when it is not valid in that charset or
    the charset is unknown; as `read_body` otherwise."""
    return _decoded(await read_body(request), _charset(request))


async def read_form(request: web.Request) -> MultiDictProxy[str]:
    """An HTML form's fields (`application/x-www-form-urlencoded`, as browsers send
    them; a request without a `Content-Type` is read as one). The body must be valid
    text in its charset (400 otherwise); percent-escapes that are not valid UTF-8
    become U+FFFD, as browsers read them. Any other type of body is a 415."""
    if hdrs.CONTENT_TYPE in request.headers and request.content_type != FORM_TYPE:
        raise BodyRefused(
            415,
            "not_a_form",
            f"expected Content-Type: {FORM_TYPE}, got {request.content_type[:80]!r}",
        )
    charset = _charset(request)
    text = _decoded(await read_body(request), charset).rstrip()
    try:
        fields = parse_qsl(text, keep_blank_values=True, encoding=charset, errors="replace")
    except (LookupError, ValueError) as exc:  # parse_qsl's own charset check
        raise BodyRefused(400, "bad_form", f"the form cannot be read: {exc}") from None
    return MultiDictProxy(MultiDict(fields))


def refusal_answer(refused: BodyRefused) -> web.Response:
    """A refusal as a JSON answer (the webhook's and the admin API's shape)."""
    answer = web.Response(
        body=orjson.dumps({"error": refused.message}),
        status=refused.status,
        content_type="application/json",
    )
    if refused.closes_connection:
        answer.force_close()
    return answer


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def answer_refusals(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A `BodyRefused` a handler let through becomes its JSON answer."""
    try:
        return await handler(request)
    except BodyRefused as refused:
        return refusal_answer(refused)
