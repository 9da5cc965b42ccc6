"""A service account's JSON key file, read and checked when rules.yaml loads (no
message quotes any of it), and the JWT bearer grant it makes: an assertion signed
RS256 by its private key (`google.auth.crypt`, `google.auth.jwt`), asking `token_url`
for a token of `scope`."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Annotated, Any

from google.auth import crypt, jwt
from pydantic import BeforeValidator

from sinks.tokens import Grant, settings_hash

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
SHEETS_SCOPE = "https://www.googleapis.com/auth/spreadsheets"
GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"  # noqa: S105 - a URL
ASSERTION_LIFETIME = 3600  # seconds: the longest Google accepts
KEY_FILE_LIMIT = 64 * 1024


@dataclass(frozen=True)
class ServiceAccountKey:
    """A key file: its path (`""`: not configured) and what it holds; the private key
    never in `repr`."""

    path: str
    client_email: str = ""
    token_uri: str = GOOGLE_TOKEN_URI
    private_key_id: str = ""
    private_key: str = field(default="", repr=False)

    def __str__(self) -> str:
        return self.path

    def secret_literals(self) -> list[str]:
        """The private key, for redaction (`SinkConfig.secret_values`)."""
        return [self.private_key] if self.private_key else []

    def signer(self) -> crypt.RSASigner:
        return crypt.RSASigner.from_service_account_info(
            {"private_key": self.private_key, "private_key_id": self.private_key_id or None}
        )


def read_key_file(value: Any) -> ServiceAccountKey:
    """The key file at `value` (a path), read and checked; `""` stays unconfigured."""
    if isinstance(value, ServiceAccountKey):
        return value
    if not isinstance(value, str):
        raise ValueError("credentials_file must be the path of a service account's JSON key")
    path = value.strip()
    if not path:
        return ServiceAccountKey("")
    try:
        with open(path, "rb") as key_file:
            raw = key_file.read(KEY_FILE_LIMIT + 1)
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror or type(exc).__name__}") from None
    if len(raw) > KEY_FILE_LIMIT:
        raise ValueError(f"{path} is too large to be a service account's JSON key")
    try:
        info = json.loads(raw)
    except (ValueError, RecursionError):
        raise ValueError(f"{path} is not JSON (a service account's JSON key)") from None
    if not isinstance(info, dict) or info.get("type") != "service_account":
        raise ValueError(f"{path} is not a service account's key (its type is not service_account)")
    missing = [
        name for name in ("client_email", "private_key") if not isinstance(info.get(name), str)
    ]
    if missing:
        raise ValueError(f"{path} has no {' or '.join(missing)}")
    token_uri = info.get("token_uri") if isinstance(info.get("token_uri"), str) else None
    key = ServiceAccountKey(
        path,
        info["client_email"],
        token_uri or GOOGLE_TOKEN_URI,
        str(info.get("private_key_id") or ""),
        info["private_key"],
    )
    try:
        key.signer()
    except Exception:  # the library's message may quote the key: never shown
        raise ValueError(f"{path}: private_key is not a PEM RSA private key") from None
    return key


KeyFile = Annotated[ServiceAccountKey, BeforeValidator(read_key_file)]


class JwtBearerGrants:
    """The token requests a service account makes (a `sinks.tokens.GrantSource`)."""

    def __init__(self, key: ServiceAccountKey, token_url: str, scope: str = SHEETS_SCOPE) -> None:
        self.key = key
        self.token_url = token_url
        self.scope = scope
        self.auth_key = settings_hash(
            "jwt-bearer", token_url, key.client_email, key.private_key_id, key.private_key, scope
        )
        self._signer: crypt.RSASigner | None = None

    def grant(self, refresh_token: str | None, now: float) -> Grant:
        if self._signer is None:
            self._signer = self.key.signer()
        issued = int(now)
        claims = {
            "iss": self.key.client_email,
            "scope": self.scope,
            "aud": self.token_url,
            "iat": issued,
            "exp": issued + ASSERTION_LIFETIME,
        }
        assertion = jwt.encode(self._signer, claims).decode("ascii")
        return Grant({"grant_type": JWT_BEARER, "assertion": assertion}, {}, (assertion,))
