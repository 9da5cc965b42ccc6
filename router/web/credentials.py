"""Who a request is: `ROUTER_ADMIN_TOKEN` (an admin, actor "token"), a named user of
`ROUTER_USERS_FILE` with their password (the console's sign-in) or a personal API token
(a bearer token on `/admin/*`). The console and the admin API share it, and share the
limit on failed credentials (`router.web.credential_limits`, counted by their callers).

Argon2 verifications run off the event loop. A personal token that verified once is
remembered by its SHA-256 (never the token) together with the hash it matched, and
holds only while its user still has that hash in the users file as read last: removing
the user or the token from the file, then reloading, ends it.

`set_principal` puts the principal on the request (`PRINCIPAL`) and its name in
`request["actor"]`, where the audit reads who acted.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections import OrderedDict

from aiohttp import web

from router.operators import ADMIN_TOKEN_ACTOR, Principal, Users, UsersFile
from router.operators.users import TOKEN_PREFIX, check_password, secret_matches, token_user
from router.web.actors import set_actor

PRINCIPAL: web.RequestKey[Principal] = web.RequestKey("principal", Principal)
"""Who the request acts as, set once its credential is checked."""
"""`request["actor"]`: the name of who acts (a user's name, or "token"), for the audit."""
ADMIN = Principal(ADMIN_TOKEN_ACTOR, "admin", "token")
REMEMBERED_TOKENS = 1024


def set_principal(request: web.Request, principal: Principal) -> None:
    """Record who the request acts as: `request[PRINCIPAL]` and its actor (`router.web.actors`)."""
    request[PRINCIPAL] = principal
    set_actor(request, principal.name)


def _bytes(text: str) -> bytes:
    """Text as bytes for comparing, whatever it holds (form values can carry lone
    surrogates, which strict UTF-8 refuses)."""
    return text.encode("utf-8", "surrogatepass")


def _digest(secret: str) -> str:
    return hashlib.sha256(_bytes(secret)).hexdigest()


class Credentials:
    """The credentials the service accepts, as configured now (the users as last read)."""

    def __init__(self, admin_token: str | None, users: UsersFile | None) -> None:
        self.admin_token = admin_token or None
        self.users_file = users
        self._verified: OrderedDict[str, tuple[str, str]] = OrderedDict()

    @property
    def configured(self) -> bool:
        """Whether anyone can sign in at all (without: the console and admin API are 404)."""
        return self.admin_token is not None or self.users_file is not None

    @property
    def users(self) -> Users:
        return Users() if self.users_file is None else self.users_file.users

    def admin_token_matches(self, presented: str) -> bool:
        """Whether `presented` is `ROUTER_ADMIN_TOKEN` (constant time)."""
        if self.admin_token is None:
            return False
        return hmac.compare_digest(_bytes(presented), _bytes(self.admin_token))

    async def password(self, name: str, password: str) -> Principal | None:
        """The user these are the name and password of, or None."""
        users = self.users
        user = await asyncio.to_thread(check_password, users, name, password)
        return None if user is None else Principal(user.name, user.role, "password")

    async def bearer(self, header: bytes) -> Principal | None:
        """Who an `Authorization` header's bearer token is, or None."""
        scheme, _, presented_bytes = header.partition(b" ")
        if scheme.lower() != b"bearer" or not presented_bytes:
            return None
        try:
            presented = presented_bytes.decode("ascii").strip()
        except UnicodeDecodeError:
            return None
        if self.admin_token_matches(presented):
            return ADMIN
        if presented.startswith(TOKEN_PREFIX):
            return await self.personal_token(presented)
        return None

    async def personal_token(self, token: str) -> Principal | None:
        users = self.users
        digest = _digest(token)
        remembered = self._verified.get(digest)
        if remembered is not None:
            name, encoded = remembered
            user = users.find(name)
            if user is not None and encoded in user.tokens:
                self._verified.move_to_end(digest)
                return Principal(user.name, user.role, "personal token")
            del self._verified[digest]
        found = token_user(users, token)
        if found is None:
            return None
        user, encoded = found
        secret = token.rpartition("_")[2]
        if not await asyncio.to_thread(secret_matches, encoded, secret):
            return None
        self._verified[digest] = (user.name, encoded)
        while len(self._verified) > REMEMBERED_TOKENS:
            self._verified.popitem(last=False)
        return Principal(user.name, user.role, "personal token")

    # --- binding a console session to the credential it was started with ---

    def _binding_key(self, principal: Principal) -> str | None:
        """The secret a session of `principal` is bound to, or None when there is none
        any longer (the admin token unset, the user gone or without a password)."""
        if principal.via == "token":
            return self.admin_token
        if principal.via == "password":
            user = self.users.find(principal.name)
            return None if user is None else user.password_hash
        return ""  # signed in elsewhere (single sign-on): bound to nothing here

    def session_mac(self, principal: Principal, session_id: str) -> str:
        """The HMAC binding a new session to its credential: changing the admin token or
        the user's password ends the session."""
        key = self._binding_key(principal) or ""
        return hmac.new(_bytes(key), _bytes(f"session:{session_id}"), hashlib.sha256).hexdigest()

    def session_principal(
        self, principal: Principal, session_id: str, mac: str
    ) -> Principal | None:
        """Who a stored session acts as now: None when its credential is gone or changed;
        a user of the users file gets their role as the file says now."""
        key = self._binding_key(principal)
        if key is None:
            return None
        expected = hmac.new(_bytes(key), _bytes(f"session:{session_id}"), hashlib.sha256)
        if not hmac.compare_digest(expected.hexdigest(), mac):
            return None
        if principal.via == "password":
            user = self.users.find(principal.name)
            if user is None:
                return None
            return Principal(user.name, user.role, "password")
        if principal.via == "token":
            return ADMIN
        return principal
