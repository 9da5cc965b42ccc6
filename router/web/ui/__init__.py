"""The web console at `/ui/`: server-rendered pages for the people who run the router.

`console_app` builds it as an aiohttp sub-application, mounted by `router.web.app` only when
`ROUTER_ADMIN_TOKEN`, `ROUTER_USERS_FILE` or `ROUTER_OIDC_ISSUER` is set (without any,
`/ui/` is 404). Every response carries a strict Content-Security-Policy; every page and
action needs a session (`router.web.ui.auth`) whose role may do it
(`router.web.permissions`, the one table of what each route needs); every POST but the
sign-in needs the session's CSRF token and, when the browser sends an `Origin`, this host's.
The session and the role are checked before a body is read, and bodies are read under the
limits of every route (`router.web.request_body`); a failed sign-in counts in the limit on
failed credentials the admin API shares (`router.web.credential_limits`).

`start_session(request, principal)` signs someone in (a session in the store, its
cookie on the redirect it returns): the sign-in form's end, and single sign-on's.
Sign-ins, failed ones included (as often as that limit lets them be tried), and every
change made here are recorded in the audit (`router.operators.AuditTrail`), the signed-in
actor read from the request (`router.web.actors`).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

from aiohttp import web

from router.config import Runtime
from router.core.metrics import Metrics
from router.engine import DeliveryEngine
from router.engine.health import is_store_failure
from router.operators import AuditTrail, Principal, Role
from router.store import ConsoleSessions, Erasures, OperatorConsole
from router.web.credential_limits import CredentialLimiter, record_failure
from router.web.credentials import ADMIN, Credentials, set_principal
from router.web.oidc import OidcClient
from router.web.permissions import permission, refusal
from router.web.request_body import BodyRefused, read_form
from router.web.ui.audit import AuditViews
from router.web.ui.auth import SESSION_COOKIE, Sessions
from router.web.ui.calls import CallViews
from router.web.ui.forget import ForgetViews
from router.web.ui.pages import SESSION, Pages
from router.web.ui.silences import SilenceViews
from router.web.ui.sso import SingleSignOn
from router.web.ui.views import ConsoleViews

log = logging.getLogger("router.web.ui")

STATIC = Path(__file__).resolve().parent / "static"
PREFIX = "/ui"
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
# Reachable without a session (and the static files); the single sign-on routes exist
# only when it is configured.
OPEN_PATHS = {f"{PREFIX}/login", f"{PREFIX}/oidc/start", f"{PREFIX}/oidc/callback"}
MAX_PASSWORD = 1024  # characters of a name or password worth checking
ANONYMOUS = "anonymous"  # the actor of a failed sign-in

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def is_https(request: web.Request) -> bool:
    """Whether the browser reached us over https: directly, or through a proxy that says
    so in `X-Forwarded-Proto` (trusted for this only: it can just make a cookie Secure)."""
    forwarded = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
    return request.secure or forwarded == "https"


def _same_origin(request: web.Request) -> bool:
    origin = request.headers.get("Origin")
    if origin is None:
        return True  # older browsers and non-browser clients; the CSRF token still holds
    parts = urlsplit(origin)
    return parts.netloc.lower() == request.host.lower()


def _safe_next(target: str | None) -> str:
    """Where to go after signing in: a console path only (never another site)."""
    if target and target.startswith(f"{PREFIX}/") and "//" not in target and "\\" not in target:
        return target
    return f"{PREFIX}/"


def _route(request: web.Request) -> str | None:
    """The pattern of the route the request matched (`/ui/deliveries/{id}/replay`), or
    None when none did."""
    resource = request.match_info.route.resource
    return None if resource is None else resource.canonical


class Console:
    def __init__(
        self,
        credentials: Credentials,
        store: ConsoleSessions,
        views: ConsoleViews,
        pages: Pages,
        limiter: CredentialLimiter | None = None,
        trail: AuditTrail | None = None,
    ) -> None:
        self.credentials = credentials
        self.sessions = Sessions(store, credentials)
        self.failures = limiter if limiter is not None else CredentialLimiter()
        self.views = views
        self.pages = pages
        self.trail = trail if trail is not None else AuditTrail(views.store)
        self.single_sign_on = False  # whether the sign-in page offers it

    @web.middleware
    async def guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            response = await self._guarded(request, handler)
        except web.HTTPException as exc:
            exc.headers.update(SECURITY_HEADERS)
            raise
        except BodyRefused as refused:
            response = self.pages.problem(request, refused.status, refused.message)
            if refused.closes_connection:
                response.force_close()
        except Exception as exc:
            if not is_store_failure(exc):
                raise
            log.warning("console page %s: the store failed: %s", request.path, type(exc).__name__)
            response = self.pages.problem(
                request, 503, "The store did not answer; try again in a moment."
            )
        response.headers.update(SECURITY_HEADERS)
        return response

    async def _guarded(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith(f"{PREFIX}/static/"):
            return await handler(request)
        session = await self.sessions.check(request.cookies.get(SESSION_COOKIE), time.time())
        request[SESSION] = session
        if "\x00" in request.path or any("\x00" in value for value in request.query.values()):
            return self.pages.problem(request, 400, "The address holds a NUL character.")
        if request.method == "POST" and not _same_origin(request):
            return self.pages.problem(request, 403, "This form came from another site.")
        if request.path in OPEN_PATHS:
            return await handler(request)
        if session is None:
            login = request.app.router["login"].url_for()
            if request.method == "GET":
                login = login.with_query(next=request.path_qs)
            raise web.HTTPSeeOther(login)
        set_principal(request, session.principal)
        why = refusal(session.principal, permission(request.method, _route(request)))
        if why is not None:
            return self.pages.problem(
                request, 403, f"You are signed in as {session.principal.describe()}: {why}."
            )
        if request.method == "POST":
            form = await read_form(request)
            if not self.sessions.csrf_ok(session, _text(form.get("csrf"))):
                return self.pages.problem(
                    request,
                    403,
                    "The form's CSRF token is missing or wrong; reload the page and try again.",
                )
        return await handler(request)

    async def login_form(self, request: web.Request) -> web.Response:
        if request[SESSION] is not None:
            raise web.HTTPSeeOther(_safe_next(request.query.get("next")))
        return self._login_page(request, next_path=request.query.get("next"))

    def _login_page(
        self, request: web.Request, *, next_path: str | None, error: str = "", status: int = 200
    ) -> web.Response:
        return self.pages.render(
            request,
            "login.html",
            http_status=status,
            title="Sign in",
            next_path=_safe_next(next_path),
            error=error,
            signed_out=request.query.get("signed_out") == "1",
            with_token=self.credentials.admin_token is not None,
            with_users=self.credentials.users_file is not None,
            single_sign_on=self.single_sign_on,
        )

    async def login(self, request: web.Request) -> web.Response:
        address = request.remote or "unknown"
        wait = self.failures.wait(address)  # before the body is read
        if wait is not None:
            seconds = max(math.ceil(wait), 1)
            response = self._login_page(
                request,
                next_path=request.query.get("next"),
                error=f"Too many failed sign-ins; try again in {seconds} s.",
                status=429,
            )
            response.headers["Retry-After"] = str(seconds)
            return response
        form = await read_form(request)
        next_path = _text(form.get("next"))
        token = _text(form.get("token")) or ""
        if token:
            principal = ADMIN if self.credentials.admin_token_matches(token) else None
            wrong = "That token is not right."
            tried, reason = ADMIN.name, "wrong token"
        else:
            name = _text(form.get("username")) or ""
            password = _text(form.get("password")) or ""
            principal = None
            if name and password and len(name) + len(password) <= MAX_PASSWORD:
                principal = await self.credentials.password(name, password)
            wrong = "That user name and password are not right."
            tried, reason = name[:64], "unknown user or wrong password"
        if principal is None:
            record_failure(self.failures, address, "console sign-in")
            # Only as often as the limit lets a sign-in be tried (429s come before this).
            details = {"reason": reason, "address": address}
            await self.trail.record(ANONYMOUS, "signin.failed", tried, details)
            return self._login_page(request, next_path=next_path, error=wrong, status=401)
        await self.trail.record(principal.name, "signin", principal.name, {"address": address})
        raise await self.start_session(request, principal, next_path)

    async def start_session(
        self, request: web.Request, principal: Principal, next_path: str | None = None
    ) -> web.HTTPSeeOther:
        """Sign `principal` in: a session in the store, and the redirect (to `next_path`
        when it is a console page) that sets its cookie."""
        _, cookie = await self.sessions.start(principal, time.time())
        set_principal(request, principal)
        response = web.HTTPSeeOther(_safe_next(next_path))
        response.set_cookie(
            SESSION_COOKIE,
            cookie,
            path=PREFIX,
            max_age=int(self.sessions.lifetime),
            httponly=True,
            samesite="Strict",
            secure=is_https(request),
        )
        return response

    async def _start_session(
        self, request: web.Request, response: web.StreamResponse, name: str, role: Role
    ) -> None:
        """Start a console session for a principal signed in elsewhere (single sign-on) and
        set its cookie on `response` (a page, not the redirect `start_session` makes: the
        browser comes from the provider's site, and sends a SameSite=Strict cookie only
        on a navigation this site starts)."""
        details = {"address": request.remote or "unknown", "via": "oidc", "role": role}
        await self.trail.record(name, "signin", name, details)
        redirect = await self.start_session(request, Principal(name, role, "oidc"))
        response.cookies.update(redirect.cookies)

    async def logout(self, request: web.Request) -> web.Response:
        session = request[SESSION]
        assert session is not None  # the guard lets no POST through without one
        await self.sessions.end(session)
        response = web.HTTPSeeOther(
            request.app.router["login"].url_for().with_query(signed_out="1")
        )
        response.del_cookie(SESSION_COOKIE, path=PREFIX)
        raise response


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


CONSOLE = web.AppKey("console", Console)


async def start_session(
    request: web.Request, principal: Principal, next_path: str | None = None
) -> web.HTTPSeeOther:
    """Sign `principal` (a name and a role) in to the console: a session in the store and
    the redirect that sets its cookie (return or raise it). For a route of the console
    (`request.config_dict` finds it), such as single sign-on's callback."""
    return await request.config_dict[CONSOLE].start_session(request, principal, next_path)


class ConsoleStore(OperatorConsole, ConsoleSessions, Erasures, Protocol):
    """What the console uses of the store: the operators' reads and actions, sessions,
    forgetting a caller."""


def console_app(
    credentials: Credentials,
    store: ConsoleStore,
    runtime: Runtime,
    engine: DeliveryEngine,
    metrics: Metrics,
    limiter: CredentialLimiter | None = None,
    trail: AuditTrail | None = None,
    oidc: OidcClient | None = None,
) -> web.Application:
    """The console, to mount at `/ui` (`app.add_subapp(PREFIX, console_app(...))`);
    `limiter`: the limit on failed credentials it shares with the admin API; `trail`:
    where its changes are recorded (the app's, counted in its metrics); `oidc`: the
    single sign-on provider, when there is one."""
    pages = Pages()
    audit = trail if trail is not None else AuditTrail(store)
    views = ConsoleViews(pages, store, runtime, engine, metrics, audit)
    calls = CallViews(pages, store, runtime, engine, audit)
    silences = SilenceViews(pages, store, runtime, engine, audit)
    audit_views = AuditViews(pages, store)
    forget = ForgetViews(pages, store, audit)
    console = Console(credentials, store, views, pages, limiter, audit)
    app = web.Application(middlewares=[console.guard])
    app[CONSOLE] = console
    if oidc is not None:
        sso = SingleSignOn(
            oidc,
            pages,
            credentials.admin_token,
            console._start_session,
            _safe_next,
            is_https,
            console.failures,
            audit,
        )
        console.single_sign_on = True
        app.add_routes(
            [
                web.get("/oidc/start", sso.start, name="oidc_start"),
                web.get("/oidc/callback", sso.callback, name="oidc_callback"),
            ]
        )
    app.add_routes(
        [
            web.get("/", views.overview, name="overview"),
            web.get("/login", console.login_form, name="login"),
            web.post("/login", console.login),
            web.post("/logout", console.logout, name="logout"),
            web.get("/calls", calls.calls, name="calls"),
            web.get("/calls/{id}", calls.call, name="call"),
            web.post("/calls/{id}/replay/{delivery}", calls.replay, name="call_replay"),
            web.get("/deliveries", views.deliveries, name="deliveries"),
            web.get("/deliveries/replay-dead", views.confirm_replay_dead, name="confirm_replay"),
            web.post("/deliveries/replay-dead", views.replay_dead, name="replay_dead"),
            web.get("/deliveries/{id}", views.delivery, name="delivery"),
            web.post("/deliveries/{id}/replay", views.replay, name="replay"),
            web.post("/deliveries/{id}/acknowledge", views.acknowledge, name="acknowledge"),
            web.get("/rules", views.rules, name="rules"),
            web.post("/rules/playground", views.playground, name="playground"),
            web.get("/silences", silences.silences, name="silences"),
            web.post("/silences", silences.create, name="silence_create"),
            web.post("/silences/{id}/expire", silences.expire, name="silence_expire"),
            web.get("/audit", audit_views.audit, name="audit"),
            web.get("/forget", forget.form, name="forget"),
            web.post("/forget", forget.post, name="forget_post"),
            web.static("/static", STATIC, name="static"),
        ]
    )
    return app
