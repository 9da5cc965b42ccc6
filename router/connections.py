"""The listening socket and what each connection may cost: a deadline for the request
head, an idle timeout between requests, and a cap on open connections.

aiohttp (the request handler) only offers the idle timeout (`keepalive_timeout`). The
rest is here. `GuardedHandler` closes a connection whose first request head is not
complete within `header_timeout`, with a 408. `GuardedSite` accepts connections itself
and holds at most `max_connections` open. When a client arrives at the cap, the oldest
connection that has waited more than `EVICTION_GRACE` for its first request head gives
way (silent clients cannot crowd out real ones); while there is none, the newcomer
waits for a free slot, and those after it wait in the kernel's backlog rather than
being refused (RevRing does not retry). The deadline for the body is the webhook
handler's (`IngestLimits.body_timeout`).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import resource
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

log = logging.getLogger("router.connections")

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

    def handler_kwargs(self) -> dict[str, Any]:
        """Settings for aiohttp's request handler (also given to `web.AppRunner`)."""
        return {"keepalive_timeout": self.idle_timeout, "lingering_time": self.lingering_time}


class GuardedHandler(web.RequestHandler):
    """aiohttp's request handler, plus the head deadline and a call when it closes."""

    def __init__(
        self,
        manager: web.Server,
        *,
        loop: asyncio.AbstractEventLoop,
        header_timeout: float,
        on_head: Callable[[GuardedHandler], None],
        on_close: Callable[[GuardedHandler], None],
        **kwargs: Any,
    ) -> None:
        super().__init__(manager, loop=loop, **kwargs)
        self._event_loop = loop
        self.created_at = loop.time()
        self._header_timeout = header_timeout
        self._head_timer: asyncio.TimerHandle | None = None
        self._on_head = on_head
        self._on_close: Callable[[GuardedHandler], None] | None = on_close

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._head_timer = self._event_loop.call_later(self._header_timeout, self._head_overdue)

    def head_received(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
            self._on_head(self)

    def drop_waiting(self) -> None:
        """Close the connection: it has sent no complete request head yet."""
        self.head_received()
        self._head_overdue()

    def _head_overdue(self) -> None:
        self._head_timer = None
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.write(HEAD_TIMEOUT_ANSWER)
        self.force_close()

    def connection_lost(self, exc: BaseException | None) -> None:
        self.head_received()
        try:
            super().connection_lost(exc)
        finally:
            on_close, self._on_close = self._on_close, None
            if on_close is not None:
                on_close(self)


@web.middleware
async def mark_head_received(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """A request reached the application: its head is complete, the head deadline is off."""
    protocol = request.protocol
    if isinstance(protocol, GuardedHandler):
        protocol.head_received()
    return await handler(request)


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
        self._waiting_for_head: dict[GuardedHandler, None] = {}  # oldest first

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

    async def stop(self) -> None:
        for task in self._accepting:
            task.cancel()
        await asyncio.gather(*self._accepting, return_exceptions=True)
        self._accepting = []
        for listener in self._listeners:
            listener.close()
        self._listeners = []
        await super().stop()

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
        """A slot for a connection just accepted; at the cap, the oldest connection still
        waiting for its first request head after `EVICTION_GRACE` gives way."""
        while True:
            if not self._slots.locked():
                await self._slots.acquire()
                return
            oldest = next(iter(self._waiting_for_head), None)
            patience = None
            if oldest is not None:
                patience = max(oldest.created_at + EVICTION_GRACE - loop.time(), 0.0)
            try:
                await asyncio.wait_for(self._slots.acquire(), patience)
                return
            except TimeoutError:
                if oldest is not None:
                    oldest.drop_waiting()

    def _handler(self, loop: asyncio.AbstractEventLoop) -> GuardedHandler:
        server = self._runner.server
        assert server is not None
        handler = GuardedHandler(
            server,
            loop=loop,
            header_timeout=self._limits.header_timeout,
            on_head=self._head_received,
            on_close=self._closed,
            access_log=None,
            **self._limits.handler_kwargs(),
        )
        self._waiting_for_head[handler] = None
        return handler

    def _head_received(self, handler: GuardedHandler) -> None:
        self._waiting_for_head.pop(handler, None)

    def _closed(self, handler: GuardedHandler) -> None:
        self._waiting_for_head.pop(handler, None)
        self._slots.release()
