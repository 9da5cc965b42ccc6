"""The google_sheets sink (DESIGN.md section 17) against a fake Google on real sockets:
the token endpoint verifies the service account's signed assertion with the PUBLIC key
of a key made here, the Sheets API takes the rows; a digest appends its calls in one
request; Google's errors are classified; `check` refuses a missing or broken key file
and a bad range without quoting the key; nothing secret is kept."""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from router.config import ConfigError, parse_config
from router.core.samples import sample_event
from router.store import Store
from router.store.sqlite import SQLiteStore
from sinks.base import DeliveryRequest, Digest, Permanent, Retryable, SinkResources
from sinks.google_sheets import GoogleSheetsConfig, GoogleSheetsSink
from tests.conftest import fresh_event
from tests.service import ADMIN_TOKEN, parts, post_event, running_service, wait_for
from tests.sheets_fake import (
    CLIENT_EMAIL,
    SHEET_ID,
    FakeGoogle,
    google_answer,
    new_private_key,
    pem_of,
    service_account_key,
    start_google,
)

ROW = ["{{ id }}", "{{ status }}", "{{ fromNumber | mask_phone }}", "{{ durationSeconds }}"]
PRIVATE_KEY = new_private_key()  # made once: RSA key generation is slow


@pytest.fixture
async def google() -> AsyncIterator[FakeGoogle]:
    fake, server = await start_google(PRIVATE_KEY.public_key())
    fake.server = server  # type: ignore[attr-defined]
    yield fake
    await server.close()


def api_url(google: FakeGoogle) -> str:
    return google.token_url.removesuffix("/token")


def settings(google: FakeGoogle, key_file: Path, **changes: Any) -> GoogleSheetsConfig:
    return GoogleSheetsConfig.model_validate(
        {
            "type": "google_sheets",
            "spreadsheet_id": SHEET_ID,
            "range": "Calls!A:F",
            "credentials_file": str(key_file),
            "row": ROW,
            "api_url": api_url(google),
            **changes,
        }
    )


@pytest.fixture
def key_file(tmp_path: Path, google: FakeGoogle) -> Path:
    return service_account_key(tmp_path / "sa.json", PRIVATE_KEY, google.token_url)


def request(number: int = 1, digest: Digest | None = None) -> DeliveryRequest:
    event = sample_event()
    return DeliveryRequest(f"d-{number}", str(event["id"]), "call-log", "all", event, digest=digest)


def sink_of(config: GoogleSheetsConfig, store: Store | None = None) -> GoogleSheetsSink:
    return GoogleSheetsSink("call-log", config, SinkResources(tokens=store))


async def test_each_call_appends_a_row_with_a_token_got_by_a_signed_assertion(
    google: FakeGoogle, key_file: Path, tmp_path: Path
) -> None:
    store = SQLiteStore(tmp_path / "router.db")
    await store.open()
    sink = sink_of(settings(google, key_file), store)
    try:
        first = await sink.transmit(sink.build(request(1)))
        await sink.transmit(sink.build(request(2)))
    finally:
        await sink.close()
        await store.close()
    event = sample_event()
    assert first.status_code == 200
    assert len(google.appends) == 2
    for append in google.appends:
        [[call_id, status, number, duration]] = append["values"]
        assert (call_id, status, duration) == (
            str(event["id"]),
            event["status"],
            str(event["durationSeconds"]),
        )
        assert "•" in number and number != event["fromNumber"]
    assert {(a["sheet"], a["range"]) for a in google.appends} == {(SHEET_ID, "Calls!A:F")}
    [claims] = google.grants  # one token for both rows
    assert claims["iss"] == CLIENT_EMAIL and claims["aud"] == google.token_url
    assert google.refusals == []
    shown = str(first.exchange)
    assert google.issued[0] not in shown and "Bearer ***" in shown


async def test_an_assertion_signed_by_another_key_is_refused_as_a_permanent_auth_failure(
    google: FakeGoogle, tmp_path: Path
) -> None:
    other = service_account_key(tmp_path / "other.json", new_private_key(), google.token_url)
    sink = sink_of(settings(google, other))
    with pytest.raises(Permanent) as refused:
        await sink.transmit(sink.build(request()))
    await sink.close()
    assert refused.value.reason == (
        "sink 'call-log' auth: token endpoint answered 400 invalid_grant: Invalid JWT Signature."
    )
    assert google.refusals == ["Invalid JWT Signature."] and google.appends == []
    exchange = json.dumps(str(refused.value.exchange))
    assert "assertion=***" in exchange
    assert "eyJ" not in exchange, "the signed assertion is a credential: masked"


async def test_token_url_overrides_the_key_files_token_uri(
    google: FakeGoogle, tmp_path: Path
) -> None:
    key = service_account_key(tmp_path / "sa.json", PRIVATE_KEY, "https://127.0.0.1:9/nowhere")
    sink = sink_of(settings(google, key, token_url=google.token_url))
    await sink.transmit(sink.build(request()))
    await sink.close()
    assert len(google.grants) == 1 and len(google.appends) == 1


async def test_a_digest_appends_one_row_per_call_in_one_request(
    google: FakeGoogle, key_file: Path
) -> None:
    calls = [sample_event() | {"id": f"call-{n}", "durationSeconds": n} for n in range(3)]
    digest = Digest({}, "2026-12-07T10:00:00+00:00", "2026-12-07T10:05:00+00:00", calls)
    config = settings(google, key_file, row=["{{ id }}", "{{ durationSeconds }}", "{{ count }}"])
    sink = sink_of(config)
    await sink.transmit(sink.build(request(digest=digest)))
    await sink.close()
    [append] = google.appends
    assert append["values"] == [["call-0", "0", "3"], ["call-1", "1", "3"], ["call-2", "2", "3"]]


async def test_a_token_google_no_longer_takes_is_renewed_once(
    google: FakeGoogle, key_file: Path
) -> None:
    sink = sink_of(settings(google, key_file))
    await sink.transmit(sink.build(request(1)))
    google.issued.clear()  # revoked
    result = await sink.transmit(sink.build(request(2)))
    await sink.close()
    assert result.status_code == 200
    assert len(google.grants) == 2 and len(google.appends) == 2


@pytest.mark.parametrize(
    ("status", "message", "headers", "kind", "wait"),
    [
        (
            429,
            "Quota exceeded for quota metric 'Write requests'",
            {"Retry-After": "7"},
            Retryable,
            7,
        ),
        (503, "The service is currently unavailable.", {}, Retryable, None),
        (400, "Unable to parse range: Cals!A:F", {}, Permanent, None),
        (403, "The caller does not have permission", {}, Permanent, None),
        (404, "Requested entity was not found.", {}, Permanent, None),
    ],
)
async def test_google_errors_are_classified_with_googles_message(
    google: FakeGoogle,
    key_file: Path,
    status: int,
    message: str,
    headers: dict[str, str],
    kind: type,
    wait: float | None,
) -> None:
    google.answers.append(google_answer(status, message, **headers))
    sink = sink_of(settings(google, key_file))
    with pytest.raises(kind) as failed:
        await sink.transmit(sink.build(request()))
    await sink.close()
    assert failed.value.reason == f"google sheets answered {status}: {message}"
    assert failed.value.status_code == status
    if kind is Retryable:
        assert failed.value.retry_after == wait


def rules(key_path: str, sheet_range: str = "Calls!A:F") -> str:
    return f"""version: 1
sinks:
  call-log:
    type: google_sheets
    spreadsheet_id: {SHEET_ID}
    range: "{sheet_range}"
    credentials_file: {key_path}
    row: ["{{{{ id }}}}"]
rules:
  - name: all
    when: {{}}
    to: [call-log]
"""


def check_errors(text: str) -> list[str]:
    with pytest.raises(ConfigError) as refused:
        parse_config(text, "rules.yaml", environ={})
    return [str(error) for error in refused.value.errors]


def test_check_refuses_a_missing_key_file_at_its_line(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.json"
    [error] = check_errors(rules(str(missing)))
    assert error.startswith("rules.yaml:7:")
    assert f"cannot read {missing}: No such file or directory" in error


def test_check_refuses_a_broken_key_without_quoting_it(tmp_path: Path) -> None:
    pem = pem_of(PRIVATE_KEY)
    broken = pem.replace(pem.splitlines()[5], "A" * 64)
    path = tmp_path / "sa.json"
    path.write_text(
        json.dumps({"type": "service_account", "client_email": CLIENT_EMAIL, "private_key": broken})
    )
    [error] = check_errors(rules(str(path)))
    assert "private_key is not a PEM RSA private key" in error
    for line in broken.splitlines()[1:-1]:
        assert line not in error
    path.write_text(json.dumps({"type": "authorized_user", "refresh_token": "rt-user-secret-1"}))
    [error] = check_errors(rules(str(path)))
    assert "is not a service account's key" in error and "rt-user-secret-1" not in error
    path.write_text("not json " + pem)
    [error] = check_errors(rules(str(path)))
    assert "is not JSON" in error and pem.splitlines()[1] not in error


def test_check_refuses_a_range_that_is_not_a1_notation(key_file: Path) -> None:
    [error] = check_errors(rules(str(key_file), "Calls!A::F"))
    assert error.startswith("rules.yaml:6:") and "is not A1 notation" in error
    config = parse_config(rules(str(key_file), "'Call log'!A2:F"), "rules.yaml", environ={})
    assert config.settings.sinks["call-log"].range == "'Call log'!A2:F"


def test_the_private_key_is_a_secret_of_the_settings(google: FakeGoogle, key_file: Path) -> None:
    config = settings(google, key_file)
    assert pem_of(PRIVATE_KEY) in config.secret_values()
    assert "PRIVATE KEY" not in repr(config)
    sink = sink_of(config)
    shown = sink.preview(request())
    assert shown["headers"]["Authorization"] == "Bearer ***"
    assert shown["body"]["values"][0][0] == str(sample_event()["id"])


def test_an_unset_key_file_leaves_the_sink_unconfigured(google: FakeGoogle) -> None:
    config = settings(google, Path(), credentials_file="")
    assert config.missing_settings() == ["credentials_file"]


async def test_the_router_appends_a_row_per_call_and_keeps_no_secret(
    google: FakeGoogle, key_file: Path, tmp_path: Path, write_rules, caplog
) -> None:
    caplog.set_level(logging.DEBUG)
    rules_text = f"""version: 1
sinks:
  call-log:
    type: google_sheets
    spreadsheet_id: {SHEET_ID}
    range: "Calls!A:F"
    credentials_file: {key_file}
    api_url: {api_url(google)}
    row: ["{{{{ id }}}}", "{{{{ status }}}}"]
rules:
  - name: all
    when: {{}}
    to: [call-log]
"""
    database = tmp_path / "router.db"
    events = [fresh_event(), fresh_event()]
    async with running_service(write_rules(rules_text), database) as client:
        for event in events:
            assert (await post_event(client, event)).status == 200
        store, *_ = parts(client)
        await wait_for(lambda: len(google.appends) == 2)
        await wait_for(async_count(store, 2))
        [delivery, *_] = await store.list_deliveries("delivered")
        auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        api_text = await (await client.get(f"/admin/deliveries/{delivery.id}", headers=auth)).text()
    assert sorted(row[0][0] for row in (a["values"] for a in google.appends)) == sorted(
        event["id"] for event in events
    )
    assert len(google.grants) == 1
    with sqlite3.connect(database) as db:
        stored = json.dumps(db.execute("SELECT * FROM attempts").fetchall())
    db.close()
    secrets = [google.issued[0], *pem_of(PRIVATE_KEY).splitlines()[1:-1]]
    for secret in secrets:
        assert secret not in api_text and secret not in stored and secret not in caplog.text
    assert "Bearer ***" in api_text


def async_count(store: Store, count: int):  # type: ignore[no-untyped-def]
    async def delivered() -> bool:
        return len(await store.list_deliveries("delivered")) == count

    return delivered
