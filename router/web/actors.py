"""Who makes a request (DESIGN.md section 14): the actor's name, set where the credential
is checked (the admin API's bearer check, the console's session check) and read where a
change is recorded in the audit.

It is kept under the request key `ACTOR` (aiohttp warns about plain string keys);
`router.web.credentials.set_principal` sets it with the principal."""

from __future__ import annotations

from aiohttp import web

ACTOR = web.RequestKey("actor", str)
UNKNOWN = "unknown"


def set_actor(request: web.Request, name: str) -> None:
    request[ACTOR] = name


def actor_of(request: web.Request) -> str:
    """The name of whoever made the request: a user name, `token`, ..."""
    return request.get(ACTOR) or UNKNOWN
