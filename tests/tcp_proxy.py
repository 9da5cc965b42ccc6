"""A TCP proxy the test controls, between the router and a real broker: `stop()` closes
its listening socket (new connections are refused) and cuts every live connection, as a
broker that goes down would; `start()` listens again on the same port. `hold_replies()`
keeps passing what the router sends but holds back what the broker answers, as a
connection that dies mid-publish does: the broker has the message, the router never
hears it confirmed."""

from __future__ import annotations

import asyncio
import contextlib


class TcpProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self.connections = 0  # accepted since the proxy was made
        self._server: asyncio.Server | None = None
        self._live: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._replies = asyncio.Event()
        self._replies.set()

    def hold_replies(self) -> None:
        """From now on, hold back the broker's answers (until `stop()`, then `start()`)."""
        self._replies.clear()

    async def start(self) -> TcpProxy:
        self._replies.set()
        self._server = await asyncio.start_server(
            self._accept, "127.0.0.1", self.port, reuse_address=True
        )
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        """Refuse new connections and cut the live ones."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._live):
            writer.transport.abort()
        self._live.clear()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _accept(
        self, client_reader: asyncio.StreamReader, client: asyncio.StreamWriter
    ) -> None:
        self.connections += 1
        try:
            upstream_reader, upstream = await asyncio.open_connection(*self.target)
        except OSError:
            client.transport.abort()
            return
        self._live.update((client, upstream))
        pumps = [
            asyncio.create_task(_pump(client_reader, upstream)),
            asyncio.create_task(_pump(upstream_reader, client, self._replies)),
        ]
        self._tasks.update(pumps)
        try:
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in pumps:
                task.cancel()
                self._tasks.discard(task)
            for writer in (client, upstream):
                self._live.discard(writer)
                writer.transport.abort()


async def _pump(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, passing: asyncio.Event | None = None
) -> None:
    with contextlib.suppress(OSError, asyncio.IncompleteReadError):
        while data := await reader.read(65536):
            if passing is not None:
                await passing.wait()
            writer.write(data)
            await writer.drain()
