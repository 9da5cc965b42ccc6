"""`router.core.tracing`: which of OpenTelemetry's standard variables turn traces on,
the service name, and that tracing off hands out nothing but the shared no-op."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from router.core import tracing

ENDPOINT = "http://collector:4318"


@pytest.mark.parametrize(
    ("environ", "on"),
    [
        ({}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": ENDPOINT}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"{ENDPOINT}/v1/traces"}, True),
        ({"OTEL_TRACES_EXPORTER": "otlp"}, True),
        ({"OTEL_TRACES_EXPORTER": " console , OTLP "}, True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "  "}, False),
        ({"OTEL_SERVICE_NAME": "crm-router"}, False),  # a name alone exports nothing
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": ENDPOINT, "OTEL_SDK_DISABLED": "true"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": ENDPOINT, "OTEL_SDK_DISABLED": "TRUE"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": ENDPOINT, "OTEL_SDK_DISABLED": "false"}, True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": ENDPOINT, "OTEL_TRACES_EXPORTER": "none"}, False),
        ({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_SDK_DISABLED": "true"}, False),
    ],
)
def test_the_standard_variables_decide_whether_traces_are_on(
    environ: dict[str, str], on: bool
) -> None:
    assert tracing.wanted(environ) is on


SWITCHES = (
    "OTEL_SDK_DISABLED",
    "OTEL_TRACES_EXPORTER",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
)


@given(st.dictionaries(st.sampled_from(SWITCHES), st.text(max_size=12)))
def test_sdk_disabled_always_wins(environ: dict[str, str]) -> None:
    assert not tracing.wanted({**environ, "OTEL_SDK_DISABLED": "true"})


@pytest.mark.parametrize(
    ("environ", "name"),
    [
        ({}, "revring-router"),
        ({"OTEL_SERVICE_NAME": "crm-router"}, "crm-router"),
        ({"OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=prod,service.name=eu"}, "eu"),
        ({"OTEL_SERVICE_NAME": "a", "OTEL_RESOURCE_ATTRIBUTES": "service.name=b"}, "a"),
        ({"OTEL_RESOURCE_ATTRIBUTES": "service.namespace=x"}, "revring-router"),
    ],
)
def test_the_service_name_defaults_to_revring_router(environ: dict[str, str], name: str) -> None:
    assert tracing.service_name(environ) == name


def test_off_every_span_is_the_shared_no_op_and_headers_are_untouched() -> None:
    assert not tracing.start({})
    assert not tracing.is_on()
    assert tracing.span("parse") is tracing.NO_SPAN
    assert tracing.span("delivery attempt", "00-" + "1" * 32 + "-" + "2" * 16 + "-01") is (
        tracing.NO_SPAN
    )
    with tracing.span("route") as span:
        span.set("router.rules_matched", 3)
        span.failed("nothing happens")
    headers = {"Content-Type": "application/json"}
    assert tracing.with_trace_headers(headers) is headers
    assert tracing.current_traceparent() is None
