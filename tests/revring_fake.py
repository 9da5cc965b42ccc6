"""A fake of RevRing's API on a real socket: `POST /v1/calls/batch-get` and
`GET /v1/calls/{id}` answer as documented (the post-call shape plus
`postCallWebhookStatus`), with scripted 429s and 5xx storms, and a way to go down
(the port closed: connection refused) and come back on the same port."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

FAKE_API_KEY = "rr-fake-secret-key-0123456789"

Scripted = int | tuple[int, dict[str, str]]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class FakeRevRing:
    calls: dict[str, dict[str, Any]] = field(default_factory=dict)  # what RevRing knows
    script: list[Scripted] = field(default_factory=list)  # answers given before the real ones
    api_key: str = FAKE_API_KEY
    batches: list[list[str]] = field(default_factory=list)  # ids of each batch-get answered
    keys_seen: list[str | None] = field(default_factory=list)
    port: int = field(default_factory=_free_port)
    server: TestServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def know(self, *calls: dict[str, Any]) -> None:
        for call in calls:
            self.calls[call["id"]] = call

    def _call(self, call_id: str) -> dict[str, Any]:
        return {**self.calls[call_id], "postCallWebhookStatus": "failed"}

    def _scripted(self) -> web.Response | None:
        if not self.script:
            return None
        answer = self.script.pop(0)
        status, headers = (answer, {}) if isinstance(answer, int) else answer
        return web.json_response({"error": "scripted"}, status=status, headers=headers)

    async def _batch_get(self, request: web.Request) -> web.Response:
        self.keys_seen.append(request.headers.get("x-api-key"))
        if request.headers.get("x-api-key") != self.api_key:
            return web.json_response({"error": "invalid API key"}, status=401)
        scripted = self._scripted()
        if scripted is not None:
            return scripted
        body = await request.json()
        ids = body.get("ids") if isinstance(body, dict) else None
        if not isinstance(ids, list) or not 1 <= len(ids) <= 100:
            return web.json_response({"error": "ids: 1 to 100 required"}, status=400)
        self.batches.append(list(ids))
        return web.json_response({"data": [self._call(i) for i in ids if i in self.calls]})

    async def _get_one(self, request: web.Request) -> web.Response:
        if request.headers.get("x-api-key") != self.api_key:
            return web.json_response({"error": "invalid API key"}, status=401)
        call_id = request.match_info["id"]
        if call_id not in self.calls:
            return web.json_response({"error": "not found"}, status=404)
        return web.json_response(self._call(call_id))

    async def start(self) -> FakeRevRing:
        app = web.Application()
        app.router.add_post("/v1/calls/batch-get", self._batch_get)
        app.router.add_get("/v1/calls/{id}", self._get_one)
        self.server = TestServer(app, host="127.0.0.1", port=self.port)
        await self.server.start_server()
        return self

    async def stop(self) -> None:
        """Go down: the port is closed, connections are refused."""
        if self.server is not None:
            await self.server.close()
            self.server = None

    close = stop
