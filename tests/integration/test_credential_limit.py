"""One limit on failed credentials per client address (router/web/credential_limits.py), over
real HTTP: bearer tokens on /admin/* and console sign-ins count together, 5 a minute,
then 429 with Retry-After, logged once per burst; the webhook's x-api-key is not counted."""

from __future__ import annotations

import logging
from collections import Counter

from tests.conftest import fresh_event
from tests.service import ADMIN_TOKEN, post_event, running_service

RIGHT = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
WRONG = {"Authorization": "Bearer guess"}


def lockout_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "router.credentials"]


async def test_guessing_the_admin_token_is_cut_off_after_five_and_logged_once(
    tmp_path, write_rules, caplog
):
    async with running_service(write_rules("version: 1\n"), tmp_path / "r.db") as client:
        with caplog.at_level(logging.INFO):
            statuses = Counter()
            for _ in range(300):
                response = await client.get("/admin/deliveries", headers=WRONG)
                statuses[response.status] += 1
            refused = await client.get("/admin/deliveries", headers=WRONG)
            said = (await refused.json())["error"]
            right = await client.get("/admin/deliveries", headers=RIGHT)
    assert statuses == {401: 5, 429: 295}
    assert refused.status == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert "try again in" in said
    assert right.status == 429, "even the right token waits out the lock"
    (line,) = lockout_lines(caplog)
    assert "127.0.0.1" in line and "bearer token x5" in line
    assert ADMIN_TOKEN not in line and "guess" not in line


async def test_console_sign_ins_and_bearer_tokens_share_the_limit(tmp_path, write_rules, caplog):
    async with running_service(write_rules("version: 1\n"), tmp_path / "r.db") as client:
        with caplog.at_level(logging.INFO):
            for _ in range(3):
                signed = await client.post("/ui/login", data={"token": "guess"})
                assert signed.status == 401
            for _ in range(2):
                assert (await client.get("/admin/deliveries", headers=WRONG)).status == 401
            assert (await client.get("/admin/deliveries", headers=RIGHT)).status == 429
            page = await client.post("/ui/login", data={"token": ADMIN_TOKEN})
            assert page.status == 429
            assert "Retry-After" in page.headers
    (line,) = lockout_lines(caplog)
    assert "bearer token x2" in line and "console sign-in x3" in line


async def test_wrong_webhook_keys_do_not_lock_the_address_out(tmp_path, write_rules):
    async with running_service(write_rules("version: 1\n"), tmp_path / "r.db") as client:
        for _ in range(10):
            assert (await post_event(client, fresh_event(), key="wrong")).status == 401
        assert (await post_event(client, fresh_event())).status == 200
        assert (await client.get("/admin/deliveries", headers=RIGHT)).status == 200
