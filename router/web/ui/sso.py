"""The console's single sign-on (DESIGN.md section 14): `/ui/oidc/start` sends the browser
to the provider with a fresh `state`, `nonce` and PKCE challenge, which it keeps in a
short-lived signed cookie; `/ui/oidc/callback` checks the state against that cookie,
exchanges the code (with the PKCE verifier) for an ID token, checks the token, maps its
claims to a role and starts a console session.

The pending sign-in's cookie is HttpOnly, limited to `/ui/oidc`, valid for 10 minutes
and used once (the callback deletes it); it is SameSite=Lax, since the provider sends
the browser back from another site. The session cookie stays SameSite=Strict: the
callback answers with a page that moves on to the console itself, so the browser sends
it on that same-site navigation.

Refusals are pages that name the problem: 4xx for a sign-in that is wrong (state, code,
ID token, no role), 502/503 for a provider that is down or answers wrongly; password
sign-in does not depend on the provider. Failed callbacks count in the limit on failed
credentials. No code, token, verifier or secret is ever logged or shown.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import math
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from router.operators import AuditTrail
from router.operators.oidc import (
    ROLES_VARIABLE,
    OidcSettings,
    Role,
    SignInRefused,
    authorization_url,
    new_secret,
    principal_name,
    same_secret,
)
from router.web.credential_limits import CredentialLimiter, record_failure
from router.web.oidc import OidcClient, ProviderUnavailable
from router.web.ui.pages import SESSION, Pages

log = logging.getLogger("router.web.ui.sso")

PENDING_COOKIE = "router_oidc"
PENDING_PATH = "/ui/oidc"
PENDING_SECONDS = 600
_KEY_PURPOSE = b"revring-router single sign-on pending v1"

StartSession = Callable[[web.Request, web.StreamResponse, str, Role], Awaitable[None]]
SafeNext = Callable[[str | None], str]
IsHttps = Callable[[web.Request], bool]


@dataclass(frozen=True)
class Pending:
    """A sign-in under way in one browser."""

    state: str
    nonce: str
    verifier: str
    next_path: str
    expires_at: int


class PendingCookies:
    """Signs and checks the pending sign-in's cookie (HMAC-SHA256)."""

    def __init__(self, secret: str) -> None:
        """`secret`: what the replicas share to sign with; empty, a key of this process."""
        key = secret.encode("utf-8", "surrogatepass") if secret else secrets.token_bytes(32)
        self._key = hmac.new(key, _KEY_PURPOSE, hashlib.sha256).digest()

    def _sign(self, payload: str) -> str:
        return hmac.new(self._key, payload.encode("ascii"), hashlib.sha256).hexdigest()

    def issue(self, pending: Pending) -> str:
        text = json.dumps(
            [
                pending.state,
                pending.nonce,
                pending.verifier,
                pending.next_path,
                pending.expires_at,
            ],
            separators=(",", ":"),
        )
        payload = base64.urlsafe_b64encode(text.encode("utf-8")).decode("ascii").rstrip("=")
        return f"{payload}.{self._sign(payload)}"

    def check(self, cookie: str | None, now: float) -> Pending | None:
        """The pending sign-in a cookie holds, if it is genuine and not expired."""
        if not cookie or not cookie.isascii():
            return None
        payload, _, signature = cookie.rpartition(".")
        if not hmac.compare_digest(signature.encode("ascii"), self._sign(payload).encode("ascii")):
            return None
        try:
            text = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
            state, nonce, verifier, next_path, expires_at = json.loads(text)
            pending = Pending(state, nonce, verifier, next_path, int(expires_at))
        except (ValueError, TypeError):
            return None
        return pending if now < pending.expires_at else None


class SingleSignOn:
    """The two routes of the console's single sign-on."""

    def __init__(
        self,
        client: OidcClient,
        pages: Pages,
        secret: str | None,
        start_session: StartSession,
        safe_next: SafeNext,
        is_https: IsHttps,
        limiter: CredentialLimiter,
        trail: AuditTrail,
    ) -> None:
        self.client = client
        self.settings: OidcSettings = client.settings
        self.pages = pages
        # Signed with what every replica shares (the provider may send the browser back
        # to another one): the admin token and the client secret, when there are.
        shared = [part for part in (secret, self.settings.client_secret) if part]
        self.cookies = PendingCookies("\x00".join(shared))
        self.start_session = start_session
        self.safe_next = safe_next
        self.is_https = is_https
        self.failures = limiter
        self.trail = trail

    def _problem(self, request: web.Request, status: int, message: str) -> web.Response:
        """A page naming what went wrong, with a way back to the sign-in page."""
        return self.pages.render(
            request, "oidc_problem.html", http_status=status, title=f"{status}", message=message
        )

    def _unavailable(self, request: web.Request, problem: ProviderUnavailable) -> web.Response:
        log.warning("single sign-on: %s", problem.message)
        return self._problem(
            request,
            problem.status,
            f"Single sign-on is not available: {problem.message}"
            " Signing in with a password or token still works.",
        )

    async def start(self, request: web.Request) -> web.StreamResponse:
        next_path = self.safe_next(request.query.get("next"))
        if request[SESSION] is not None:
            raise web.HTTPSeeOther(next_path)
        try:
            endpoints = await self.client.endpoints()
        except ProviderUnavailable as problem:
            return self._unavailable(request, problem)
        pending = Pending(
            state=new_secret(),
            nonce=new_secret(),
            verifier=new_secret(),
            next_path=next_path,
            expires_at=int(time.time()) + PENDING_SECONDS,
        )
        target = authorization_url(
            endpoints.authorization_endpoint,
            self.settings,
            state=pending.state,
            nonce=pending.nonce,
            verifier=pending.verifier,
        )
        response = web.HTTPSeeOther(target)
        response.set_cookie(
            PENDING_COOKIE,
            self.cookies.issue(pending),
            path=PENDING_PATH,
            max_age=PENDING_SECONDS,
            httponly=True,
            samesite="Lax",
            secure=self.is_https(request),
        )
        raise response

    async def callback(self, request: web.Request) -> web.StreamResponse:
        address = request.remote or "unknown"
        wait = self.failures.wait(address)
        if wait is not None:
            seconds = max(math.ceil(wait), 1)
            response = self._problem(
                request, 429, f"Too many failed sign-ins; try again in {seconds} s."
            )
            response.headers["Retry-After"] = str(seconds)
            return response
        pending = self.cookies.check(request.cookies.get(PENDING_COOKIE), time.time())
        try:
            response = await self._signed_in(request, pending)
        except SignInRefused as refused:
            if refused.status != 403:
                record_failure(self.failures, address, "single sign-on")
            log.warning("single sign-on refused: %s", refused.message)
            details = {"reason": refused.message, "address": address, "via": "oidc"}
            # "anonymous": the console's actor of a failed sign-in (its ANONYMOUS).
            await self.trail.record("anonymous", "signin.failed", "single sign-on", details)
            response = self._problem(request, refused.status, refused.message)
        except ProviderUnavailable as problem:
            response = self._unavailable(request, problem)
        response.del_cookie(PENDING_COOKIE, path=PENDING_PATH)  # a sign-in is tried once
        return response

    async def _signed_in(self, request: web.Request, pending: Pending | None) -> web.Response:
        query = request.query
        if pending is None:
            raise SignInRefused(
                "No single sign-on is under way in this browser (or it took more than 10"
                " minutes, or this link was used already). Start again from the sign-in page."
            )
        state = query.get("state")
        if state is None or not same_secret(state, pending.state):
            raise SignInRefused(
                "The sign-in's state does not match the one this browser started with"
                " (a forged or mixed-up sign-in). Start again from the sign-in page."
            )
        error = query.get("error")
        if error is not None:
            described = query.get("error_description")
            detail = f"{error}: {described}" if described else error
            raise SignInRefused(
                f"The provider did not sign you in ({_printable(detail)}).", status=403
            )
        code = query.get("code")
        if not code:
            raise SignInRefused("The provider sent the browser back without a code.")
        id_token = await self.client.exchange(code, pending.verifier)
        claims = await self.client.verify(id_token, pending.nonce, time.time())
        name = principal_name(claims)
        role = self.settings.roles.role_for(claims)
        if role is None:
            claims_read = ", ".join(self.settings.roles.claims) or "none"
            raise SignInRefused(
                f"You signed in at the provider as {name}, but {ROLES_VARIABLE} gives this"
                f" account no role here (it reads the claims: {claims_read}). Ask whoever runs"
                " the router to add you to a group it maps.",
                status=403,
            )
        response = self.pages.render(
            request, "oidc_continue.html", title="Signed in", next_path=pending.next_path
        )
        await self.start_session(request, response, name, role)
        log.info("console sign-in through single sign-on: %s as %s", name, role)
        return response


def _printable(text: str) -> str:
    shown = "".join(char for char in text if char.isprintable())
    return shown if len(shown) <= 200 else f"{shown[:200]}..."
