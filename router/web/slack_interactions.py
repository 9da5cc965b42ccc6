"""`POST /slack/interactions` (DESIGN.md sections 4 and 12): a click on an alert's
buttons. The request is checked with the Slack app's signing secret (slack-sdk's
`SignatureVerifier`: `v0:` HMAC-SHA256 over the timestamp and the raw body, refused
when the timestamp is more than 5 minutes off) and answered at once with an empty 200;
the work (a silence through the admin API's code, or an acknowledgement, each written
with its audit record, actor `slack:<user id>`) and the update of the original message
follow in a background task, so Slack's 3 seconds hold even when the store is slow. A
click that changes nothing (refused, already acknowledged) or fails is logged, audited
when the store lets us, counted, and told to the user in an ephemeral message.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web
from slack_sdk.signature import SignatureVerifier

from router.config import Runtime
from router.core.events import decode_json
from router.core.metrics import Metrics
from router.core.units import format_duration
from router.operators import (
    AuditTrail,
    OperatorControls,
    RequestInvalid,
    acknowledge_view,
    acknowledgement_target,
    parse_silence_request,
)
from router.store import DeliveryView, OperatorConsole
from router.web.request_body import read_body
from sinks.base import DeliveryError
from sinks.call_text import safe_link
from sinks.slack import SlackSink, SlackSinkConfig
from sinks.slack.actions import (
    Click,
    PayloadInvalid,
    acknowledged_text,
    is_allowed,
    parse_interaction,
    silence_condition,
    silence_fields,
    silenced_text,
    updated_message,
)

log = logging.getLogger("router.slack")

PATH = "/slack/interactions"
RESPONSE_TIMEOUT = 10.0
FINISH_GRACE = 5.0  # on shutdown, clicks in progress get this long to finish
SIGNATURE_MAX_AGE = 300  # seconds, as slack-sdk's SignatureVerifier


class Refused(Exception):
    """A click that changes nothing; the message is shown to the user (ephemeral)."""

    def __init__(self, message: str, outcome: str = "refused") -> None:
        super().__init__(message)
        self.outcome = outcome


@dataclass(frozen=True)
class Done:
    outcome: str  # silenced, extended, acknowledged, already_acknowledged
    target: str
    text: str  # what the message now says was done
    detail: str = ""
    recorded: bool = True  # its audit record was written with the change


# What a click does, as the audit names it.
AUDITED_ACTIONS = {"acknowledge": "acknowledge", "silence": "silence.create"}


def click_actor(click: Click) -> str:
    return f"slack:{click.user_id}"


def click_details(click: Click, outcome: str, detail: str = "") -> dict[str, str]:
    """What the audit keeps of a click beside its actor and target."""
    shown = {
        "outcome": outcome,
        "user_name": click.user_name,
        "channel": click.channel,
        "detail": detail[:500],
    }
    return {name: value for name, value in shown.items() if value}


def _may_be_signed(timestamp: str | None, signature: str | None, now: float) -> bool:
    """What can be checked before the body is read: both headers there, and the
    timestamp within Slack's 5 minutes."""
    stamp = (timestamp or "").strip()
    if not (stamp.isascii() and stamp.isdigit()) or len(stamp) > 20 or not signature:
        return False
    return abs(now - int(stamp)) <= SIGNATURE_MAX_AGE


def _signed_by(secret: str, body: bytes, timestamp: str | None, signature: str | None) -> bool:
    if not timestamp or not timestamp.strip().isdigit() or not signature:
        return False
    try:
        return SignatureVerifier(secret).is_valid(body, timestamp.strip(), signature)
    except (ValueError, UnicodeDecodeError):
        return False


class SlackInteractions:
    def __init__(
        self,
        runtime: Runtime,
        store: OperatorConsole,
        metrics: Metrics,
        controls: OperatorControls | None,
        trail: AuditTrail | None = None,
    ) -> None:
        self.runtime = runtime
        self.store = store
        self.trail = trail if trail is not None else AuditTrail(store)
        self.metrics = metrics
        self.controls = controls
        self._tasks: set[asyncio.Task[None]] = set()
        self._silence_lock = asyncio.Lock()  # one "find an equal silence, else add" at a time

    # --- the request ---

    def _signing_secrets(self) -> dict[str, str]:
        if not self.runtime.loaded:
            return {}
        return {
            name: config.signing_secret.get_secret_value()
            for name, config in self.runtime.config.sinks.items()
            if isinstance(config, SlackSinkConfig)
            and config.buttons_on
            and config.signing_secret is not None
        }

    def _count(self, action: str, outcome: str) -> None:
        self.metrics.slack_actions.labels(action, outcome).inc()

    async def handle(self, request: web.Request) -> web.Response:
        by_sink = self._signing_secrets()
        if not by_sink:  # answered before the body is read: nobody can be verified
            return web.json_response(
                {"error": "no slack sink has a signing_secret: buttons are off"}, status=404
            )
        timestamp = request.headers.get("X-Slack-Request-Timestamp")
        signature = request.headers.get("X-Slack-Signature")
        body, verified = b"", set[str]()
        if _may_be_signed(timestamp, signature, time.time()):
            body = await read_body(request)  # under the body limits of every route
            verified = {
                name
                for name, secret in by_sink.items()
                if _signed_by(secret, body, timestamp, signature)
            }
        if not verified:
            self._count("none", "unauthorized")
            return web.json_response(
                {"error": "bad or missing Slack signature, or a timestamp more than 5 minutes off"},
                status=401,
            )
        try:
            click = parse_interaction(body)
        except PayloadInvalid as exc:
            self._count("none", "invalid")
            return web.json_response({"error": str(exc)}, status=400)
        if click.button.sink not in verified:
            self._count(click.action, "unauthorized")
            return web.json_response(
                {"error": f"not signed with the signing_secret of sink {click.button.sink!r}"},
                status=401,
            )
        task = asyncio.create_task(self._act(click), name=f"slack-{click.action}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return web.Response(status=200)

    async def close(self) -> None:
        """Let clicks in progress finish (a little while), then cancel the rest."""
        if not self._tasks:
            return
        _, late = await asyncio.wait(set(self._tasks), timeout=FINISH_GRACE)
        for task in late:
            task.cancel()
        for task in late:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # --- the work, after the answer ---

    async def _act(self, click: Click) -> None:
        now = time.time()
        target = f"delivery:{click.button.delivery_id}"
        try:
            config = self.runtime.config.sinks.get(click.button.sink)
            if not isinstance(config, SlackSinkConfig):
                raise Refused(f"sink {click.button.sink!r} is no longer configured")
            actions = config.effective_actions
            if not is_allowed(click, actions.allowed_users, actions.allowed_channels):
                raise Refused("You are not allowed to act on these alerts.")
            view = await self.store.get_delivery(click.button.delivery_id)
            if view is None or view.sink != click.button.sink:
                raise Refused("This alert is no longer in the router's store.")
            target = _target(view, click.action)
            if click.action == "acknowledge":
                if not actions.acknowledge:
                    raise Refused("Acknowledging is switched off for this sink.")
                done = await self._acknowledge(click, view, now)
            else:
                assert click.button.seconds is not None
                if click.button.seconds not in actions.silence_for:
                    raise Refused("That silence is no longer offered; use a current alert.")
                done = await self._silence(click, view, click.button.seconds)
        except Refused as refused:
            await self._audit(click, target, refused.outcome, str(refused))
            await self._tell(click, str(refused))
            return
        except Exception as exc:
            log.exception("slack %s by %s on %s failed", click.action, click.user_id, target)
            await self._audit(click, target, "failed", type(exc).__name__)
            await self._tell(click, "The router could not do that just now; please try again.")
            return
        if done.recorded:
            self._count(click.action, done.outcome)
        else:
            await self._audit(click, done.target, done.outcome, done.detail)
        await self._show(click, done.text)

    async def _acknowledge(self, click: Click, view: DeliveryView, now: float) -> Done:
        done = await acknowledge_view(
            self.trail,
            view,
            click_actor(click),
            now,
            user_id=click.user_id,
            user_name=click.user_name,
            channel=click.channel,
            details=click_details(click, "acknowledged"),
        )
        stored, already = done.acknowledgement, not done.first
        text = acknowledged_text(stored.user_id, stored.at, already=already)
        target = _target(view, click.action)
        if already:
            return Done("already_acknowledged", target, text, recorded=False)
        return Done("acknowledged", target, text)

    async def _calls(self, view: DeliveryView) -> list[dict[str, Any]]:
        if view.kind == "digest":
            payloads = await self.store.digest_calls(view.id)
        else:
            payload = await self.store.event_payload(view.event_id)
            payloads = [] if payload is None else [payload]
        calls = []
        for payload in payloads:
            with contextlib.suppress(ValueError):
                call = decode_json(payload)  # one stored before the depth limit: cut
                if isinstance(call, dict):
                    calls.append(call)
        if not calls:
            raise Refused("The calls of this alert are no longer in the router's store.")
        return calls

    def _rule_group_by(self, rule_name: str) -> tuple[str, ...] | None:
        for rule in self.runtime.config.rules:
            if rule.name == rule_name and rule.group is not None:
                return rule.group.by
        return None

    async def _silence(self, click: Click, view: DeliveryView, seconds: float) -> Done:
        config = self.runtime.config.sinks[view.sink]
        assert isinstance(config, SlackSinkConfig)
        fields = silence_fields(config.effective_actions.silence_by, self._rule_group_by(view.rule))
        try:
            when = silence_condition(fields, await self._calls(view))
        except PayloadInvalid as exc:
            raise Refused(str(exc)) from None
        comment = (
            f"from Slack by {click.user_name or click.user_id} ({click.user_id})"
            f" in {click.channel or 'a direct message'}, on {_target(view)}"
        )
        actor = click_actor(click)
        detail = f"for {format_duration(seconds)}, from the alert on {_target(view)}"
        recorded = True
        async with self._silence_lock:
            now = time.time()
            equal = await self._equal_silence(when, view.sink, now)
            if equal is not None:
                until = max(equal.ends_at, now + seconds)
                details = click_details(click, "extended", detail)
                recorded = await self.trail.extend_silence(actor, equal.id, until, now, details)
                outcome, silence_id = "extended", equal.id
            else:
                request = {
                    "when": when,
                    "for": format_duration(seconds),
                    "sinks": [view.sink],
                    "comment": comment,
                }
                try:
                    record = parse_silence_request(
                        request, now=now, known_sinks=set(self.runtime.config.sinks)
                    )
                except RequestInvalid as exc:
                    raise Refused("; ".join(exc.errors)) from None
                details = click_details(click, "silenced", detail)
                await self.trail.add_silence(actor, record, details)
                outcome, silence_id, until = "silenced", record.id, record.ends_at
            if self.controls is not None:
                await self.controls.refresh()
        text = silenced_text(click.user_id, seconds, until, extended=outcome == "extended")
        return Done(outcome, f"silence:{silence_id}", text, detail, recorded=recorded)

    async def _equal_silence(self, when: dict[str, Any], sink: str, now: float) -> Any:
        for record in await self.store.list_silences(ended_after=now):
            if record.sinks == (sink,) and record.state(now) == "active":
                with contextlib.suppress(ValueError):
                    if json.loads(record.when) == when:
                        return record
        return None

    async def _audit(self, click: Click, target: str, outcome: str, detail: str) -> None:
        """Count a click and record it alone: one that changed nothing, or failed (the
        trail logs a record it cannot write)."""
        self._count(click.action, outcome)
        action = AUDITED_ACTIONS.get(click.action, click.action)
        details = click_details(click, outcome, detail)
        await self.trail.record(click_actor(click), action, target, details)

    # --- telling Slack ---

    async def _show(self, click: Click, text: str) -> None:
        """Rewrite the original message to say what was done (chat.update in bot mode,
        else through the click's response_url)."""
        message = updated_message(click.message, text)
        sink = self.runtime.sinks.get(click.button.sink)
        if isinstance(sink, SlackSink) and sink.bot_mode and click.channel_id and click.message_ts:
            try:
                await sink.update_message(click.channel_id, click.message_ts, message)
                return
            except DeliveryError as exc:
                log.warning("chat.update after a slack %s failed: %s", click.action, exc.reason)
        await self._respond(click, {"replace_original": True, **message})

    async def _tell(self, click: Click, text: str) -> None:
        """An ephemeral message to the user who clicked; the original stays as it was."""
        await self._respond(
            click, {"response_type": "ephemeral", "replace_original": False, "text": text}
        )

    async def _respond(self, click: Click, body: dict[str, Any]) -> None:
        url = safe_link(click.response_url)
        session = self.runtime.resources.http
        if url is None or session is None:
            log.warning("slack %s by %s: no response_url to answer on", click.action, click.user_id)
            return
        try:
            async with session.post(
                url, json=body, timeout=aiohttp.ClientTimeout(total=RESPONSE_TIMEOUT)
            ) as answer:
                if answer.status >= 300:
                    log.warning("slack response_url answered HTTP %d", answer.status)
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            log.warning("slack response_url failed (%s)", type(exc).__name__)


def _target(view: DeliveryView, action: str = "silence") -> str:
    """The audit's target of a click on `view`: an acknowledgement's is its call and rule
    (a digest: the digest), a silence's the call (the digest)."""
    if action == "acknowledge":
        return acknowledgement_target(view)
    return f"digest:{view.id}" if view.kind == "digest" else f"call:{view.event_id}"


def slack_routes(interactions: SlackInteractions) -> list[web.RouteDef]:
    return [web.post(PATH, interactions.handle)]
