"""`auth: {type: oauth2, …}` of HTTP-style sinks (DESIGN.md section 17): the settings
(`OAuth2Settings`) and the grants they make (`OAuth2Grants`): client credentials, or
the refresh-token grant when a `refresh_token` is given (the latest one the server
rotated to, once it has). `sinks.tokens.TokenProvider` does the rest."""

from __future__ import annotations

import base64
from typing import Literal
from urllib.parse import quote, urlsplit

from pydantic import BaseModel, ConfigDict, SecretStr, field_validator

from sinks.tokens import Grant, settings_hash


class OAuth2Settings(BaseModel):
    """`auth:` of an `http` sink: an OAuth2 token endpoint and the client's credentials."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["oauth2"]
    token_url: str
    client_id: str
    client_secret: SecretStr
    refresh_token: SecretStr | None = None
    scope: str | None = None
    # How the client authenticates: its id and secret in the form (most CRMs), or as
    # HTTP Basic (`client_secret_basic`).
    client_auth: Literal["body", "basic"] = "body"

    @field_validator("token_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if value:
            parts = urlsplit(value)
            if parts.scheme not in ("http", "https") or not parts.hostname or " " in value:
                raise ValueError("token_url must be an http:// or https:// URL with a host")
        return value

    def missing_settings(self) -> list[str]:
        """The settings that came out empty (`${VAR}` unset), under `auth.`."""
        missing = [
            f"auth.{name}"
            for name, text in (
                ("token_url", self.token_url),
                ("client_id", self.client_id),
                ("client_secret", self.client_secret.get_secret_value()),
            )
            if not text
        ]
        if self.refresh_token is not None and not self.refresh_token.get_secret_value():
            missing.append("auth.refresh_token")
        return missing


class OAuth2Grants:
    """The token requests `settings` make (a `sinks.tokens.GrantSource`)."""

    def __init__(self, settings: OAuth2Settings) -> None:
        self.settings = settings
        secret = settings.client_secret.get_secret_value()
        refresh = settings.refresh_token.get_secret_value() if settings.refresh_token else None
        self.token_url = settings.token_url
        self.auth_key = settings_hash(
            "oauth2",
            settings.token_url,
            settings.client_id,
            secret,
            refresh,
            settings.scope,
            settings.client_auth,
        )
        self._secret = secret
        self._refresh = refresh

    def grant(self, refresh_token: str | None, now: float) -> Grant:
        form: dict[str, str] = {}
        refresh = refresh_token or self._refresh
        if refresh:
            form.update(grant_type="refresh_token", refresh_token=refresh)
        else:
            form["grant_type"] = "client_credentials"
        if self.settings.scope:
            form["scope"] = self.settings.scope
        headers: dict[str, str] = {}
        secrets = [self._secret, *filter(None, [refresh, self._refresh])]
        if self.settings.client_auth == "basic":
            pair = f"{quote(self.settings.client_id, safe='')}:{quote(self._secret, safe='')}"
            basic = base64.b64encode(pair.encode("utf-8")).decode("ascii")
            headers["Authorization"] = f"Basic {basic}"
            secrets.append(basic)
        else:
            form.update(client_id=self.settings.client_id, client_secret=self._secret)
        return Grant(form, headers, tuple(secrets), refresh)
