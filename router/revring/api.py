"""A client of RevRing's API (`POST /v1/calls/batch-get`): fetch calls by id.

Used by `backfill` (calls missed while the router was down) and by verify mode
(confirm that a posted call is real). Ids go in batches of at most 100. A 429 waits
as its `Retry-After` asks; a 5xx, a timeout or a refused connection is retried with
exponential backoff, a bounded number of times; any other answer is final. The API
key travels only in the `x-api-key` header: never in a repr, a log line or an error.

Errors: `RevRingApiError` (the API refused or failed for good), with its subclass
`RevRingUnreachable` (no answer at all, or 5xx/429 until the tries ran out).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson

from router import __version__
from router.core.nesting import MAX_DEPTH, clipped
from router.core.retry import RetryPolicy, backoff_delay, parse_retry_after

DEFAULT_API_URL = "https://api.revring.ai/v1"
BATCH_SIZE = 100  # batch-get takes 1 to 100 ids


class RevRingApiError(Exception):
    """RevRing's API answered with an error, or could not be used."""


class RevRingUnreachable(RevRingApiError):
    """No usable answer from RevRing's API within the tries allowed (connection refused,
    timeouts, 5xx, 429): worth trying again later."""


@dataclass(frozen=True)
class FetchedCalls:
    """One batch-get's answer: each known call as JSON bytes (in the post-call shape),
    and the ids asked for that RevRing does not know."""

    calls: dict[str, bytes]
    unknown: list[str]


@dataclass(frozen=True)
class ApiRetries:
    """How hard the client tries one request before giving up."""

    max_tries: int = 5
    initial_delay: float = 0.5
    max_delay: float = 30.0
    max_retry_after: float = 120.0  # a longer Retry-After is capped to this
    timeout: float = 30.0  # per request


def batches(ids: Sequence[str], size: int = BATCH_SIZE) -> list[list[str]]:
    return [list(ids[start : start + size]) for start in range(0, len(ids), size)]


def calls_of(answer: Any, asked: Sequence[str]) -> FetchedCalls:
    """The calls in a batch-get answer `{"data": [call, ...]}`, by id, keeping only ids
    that were asked for; unknown = asked for but absent."""
    data = answer.get("data") if isinstance(answer, dict) else None
    if not isinstance(data, list):
        raise RevRingApiError("batch-get answered without a `data` list")
    wanted = set(asked)
    calls: dict[str, bytes] = {}
    for call in data:
        if isinstance(call, dict) and call.get("id") in wanted:
            calls[call["id"]] = _encoded(call)
    return FetchedCalls(calls, [call_id for call_id in asked if call_id not in calls])


def _encoded(call: dict[str, Any]) -> bytes:
    """A call as JSON bytes. One nested deeper than orjson writes (254 levels) is far
    past the body's limit and is refused at ingest: it goes cut one level past the
    limit (so ingest still refuses it, naming the same fields)."""
    try:
        return orjson.dumps(call)
    except TypeError:
        return orjson.dumps(clipped(call, MAX_DEPTH + 1))


@dataclass
class RevRingApi:
    """`batch_get(ids)` against `base_url`; `session` is shared (not closed here) when given."""

    api_key: str = field(repr=False)
    base_url: str = DEFAULT_API_URL
    session: aiohttp.ClientSession | None = field(default=None, repr=False)
    retries: ApiRetries = field(default_factory=ApiRetries)
    sleep: Callable[[float], Awaitable[None]] = field(default=asyncio.sleep, repr=False)
    _own_session: aiohttp.ClientSession | None = field(default=None, repr=False)

    async def close(self) -> None:
        if self._own_session is not None:
            await self._own_session.close()
            self._own_session = None

    def _session(self) -> aiohttp.ClientSession:
        if self.session is not None:
            return self.session
        if self._own_session is None:
            self._own_session = aiohttp.ClientSession(
                headers={"User-Agent": f"revring-router/{__version__}"}
            )
        return self._own_session

    async def fetch_all(self, ids: Sequence[str]) -> AsyncIterator[tuple[list[str], Any]]:
        """Each batch of ids with its `FetchedCalls`, or the `RevRingApiError` that batch
        ended with (the next batches are still tried)."""
        for batch in batches(ids):
            try:
                yield batch, await self.batch_get(batch)
            except RevRingApiError as error:
                yield batch, error

    async def batch_get(self, ids: Sequence[str]) -> FetchedCalls:
        """The calls of up to 100 ids (`POST {base_url}/calls/batch-get`)."""
        if not 1 <= len(ids) <= BATCH_SIZE:
            raise ValueError(f"batch-get takes 1 to {BATCH_SIZE} ids, got {len(ids)}")
        answer = await self._post("/calls/batch-get", {"ids": list(ids), "minimal": False})
        return calls_of(answer, ids)

    async def _post(self, path: str, body: dict[str, Any]) -> Any:
        url = self.base_url.rstrip("/") + path
        policy = RetryPolicy(
            max_attempts=self.retries.max_tries,
            initial_delay=self.retries.initial_delay,
            max_delay=self.retries.max_delay,
        )
        rng = random.Random()
        last_problem = ""
        for attempt in range(1, self.retries.max_tries + 1):
            wait: float | None = None
            try:
                async with self._session().post(
                    url,
                    data=orjson.dumps(body),
                    headers={"x-api-key": self.api_key, "Content-Type": "application/json"},
                    timeout=aiohttp.ClientTimeout(total=self.retries.timeout),
                ) as response:
                    status = response.status
                    if status == 200:
                        try:
                            return orjson.loads(await response.read())
                        except ValueError:
                            malformed = f"{path} answered 200 with malformed JSON"
                            raise RevRingApiError(malformed) from None
                    last_problem = f"{path} answered {status}"
                    if status == 429:
                        asked = parse_retry_after(response.headers.get("Retry-After"), time.time())
                        if asked is not None:
                            wait = min(asked, self.retries.max_retry_after)
                    elif status < 500:
                        raise RevRingApiError(_refusal(path, status))
            except (aiohttp.ClientError, TimeoutError) as error:
                last_problem = f"{path}: {type(error).__name__}: {_brief(error)}"
            if attempt == self.retries.max_tries:
                break
            await self.sleep(wait if wait is not None else backoff_delay(policy, attempt, rng))
        raise RevRingUnreachable(
            f"RevRing API {self.base_url} gave no usable answer after"
            f" {self.retries.max_tries} tries ({last_problem})"
        )


def _refusal(path: str, status: int) -> str:
    if status in (401, 403):
        return f"{path} answered {status}: check ROUTER_REVRING_API_KEY"
    return f"{path} answered {status}"


def _brief(error: BaseException) -> str:
    return " ".join(str(error).split())[:200] or "no detail"


def api_from_env(environ: dict[str, str] | None = None, **options: Any) -> RevRingApi | None:
    """The client configured by ROUTER_REVRING_API_KEY / ROUTER_REVRING_API_URL, or None
    when no key is set."""
    import os

    env = os.environ if environ is None else environ
    key = (env.get("ROUTER_REVRING_API_KEY") or "").strip()
    if not key:
        return None
    url = (env.get("ROUTER_REVRING_API_URL") or "").strip() or DEFAULT_API_URL
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"ROUTER_REVRING_API_URL must be an http(s) URL, got {url!r}")
    return RevRingApi(key, url, **options)
