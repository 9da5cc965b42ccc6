"""The OpenID Connect provider over HTTP, with the router's own aiohttp client: its
discovery document (`<issuer>/.well-known/openid-configuration`) and its signing keys
(`jwks_uri`), each fetched when first needed and kept for an hour, the keys fetched again
at once (one time) when an ID token names a key they lack; and the exchange of an
authorization code for the ID token, checked by `router.operators.oidc`.

A provider that cannot be reached raises ProviderUnavailable with status 503, one that
answers wrongly (an error status, a body that is not the JSON expected) with 502; its
message names the provider and the problem and never carries a code, token or secret.
A code the provider refuses (`invalid_grant`: used already, expired, or a PKCE verifier
that does not match) is the sign-in's fault: SignInRefused, 400.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp
import orjson
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from router.operators.oidc import (
    CLIENT_ID,
    CLIENT_SECRET,
    OidcSettings,
    SignInRefused,
    UnknownSigningKey,
    accepted_algorithms,
    check_id_token,
    is_safe_endpoint,
    token_request,
)

log = logging.getLogger("router.web.oidc")

CACHE_SECONDS = 3600.0
TIMEOUT = aiohttp.ClientTimeout(total=10.0, connect=5.0)
MAX_BODY = 512 * 1024  # a discovery document, a key set or a token answer is far smaller
MAX_SHOWN = 200  # characters of the provider's own error description shown

T = TypeVar("T")


class ProviderUnavailable(Exception):
    """The provider cannot be reached (503) or answered wrongly (502)."""

    def __init__(self, message: str, status: int = 502) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass(frozen=True)
class ProviderEndpoints:
    """What the discovery document says the router needs."""

    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    algorithms: tuple[str, ...]


def _printable(value: object) -> str:
    text = "".join(char for char in str(value) if char.isprintable())
    return text if len(text) <= MAX_SHOWN else f"{text[:MAX_SHOWN]}..."


async def _read_json(response: aiohttp.ClientResponse, what: str) -> Any:
    body = bytearray()
    async for chunk in response.content.iter_chunked(64 * 1024):
        body += chunk
        if len(body) > MAX_BODY:
            raise ProviderUnavailable(f"The provider's {what} is larger than {MAX_BODY} bytes.")
    try:
        return orjson.loads(bytes(body))
    except orjson.JSONDecodeError:
        raise ProviderUnavailable(f"The provider's {what} is not JSON.") from None


class OidcClient:
    """Talks to one provider; `http` gives the aiohttp session to use (the app's own,
    opened on startup)."""

    def __init__(
        self,
        settings: OidcSettings,
        http: Callable[[], aiohttp.ClientSession | None],
        *,
        cache_seconds: float = CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self._http = http
        self.cache_seconds = cache_seconds
        self.clock = clock
        self._endpoints: tuple[float, ProviderEndpoints] | None = None
        self._keys: tuple[float, KeySet] | None = None

    def _session(self) -> aiohttp.ClientSession:
        session = self._http()
        if session is None:
            raise ProviderUnavailable("The router is starting; try again in a moment.", 503)
        return session

    def _fresh(self, cached: tuple[float, T] | None) -> T | None:
        if cached is None or self.clock() - cached[0] >= self.cache_seconds:
            return None
        return cached[1]

    async def _get_json(self, url: str, what: str) -> Any:
        try:
            async with self._session().get(url, timeout=TIMEOUT) as response:
                if response.status != 200:
                    raise ProviderUnavailable(
                        f"The provider answered HTTP {response.status} for its {what} ({url})."
                    )
                return await _read_json(response, what)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise self._unreachable(url, exc) from None

    def _unreachable(self, url: str, exc: BaseException) -> ProviderUnavailable:
        kind = "it did not answer in time" if isinstance(exc, TimeoutError) else type(exc).__name__
        return ProviderUnavailable(
            f"The single sign-on provider at {self.settings.issuer} cannot be reached"
            f" ({url}: {kind}).",
            503,
        )

    async def endpoints(self) -> ProviderEndpoints:
        """The provider's endpoints, from its discovery document (fetched at most hourly)."""
        cached = self._fresh(self._endpoints)
        if cached is not None:
            return cached
        url = self.settings.discovery_url
        document = await self._get_json(url, "discovery document")
        if not isinstance(document, dict):
            raise ProviderUnavailable(f"The provider's discovery document ({url}) is no object.")
        if document.get("issuer") != self.settings.issuer:
            raise ProviderUnavailable(
                f"The discovery document at {url} names the issuer"
                f" {_printable(document.get('issuer'))!r}, not {self.settings.issuer!r}"
                " (ROUTER_OIDC_ISSUER must be the provider's issuer exactly)."
            )
        fields = {}
        for name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            value = document.get(name)
            if not isinstance(value, str) or not value:
                raise ProviderUnavailable(f"The provider's discovery document has no {name}.")
            if not is_safe_endpoint(value):
                raise ProviderUnavailable(
                    f"The provider's {name} ({_printable(value)}) is not https"
                    " (plain http only on a loopback address)."
                )
            fields[name] = value
        algorithms = accepted_algorithms(document.get("id_token_signing_alg_values_supported"))
        if not algorithms:
            raise ProviderUnavailable(
                "The provider signs ID tokens with no algorithm the router accepts"
                " (it takes RS*, PS*, ES* and EdDSA)."
            )
        endpoints = ProviderEndpoints(**fields, algorithms=tuple(algorithms))
        self._endpoints = (self.clock(), endpoints)
        return endpoints

    async def keys(self, *, refresh: bool = False) -> KeySet:
        """The provider's public signing keys (fetched at most hourly, or now on `refresh`)."""
        cached = None if refresh else self._fresh(self._keys)
        if cached is not None:
            return cached
        endpoints = await self.endpoints()
        document = await self._get_json(endpoints.jwks_uri, "key set (jwks_uri)")
        try:
            keys = KeySet.import_key_set(document)
        except (JoseError, ValueError, TypeError, KeyError, AttributeError):
            raise ProviderUnavailable(
                f"The provider's key set ({endpoints.jwks_uri}) holds no usable key."
            ) from None
        self._keys = (self.clock(), keys)
        return keys

    async def exchange(self, code: str, verifier: str) -> str:
        """The ID token the token endpoint gives for `code` and the PKCE verifier."""
        endpoints = await self.endpoints()
        form = token_request(self.settings, code=code, verifier=verifier)
        url = endpoints.token_endpoint
        try:
            async with self._session().post(
                url,
                data=form,
                timeout=TIMEOUT,
                allow_redirects=False,
                headers={"Accept": "application/json"},
            ) as response:
                status = response.status
                try:
                    answer = await _read_json(response, "token answer")
                except ProviderUnavailable:
                    if status == 200:
                        raise
                    answer = None
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise self._unreachable(url, exc) from None
        if status != 200:
            raise self._token_error(status, answer)
        id_token = answer.get("id_token") if isinstance(answer, dict) else None
        if not isinstance(id_token, str) or not id_token:
            raise ProviderUnavailable("The provider's token answer holds no id_token.")
        return id_token

    def _token_error(self, status: int, answer: Any) -> Exception:
        error = answer.get("error") if isinstance(answer, dict) else None
        described = answer.get("error_description") if isinstance(answer, dict) else None
        named = _printable(error) if isinstance(error, str) else f"HTTP {status}"
        if isinstance(described, str) and described:
            named = f"{named}: {_printable(described)}"
        if error == "invalid_grant":
            return SignInRefused(
                f"The provider refused the sign-in code ({named}); it may have been used"
                " already or expired. Sign in again."
            )
        if error in ("invalid_client", "unauthorized_client"):
            return ProviderUnavailable(
                f"The provider refused this router's client credentials ({named}):"
                f" check {CLIENT_ID} and {CLIENT_SECRET}."
            )
        return ProviderUnavailable(f"The provider's token endpoint refused the sign-in ({named}).")

    async def verify(self, id_token: str, nonce: str, now: float) -> dict[str, Any]:
        """The ID token's checked claims; the keys are fetched again once when the token
        names a key they lack (the provider rotated its keys)."""
        endpoints = await self.endpoints()
        keys = await self.keys()
        for attempt in (1, 2):
            try:
                return check_id_token(
                    id_token,
                    keys,
                    settings=self.settings,
                    nonce=nonce,
                    now=now,
                    algorithms=endpoints.algorithms,
                )
            except UnknownSigningKey:
                if attempt == 2:
                    break
                keys = await self.keys(refresh=True)
        raise SignInRefused("The ID token is signed with a key the provider does not publish.")
