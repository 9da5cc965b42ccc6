"""Local stand-ins for the CRMs' APIs (HubSpot, Salesforce, Pipedrive, GoHighLevel), on a
real socket, for the CRM flow recipes: each keeps its contacts and logged calls, and
refuses what the real API refuses (wrong path or method, missing authentication,
missing required JSON fields, an association to no contact) with the status the API
answers. `fail_log` makes the logging request answer 503 that many times first.

With `tokens` (a `tests.oauth_fakes.TokenEndpoint`, served at the CRM's own token path),
a fake takes only the bearer tokens that endpoint issued and did not revoke, as the
OAuth2 CRMs do; `revoke_at` (a path) revokes them all when a request for it arrives,
which that request is then refused (401) for."""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import parse_qs

from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.oauth_fakes import TokenEndpoint

Handler = Callable[[web.Request, Any], Awaitable[web.Response]]


@dataclass
class Seen:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    status: int


def _json(status: int, document: Any) -> web.Response:
    return web.json_response(document, status=status)


class Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class CrmFake:
    """The state and log every fake shares; subclasses route and check requests."""

    secret: str
    fail_log: int = 0
    contacts: list[dict[str, Any]] = field(default_factory=list)
    logged: list[dict[str, Any]] = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)
    server: TestServer | None = None
    routes: list[tuple[str, str, str]] = field(default_factory=list)  # method, path re, handler
    tokens: TokenEndpoint | None = None
    revoke_at: str | None = None
    token_path: ClassVar[str] = ""  # where the CRM's OAuth2 token endpoint is

    async def start(self) -> CrmFake:
        app = web.Application()
        if self.tokens is not None:
            assert self.token_path, f"{type(self).__name__} has no token endpoint"
            app.router.add_post(self.token_path, self.tokens.handle)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self.server = TestServer(app, host="127.0.0.1")
        await self.server.start_server()
        return self

    async def close(self) -> None:
        if self.server is not None:
            await self.server.close()

    @property
    def base(self) -> str:
        assert self.server is not None
        return str(self.server.make_url("")).rstrip("/")

    def authorized(self, request: web.Request) -> bool:
        given = request.headers.get("Authorization", "")
        if self.tokens is not None:
            return given.startswith("Bearer ") and given[7:] in self.tokens.issued
        return given == f"Bearer {self.secret}"

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        if self.revoke_at == request.path and self.tokens is not None:
            self.revoke_at = None
            self.tokens.revoke_all()
        try:
            response = await self.route(request, body)
        except Refused as refused:
            response = _json(refused.status, {"message": refused.message})
        self.seen.append(
            Seen(
                request.method,
                request.path,
                request.query_string,
                dict(request.headers),
                body,
                response.status,
            )
        )
        return response

    async def route(self, request: web.Request, body: bytes) -> web.Response:
        raise NotImplementedError

    def document(self, body: bytes) -> dict[str, Any]:
        try:
            found = json.loads(body)
        except ValueError:
            raise Refused(400, "body is not JSON") from None
        if not isinstance(found, dict):
            raise Refused(400, "body is not a JSON object")
        return found

    def fail_once(self) -> web.Response | None:
        if self.fail_log > 0:
            self.fail_log -= 1
            return _json(503, {"message": "service unavailable"})
        return None

    def contact(self, contact_id: Any) -> dict[str, Any] | None:
        return next((c for c in self.contacts if str(c["id"]) == str(contact_id)), None)

    def by_phone(self, phone: str) -> dict[str, Any] | None:
        return next((c for c in self.contacts if c["phone"] == phone), None)

    def keys(self) -> list[str]:
        return [s.headers.get("Idempotency-Key", "") for s in self.seen]


def _require(condition: bool, message: str, status: int = 400) -> None:
    if not condition:
        raise Refused(status, message)


class HubSpotFake(CrmFake):
    token_path = "/oauth/v1/token"

    async def route(self, request: web.Request, body: bytes) -> web.Response:
        _require(self.authorized(request), "authentication credentials not found", 401)
        _require(request.method == "POST", f"{request.method} not allowed", 405)
        if request.path == "/crm/v3/objects/contacts/search":
            query = self.document(body)
            groups = query.get("filterGroups")
            _require(isinstance(groups, list) and len(groups) == 1, "filterGroups")
            [flt] = groups[0]["filters"]
            _require(flt.get("propertyName") == "phone" and flt.get("operator") == "EQ", "filter")
            _require(isinstance(flt.get("value"), str), "filter value")
            found = self.by_phone(flt["value"])
            results = [] if found is None else [{"id": found["id"], "properties": {}}]
            return _json(200, {"total": len(results), "results": results})
        if request.path == "/crm/v3/objects/contacts":
            properties = self.document(body).get("properties")
            _require(isinstance(properties, dict), "properties is required")
            _require(isinstance(properties.get("phone"), str), "properties.phone")
            contact = {"id": str(501 + len(self.contacts)), "phone": properties["phone"]}
            self.contacts.append(contact)
            return _json(201, {"id": contact["id"], "properties": properties})
        if request.path == "/crm/v3/objects/calls":
            call = self.document(body)
            properties = call.get("properties")
            _require(isinstance(properties, dict), "properties is required")
            _require(isinstance(properties.get("hs_timestamp"), str), "hs_timestamp is required")
            _require(all(isinstance(v, str) for v in properties.values()), "strings only")
            [association] = call["associations"]
            _require(
                association.get("types")
                == [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 194}],
                "association type",
            )
            contact_id = association.get("to", {}).get("id")
            _require(isinstance(contact_id, str), "association to.id must be a string")
            _require(self.contact(contact_id) is not None, f"no contact {contact_id}", 404)
            failed = self.fail_once()
            if failed is not None:
                return failed
            self.logged.append({"contact": contact_id, "properties": properties})
            return _json(201, {"id": str(9000 + len(self.logged))})
        raise Refused(404, f"no route {request.path}")


SOQL = re.compile(r"^SELECT Id FROM Contact WHERE Phone = '([^']*)' LIMIT 1$")


class SalesforceFake(CrmFake):
    token_path = "/services/oauth2/token"

    async def route(self, request: web.Request, body: bytes) -> web.Response:
        _require(self.authorized(request), "Session expired or invalid", 401)
        if request.path == "/services/data/v62.0/query":
            _require(request.method == "GET", "query is GET", 405)
            match = SOQL.match(request.query.get("q", ""))
            _require(match is not None, f"MALFORMED_QUERY: {request.query.get('q')!r}")
            assert match is not None
            found = self.by_phone(match.group(1))
            records = (
                [] if found is None else [{"attributes": {"type": "Contact"}, "Id": found["id"]}]
            )
            return _json(200, {"totalSize": len(records), "done": True, "records": records})
        _require(request.method == "POST", f"{request.method} not allowed", 405)
        if request.path == "/services/data/v62.0/sobjects/Contact":
            fields = self.document(body)
            _require(bool(fields.get("LastName")), "REQUIRED_FIELD_MISSING: LastName")
            contact = {"id": f"003{len(self.contacts):015d}", "phone": fields.get("Phone")}
            self.contacts.append(contact)
            return _json(201, {"id": contact["id"], "success": True, "errors": []})
        if request.path == "/services/data/v62.0/sobjects/Task":
            task = self.document(body)
            _require(task.get("Status") == "Completed", "Status")
            _require(isinstance(task.get("Subject"), str), "Subject")
            _require(self.contact(task.get("WhoId")) is not None, "INVALID_CROSS_REFERENCE_KEY")
            failed = self.fail_once()
            if failed is not None:
                return failed
            self.logged.append({"contact": task["WhoId"], "task": task})
            return _json(201, {"id": f"00T{len(self.logged):015d}", "success": True})
        raise Refused(404, "NOT_FOUND")


class PipedriveFake(CrmFake):
    def authorized(self, request: web.Request) -> bool:
        return request.query.get("api_token") == self.secret

    async def route(self, request: web.Request, body: bytes) -> web.Response:
        _require(self.authorized(request), "unauthorized access", 401)
        if request.path == "/api/v1/persons/search":
            _require(request.method == "GET", "search is GET", 405)
            query = parse_qs(request.query_string)
            term = query.get("term", [""])[0]
            _require(len(term) >= 2, "term must be at least 2 characters")
            _require(query.get("fields") == ["phone"], "fields")
            found = self.by_phone(term)
            items = [] if found is None else [{"result_score": 1, "item": {"id": found["id"]}}]
            return _json(200, {"success": True, "data": {"items": items}})
        _require(request.method == "POST", f"{request.method} not allowed", 405)
        if request.path == "/api/v1/persons":
            person = self.document(body)
            _require(bool(person.get("name")), "name is required")
            phones = person.get("phone")
            _require(isinstance(phones, list) and bool(phones), "phone")
            contact = {"id": 42 + len(self.contacts), "phone": phones[0]["value"]}
            self.contacts.append(contact)
            return _json(201, {"success": True, "data": {"id": contact["id"]}})
        if request.path == "/api/v1/activities":
            activity = self.document(body)
            _require(isinstance(activity.get("subject"), str), "subject")
            _require(activity.get("type") == "call", "type")
            person = activity.get("person_id")
            _require(isinstance(person, int) and not isinstance(person, bool), "person_id int")
            _require(self.contact(person) is not None, "person not found", 404)
            failed = self.fail_once()
            if failed is not None:
                return failed
            self.logged.append({"contact": person, "activity": activity})
            return _json(201, {"success": True, "data": {"id": len(self.logged)}})
        raise Refused(404, "not found")


class GoHighLevelFake(CrmFake):
    location: str = "loc-1"

    async def route(self, request: web.Request, body: bytes) -> web.Response:
        _require(self.authorized(request), "Invalid JWT", 401)
        _require(request.headers.get("Version") == "2021-07-28", "Version header missing")
        if request.path == "/contacts/search/duplicate":
            _require(request.method == "GET", "GET only", 405)
            _require(request.query.get("locationId") == self.location, "locationId")
            found = self.by_phone(request.query.get("number", ""))
            return _json(200, {"contact": None if found is None else {"id": found["id"]}})
        _require(request.method == "POST", f"{request.method} not allowed", 405)
        if request.path == "/contacts/":
            fields = self.document(body)
            _require(fields.get("locationId") == self.location, "locationId is required")
            _require(isinstance(fields.get("phone"), str), "phone")
            contact = {"id": f"ghl{len(self.contacts)}", "phone": fields["phone"]}
            self.contacts.append(contact)
            return _json(201, {"contact": {"id": contact["id"]}})
        match = re.fullmatch(r"/contacts/([^/]+)/notes", request.path)
        if match:
            _require(self.contact(match.group(1)) is not None, "Contact not found", 400)
            note = self.document(body)
            _require(isinstance(note.get("body"), str) and bool(note["body"]), "body required")
            failed = self.fail_once()
            if failed is not None:
                return failed
            self.logged.append({"contact": match.group(1), "note": note})
            return _json(201, {"note": {"id": f"n{len(self.logged)}", "body": note["body"]}})
        raise Refused(404, "not found")
