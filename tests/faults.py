"""Real faults for tests: a TCP proxy that can freeze (a database that stops answering,
as under SIGSTOP), and SQLite files the kernel refuses to write (as on a full disk)."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path


class FreezableProxy:
    """Forwards TCP connections to `target`; `freeze()` stops passing bytes either way
    (connections stay open, nothing answers), `thaw()` lets them flow again."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._server: asyncio.Server | None = None
        self._pumps: set[asyncio.Task[None]] = set()
        self.port = 0

    async def __aenter__(self) -> FreezableProxy:
        self._server = await asyncio.start_server(self._connect, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.thaw()
        assert self._server is not None
        self._server.close()
        for pump in list(self._pumps):
            pump.cancel()
        await asyncio.gather(*self._pumps, return_exceptions=True)

    def freeze(self) -> None:
        self._flowing.clear()

    def thaw(self) -> None:
        self._flowing.set()

    async def _connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        for source, sink in ((reader, upstream_writer), (upstream_reader, writer)):
            pump = asyncio.create_task(self._pump(source, sink))
            self._pumps.add(pump)
            pump.add_done_callback(self._pumps.discard)

    async def _pump(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        try:
            while chunk := await source.read(65536):
                await self._flowing.wait()
                sink.write(chunk)
                await sink.drain()
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            with contextlib.suppress(Exception):
                sink.close()


def _chattr(flag: str, paths: list[Path]) -> bool:
    existing = [str(path) for path in paths if path.exists()]
    try:
        done = subprocess.run(["chattr", flag, *existing], capture_output=True, check=False)
    except FileNotFoundError:
        return False
    return done.returncode == 0


@contextlib.contextmanager
def unwritable_sqlite(db_path: Path) -> Iterator[bool]:
    """Make a SQLite database and its WAL immutable (root on a file system with `chattr`):
    every write fails as on a full disk, reads still work. Yields False where this
    machine cannot do it (the test should skip)."""
    files = [db_path, db_path.with_name(db_path.name + "-wal")]
    frozen = _chattr("+i", files)
    try:
        yield frozen
    finally:
        if frozen:
            _chattr("-i", files)
