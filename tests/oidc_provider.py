"""A small OpenID Connect provider of our own, on a real local socket, for the console's
single sign-on tests: discovery, a key set (an RSA key generated per provider), an
authorization endpoint that signs the configured test user in at once (it redirects back
with a code), and a token endpoint that checks the code (once only), the redirect URI,
the client secret and the PKCE verifier, then returns an ID token signed with its key.

Negative tests change what it does: `claims` overrides or removes (None) claims of the
ID token, `sign_with` signs with another key, `wrong_challenge` makes it remember a
challenge the router's verifier does not match, `discovery_status` / `token_status`
make those endpoints answer an error, `advertise` changes the discovery document.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import socket
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from aiohttp.test_utils import TestServer
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

from router.operators.oidc import OidcSettings, RoleMap

CLIENT_ID = "router-console"
CLIENT_SECRET = "provider-client-secret-0123456789"
ROLES = "groups:ops-admins=admin,groups:ops=operator,*=viewer"


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (for a server whose URL must be known before it
    starts: the router's public URL)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def new_key(kid: str) -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": kid, "alg": "RS256", "use": "sig"})


@dataclass
class Grant:
    client_id: str
    redirect_uri: str
    nonce: str
    challenge: str
    used: bool = False


@dataclass
class OidcProvider:
    user: dict[str, Any] = field(
        default_factory=lambda: {
            "sub": "user-0001",
            "preferred_username": "alice",
            "email": "alice@example.com",
            "groups": ["ops-admins"],
        }
    )
    client_id: str = CLIENT_ID
    client_secret: str = CLIENT_SECRET
    claims: dict[str, Any] = field(default_factory=dict)  # overrides; None removes
    key: RSAKey = field(default_factory=lambda: new_key("provider-key-1"))
    sign_with: RSAKey | None = None  # another key to sign with (a forged token)
    wrong_challenge: bool = False
    discovery_status: int = 200
    advertise: dict[str, Any] = field(default_factory=dict)  # discovery fields changed
    token_status: int = 200
    grants: dict[str, Grant] = field(default_factory=dict)
    token_requests: list[dict[str, str]] = field(default_factory=list)
    jwks_fetches: int = 0
    server: TestServer | None = None
    issued: list[str] = field(default_factory=list)  # every ID token handed out
    # The issuer's host: "localhost" puts the provider on another site than a router on
    # 127.0.0.1, as a browser sees sites (SameSite cookies).
    host_name: str = "127.0.0.1"

    @property
    def issuer(self) -> str:
        assert self.server is not None
        return f"http://{self.host_name}:{self.server.port}"

    def app(self) -> web.Application:
        app = web.Application()
        app.add_routes(
            [
                web.get("/.well-known/openid-configuration", self.discovery),
                web.get("/jwks", self.jwks),
                web.get("/authorize", self.authorize),
                web.post("/token", self.token),
            ]
        )
        return app

    async def start(self) -> OidcProvider:
        self.server = TestServer(self.app())
        await self.server.start_server()
        return self

    async def close(self) -> None:
        if self.server is not None:
            await self.server.close()

    def settings(self, public_url: str, roles: str = ROLES) -> OidcSettings:
        return OidcSettings(
            issuer=self.issuer,
            client_id=self.client_id,
            client_secret=self.client_secret,
            roles=RoleMap.parse(roles),
            public_url=public_url,
        )

    async def discovery(self, request: web.Request) -> web.Response:
        if self.discovery_status != 200:
            return web.json_response({"error": "down"}, status=self.discovery_status)
        return web.json_response(
            {
                "issuer": self.issuer,
                "authorization_endpoint": f"{self.issuer}/authorize",
                "token_endpoint": f"{self.issuer}/token",
                "jwks_uri": f"{self.issuer}/jwks",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "code_challenge_methods_supported": ["S256"],
                **self.advertise,
            }
        )

    async def jwks(self, request: web.Request) -> web.Response:
        self.jwks_fetches += 1
        return web.json_response(KeySet([self.key]).as_dict(private=False))

    async def authorize(self, request: web.Request) -> web.Response:
        query = request.query
        problems = []
        if query.get("response_type") != "code":
            problems.append("response_type")
        if query.get("client_id") != self.client_id:
            problems.append("client_id")
        if query.get("code_challenge_method") != "S256" or not query.get("code_challenge"):
            problems.append("code_challenge")
        if "openid" not in query.get("scope", "").split():
            problems.append("scope")
        if problems or "redirect_uri" not in query:
            return web.Response(status=400, text=f"bad authorization request: {problems}")
        code = secrets.token_urlsafe(16)
        challenge = query["code_challenge"]
        if self.wrong_challenge:
            challenge = _s256(secrets.token_urlsafe(32))
        self.grants[code] = Grant(
            query["client_id"], query["redirect_uri"], query.get("nonce", ""), challenge
        )
        back = f"{query['redirect_uri']}?{urlencode({'code': code, 'state': query['state']})}"
        raise web.HTTPFound(back)

    async def token(self, request: web.Request) -> web.Response:
        form = dict(await request.post())
        self.token_requests.append({key: str(value) for key, value in form.items()})
        if self.token_status != 200:
            return web.json_response({"error": "server_error"}, status=self.token_status)
        if form.get("client_id") != self.client_id or form.get("client_secret") != (
            self.client_secret
        ):
            return _oauth_error(401, "invalid_client", "client authentication failed")
        grant = self.grants.get(str(form.get("code")))
        if grant is None or grant.used:
            return _oauth_error(400, "invalid_grant", "unknown or already used code")
        grant.used = True
        if form.get("redirect_uri") != grant.redirect_uri:
            return _oauth_error(400, "invalid_grant", "redirect_uri does not match")
        if _s256(str(form.get("code_verifier", ""))) != grant.challenge:
            return _oauth_error(400, "invalid_grant", "PKCE verification failed")
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.client_id,
            "iat": now,
            "exp": now + 300,
            "nonce": grant.nonce,
            **self.user,
        }
        for name, value in self.claims.items():
            if value is None:
                claims.pop(name, None)
            else:
                claims[name] = value
        key = self.sign_with or self.key
        id_token = jwt.encode({"alg": "RS256", "kid": key.kid}, claims, key)
        self.issued.append(id_token)
        return web.json_response(
            {
                "access_token": secrets.token_urlsafe(16),
                "token_type": "Bearer",
                "expires_in": 300,
                "id_token": id_token,
            }
        )


def _s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _oauth_error(status: int, error: str, description: str) -> web.Response:
    return web.json_response({"error": error, "error_description": description}, status=status)
