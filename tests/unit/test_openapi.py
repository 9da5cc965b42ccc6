"""The OpenAPI document served at /openapi.json describes exactly the routes the app
registers (the console's /ui/* aside), and every reference in it resolves."""

from __future__ import annotations

from typing import Any

from router.core.events import PostCallEvent
from router.web.app import ServiceSettings, build_app
from router.web.openapi import openapi_document

METHODS = {"get", "post", "put", "patch", "delete"}


def app_routes() -> set[tuple[str, str]]:
    app = build_app(ServiceSettings(store_url="memory://openapi", admin_token="token"))
    routes = set()
    for route in app.router.routes():
        path = route.resource.canonical if route.resource is not None else ""
        if route.method == "HEAD" or path.startswith("/ui"):
            continue
        routes.add((route.method.lower(), path))
    return routes


def documented_routes() -> set[tuple[str, str]]:
    return {
        (method, path)
        for path, operations in openapi_document()["paths"].items()
        for method in operations
        if method in METHODS
    }


def test_every_route_the_app_registers_is_documented_and_nothing_else() -> None:
    registered = app_routes()
    assert ("post", "/webhooks/revring") in registered and ("get", "/openapi.json") in registered
    assert registered == documented_routes()


def test_every_route_has_a_summary_and_documented_answers() -> None:
    for path, operations in openapi_document()["paths"].items():
        for method, operation in operations.items():
            assert operation["summary"], (method, path)
            assert operation["responses"], (method, path)
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "path":
                    assert "{" + parameter["name"] + "}" in path


def test_every_reference_resolves() -> None:
    document = openapi_document()

    def refs(node: Any) -> list[str]:
        if isinstance(node, dict):
            found = [node["$ref"]] if "$ref" in node else []
            return found + [ref for value in node.values() for ref in refs(value)]
        if isinstance(node, list):
            return [ref for value in node for ref in refs(value)]
        return []

    found = refs(document)
    assert found
    for ref in found:
        assert ref.startswith("#/components/schemas/")
        assert ref.rsplit("/", 1)[-1] in document["components"]["schemas"]
    for operations in document["paths"].values():
        for operation in operations.values():
            for requirement in operation.get("security", []):
                assert set(requirement) <= set(document["components"]["securitySchemes"])


def test_the_webhook_answers_and_request_schema_are_the_ones_ingest_uses() -> None:
    webhook = openapi_document()["paths"]["/webhooks/revring"]["post"]
    assert set(webhook["responses"]) == {"200", "400", "401", "408", "413", "415", "422", "503"}
    schema = openapi_document()["components"]["schemas"]["PostCallEvent"]
    assert set(schema["required"]) == {
        name for name, field in PostCallEvent.model_fields.items() if field.is_required()
    }
    assert set(schema["properties"]) == set(PostCallEvent.model_fields)


def test_the_document_is_openapi_3_1_with_the_package_version() -> None:
    from router import __version__

    document = openapi_document()
    assert document["openapi"] == "3.1.0"
    assert document["info"]["version"] == __version__
