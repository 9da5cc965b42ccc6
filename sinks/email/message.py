"""Building the email for one delivery: config + `DeliveryRequest` -> `EmailMessage`, and
reading a built one back from its bytes for a preview (`parse_message`). Pure.

Header safety lives here. Every header value that comes from config or event
data passes through `clean_header_value` (control characters and line breaks
become spaces), and addresses are parsed and checked (`parse_mailbox`) rather
than pasted as text. Subjects and display names are written here as RFC 2047
encoded words, already folded: the stdlib folder of some Python versions drops
or adds a space where it splits adjacent encoded words (the `→` of the default
subject triggers it), so `WIRE_POLICY` never refolds them. Bcc never becomes a
header: it is only part of the envelope (`envelope_recipients`). Bodies go out
quoted-printable or base64, so the message is 7-bit clean for servers without
8BITMIME.

The `Message-ID` comes from the delivery id, so every retry and replay of one
delivery carries the same id and mail clients thread and deduplicate them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from email import policy
from email.header import Header
from email.headerregistry import Address
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import format_datetime, formataddr
from typing import Any

from sinks.base import DeliveryRequest, template_context
from sinks.email.headers import clean_header_value, parse_mailbox
from sinks.email.settings import EmailSinkConfig
from sinks.email.templates import alert_html, alert_text, build_alert

WIRE_POLICY = policy.SMTP.clone(refold_source="none", cte_type="7bit")
HEADER_LINE_CHARS = 78
SUBJECT_MAX_CHARS = 250
MESSAGE_ID_DOMAIN = "revring-router"

_MSG_ID_UNSAFE = re.compile(r"[^A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+")
_DOT_ATOM_DOMAIN = re.compile(r"^[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*$")


def message_id_for(delivery_id: str, sender: str) -> str:
    """`<revring.{delivery_id}@{sender's domain}>`: the same for every try of one delivery."""
    local = _MSG_ID_UNSAFE.sub("-", str(delivery_id)).strip(".") or "delivery"
    try:
        domain = parse_mailbox(sender).domain
    except ValueError:
        domain = MESSAGE_ID_DOMAIN
    if not _DOT_ATOM_DOMAIN.match(domain):
        domain = MESSAGE_ID_DOMAIN
    return f"<revring.{local}@{domain}>"


@dataclass(frozen=True)
class EmailContent:
    """The rendered words of one email, before they become MIME."""

    subject: str
    text: str
    html: str | None


def render_content(config: EmailSinkConfig, request: DeliveryRequest) -> EmailContent:
    """Subject, text and HTML from the configured templates, else the default alert.

    Raises `TemplateRenderError` when a configured template fails on this event.
    The default HTML part is sent only with the default text (a custom `body` with
    no `html` template sends text alone, so the two parts never disagree).
    """
    alert = build_alert(
        request.event,
        rule=request.rule,
        sink=request.sink,
        delivery_id=request.delivery_id,
        digest=request.digest,
        masked=config.mask_phone,
    )
    context = template_context(request)
    subject = alert.subject if config.subject is None else config.subject.render(context)
    html: str | None
    if config.body is None:
        text = alert_text(alert)
        html = alert_html(alert) if config.html is None else config.html.render(context)
    else:
        text = config.body.render(context)
        html = None if config.html is None else config.html.render(context)
    subject = clean_header_value(subject)
    if len(subject) > SUBJECT_MAX_CHARS:
        subject = subject[: SUBJECT_MAX_CHARS - 1] + "…"
    return EmailContent(subject, text, html)


def _mailboxes(values: Iterable[str]) -> list[Address]:
    return [parse_mailbox(value) for value in values]


def encode_text_header(name: str, value: str) -> str:
    """A free-text header value, folded, with non-ASCII text as UTF-8 encoded words."""
    charset = "us-ascii" if value.isascii() else "utf-8"
    header = Header(value, charset, maxlinelen=HEADER_LINE_CHARS, header_name=name)
    return header.encode(linesep="\n")


def _encode_mailbox(address: Address) -> str:
    # One encoded word per display name: decoders disagree on the space between two.
    return formataddr((address.display_name, address.addr_spec), charset="utf-8")


def encode_address_header(addresses: Iterable[Address]) -> str:
    """An address-list header value, one mailbox per line, display names encoded."""
    return ",\n ".join(_encode_mailbox(address) for address in addresses)


def envelope_sender(config: EmailSinkConfig) -> str:
    """The SMTP `MAIL FROM` address (the bare address of `from`)."""
    return parse_mailbox(config.from_).addr_spec


def envelope_recipients(config: EmailSinkConfig) -> list[str]:
    """The SMTP `RCPT TO` addresses: to + cc + bcc, each once, in that order."""
    addresses = _mailboxes([*config.to, *config.cc, *config.bcc])
    return list(dict.fromkeys(address.addr_spec for address in addresses))


def build_message(
    config: EmailSinkConfig,
    request: DeliveryRequest,
    *,
    now: datetime,
    content: EmailContent | None = None,
) -> EmailMessage:
    """The complete message for one delivery (headers and text, plus HTML when there is one).

    `now` (an aware datetime) becomes the Date header. Raises `TemplateRenderError`
    when a template fails on this event.
    """
    if content is None:
        content = render_content(config, request)
    message = EmailMessage(policy=WIRE_POLICY)
    message.set_raw("From", encode_address_header([parse_mailbox(config.from_)]))
    message.set_raw("To", encode_address_header(_mailboxes(config.to)))
    if config.cc:
        message.set_raw("Cc", encode_address_header(_mailboxes(config.cc)))
    if config.reply_to:
        message.set_raw("Reply-To", encode_address_header(_mailboxes(config.reply_to)))
    message.set_raw("Subject", encode_text_header("Subject", content.subject))
    message["Date"] = format_datetime(now)
    message["Message-ID"] = message_id_for(request.delivery_id, config.from_)
    message["Auto-Submitted"] = "auto-generated"
    message["X-Auto-Response-Suppress"] = "All"
    rule = clean_header_value(request.rule)
    message.set_raw("X-RevRing-Rule", encode_text_header("X-RevRing-Rule", rule))
    if request.digest is None:
        call_id = clean_header_value(request.event.get("id"))
        if call_id:
            encoded = encode_text_header("X-RevRing-Call-Id", call_id)
            message.set_raw("X-RevRing-Call-Id", encoded)
    message.set_content(content.text, subtype="plain", charset="utf-8")
    if content.html is not None:
        message.add_alternative(content.html, subtype="html", charset="utf-8")
    return message


def parse_message(payload: bytes) -> EmailMessage:
    """A message as sent (`as_bytes(policy=WIRE_POLICY)`) read back, with `\n` line ends
    (`describe_message` of it is that of the message built, with the MIME boundary)."""
    message = BytesParser(policy=WIRE_POLICY).parsebytes(payload.replace(b"\r\n", b"\n"))
    assert isinstance(message, EmailMessage)
    return message


def describe_message(message: EmailMessage, sender: str, recipients: list[str]) -> dict[str, Any]:
    """A JSON-able view of a message as sent: decoded headers, envelope, text and HTML."""
    headers = {name: str(value) for name, value in message.items()}
    text_part = message.get_body(preferencelist=("plain",))
    html_part = message.get_body(preferencelist=("html",))
    return {
        "headers": headers,
        "envelope": {"from": sender, "to": recipients},
        "text": None if text_part is None else text_part.get_content(),
        "html": None if html_part is None else html_part.get_content(),
    }
