"""ROUTER_PUBLIC_URL: the router's external base URL, which single sign-on sends people
back to and dead-delivery notices link the console with. One check for both."""

from __future__ import annotations

from urllib.parse import urlsplit

PUBLIC_URL_VARIABLE = "ROUTER_PUBLIC_URL"


def public_base_url(text: str) -> str:
    """`text` as a base URL without its trailing slash; ValueError naming the variable
    when it is not an http(s) URL with a host and no query or fragment."""
    try:
        parts = urlsplit(text.strip())
        host = parts.hostname
    except ValueError:
        host = None
    if host is None or parts.scheme not in ("https", "http") or parts.query or parts.fragment:
        raise ValueError(
            f"{PUBLIC_URL_VARIABLE} must be the router's external http(s) base URL"
            f" (such as https://router.example.com), got {text!r}"
        )
    return text.strip().rstrip("/")
