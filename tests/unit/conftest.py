"""Keeps tests/unit pure: a test here that opens a socket, resolves a host name, starts a
process or opens an SQLite file fails, naming what it did. SQLite in memory (`memory://`)
is allowed.

Each of those calls raises `ImpureUnitTest`, and the test fails at teardown too, since
the code under test may swallow the error (a sink turns a refused connection into a
retry). Files are left to review: a unit test may read the samples and the code
(test_layers walks its imports) and write a rules.yaml in `tmp_path`; a test whose
subject is a file (a docs page, the Dockerfile, a database) belongs in tests/docs or
tests/integration.
"""

from __future__ import annotations

import asyncio
import multiprocessing.process
import os
import socket
import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from typing import Any

import pytest


class ImpureUnitTest(Exception):
    """A unit test did I/O that belongs in tests/integration or tests/e2e."""


@pytest.fixture(autouse=True)
def no_io() -> Iterator[None]:
    # A patcher of its own: the test's `monkeypatch` must stay set up after the test's
    # other fixtures, so that it is undone before they are torn down.
    done: list[str] = []

    def refuse(what: str) -> Callable[..., Any]:
        def refused(*args: Any, **kwargs: Any) -> Any:
            done.append(what)
            raise ImpureUnitTest(f"a unit test {what}: move it to tests/integration or tests/e2e")

        return refused

    real_sqlite_connect = sqlite3.connect

    def sqlite_connect(database: Any, *args: Any, **kwargs: Any) -> sqlite3.Connection:
        if database != ":memory:":
            refuse(f"opened the SQLite file {database}")()
        return real_sqlite_connect(database, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        for name in ("connect", "connect_ex", "bind"):
            patch.setattr(socket.socket, name, refuse(f"called socket.{name}"))
        patch.setattr(socket, "getaddrinfo", refuse("resolved a host name"))
        for name in ("create_connection", "create_server", "create_datagram_endpoint"):
            patch.setattr(asyncio.BaseEventLoop, name, refuse(f"called loop.{name}"))
        patch.setattr(subprocess.Popen, "_execute_child", refuse("started a subprocess"))
        patch.setattr(os, "fork", refuse("forked"))
        patch.setattr(multiprocessing.process.BaseProcess, "start", refuse("started a process"))
        patch.setattr(sqlite3, "connect", sqlite_connect)
        yield
    if done:
        pytest.fail(f"a unit test did I/O: {', '.join(done)}", pytrace=False)
