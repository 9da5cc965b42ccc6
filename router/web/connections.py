"""The listening socket and what each connection may cost: a deadline for the request
head, an idle timeout between requests, a cap on open connections, and a shutdown that
finishes the requests it has started.

aiohttp (the request handler) only offers the idle timeout (`keepalive_timeout`). The
rest is here. `GuardedHandler` closes a connection whose first request head is not
complete within `header_timeout`, with a 408. `GuardedSite` accepts connections itself
and holds at most `max_connections` open. A connection is *waiting* while the server
waits for its client: for its first request head, or for a request body being read
(`router.web.request_body`, whose deadline is `ROUTER_BODY_TIMEOUT`). When a client arrives
at the cap, the connection that has been waiting longest, if more than `EVICTION_GRACE`,
gives way with a 408 (silent and byte-at-a-time clients cannot crowd out real ones);
while there is none, the newcomer waits for a free slot, and those after it wait in the
kernel's backlog rather than being refused (RevRing does not retry).

On shutdown, `GuardedSite.finish_requests` stops accepting, closes the connections that
have no request under way, and gives the requests in progress (head received, body
still arriving, or being handled) `shutdown_grace` seconds to be answered before it
closes what is left and logs it: aiohttp's own shutdown stops reading from every
connection at once, which would drop a body half received.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import resource
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

log = logging.getLogger("router.web.connections")

_HEAD_TIMEOUT_BODY = b'{"error": "request head not received in time"}'
HEAD_TIMEOUT_ANSWER = (
    b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Type: application/json\r\n"
    b"Content-Length: %d\r\n\r\n%s" % (len(_HEAD_TIMEOUT_BODY), _HEAD_TIMEOUT_BODY)
)
_ACCEPT_PAUSE_ON_FD_EXHAUSTION = 0.5  # seconds: closing connections may free descriptors
_FD_EXHAUSTED = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}
EVICTION_GRACE = 1.0  # seconds: a real client sends its request head in milliseconds
LISTEN_BACKLOG = 1024  # connections the kernel holds until they are accepted


def default_max_connections(ceiling: int = 1000) -> int:
    """1000, or half the open-file limit when that is lower: the other half is for the
    store, the sinks' connections and the logs, which must not fail for lack of one."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return ceiling
    return max(min(ceiling, soft // 2), 1)


@dataclass(frozen=True)
class ConnectionLimits:
    header_timeout: float = 10.0  # connect -> first request head complete
    idle_timeout: float = 30.0  # end of a response -> next request head complete
    max_connections: int = field(default_factory=default_max_connections)
    lingering_time: float = 2.0  # reading the unread rest of a refused body
    shutdown_grace: float = 5.0  # on SIGTERM, for the requests in progress to be answered

    def handler_kwargs(self) -> dict[str, Any]:
        """Settings for aiohttp's request handler (also given to `web.AppRunner`)."""
        return {"keepalive_timeout": self.idle_timeout, "lingering_time": self.lingering_time}


class GuardedHandler(web.RequestHandler):
    """aiohttp's request handler, plus the head deadline, what the connection is waiting
    for (see the module's docstring), the request in progress, and a call when it closes."""

    def __init__(
        self,
        manager: web.Server,
        *,
        loop: asyncio.AbstractEventLoop,
        header_timeout: float,
        on_wait: Callable[[GuardedHandler], None],
        on_wait_over: Callable[[GuardedHandler], None],
        on_close: Callable[[GuardedHandler], None],
        **kwargs: Any,
    ) -> None:
        super().__init__(manager, loop=loop, **kwargs)
        self._event_loop = loop
        self.created_at = loop.time()
        self.waiting_since = self.created_at  # while it waits for a head or a body
        self._header_timeout = header_timeout
        self._head_timer: asyncio.TimerHandle | None = None
        self._give_up_body: Callable[[], None] | None = None  # set while a body is read
        self._on_wait = on_wait
        self._on_wait_over = on_wait_over
        self._on_close: Callable[[GuardedHandler], None] | None = on_close
        self.current_request: web.BaseRequest | None = None  # in progress
        self._bytes_between_requests = False  # some of a next request head has come
        self.draining = False  # shutting down: close once the request in progress is answered
        self._close_after_answer = False
        self._lingering = False  # answered; aiohttp reads the unread rest of the body

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._head_timer = self._event_loop.call_later(self._header_timeout, self._head_overdue)

    def data_received(self, data: bytes) -> None:
        if self.current_request is None and data:
            self._bytes_between_requests = True
        super().data_received(data)

    def head_received(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
            self._on_wait_over(self)

    def give_way(self) -> None:
        """Close the connection, with a 408, for a newcomer: it is waiting for a request
        head or a body (the body's reader answers the 408, see `waiting_for_body`; the
        unread rest of an answered request's body is just dropped)."""
        if self._give_up_body is not None:
            give_up, self._give_up_body = self._give_up_body, None
            give_up()
            return
        self.head_received()
        self._head_overdue()

    def _head_overdue(self) -> None:
        self._head_timer = None
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.write(HEAD_TIMEOUT_ANSWER)
        self.force_close()

    # --- a body being read (router.web.request_body) ---

    def waiting_for_body(self, give_up: Callable[[], None]) -> None:
        """A handler waits for the request body; `give_up` makes it stop and answer 408
        when the connection has to give way."""
        self._give_up_body = give_up
        self.waiting_since = self._event_loop.time()
        self._on_wait(self)

    def body_received(self) -> None:
        """The body is read (or its reading ended otherwise)."""
        if self._give_up_body is not None:
            self._give_up_body = None
            self._on_wait_over(self)

    def close_after_answer(self) -> None:
        """Close as soon as the answer is written, without reading the rest of the body
        (aiohttp would linger for it): the client was too slow with it."""
        self._close_after_answer = True

    # --- the request in progress, for the shutdown ---

    def request_started(self, request: web.BaseRequest) -> None:
        self.body_received()  # a lingering wait, if any, is over
        self.current_request = request
        self._bytes_between_requests = False
        self._close_after_answer = False
        self._lingering = False

    def request_done(self, _: object = None) -> None:
        """The answer is written (the request's task is done)."""
        request, self.current_request = self.current_request, None
        if self.draining or self._close_after_answer:
            self.force_close()  # what was written is still sent: the transport flushes
        elif request is not None and not request.content.is_eof():
            # Answered without reading all of its body (a 401, a 404): aiohttp reads the
            # rest for up to `lingering_time`, a wait for the client like any other.
            self._lingering = True
            self.waiting_for_body(self.force_close)

    def drain(self) -> bool:
        """Shutting down: close the connection now when no request is under way (nor a
        request head arriving), else once its answer is written. Returns whether one is."""
        self.draining = True
        if self.current_request is not None or (
            self._bytes_between_requests and not self._lingering
        ):
            return True
        self.force_close()
        return False

    def describe_request(self) -> str:
        """What the connection was doing, for the log: method, path and how much of the
        body had come (no query string: it can hold a phone number)."""
        request = self.current_request
        if request is None:
            return "no request under way (bytes of a next request head had come)"
        received = request.content.total_bytes
        expected = request.content_length
        body = f"{received} of {expected}" if expected is not None else f"{received}"
        return f"{request.method} {request.path} (body: {body} bytes received)"

    def connection_lost(self, exc: BaseException | None) -> None:
        self.head_received()
        self.body_received()
        try:
            super().connection_lost(exc)
        finally:
            on_close, self._on_close = self._on_close, None
            if on_close is not None:
                on_close(self)


@web.middleware
async def track_requests(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """A request reached the application: its head is complete (the head deadline is off),
    and it is in progress until its answer is written. An answer given while shutting
    down closes the connection after it."""
    protocol = request.protocol
    if not isinstance(protocol, GuardedHandler):
        return await handler(request)
    protocol.head_received()
    protocol.request_started(request)
    task = asyncio.current_task()
    if task is not None:  # aiohttp runs each request in a task of its own
        task.add_done_callback(protocol.request_done)
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        if protocol.draining:
            exc.force_close()
        raise
    if protocol.draining:
        response.force_close()
    return response


def listening_sockets(host: str, port: int, backlog: int) -> list[socket.socket]:
    """Non-blocking sockets listening on every address `host` names (both `localhost`s,
    `0.0.0.0` and `::` for an empty host), as asyncio's `create_server` binds them."""
    addresses = socket.getaddrinfo(
        host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _, address in dict.fromkeys(addresses):
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
            sock.listen(backlog)
            sock.setblocking(False)
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


class GuardedSite(web.BaseSite):
    """A TCP site that holds every connection to `ConnectionLimits`."""

    def __init__(
        self,
        runner: web.AppRunner,
        host: str,
        port: int,
        limits: ConnectionLimits,
        *,
        backlog: int = LISTEN_BACKLOG,
        listeners: list[socket.socket] | None = None,
    ) -> None:
        super().__init__(runner, backlog=backlog)
        self._host, self._port, self._limits = host, port, limits
        # Sockets bound before the application started (`serve` binds first), or none:
        # `start` binds them.
        self._listeners: list[socket.socket] = list(listeners or ())
        self._accepting: list[asyncio.Task[None]] = []
        self._slots = asyncio.Semaphore(limits.max_connections)
        self._waiting: dict[GuardedHandler, None] = {}  # longest waiting first
        self._open: set[GuardedHandler] = set()
        self._all_closed: asyncio.Event | None = None  # set while finishing requests

    @property
    def name(self) -> str:
        return f"http://{self._host}:{self.port}"

    @property
    def port(self) -> int:
        if self._listeners:
            return int(self._listeners[0].getsockname()[1])
        return self._port

    async def start(self) -> None:
        await super().start()
        if not self._listeners:
            self._listeners = listening_sockets(self._host, self._port, self._backlog)
        self._accepting = [
            asyncio.create_task(self._accept_forever(listener)) for listener in self._listeners
        ]

    async def _stop_accepting(self) -> None:
        for task in self._accepting:
            task.cancel()
        await asyncio.gather(*self._accepting, return_exceptions=True)
        self._accepting = []
        for listener in self._listeners:
            listener.close()
        self._listeners = []

    async def stop(self) -> None:
        await self._stop_accepting()
        await super().stop()

    async def finish_requests(self, grace: float) -> None:
        """Stop accepting connections, close the idle ones, and wait up to `grace` seconds
        for the requests in progress to be answered; close and log what is left."""
        await self._stop_accepting()
        self._all_closed = asyncio.Event()
        busy = sum(handler.drain() for handler in list(self._open))
        if busy:
            log.info(
                "shutting down: no new connections; finishing %d request%s in progress"
                " (up to %g s)",
                busy,
                "" if busy == 1 else "s",
                grace,
            )
        if self._open:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._all_closed.wait(), grace)
        left = list(self._open)
        if left:
            shown = "; ".join(handler.describe_request() for handler in left[:10])
            more = f"; and {len(left) - 10} more" if len(left) > 10 else ""
            log.warning(
                "shutting down: dropped %d request%s not answered within %g s: %s%s",
                len(left),
                "" if len(left) == 1 else "s",
                grace,
                shown,
                more,
            )
            for handler in left:
                handler.force_close()

    async def _accept_forever(self, listener: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                conn, _ = await loop.sock_accept(listener)
            except OSError as exc:
                if exc.errno in _FD_EXHAUSTED:
                    log.warning("cannot accept a connection: %s", exc.strerror)
                    await asyncio.sleep(_ACCEPT_PAUSE_ON_FD_EXHAUSTION)
                continue
            try:
                await self._take_slot(loop)
            except BaseException:
                conn.close()
                raise
            try:
                await loop.connect_accepted_socket(lambda: self._handler(loop), conn)
            except OSError:
                conn.close()
                self._slots.release()

    async def _take_slot(self, loop: asyncio.AbstractEventLoop) -> None:
        """A slot for a connection just accepted; at the cap, the connection waiting
        longest for its client (a request head or a body), if for more than
        `EVICTION_GRACE`, gives way."""
        while True:
            if not self._slots.locked():
                await self._slots.acquire()
                return
            oldest = next(iter(self._waiting), None)
            patience = None
            if oldest is not None:
                patience = max(oldest.waiting_since + EVICTION_GRACE - loop.time(), 0.0)
            try:
                await asyncio.wait_for(self._slots.acquire(), patience)
                return
            except TimeoutError:
                pass
            oldest = next(iter(self._waiting), None)
            if oldest is None or oldest.waiting_since + EVICTION_GRACE > loop.time():
                continue  # it was answered meanwhile
            self._waiting.pop(oldest)
            oldest.give_way()
            try:  # its slot comes free as it closes: one eviction per newcomer
                await asyncio.wait_for(self._slots.acquire(), EVICTION_GRACE)
                return
            except TimeoutError:
                continue

    def _handler(self, loop: asyncio.AbstractEventLoop) -> GuardedHandler:
        server = self._runner.server
        assert server is not None
        handler = GuardedHandler(
            server,
            loop=loop,
            header_timeout=self._limits.header_timeout,
            on_wait=self._wait_started,
            on_wait_over=self._wait_over,
            on_close=self._closed,
            access_log=None,
            **self._limits.handler_kwargs(),
        )
        self._waiting[handler] = None
        self._open.add(handler)
        return handler

    def _wait_started(self, handler: GuardedHandler) -> None:
        self._waiting.pop(handler, None)
        self._waiting[handler] = None  # at the end: the wait that started last

    def _wait_over(self, handler: GuardedHandler) -> None:
        self._waiting.pop(handler, None)

    def _closed(self, handler: GuardedHandler) -> None:
        self._waiting.pop(handler, None)
        self._open.discard(handler)
        self._slots.release()
        if self._all_closed is not None and not self._open:
            self._all_closed.set()
