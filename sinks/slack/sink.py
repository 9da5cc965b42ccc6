"""The `slack` sink: call alerts through an incoming webhook or a bot token (slack-sdk).

The message itself is built in `sinks.slack.message`; this module sends it and turns
Slack's answers into outcomes. slack-sdk's own retry handlers are switched off: a
rate limit or an outage is rescheduled in the store, never slept on in a worker.

    webhook mode   POST webhook_url            (AsyncWebhookClient.send_dict)
    bot mode       POST {api_url}chat.postMessage with `Authorization: Bearer token`
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Literal, TypeVar

import aiohttp
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from router.core.call_fields import unknown_field
from router.core.retry import parse_retry_after
from router.core.templates import SlackJsonTemplate, SlackTemplate
from router.core.units import Duration, Rate
from sinks.base import (
    DeliveryError,
    DeliveryRequest,
    Permanent,
    RendersText,
    Retryable,
    SendResult,
    Sink,
    SinkConfig,
    SinkResources,
    ThreadParent,
    ThreadRegistry,
)
from sinks.exchange import Exchange, SentRequest, request_seen, response_seen
from sinks.secrets import url_secrets
from sinks.slack.message import ActionButtons, build_message, notice_message, parse_blocks
from sinks.slack.threads import (
    THREAD_KEY_FIELD,
    parent_message,
    thread_key,
    with_reply_count,
)

log = logging.getLogger("sinks.slack")

DEFAULT_API_URL = "https://slack.com/api/"

# Slack answers these with HTTP 200 and ok=false; they pass if tried again later.
RETRYABLE_ERRORS = frozenset(
    {"ratelimited", "rate_limited", "internal_error", "fatal_error", "service_unavailable",
     "request_timeout"}
)  # fmt: skip
_ERROR_CODE = re.compile(r"^[a-z0-9_.]{1,64}$")
SLACK_USER_ID = re.compile(r"[UW][A-Z0-9]{2,31}")


DEFAULT_SILENCE_FOR = (3600.0, 4 * 3600.0, 24 * 3600.0)
LONGEST_BUTTON_SILENCE = 366 * 86400.0  # as a silence made through the admin API
DEFAULT_THREAD_FOR = 3600.0
# What Slack answers about a thread whose parent message was deleted: a new one starts.
THREAD_GONE_ERRORS = frozenset({"thread_not_found", "message_not_found"})


class SlackActionsConfig(BaseModel):
    """The buttons of an alert (DESIGN.md section 12); they need the sink's `signing_secret`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    silence_by: tuple[str, ...] | None = None  # default: the rule's group.by, else status+agentId
    silence_for: tuple[Duration, ...] = Field(default=DEFAULT_SILENCE_FOR, max_length=5)
    acknowledge: bool = True
    # Slack user ids (U…/W…), in the order written (`check` points at an entry that is not one)
    allowed_users: tuple[str, ...] | None = None
    allowed_channels: frozenset[str] | None = None  # channel ids (C…) or names

    @field_validator("silence_by", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("silence_by")
    @classmethod
    def _field_paths(cls, paths: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if paths is None:
            return None
        if not paths:
            raise ValueError("silence_by needs at least one field (such as sipTrunkId)")
        for path in paths:
            if not path or any(not segment.strip() for segment in path.split(".")):
                raise ValueError(
                    f"silence_by {path!r} is not a field path: use names joined by dots, "
                    "like sipTrunkId or variables.tier"
                )
        return paths

    @field_validator("silence_for")
    @classmethod
    def _durations(cls, choices: tuple[float, ...]) -> tuple[float, ...]:
        for seconds in choices:
            if not 0 < seconds <= LONGEST_BUTTON_SILENCE:
                raise ValueError("each silence_for choice must be longer than 0s and at most 366d")
        return tuple(dict.fromkeys(choices))

    @field_validator("allowed_users", "allowed_channels", mode="before")
    @classmethod
    def _names(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [value]
        if isinstance(value, list):
            return [item.lstrip("#@") if isinstance(item, str) else item for item in value]
        return value

    def setting_warnings(self) -> list[tuple[tuple[str | int, ...], str]]:
        """Entries of `allowed_users` that are not Slack user ids: names are not unique, so
        they are never matched (they let no one act)."""
        return [
            (
                ("allowed_users", index),
                f"{user!r} is not a Slack user id (U or W, then capitals and"
                " digits, such as U0123ABCD): names are not unique, so only ids are matched"
                " and this entry lets no one act",
            )
            for index, user in enumerate(self.allowed_users or ())
            if not SLACK_USER_ID.fullmatch(user)
        ]


class SlackSinkConfig(SinkConfig):
    type: Literal["slack"]
    webhook_url: SecretStr | None = None
    token: SecretStr | None = None
    channel: str | None = None
    api_url: str | None = None
    text: SlackTemplate | None = None
    blocks: SlackJsonTemplate | None = None
    mask_phone: bool = True
    timeout: Duration = 10.0
    signing_secret: SecretStr | None = None  # the Slack app's: turns the buttons on
    actions: SlackActionsConfig | None = None
    # Alerts with equal values of these call fields reply in the first one's thread, for
    # `thread_for` after it (bot mode: DESIGN.md section 16).
    thread_by: tuple[str, ...] | None = None
    thread_for: Duration = DEFAULT_THREAD_FOR

    @field_validator("thread_by", mode="before")
    @classmethod
    def _thread_fields(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("thread_by")
    @classmethod
    def _known_thread_fields(cls, paths: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if paths is None:
            return None
        if not paths:
            raise ValueError("thread_by needs at least one field (such as sipTrunkId)")
        for path in paths:
            segments = path.split(".")
            if not path or any(not segment.strip() for segment in segments):
                raise ValueError(
                    f"thread_by {path!r} is not a field path: use names joined by dots, "
                    "like sipTrunkId or variables.tier"
                )
            problem = unknown_field(segments)
            if problem is not None:
                raise ValueError(f"thread_by: {problem}")
        return tuple(dict.fromkeys(paths))

    @field_validator("thread_for")
    @classmethod
    def _positive_thread_for(cls, value: float) -> float:
        if value <= 0:
            raise ValueError("thread_for must be longer than 0s")
        return value

    @model_validator(mode="after")
    def _one_mode(self) -> SlackSinkConfig:
        if self.webhook_url is not None and self.token is not None:
            raise ValueError("give either webhook_url or token + channel, not both")
        if self.token is not None and self.token.get_secret_value() and not self.channel:
            raise ValueError('token needs a channel (e.g. channel: "#ops-alerts")')
        if self.actions is not None and self.signing_secret is None:
            raise ValueError(
                "actions need signing_secret (the Slack app's, from its Basic Information)"
            )
        return self

    @property
    def buttons_on(self) -> bool:
        """Whether alerts carry buttons: a signing secret is set (and not empty)."""
        return self.signing_secret is not None and bool(self.signing_secret.get_secret_value())

    @property
    def effective_actions(self) -> SlackActionsConfig:
        return self.actions or SlackActionsConfig()

    def secret_values(self) -> list[str]:
        url = self.webhook_url.get_secret_value() if self.webhook_url is not None else ""
        return super().secret_values() + url_secrets(url)

    def setting_warnings(self) -> list[tuple[tuple[str | int, ...], str]]:
        found: list[tuple[tuple[str | int, ...], str]] = []
        if self.thread_by is not None and self.token is None:
            found.append(
                (
                    ("thread_by",),
                    "threads need bot mode (token + channel): an incoming webhook cannot"
                    " reply in a thread, so these alerts are posted one by one",
                )
            )
        if self.actions is not None:
            found.extend(
                (("actions", *path), message) for path, message in self.actions.setting_warnings()
            )
        return found

    def missing_settings(self) -> list[str]:
        if self.token is not None:
            return [] if self.token.get_secret_value() else ["token"]
        if self.webhook_url is None or not self.webhook_url.get_secret_value():
            return ["webhook_url"]
        return []

    def effective_rate_limit(self) -> Rate | None:
        return self.rate_limit or Rate(1, 1)

    def templates(self) -> dict[str, RendersText]:
        named: dict[str, RendersText] = {}
        if self.text is not None:
            named["text"] = self.text
        if self.blocks is not None:
            named["blocks"] = self.blocks
        return named

    def rendered_problem(self, name: str, rendered: str) -> str | None:
        if name != "blocks":
            return None
        try:
            parse_blocks(rendered)
        except ValueError as exc:
            return str(exc)
        return None


Sent = TypeVar("Sent")


def slack_error(reason: str) -> str | None:
    """Slack's error code in a failure's reason (`slack: thread_not_found`), if any."""
    return reason.removeprefix("slack: ") if reason.startswith("slack: ") else None


def _error_code(value: Any) -> str | None:
    """Slack's error code if `value` looks like one (never echo arbitrary bodies)."""
    if isinstance(value, str) and _ERROR_CODE.match(value.strip()):
        return value.strip()
    return None


def _retry_after(headers: Mapping[str, str] | None) -> float | None:
    if not headers:
        return None
    return parse_retry_after(headers.get("Retry-After"), time.time())


def classify_api_answer(
    status: int, error: str | None, headers: Mapping[str, str] | None
) -> Retryable | Permanent:
    """The outcome of a failed Slack answer (Web API or webhook) from status and error code."""
    code = _error_code(error)
    if status == 429 or code in ("ratelimited", "rate_limited"):
        return Retryable(
            "slack: ratelimited", retry_after=_retry_after(headers), status_code=status
        )
    if status >= 500:
        detail = f" ({code})" if code else ""
        return Retryable(f"slack: HTTP {status}{detail}", status_code=status)
    if code in RETRYABLE_ERRORS:
        return Retryable(f"slack: {code}", status_code=status)
    if code is not None:
        return Permanent(f"slack: {code}", status_code=status)
    return Permanent(f"slack: HTTP {status}", status_code=status)


def api_error_outcome(exc: SlackApiError) -> Retryable | Permanent:
    """The outcome of a Web API call that slack-sdk raised `SlackApiError` for."""
    answer = exc.response
    data = answer.data if isinstance(answer.data, dict) else {}
    return classify_api_answer(answer.status_code, data.get("error"), answer.headers)


def _text(response: Any) -> str:
    """A Web API answer's body as text: slack-sdk keeps it decoded (`data`)."""
    data = getattr(response, "data", None)
    if isinstance(data, bytes):
        return data.decode("utf-8", errors="replace")
    if isinstance(data, str):
        return data
    return json.dumps(data, ensure_ascii=False) if data is not None else ""


class SlackSink(Sink[dict[str, Any]]):
    config: SlackSinkConfig
    config_class = SlackSinkConfig

    def __init__(self, name: str, config: SinkConfig, resources: SinkResources) -> None:
        super().__init__(name, config, resources)
        # slack-sdk's clients, made at the first send (a sink built only to build or
        # preview messages never needs one).
        self._webhook: AsyncWebhookClient | None = None
        self._web: AsyncWebClient | None = None
        # Messages go through the Web API (a token is set), which can also update them.
        token = self.config.token
        self.bot_mode = token is not None and bool(token.get_secret_value())

    def _sdk_timeout(self) -> int:
        return max(1, math.ceil(self.config.timeout))

    def _web_client(self) -> AsyncWebClient:
        if self._web is None:
            assert self.config.token is not None
            self._web = AsyncWebClient(
                token=self.config.token.get_secret_value(),
                base_url=self.config.api_url or DEFAULT_API_URL,
                timeout=self._sdk_timeout(),
                session=self.resources.http,
                retry_handlers=[],
            )
        return self._web

    def _webhook_client(self) -> AsyncWebhookClient:
        if self._webhook is None:
            assert self.config.webhook_url is not None
            self._webhook = AsyncWebhookClient(
                url=self.config.webhook_url.get_secret_value(),
                timeout=self._sdk_timeout(),
                session=self.resources.http,
                retry_handlers=[],
            )
        return self._webhook

    def build(self, request: DeliveryRequest) -> dict[str, Any]:
        if request.notice is not None:  # a dead delivery's notice: no buttons, no thread
            return self._addressed(notice_message(request.notice))
        buttons = None
        if self.config.buttons_on:
            actions = self.config.effective_actions
            buttons = ActionButtons(
                self.name, actions.silence_for, actions.acknowledge, actions.silence_by
            )
        message = build_message(
            request,
            mask_phone_numbers=self.config.mask_phone,
            text_template=self.config.text,
            blocks_template=self.config.blocks,
            buttons=buttons,
        )
        payload = self._addressed(message)
        if self.config.thread_by is not None and self.bot_mode:
            payload[THREAD_KEY_FIELD] = thread_key(self.config.thread_by, request.event)
        return payload

    def show(self, message: dict[str, Any]) -> Any:
        """The message as Slack gets it (the thread key is the router's own: not sent)."""
        return {name: value for name, value in message.items() if name != THREAD_KEY_FIELD}

    def _addressed(self, message: dict[str, Any]) -> dict[str, Any]:
        """`message` as posted: to the channel (bot mode), links not unfurled."""
        payload: dict[str, Any] = {}
        if self.config.token is not None:
            payload["channel"] = self.config.channel
        payload.update(message)
        payload["unfurl_links"] = False
        payload["unfurl_media"] = False
        return payload

    async def transmit(self, payload: dict[str, Any]) -> SendResult:
        key = payload.get(THREAD_KEY_FIELD)
        message = {name: value for name, value in payload.items() if name != THREAD_KEY_FIELD}
        threads = self.resources.threads
        if key is None or threads is None or not self.bot_mode:
            result, _ = await self._send(message)
            return result
        async with threads.hold(self.name, key):
            return await self._send_threaded(threads, key, message)

    async def _send(self, payload: dict[str, Any]) -> tuple[SendResult, ThreadParent | None]:
        """Post `payload`; the result, and in bot mode where the message now stands."""
        try:
            if self.bot_mode:
                return await self._guarded(self._post_message, payload)
            return await self._guarded(self._post_webhook, payload), None
        except DeliveryError as failure:
            if failure.exchange is None:  # no answer came (a timeout, a lost connection)
                failure.with_exchange(Exchange(self._request_seen(payload)))
            raise

    async def _send_threaded(
        self, threads: ThreadRegistry, key: str, message: dict[str, Any]
    ) -> SendResult:
        """Reply in the key's live thread, or post the message as a new thread's parent
        (also when Slack says the thread's parent is gone: the alert is not lost)."""
        lasts = self.config.thread_for
        try:
            parent = await threads.current(self.name, key, lasts)
        except Exception as exc:
            raise Retryable(f"slack: cannot read the thread ({type(exc).__name__})") from None
        if parent is not None:
            try:
                result, _ = await self._send({**message, "thread_ts": parent.ts})
            except Permanent as failure:
                if slack_error(failure.reason) not in THREAD_GONE_ERRORS:
                    raise
                await self._forget_thread(threads, key, parent.ts)
            else:
                await self._count_reply(threads, key, parent)
                return result
        result, posted = await self._send(message)
        if posted is not None:
            started = ThreadParent(posted.channel, posted.ts, parent_message(message))
            try:
                await threads.start(self.name, key, started, lasts)
            except Exception as exc:  # posted all the same: the next alert starts anew
                log.warning(
                    "could not record a thread's parent: %s",
                    type(exc).__name__,
                    extra={"sink": self.name},
                )
        return result

    async def _count_reply(self, threads: ThreadRegistry, key: str, parent: ThreadParent) -> None:
        """The parent shows how many replies its thread has ("+N more in thread"). A
        failure here leaves the reply delivered; a parent gone ends the thread."""
        try:
            replies = await threads.replied(self.name, key, parent.ts)
            if replies is None:
                return
            counted = with_reply_count(parent.message, replies)
            await self.update_message(parent.channel, parent.ts, counted)
        except Permanent as failure:
            if slack_error(failure.reason) in THREAD_GONE_ERRORS:
                await self._forget_thread(threads, key, parent.ts)
            else:
                log.warning("could not update a thread's parent: %s", failure.reason,
                            extra={"sink": self.name})  # fmt: skip
        except Exception as exc:
            reason = exc.reason if isinstance(exc, DeliveryError) else type(exc).__name__
            log.warning("could not update a thread's parent: %s", reason, extra={"sink": self.name})

    async def _forget_thread(self, threads: ThreadRegistry, key: str, ts: str) -> None:
        try:
            await threads.gone(self.name, key, ts)
        except Exception as exc:
            log.warning(
                "could not end a thread Slack says is gone: %s",
                type(exc).__name__,
                extra={"sink": self.name},
            )

    def _request_seen(self, payload: dict[str, Any]) -> SentRequest:
        """The request slack-sdk sends for `payload` (its JSON body, without None values),
        as kept: the token and the hook's path masked."""
        body = json.dumps({name: value for name, value in payload.items() if value is not None})
        headers = {"Content-Type": "application/json;charset=utf-8"}
        if self.bot_mode:
            url = (self.config.api_url or DEFAULT_API_URL) + "chat.postMessage"
            headers["Authorization"] = "Bearer ***"
            headers["User-Agent"] = str(self._web_client().headers.get("User-Agent", ""))
        else:
            url = self.config.webhook_url.get_secret_value() if self.config.webhook_url else ""
            headers["User-Agent"] = self._webhook_client().default_headers.get("User-Agent", "")
        return request_seen("POST", url, headers.items(), body, secrets=self.secrets())

    def _exchange(self, payload: dict[str, Any], status: int, headers: Any, body: str) -> Exchange:
        pairs = [(str(name), str(value)) for name, value in dict(headers or {}).items()]
        got = response_seen(status, pairs, body, secrets=self.secrets())
        return Exchange(self._request_seen(payload), got)

    async def _guarded(
        self, post: Callable[[dict[str, Any]], Awaitable[Sent]], payload: dict[str, Any]
    ) -> Sent:
        """Network trouble and timeouts as Retryable, with reasons that name no URL."""
        try:
            async with asyncio.timeout(self.config.timeout):
                return await post(payload)
        except TimeoutError:
            raise Retryable(f"slack: timed out after {self.config.timeout:g}s") from None
        except (aiohttp.ClientError, OSError) as exc:
            raise Retryable(f"slack: connection failed ({type(exc).__name__})") from None

    async def _post_message(
        self, payload: dict[str, Any]
    ) -> tuple[SendResult, ThreadParent | None]:
        try:
            response = await self._web_client().chat_postMessage(**payload)
        except SlackApiError as exc:
            answer = exc.response
            exchange = self._exchange(payload, answer.status_code, answer.headers, _text(answer))
            raise api_error_outcome(exc).with_exchange(exchange) from None
        except (AttributeError, TypeError, ValueError) as exc:
            # slack-sdk fails this way on a non-JSON answer (a proxy's text/plain 502 page).
            raise Retryable(f"slack: unreadable answer ({type(exc).__name__})") from None
        channel = response.get("channel")
        timestamp = response.get("ts")
        exchange = self._exchange(payload, response.status_code, response.headers, _text(response))
        result = SendResult(
            status_code=response.status_code,
            detail=f"ts={timestamp} in {channel}",
            exchange=exchange,
        )
        posted = None
        if isinstance(timestamp, str) and isinstance(channel, str):
            posted = ThreadParent(channel, timestamp, {})
        return result, posted

    async def _post_webhook(self, payload: dict[str, Any]) -> SendResult:
        response = await self._webhook_client().send_dict(payload)
        exchange = self._exchange(
            payload, response.status_code, response.headers, response.body or ""
        )
        if 200 <= response.status_code < 300:
            return SendResult(status_code=response.status_code, detail="posted", exchange=exchange)
        outcome = classify_api_answer(response.status_code, response.body, response.headers)
        raise outcome.with_exchange(exchange)

    async def update_message(self, channel: str, ts: str, message: dict[str, Any]) -> None:
        """Rewrite a message this bot posted (`chat.update`), after a click on its buttons;
        raises `Retryable` or `Permanent` as a send would."""
        if not self.bot_mode:
            raise Permanent("slack: chat.update needs bot mode (token + channel)")
        web_client = self._web_client()

        async def update(payload: dict[str, Any]) -> SendResult:
            try:
                await web_client.chat_update(channel=channel, ts=ts, **payload)
            except SlackApiError as exc:
                raise api_error_outcome(exc) from None
            return SendResult(detail="updated")

        await self._guarded(update, message)
