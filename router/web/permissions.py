"""Which role each route needs (DESIGN.md section 14), in one table for the admin API and
the console alike: viewer reads every page and every `GET /admin/*`; operator also
replays, acknowledges, silences, pauses and resumes; admin also reloads, backfills,
releases, forgets and manages users. A route that is not in the table needs viewer when
it only reads (GET, HEAD) and admin when it may change something, so a new route is
guarded without being listed. Pure: no request is read here, only its method and route.
"""

from __future__ import annotations

from dataclasses import dataclass

from router.operators import Principal, Role, role_allows

READING_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class Permission:
    """What a route does (`action`, as the audit names it, and `says`, for people) and
    the least role that may do it."""

    role: Role
    action: str
    says: str


READ = Permission("viewer", "read", "read this")
CHANGE_UNLISTED = Permission("admin", "change", "change this")

# (method, route as written in the router, the console's under /ui) -> permission.
ROUTES: dict[tuple[str, str], Permission] = {
    # the admin API
    ("POST", "/admin/deliveries/{id}/replay"): Permission("operator", "replay", "replay"),
    ("POST", "/admin/deliveries/replay"): Permission("operator", "replay", "replay"),
    ("POST", "/admin/deliveries/{id}/acknowledge"): Permission(
        "operator", "acknowledge", "acknowledge"
    ),
    ("POST", "/admin/silences"): Permission("operator", "silence.create", "create silences"),
    ("DELETE", "/admin/silences/{id}"): Permission("operator", "silence.expire", "expire silences"),
    ("POST", "/admin/sinks/{name}/pause"): Permission("operator", "sink.pause", "pause sinks"),
    ("POST", "/admin/sinks/{name}/resume"): Permission("operator", "sink.resume", "resume sinks"),
    ("POST", "/admin/reload"): Permission("admin", "reload", "reload"),
    ("POST", "/admin/backfill"): Permission("admin", "backfill", "backfill"),
    ("POST", "/admin/events/{id}/release"): Permission("admin", "release", "release held calls"),
    ("POST", "/admin/forget"): Permission("admin", "forget", "forget callers"),
    # the console
    ("POST", "/ui/logout"): Permission("viewer", "signout", "sign out"),
    ("POST", "/ui/rules/playground"): Permission("viewer", "read", "try the playground"),
    ("POST", "/ui/calls/{id}/replay/{delivery}"): Permission("operator", "replay", "replay"),
    ("POST", "/ui/deliveries/{id}/replay"): Permission("operator", "replay", "replay"),
    ("POST", "/ui/deliveries/replay-dead"): Permission("operator", "replay", "replay"),
    ("POST", "/ui/silences"): Permission("operator", "silence.create", "create silences"),
    ("POST", "/ui/silences/{id}/expire"): Permission(
        "operator", "silence.expire", "expire silences"
    ),
    ("POST", "/ui/deliveries/{id}/acknowledge"): Permission(
        "operator", "acknowledge", "acknowledge"
    ),
    ("POST", "/ui/forget"): Permission("admin", "forget", "forget callers"),
}

# The least role of each action, for pages that hide or disable what a role may not do.
ACTION_ROLES: dict[str, Role] = {}
for _permission in ROUTES.values():
    ACTION_ROLES.setdefault(_permission.action, _permission.role)
ACTION_ROLES["users"] = "admin"  # managing users: `revring-router user`, admins' business


def permission(method: str, route: str | None) -> Permission:
    """What `method` on `route` (its pattern, `/admin/deliveries/{id}/replay`; None for an
    address no route matched) needs."""
    method = method.upper()
    found = ROUTES.get((method, route)) if route is not None else None
    if found is not None:
        return found
    return READ if method in READING_METHODS else CHANGE_UNLISTED


def refusal(principal: Principal, needed: Permission) -> str | None:
    """Why `principal` may not do it ("role viewer may not replay; needs operator"), or
    None when they may."""
    if role_allows(principal.role, needed.role):
        return None
    return f"role {principal.role} may not {needed.says}; needs {needed.role}"


def may(principal: Principal | None, action: str) -> bool:
    """Whether `principal` may do `action` (an action of the table: replay, silence.create,
    ...); an action not in the table needs admin."""
    if principal is None:
        return False
    return role_allows(principal.role, ACTION_ROLES.get(action, "admin"))
