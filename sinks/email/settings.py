"""The `email` sink's settings in rules.yaml (DESIGN.md section 6)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator

from router.core.templates import HeaderTemplate, HtmlTemplate, TextTemplate
from router.core.units import Duration
from sinks.base import RendersText, TimedSinkConfig
from sinks.email.headers import parse_mailbox

TlsMode = Literal["none", "starttls", "ssl"]


class EmailSinkConfig(TimedSinkConfig):
    type: Literal["email"]
    host: str = "localhost"
    port: int = Field(default=587, ge=1, le=65535)
    tls: TlsMode = "starttls"
    tls_verify: bool = True
    ca_file: str | None = None
    username: str | None = None
    password: SecretStr | None = None
    from_: str = Field(alias="from")
    to: list[str]
    cc: list[str] = Field(default_factory=list)
    bcc: list[str] = Field(default_factory=list)
    reply_to: list[str] = Field(default_factory=list)
    subject: HeaderTemplate | None = None
    body: TextTemplate | None = None
    html: HtmlTemplate | None = None
    timeout: Duration = 30.0
    mask_phone: bool = True

    @field_validator("to", "cc", "bcc", "reply_to", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        if value is None:
            return []
        return [value] if isinstance(value, str) else value

    @field_validator("to", "cc", "bcc", "reply_to")
    @classmethod
    def _addresses(cls, values: list[str]) -> list[str]:
        present = [value.strip() for value in values if value.strip()]
        for value in present:
            parse_mailbox(value)
        return present

    @field_validator("from_")
    @classmethod
    def _sender(cls, value: str) -> str:
        value = value.strip()
        if value:
            parse_mailbox(value)
        return value

    @field_validator("username", "ca_file")
    @classmethod
    def _empty_is_none(cls, value: str | None) -> str | None:
        return value or None

    def missing_settings(self) -> list[str]:
        missing = [
            name
            for name, value in (("host", self.host), ("from", self.from_), ("to", self.to))
            if not value
        ]
        if self.username and not (self.password and self.password.get_secret_value()):
            missing.append("password")
        return missing

    def templates(self) -> dict[str, RendersText]:
        named = {"subject": self.subject, "body": self.body, "html": self.html}
        return {name: template for name, template in named.items() if template is not None}
