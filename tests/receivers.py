"""A local HTTP endpoint that records what it receives and answers from a script:
the stand-in for a CRM (or any HTTP sink) in integration tests."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

Answer = tuple[int, dict[str, str]] | int


@dataclass
class Received:
    at: float  # time.time() when the request arrived
    path: str
    headers: dict[str, str]
    body: bytes
    status: int  # what we answered

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def call_id(self) -> str | None:
        try:
            return self.json.get("id")
        except ValueError:
            return None


@dataclass
class Receiver:
    """`answer` decides each response from the request count for that path (1-based)."""

    answer: Callable[[web.Request, int], Answer] = lambda request, n: 200
    delay: float = 0.0
    received: list[Received] = field(default_factory=list)
    server: TestServer | None = None
    _counts: dict[str, int] = field(default_factory=dict)

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        count = self._counts[request.path] = self._counts.get(request.path, 0) + 1
        if self.delay:
            await asyncio.sleep(self.delay)
        answer = self.answer(request, count)
        status, headers = (answer, {}) if isinstance(answer, int) else answer
        self.received.append(
            Received(time.time(), request.path, dict(request.headers), body, status)
        )
        return web.Response(status=status, headers=headers, text="ok" if status < 300 else "nope")

    async def start(self) -> Receiver:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self.server = TestServer(app, host="127.0.0.1")
        await self.server.start_server()
        return self

    async def close(self) -> None:
        if self.server is not None:
            await self.server.close()

    def url(self, path: str = "/hook") -> str:
        assert self.server is not None
        return str(self.server.make_url(path))

    def delivered_ids(self) -> list[str | None]:
        return [r.call_id for r in self.received if 200 <= r.status < 300]
