"""A fake Slack for the buttons' round trip: it takes the router's alerts (incoming webhook
and chat.postMessage), records what comes back to a click's `response_url` and to
`chat.update`, and builds signed interaction requests as Slack would post them."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from aiohttp.test_utils import TestServer

WEBHOOK_PATH = "/services/T0001/B0002/WEBHOOK"
SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"


FIRST_TS = 1700000000.000100
CHANNEL_ID = "C0ALERTS"


@dataclass
class FakeSlack:
    """Answers chat.postMessage as Slack does: a new `ts` per message (the first one
    `1700000000.000100`), replies by `thread_ts` to a message that exists, and
    `thread_not_found` for one that was deleted (`delete`) or never posted; chat.update
    rewrites a message, `message_not_found` when it is gone."""

    posted: list[dict[str, Any]] = field(default_factory=list)  # alerts the router sent
    responses: list[dict[str, Any]] = field(default_factory=list)  # bodies to response_url
    updates: list[dict[str, Any]] = field(default_factory=list)  # chat.update bodies
    server: TestServer | None = None
    # Messages now in the channel by ts (as last posted or updated), and the replies of
    # each thread by its parent's ts, in order.
    messages: dict[str, dict[str, Any]] = field(default_factory=dict)
    replies: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (method, body)
    # Slack also takes a reply to a deleted message (its thread stays); then only
    # chat.update on the parent says it is gone (message_not_found).
    replies_to_deleted: bool = False
    _deleted: set[str] = field(default_factory=set)
    _next: int = 0

    def _new_ts(self) -> str:
        ts = f"{FIRST_TS + self._next / 1_000_000:.6f}"
        self._next += 1
        return ts

    def delete(self, ts: str) -> None:
        """Delete a message as someone in the channel would."""
        self.messages.pop(ts, None)
        self._deleted.add(ts)

    @property
    def parents(self) -> list[str]:
        """The ts of each message posted outside a thread, in order."""
        return [ts for ts, message in self.messages.items() if "thread_ts" not in message]

    @property
    def base(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.port}"

    @property
    def response_url(self) -> str:
        return self.base + "/actions/T0001/1234/RESPONSE"

    async def _webhook(self, request: web.Request) -> web.Response:
        self.posted.append(await request.json())
        return web.Response(text="ok")

    async def _post_message(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.calls.append(("chat.postMessage", body))
        parent = body.get("thread_ts")
        known = parent in self.messages or (self.replies_to_deleted and parent in self._deleted)
        if parent is not None and not known:
            return web.json_response({"ok": False, "error": "thread_not_found"})
        self.posted.append(body)
        ts = self._new_ts()
        self.messages[ts] = body
        if parent is not None:
            self.replies.setdefault(parent, []).append(body)
        answer: dict[str, Any] = {"ok": True, "channel": CHANNEL_ID, "ts": ts, "message": body}
        return web.json_response(answer)

    async def _update(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.calls.append(("chat.update", body))
        ts = body.get("ts")
        if ts not in self.messages:
            return web.json_response({"ok": False, "error": "message_not_found"})
        self.updates.append(body)
        self.messages[ts] = {**self.messages[ts], **body}
        return web.json_response({"ok": True, "channel": body.get("channel"), "ts": ts})

    async def _response(self, request: web.Request) -> web.Response:
        self.responses.append(await request.json())
        return web.Response(text="ok")

    async def start(self) -> FakeSlack:
        app = web.Application()
        app.router.add_post(WEBHOOK_PATH, self._webhook)
        app.router.add_post("/api/chat.postMessage", self._post_message)
        app.router.add_post("/api/chat.update", self._update)
        app.router.add_post("/actions/T0001/1234/RESPONSE", self._response)
        self.server = TestServer(app, host="127.0.0.1", port=0)
        await self.server.start_server()
        return self

    async def close(self) -> None:
        if self.server is not None:
            await self.server.close()

    def click_payload(
        self,
        message: dict[str, Any],
        action_id: str,
        *,
        user: str = "U0ALICE",
        user_name: str = "alice",
        channel: str = "C0ALERTS",
        channel_name: str = "ops-alerts",
    ) -> dict[str, Any]:
        """The block_actions payload of a click on the button `action_id` of `message`."""
        [button] = [
            element
            for block in message["blocks"]
            if block["type"] == "actions"
            for element in block["elements"]
            if element.get("action_id") == action_id
        ]
        return {
            "type": "block_actions",
            "user": {"id": user, "username": user_name, "name": user_name, "team_id": "T0001"},
            "api_app_id": "A0APP",
            "team": {"id": "T0001", "domain": "example"},
            "container": {
                "type": "message",
                "message_ts": "1700000000.000100",
                "channel_id": channel,
                "is_ephemeral": False,
            },
            "channel": {"id": channel, "name": channel_name},
            "message": {"type": "message", "ts": "1700000000.000100", **message},
            "response_url": self.response_url,
            "trigger_id": "123.456.abc",
            "actions": [
                {
                    "type": "button",
                    "action_id": action_id,
                    "block_id": "revring_actions",
                    "text": button["text"],
                    "value": button["value"],
                    "action_ts": f"{time.time():.6f}",
                }
            ],
        }


def signed_request(
    payload: dict[str, Any], *, secret: str = SIGNING_SECRET, timestamp: int | None = None
) -> tuple[bytes, dict[str, str]]:
    """The form body and headers Slack sends for `payload`, signed with `secret`."""
    body = urlencode({"payload": json.dumps(payload)}).encode()
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), b"v0:" + stamp.encode() + b":" + body, hashlib.sha256)
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": "v0=" + digest.hexdigest(),
    }
    return body, headers
