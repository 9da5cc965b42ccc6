"""Console sign-in: the admin token checked in constant time, a signed and expiring session
cookie, and a CSRF token bound to the session. (Failed sign-ins count in the limit on
failed credentials per address, `router.web.credential_limits`.)

The cookie holds `<expires>.<session id>.<signature>`, signed with HMAC-SHA256 under a
key derived from `ROUTER_ADMIN_TOKEN`: changing the token ends every session. Signing
out forgets the session id in this process until it would have expired anyway.
Pure logic apart from the clock, which callers pass in.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

SESSION_COOKIE = "router_console"
SESSION_SECONDS = 8 * 3600.0
_KEY_PURPOSE = b"revring-router console session v1"


def _bytes(text: str) -> bytes:
    """Text as bytes for comparing, whatever it holds (form values can carry lone
    surrogates, which strict UTF-8 refuses)."""
    return text.encode("utf-8", "surrogatepass")


def token_matches(presented: str, token: str) -> bool:
    """Whether the presented sign-in token is the admin token (constant time)."""
    return hmac.compare_digest(_bytes(presented), _bytes(token))


@dataclass(frozen=True)
class Session:
    id: str
    expires_at: float
    csrf_token: str


class Sessions:
    """Issues and checks session cookies and their CSRF tokens."""

    def __init__(self, admin_token: str, lifetime: float = SESSION_SECONDS) -> None:
        self._key = hmac.new(_bytes(admin_token), _KEY_PURPOSE, hashlib.sha256).digest()
        self.lifetime = lifetime
        self._ended: dict[str, float] = {}  # signed-out session id -> its expiry

    def _sign(self, purpose: str, text: str) -> str:
        message = _bytes(f"{purpose}:{text}")
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def _session(self, session_id: str, expires_at: float) -> Session:
        return Session(session_id, expires_at, self._sign("csrf", session_id))

    def issue(self, now: float) -> tuple[Session, str]:
        """A new session and its cookie value."""
        session_id = secrets.token_urlsafe(24)
        expires_at = int(now + self.lifetime)
        signed = f"{expires_at}.{session_id}"
        return self._session(session_id, expires_at), f"{signed}.{self._sign('session', signed)}"

    def check(self, cookie: str | None, now: float) -> Session | None:
        """The session a cookie value holds, if it is genuine, unexpired and not ended."""
        if not cookie:
            return None
        expires_text, _, rest = cookie.partition(".")
        session_id, _, signature = rest.rpartition(".")
        expected = self._sign("session", f"{expires_text}.{session_id}")
        if not hmac.compare_digest(_bytes(signature), _bytes(expected)):
            return None
        try:
            expires_at = float(expires_text)
        except ValueError:
            return None
        if now >= expires_at or session_id in self._ended:
            return None
        return self._session(session_id, expires_at)

    def csrf_ok(self, session: Session, presented: str | None) -> bool:
        return presented is not None and hmac.compare_digest(
            _bytes(presented), _bytes(session.csrf_token)
        )

    def end(self, session: Session, now: float) -> None:
        """Sign out: the session's cookie is refused from now on."""
        self._ended = {sid: until for sid, until in self._ended.items() if until > now}
        self._ended[session.id] = session.expires_at
