"""`auth: {type: oauth2}` on an `http` sink with `steps` (DESIGN.md section 17): `check`
refuses an Authorization header (the sink's or a step's) and credentials in a step's url
beside `auth`, at the setting's line, as it does for one request (and credentials in a
step's url beside an Authorization header without `auth`); a preview shows every step
with `Authorization: Bearer ***` and none of the auth's secrets."""

from __future__ import annotations

import json

import pytest

from router.config.schema import ConfigError, parse_config
from sinks.base import DeliveryRequest, SinkResources
from sinks.http import HttpSinkConfig, HttpStepsSink
from sinks.registry import build_sink
from tests.conftest import sample

CLIENT_SECRET = "cs-0a1b2c3d4e5f6a7b"
REFRESH = "rt-9f8e7d6c5b4a3f2e"
AUTH = f"""    auth:
      type: oauth2
      token_url: https://crm.example/oauth/token
      client_id: router
      client_secret: {CLIENT_SECRET}
      refresh_token: {REFRESH}
"""


def rules(*, auth: bool, sink_headers: str = "", find_headers: str = "", find_url: str = "") -> str:
    return f"""version: 1
sinks:
  crm:
    type: http
{AUTH if auth else ""}{sink_headers}    steps:
      - name: find
        url: {find_url or "https://crm.example/search?q={{ id }}"}
        method: GET
{find_headers}        capture: {{contact: "results[0].id"}}
      - name: log
        url: https://crm.example/calls
        body: '{{"contact": "{{{{ steps.find.contact }}}}"}}'
rules:
  - name: all
    to: [crm]
"""


def refusals(text: str) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        parse_config(text, "rules.yaml", {})
    return [str(error) for error in raised.value.errors]


def test_auth_with_steps_loads_and_sets_no_header_itself() -> None:
    config = parse_config(rules(auth=True), "rules.yaml", {})
    [sink] = config.sinks.values()
    assert isinstance(sink, HttpSinkConfig) and sink.auth is not None
    assert sink.setting_errors() == []


def test_check_refuses_an_authorization_header_on_the_sink_beside_auth() -> None:
    text = rules(auth=True, sink_headers='    headers: {Authorization: "Bearer x"}\n')
    [error] = refusals(text)
    assert error.startswith("rules.yaml:11:30: sinks.crm.headers.Authorization: ")
    assert "auth sets the Authorization header of every step" in error


def test_check_refuses_an_authorization_header_on_a_step_beside_auth_any_case() -> None:
    text = rules(auth=True, find_headers='        headers: {authorization: "Bearer x"}\n')
    [error] = refusals(text)
    assert error.startswith("rules.yaml:15:34: sinks.crm.steps.0.headers.authorization: ")
    assert "auth sets the Authorization header" in error


def test_check_refuses_credentials_in_a_step_url_beside_auth_without_showing_them() -> None:
    text = rules(auth=True, find_url="https://bob:pw-5ecret@crm.example/search?q={{ id }}")
    [error] = refusals(text)
    assert error.startswith("rules.yaml:13:14: sinks.crm.steps.0.url: ")
    assert "remove the credentials from the url" in error
    assert "pw-5ecret" not in error


def test_check_refuses_every_credential_beside_auth_at_once() -> None:
    text = rules(
        auth=True,
        sink_headers='    headers: {Authorization: "Bearer x"}\n',
        find_headers='        headers: {Authorization: "Bearer y"}\n',
        find_url="https://bob:pw@crm.example/search",
    )
    found = refusals(text)
    assert [error.split(": ")[1] for error in found] == [
        "sinks.crm.headers.Authorization",
        "sinks.crm.steps.0.url",
        "sinks.crm.steps.0.headers.Authorization",
    ]


@pytest.mark.parametrize(
    "headers",
    [
        {"sink_headers": '    headers: {Authorization: "Bearer x"}\n'},
        {"find_headers": '        headers: {Authorization: "Bearer x"}\n'},
    ],
)
def test_without_auth_credentials_go_in_a_step_url_or_a_header_not_both(
    headers: dict[str, str],
) -> None:
    [error] = refusals(rules(auth=False, find_url="https://bob:pw@crm.example/s", **headers))
    assert "sinks.crm.steps.0.url: give credentials either in the url or in an Authorization" in (
        error
    )
    # Either one alone is fine.
    parse_config(rules(auth=False, **headers), "rules.yaml", {})
    parse_config(rules(auth=False, find_url="https://bob:pw@crm.example/s"), "rules.yaml", {})


def test_an_at_sign_in_a_template_or_the_query_is_no_credential() -> None:
    url = "https://crm.example/search?email=a@b.example&q={{ 'x@y' }}"
    parse_config(rules(auth=True, find_url=url), "rules.yaml", {})


def test_a_preview_shows_each_step_with_a_masked_bearer_and_no_auth_secret() -> None:
    config = parse_config(rules(auth=True), "rules.yaml", {})
    [(name, settings)] = config.sinks.items()
    sink = build_sink(name, settings, SinkResources())
    assert isinstance(sink, HttpStepsSink) and sink.authenticator is not None
    event = sample("completed-inbound")
    shown = sink.preview(DeliveryRequest("dlv-1", event["id"], name, "r", event))
    assert [step["headers"]["Authorization"] for step in shown["steps"]] == ["Bearer ***"] * 2
    text = json.dumps(shown)
    assert CLIENT_SECRET not in text and REFRESH not in text
    assert sink.authenticator.secrets() == []  # a preview asks for no token


def test_a_flow_without_auth_has_no_authenticator() -> None:
    config = parse_config(rules(auth=False), "rules.yaml", {})
    [(name, settings)] = config.sinks.items()
    sink = build_sink(name, settings, SinkResources())
    assert isinstance(sink, HttpStepsSink) and sink.authenticator is None
    event = sample("completed-inbound")
    shown = sink.preview(DeliveryRequest("dlv-1", event["id"], name, "r", event))
    assert "Authorization" not in shown["steps"][0]["headers"]
