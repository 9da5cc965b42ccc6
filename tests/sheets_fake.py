"""A fake Google: the OAuth2 token endpoint of the JWT bearer grant, which verifies the
service account's signed assertion with its PUBLIC key (RS256; aud, iss, scope, exp),
and the Sheets API's `values:append`, which takes only the tokens it issued; on real
sockets (aiohttp). `service_account_key` writes a key file made here (`cryptography`)."""

from __future__ import annotations

import base64
import itertools
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from aiohttp import web
from aiohttp.test_utils import TestServer
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

CLIENT_EMAIL = "router@call-log-123.iam.gserviceaccount.com"
SCOPE = "https://www.googleapis.com/auth/spreadsheets"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
SHEET_ID = "1AbCdEfGhIjKlMnOpQrStUvWxYz0123456789"

Reply = Callable[[web.Request], Awaitable[web.StreamResponse]]


def new_private_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def pem_of(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")


def service_account_key(path: Path, key: rsa.RSAPrivateKey, token_uri: str) -> Path:
    path.write_text(
        json.dumps(
            {
                "type": "service_account",
                "project_id": "call-log-123",
                "private_key_id": "kid-0a1b2c3d4e5f",
                "private_key": pem_of(key),
                "client_email": CLIENT_EMAIL,
                "client_id": "1234567890",
                "token_uri": token_uri,
            }
        )
    )
    return path


def _unb64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


@dataclass
class FakeGoogle:
    public_key: rsa.RSAPublicKey
    token_url: str = ""
    grants: list[dict[str, Any]] = field(default_factory=list)  # the verified claims
    refusals: list[str] = field(default_factory=list)
    issued: list[str] = field(default_factory=list)
    appends: list[dict[str, Any]] = field(default_factory=list)  # sheet, range, values
    answers: list[Reply] = field(default_factory=list)  # scripted answers of the Sheets API
    _numbers: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def _verified_claims(self, assertion: str) -> dict[str, Any] | str:
        """The assertion's claims, or why it is refused."""
        try:
            header_part, claims_part, signature_part = assertion.split(".")
            header = json.loads(_unb64(header_part))
            claims = json.loads(_unb64(claims_part))
            signature = _unb64(signature_part)
        except ValueError:
            return "malformed assertion"
        if header.get("alg") != "RS256":
            return "alg is not RS256"
        try:
            signed = f"{header_part}.{claims_part}".encode("ascii")
            self.public_key.verify(signature, signed, padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            return "Invalid JWT Signature."
        now = time.time()
        if claims.get("aud") != self.token_url:
            return "Invalid JWT: aud"
        if claims.get("iss") != CLIENT_EMAIL or claims.get("scope") != SCOPE:
            return "Invalid JWT: iss or scope"
        if not claims.get("iat", now + 999) <= now + 60 < claims.get("exp", 0) + 60:
            return "Invalid JWT: Token must be a short-lived token and in a reasonable timeframe"
        if claims["exp"] - claims["iat"] > 3600:
            return "Invalid JWT: lives longer than an hour"
        return dict(claims)

    async def token(self, request: web.Request) -> web.Response:
        form = await request.post()
        if form.get("grant_type") != JWT_BEARER:
            return web.json_response({"error": "unsupported_grant_type"}, status=400)
        claims = self._verified_claims(str(form.get("assertion", "")))
        if isinstance(claims, str):
            self.refusals.append(claims)
            return web.json_response(
                {"error": "invalid_grant", "error_description": claims}, status=400
            )
        self.grants.append(claims)
        token = f"ya29.fake-{next(self._numbers)}-0a1b2c3d4e5f6a7b8c9d"
        self.issued.append(token)
        return web.json_response(
            {"access_token": token, "expires_in": 3599, "token_type": "Bearer"}
        )

    async def append(self, request: web.Request) -> web.StreamResponse:
        if self.answers:
            return await self.answers.pop(0)(request)
        if request.headers.get("Authorization", "").removeprefix("Bearer ") not in self.issued:
            return web.json_response(
                {
                    "error": {
                        "code": 401,
                        "message": "Request had invalid authentication credentials.",
                        "status": "UNAUTHENTICATED",
                    }
                },
                status=401,
            )
        path = unquote(request.path)  # /v4/spreadsheets/{id}/values/{range}:append
        prefix, _, rest = path.partition("/v4/spreadsheets/")
        sheet, _, cells = rest.partition("/values/")
        if prefix or not cells.endswith(":append"):
            return web.json_response({"error": {"code": 404, "message": "Not Found"}}, status=404)
        if request.query.get("valueInputOption") != "RAW":
            return web.json_response(
                {"error": {"code": 400, "message": "Invalid valueInputOption"}}, status=400
            )
        document = await request.json()
        values = document.get("values")
        if not (
            isinstance(values, list)
            and values
            and all(
                isinstance(row, list) and all(isinstance(v, str) for v in row) for row in values
            )
        ):
            return web.json_response(
                {"error": {"code": 400, "message": "Invalid values"}}, status=400
            )
        self.appends.append(
            {"sheet": sheet, "range": cells.removesuffix(":append"), "values": values}
        )
        return web.json_response({"spreadsheetId": sheet, "updates": {"updatedRows": len(values)}})


async def start_google(public_key: rsa.RSAPublicKey) -> tuple[FakeGoogle, TestServer]:
    google = FakeGoogle(public_key)
    app = web.Application()
    app.router.add_post("/token", google.token)
    app.router.add_post("/v4/spreadsheets/{tail:.+}", google.append)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    google.token_url = str(server.make_url("/token"))
    return google, server


def google_answer(status: int, message: str, **headers: str) -> Reply:
    async def respond(request: web.Request) -> web.Response:
        body = {"error": {"code": status, "message": message, "status": "X"}}
        return web.json_response(body, status=status, headers=headers)

    return respond
