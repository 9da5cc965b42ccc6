"""The single sign-on page's examples hold: each block of settings is accepted as `serve`
reads it, each `ROUTER_OIDC_ROLES` parses, and the roles table gives the roles it says."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from router.operators.oidc import RoleMap, oidc_settings_from_env

PAGE = (Path(__file__).resolve().parents[2] / "docs" / "single-sign-on.md").read_text()


def settings_blocks() -> list[dict[str, str]]:
    blocks = re.findall(r"```bash\n(.*?)```", PAGE, re.S)
    found = []
    for block in blocks:
        env = {}
        for line in block.splitlines():
            name, _, value = line.partition("=")
            env[name.strip()] = value.split("#")[0].strip()
        found.append(env)
    return found


def test_the_page_has_settings_for_keycloak_and_google() -> None:
    issuers = [env["ROUTER_OIDC_ISSUER"] for env in settings_blocks()]
    assert issuers == [
        "https://sso.example.com/realms/ops",
        "https://sso.example.com/realms/ops",
        "https://accounts.google.com",
    ]


@pytest.mark.parametrize("env", settings_blocks(), ids=lambda env: env["ROUTER_OIDC_ISSUER"])
def test_each_settings_block_is_accepted(env: dict[str, str]) -> None:
    settings = oidc_settings_from_env(env)
    assert settings is not None
    assert settings.redirect_uri == "https://router.example.com/ui/oidc/callback"
    assert settings.redirect_uri in PAGE


def test_every_mapping_on_the_page_parses() -> None:
    mappings = re.findall(r"ROUTER_OIDC_ROLES=([^\s`]+)", PAGE)
    assert len(mappings) >= 4
    for mapping in mappings:
        assert RoleMap.parse(mapping).rules


def roles_table() -> list[tuple[str, str, str]]:
    rows = re.findall(r"^\| `([^`]+)` \| `(.+)` \| (\w+) \|$", PAGE, re.M)
    assert len(rows) == 5
    return rows


@pytest.mark.parametrize(("mapping", "claims", "role"), roles_table())
def test_the_roles_table_gives_the_roles_it_says(mapping: str, claims: str, role: str) -> None:
    got = RoleMap.parse(mapping).role_for(json.loads("{" + claims + "}"))
    assert (got or "refused") == role
