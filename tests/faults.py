"""Real faults for tests: a TCP proxy that can freeze (a database that stops answering,
as under SIGSTOP) or cut its connections (a network outage), SQLite files the kernel
refuses to write (as on a full disk), and a small volume that really fills up."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path


class FreezableProxy:
    """Forwards TCP connections to `target`; `freeze()` stops passing bytes either way
    (connections stay open, nothing answers), `cut()` closes every connection and each
    new one at once (the network is down), `thaw()` lets them flow again."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._server: asyncio.Server | None = None
        self._pumps: set[asyncio.Task[None]] = set()
        self._cut = False
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
        self._cut = False
        self._flowing.set()

    def cut(self) -> None:
        self._cut = True
        for pump in list(self._pumps):
            pump.cancel()  # closes the connection on both sides

    async def _connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._cut:
            writer.close()
            return
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


@contextlib.contextmanager
def small_volume(directory: Path, size: str) -> Iterator[bool]:
    """A tmpfs of `size` ("8m") mounted on `directory`, so that writes there fail with
    "no space left" once it is full. Needs root (CI runs as root); yields False where
    this machine cannot mount one (the test should skip). Unmounted afterwards."""
    directory.mkdir(parents=True, exist_ok=True)
    mounted = False
    if os.geteuid() == 0:
        command = ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs"]
        try:
            done = subprocess.run([*command, str(directory)], capture_output=True, check=False)
        except FileNotFoundError:
            done = None
        mounted = done is not None and done.returncode == 0
    try:
        yield mounted
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(directory)], capture_output=True, check=False)


def fill(directory: Path, leave: int = 0) -> Path:
    """Fill the volume of `directory` with one file, leaving about `leave` bytes free;
    returns the file (delete it to give the space back)."""
    filler = directory / "filler"
    descriptor = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for chunk in (b"\0" * (1 << 20), b"\0" * 4096):
            try:
                while True:
                    os.write(descriptor, chunk)
            except OSError as error:
                if error.errno != errno.ENOSPC:
                    raise
    finally:
        os.close(descriptor)
    if leave:
        os.truncate(filler, max(filler.stat().st_size - leave, 0))
    return filler
