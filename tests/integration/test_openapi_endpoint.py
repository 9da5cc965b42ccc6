"""GET /openapi.json on a running service: no key needed, the document as built."""

from __future__ import annotations

from pathlib import Path

from router.web.openapi import openapi_document
from tests.service import running_service


async def test_the_document_is_served_without_authentication(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("version: 1\nsinks:\n  log: {type: log}\nrules: []\n")
    async with running_service(rules, tmp_path / "router.db") as client:
        answer = await client.get("/openapi.json")
        assert answer.status == 200
        assert answer.content_type == "application/json"
        assert await answer.json() == openapi_document()
