"""Local stand-ins for PagerDuty's Events API v2 and a Teams Workflows webhook, on real
sockets: each records what it receives and answers the way the real service does, or as
a test scripts it (`answer(n)` for the n-th request, 1-based)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

# (status, JSON body or text, headers); None as the body means the service's usual one.
Scripted = tuple[int, Any, dict[str, str]]

PAGERDUTY_PATH = "/v2/enqueue"
TEAMS_PATH = "/workflows/4f1c0a9e2b7d4c1aa0e9/triggers/manual/paths/invoke"
TEAMS_QUERY = "api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig=TEAMSSIGSECRETxyz"


@dataclass
class FakeService:
    answer: Callable[[int], Scripted] = lambda n: (202, None, {})
    requests: list[dict[str, Any]] = field(default_factory=list)
    server: TestServer | None = None

    def usual_body(self, request_body: Any) -> Any:
        return None

    async def _handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        try:
            body: Any = json.loads(raw)
        except ValueError:
            body = raw.decode(errors="replace")
        self.requests.append(
            {
                "path": request.path,
                "query": request.query_string,
                "headers": dict(request.headers),
                "body": body,
            }
        )
        status, answer, headers = self.answer(len(self.requests))
        if answer is None:
            answer = self.usual_body(body) if status < 300 else ""
        if isinstance(answer, str):
            return web.Response(status=status, text=answer, headers=headers)
        return web.json_response(answer, status=status, headers=headers)

    async def start(self, path: str) -> FakeService:
        app = web.Application()
        app.router.add_post(path, self._handle)
        self.server = TestServer(app, host="127.0.0.1", port=0)
        await self.server.start_server()
        return self

    async def close(self) -> None:
        if self.server is not None:
            await self.server.close()

    @property
    def base(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.port}"

    def bodies(self) -> list[Any]:
        return [request["body"] for request in self.requests]


@dataclass
class FakePagerDuty(FakeService):
    """Answers 202 `{"status": "success", "message": "Event processed", "dedup_key": …}`."""

    def usual_body(self, request_body: Any) -> Any:
        key = request_body.get("dedup_key") if isinstance(request_body, dict) else None
        return {"status": "success", "message": "Event processed", "dedup_key": key}

    @property
    def url(self) -> str:
        return self.base + PAGERDUTY_PATH


def pagerduty_invalid(*errors: str) -> Scripted:
    """PagerDuty's 400 answer to an event it refuses."""
    body = {"status": "invalid event", "message": "Event object is invalid", "errors": list(errors)}
    return (400, body, {})


@dataclass
class FakeTeams(FakeService):
    """A Workflows webhook: 202 Accepted with an empty body."""

    answer: Callable[[int], Scripted] = lambda n: (202, "", {})

    @property
    def url(self) -> str:
        return f"{self.base}{TEAMS_PATH}?{TEAMS_QUERY}"
