"""Console sessions, kept in the store (DESIGN.md section 14): signing out ends a session on
every replica and across restarts.

The cookie holds a random session id; the store holds its SHA-256 (a copy of the table
signs nobody in), who signed in and how, their role at the time, the session's CSRF token
and its expiry, and an HMAC binding it to the credential used (`Credentials.session_mac`:
changing the admin token or the user's password ends it). Each request reads its session
back and checks its user against the users as last read: a user removed from the users
file is signed out, one whose role changed gets the new role, at the next request.
(Failed sign-ins count in the limit on failed credentials per address,
`router.web.credential_limits`.)
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from router.operators import Principal, role_named
from router.store import ConsoleSessions, SessionRecord
from router.web.credentials import Credentials

SESSION_COOKIE = "router_console"
SESSION_SECONDS = 8 * 3600.0


def _bytes(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def session_hash(session_id: str) -> str:
    """What the store keeps of a session id."""
    return hashlib.sha256(_bytes(session_id)).hexdigest()


@dataclass(frozen=True)
class Session:
    id_hash: str
    principal: Principal
    expires_at: float
    csrf_token: str


class Sessions:
    """Starts, checks and ends console sessions, and checks their CSRF tokens."""

    def __init__(
        self,
        store: ConsoleSessions,
        credentials: Credentials,
        lifetime: float = SESSION_SECONDS,
    ) -> None:
        self.store = store
        self.credentials = credentials
        self.lifetime = lifetime

    async def start(self, principal: Principal, now: float) -> tuple[Session, str]:
        """A new session for `principal`, stored, and its cookie value."""
        session_id = secrets.token_urlsafe(32)
        record = SessionRecord(
            id_hash=session_hash(session_id),
            user_name=principal.name,
            role=principal.role,
            via=principal.via,
            credential_mac=self.credentials.session_mac(principal, session_id),
            csrf=secrets.token_urlsafe(24),
            created_at=now,
            expires_at=float(int(now + self.lifetime)),
        )
        await self.store.start_session(record)
        return Session(record.id_hash, principal, record.expires_at, record.csrf), session_id

    async def check(self, cookie: str | None, now: float) -> Session | None:
        """The session a cookie value holds, if it is stored, unexpired, its credential
        unchanged and its user still there (with the role they have now)."""
        if not cookie or len(cookie) > 200:
            return None
        id_hash = session_hash(cookie)
        record = await self.store.session(id_hash, now)
        if record is None:
            return None
        role = role_named(record.role)
        if role is None:
            return None
        stored = Principal(record.user_name, role, record.via)
        principal = self.credentials.session_principal(stored, cookie, record.credential_mac)
        if principal is None:
            await self.store.end_session(id_hash)  # its user or credential is gone
            return None
        return Session(id_hash, principal, record.expires_at, record.csrf)

    @staticmethod
    def csrf_ok(session: Session, presented: str | None) -> bool:
        return presented is not None and hmac.compare_digest(
            _bytes(presented), _bytes(session.csrf_token)
        )

    async def end(self, session: Session) -> None:
        """Sign out: the session's cookie is refused from now on, by every replica."""
        await self.store.end_session(session.id_hash)
