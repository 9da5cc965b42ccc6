"""Header text that cannot break a message: line breaks and control characters made
spaces (`clean_header_value`), and addresses parsed and checked (`parse_mailbox`) rather
than pasted as text."""

from __future__ import annotations

import re
from email import policy
from email.headerregistry import Address
from typing import Any

UNSAFE_HEADER_CHARS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
_SPACES = re.compile(r"\s{2,}")


def clean_header_value(value: Any) -> str:
    """One safe header line: line breaks and control characters become single spaces."""
    text = "" if value is None else str(value)
    return _SPACES.sub(" ", UNSAFE_HEADER_CHARS.sub(" ", text)).strip()


def parse_mailbox(text: str) -> Address:
    """One mailbox (`Name <user@example.com>` or `user@example.com`) as an `Address`.

    Raises ValueError naming the problem: line breaks, several addresses, a missing
    domain, or a non-ASCII address (SMTPUTF8 is not supported; display names may be
    any language).
    """
    if UNSAFE_HEADER_CHARS.search(text):
        raise ValueError(f"{text!r}: an address cannot contain line breaks or control characters")
    try:
        header = policy.default.header_factory("to", text)
        addresses = header.addresses
    except (IndexError, ValueError, TypeError):
        addresses, header = (), None
    if len(addresses) == 1 and not addresses[0].addr_spec.isascii():
        raise ValueError(f"{text!r}: non-ASCII email addresses are not supported")
    if len(addresses) != 1 or header is None or header.defects:
        raise ValueError(f"{text!r} is not one email address such as Name <user@example.com>")
    address = addresses[0]
    if not address.username or not address.domain:
        raise ValueError(f"{text!r} is not one email address such as Name <user@example.com>")
    return address
