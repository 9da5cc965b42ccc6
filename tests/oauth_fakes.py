"""A fake OAuth2 token endpoint and a fake API that takes its tokens, on real sockets
(aiohttp), for the sinks' outbound auth (DESIGN.md section 17).

The token endpoint counts its grants, checks the client's credentials, answers the
client-credentials and refresh-token grants (rotating refresh tokens when told to,
refusing a spent one with 400 invalid_grant), and can be held (to gather concurrent
asks), broken (`answers`: scripted replies first) or made to refuse. The API accepts
only tokens the endpoint issued and did not revoke, and answers 401 otherwise."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

CLIENT_ID = "router-client"
CLIENT_SECRET = "cs-5ecret-9f8e7d6c5b4a"
FIRST_REFRESH = "rt-first-0a1b2c3d4e5f"

Reply = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class TokenEndpoint:
    rotate: bool = False
    lifetime: int = 3600
    grants: list[dict[str, str]] = field(default_factory=list)
    basic: list[str] = field(default_factory=list)  # the Authorization header of each ask
    issued: list[str] = field(default_factory=list)
    revoked: list[str] = field(default_factory=list)
    refresh_tokens: set[str] = field(default_factory=lambda: {FIRST_REFRESH})
    answers: list[Reply] = field(default_factory=list)
    hold: asyncio.Event | None = None
    asked: asyncio.Event = field(default_factory=asyncio.Event)
    _numbers: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    async def handle(self, request: web.Request) -> web.StreamResponse:
        form = dict(await request.post())
        self.grants.append({key: str(value) for key, value in form.items()})
        self.basic.append(request.headers.get("Authorization", ""))
        self.asked.set()
        if self.hold is not None:
            await self.hold.wait()
        if self.answers:
            return await self.answers.pop(0)(request)
        if (form.get("client_id"), form.get("client_secret")) != (CLIENT_ID, CLIENT_SECRET):
            return web.json_response({"error": "invalid_client"}, status=401)
        number = next(self._numbers)
        answer: dict[str, Any] = {
            "access_token": f"at-{number}-0a1b2c3d4e5f6a7b",
            "token_type": "Bearer",
            "expires_in": self.lifetime,
        }
        if form.get("grant_type") == "refresh_token":
            spent = str(form.get("refresh_token"))
            if spent not in self.refresh_tokens:
                return web.json_response(
                    {"error": "invalid_grant", "error_description": "refresh token unknown"},
                    status=400,
                )
            if self.rotate:
                self.refresh_tokens.discard(spent)
                rotated = f"rt-rotated-{number}-9a8b7c6d5e"
                self.refresh_tokens.add(rotated)
                answer["refresh_token"] = rotated
        elif form.get("grant_type") != "client_credentials":
            return web.json_response({"error": "unsupported_grant_type"}, status=400)
        self.issued.append(answer["access_token"])
        return web.json_response(answer)

    def revoke_all(self) -> None:
        self.revoked += self.issued
        self.issued.clear()


@dataclass
class Api:
    """A fake CRM taking bearer tokens from `tokens`; records what it was sent."""

    tokens: TokenEndpoint
    received: list[tuple[str, bytes]] = field(default_factory=list)  # (Authorization, body)
    refused: int = 0

    async def handle(self, request: web.Request) -> web.StreamResponse:
        authorization = request.headers.get("Authorization", "")
        body = await request.read()
        if authorization.removeprefix("Bearer ") not in self.tokens.issued:
            self.refused += 1
            return web.json_response({"message": "token expired or revoked"}, status=401)
        self.received.append((authorization, body))
        return web.json_response({"id": f"crm-{len(self.received)}"}, status=201)


@dataclass
class OAuthWorld:
    tokens: TokenEndpoint
    api: Api
    server: TestServer

    @property
    def token_url(self) -> str:
        return str(self.server.make_url("/oauth/token"))

    @property
    def api_url(self) -> str:
        return str(self.server.make_url("/crm/calls"))


async def start_world(**token_options: Any) -> OAuthWorld:
    tokens = TokenEndpoint(**token_options)
    api = Api(tokens)
    app = web.Application()
    app.router.add_post("/oauth/token", tokens.handle)
    app.router.add_post("/crm/calls", api.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    return OAuthWorld(tokens, api, server)


def answer(status: int, text: str, content_type: str = "application/json") -> Reply:
    async def respond(request: web.Request) -> web.Response:
        return web.Response(status=status, text=text, content_type=content_type)

    return respond
