"""OpenTelemetry traces (DESIGN.md section 19), configured only by OpenTelemetry's own
variables: on when `OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`
is set or `OTEL_TRACES_EXPORTER` names `otlp`; off when `OTEL_SDK_DISABLED=true`,
`OTEL_TRACES_EXPORTER=none`, or nothing is set. Spans go out over OTLP/HTTP (protobuf)
through the SDK's batch processor; the exporter, sampler and batch read the rest of
the standard variables themselves (`OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_TRACES_SAMPLER`,
`OTEL_BSP_SCHEDULE_DELAY`, ...). `OTEL_SERVICE_NAME` defaults to `revring-router`.

The rest of the code sees three things: `span(name)`, a context manager giving a
`SpanScope`; `current_traceparent()`, the W3C `traceparent` of the span in progress (kept
with a delivery, so its attempts join the call's trace however late they run); and
`with_trace_headers(headers)`, the propagation headers added to an outgoing request.
Off, `span` hands back one shared do-nothing object and the others return at once: the
SDK is not even imported, and no context is attached or detached.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, Literal, Protocol

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Span, Tracer

log = logging.getLogger("router.core.tracing")

DEFAULT_SERVICE_NAME = "revring-router"
TRACEPARENT = "traceparent"
TRACER_NAME = "revring-router"

AttributeValue = str | bool | int | float


class SpanScope(Protocol):
    """What code does with the span it is in: attributes, and a failure that was no
    exception (a 4xx answer, a failed attempt)."""

    def set(self, key: str, value: AttributeValue | None) -> None: ...

    def failed(self, description: str) -> None: ...


class _NoSpan:
    """Tracing off: one object for every span, doing nothing."""

    __slots__ = ()

    def __enter__(self) -> _NoSpan:
        return self

    def __exit__(self, *exc_info: object) -> None:
        return None

    def set(self, key: str, value: AttributeValue | None) -> None:
        return None

    def failed(self, description: str) -> None:
        return None


NO_SPAN = _NoSpan()


class _LiveSpan:
    __slots__ = ("_span",)

    def __init__(self, span: Span) -> None:
        self._span = span

    def set(self, key: str, value: AttributeValue | None) -> None:
        if value is not None:
            self._span.set_attribute(key, value)

    def failed(self, description: str) -> None:
        from opentelemetry.trace import Status, StatusCode

        self._span.set_status(Status(StatusCode.ERROR, description))


# Tracing is on exactly when these are set (`start`); None: off.
_tracer: Tracer | None = None
_provider: TracerProvider | None = None


def is_on() -> bool:
    return _tracer is not None


def wanted(environ: Mapping[str, str]) -> bool:
    """Whether OpenTelemetry's standard variables in `environ` ask for traces."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporters = {
        name.strip().lower() for name in environ.get("OTEL_TRACES_EXPORTER", "").split(",")
    }
    if "none" in exporters:
        return False
    if "otlp" in exporters:
        return True
    return any(
        environ.get(name, "").strip()
        for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )


def service_name(environ: Mapping[str, str]) -> str:
    """`OTEL_SERVICE_NAME`, else a `service.name` in `OTEL_RESOURCE_ATTRIBUTES`, else
    `revring-router`."""
    name = environ.get("OTEL_SERVICE_NAME", "").strip()
    if name:
        return name
    for pair in environ.get("OTEL_RESOURCE_ATTRIBUTES", "").split(","):
        key, _, value = pair.partition("=")
        if key.strip() == "service.name" and value.strip():
            return value.strip()
    return DEFAULT_SERVICE_NAME


def start(environ: Mapping[str, str]) -> bool:
    """Turn tracing on if `environ` asks for it (see the module's doc); whether it is on.
    The exporter reads its endpoint, headers, timeout and certificates from the process
    environment, as OpenTelemetry's SDK always does."""
    global _tracer, _provider
    stop()
    if not wanted(environ):
        return False
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    from router import __version__

    resource = Resource.create({SERVICE_NAME: service_name(environ)})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    _provider = provider
    _tracer = provider.get_tracer(TRACER_NAME, __version__)
    log.info("tracing on: spans exported over OTLP/HTTP")
    return True


def stop() -> None:
    """Export what is left (blocks up to the exporter's timeout) and turn tracing off."""
    global _tracer, _provider
    provider, _provider, _tracer = _provider, None, None
    if provider is not None:
        provider.shutdown()


SpanKindName = Literal["internal", "server", "client"]


def span(
    name: str, parent: str | None = None, kind: SpanKindName = "internal"
) -> AbstractContextManager[SpanScope]:
    """A context manager: a span named `name`, child of the span in progress (or, given
    `parent`, a stored `traceparent`, of that one), current while it runs; an exception
    leaving it is recorded and marks it failed. Gives a `SpanScope`. Off: `NO_SPAN`."""
    if _tracer is None:
        return NO_SPAN
    return _live(_tracer, name, parent, kind)


@contextmanager
def _live(tracer: Tracer, name: str, parent: str | None, kind: SpanKindName) -> Iterator[SpanScope]:
    from opentelemetry.trace import SpanKind

    context = None
    if parent is not None:
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        context = TraceContextTextMapPropagator().extract({TRACEPARENT: parent})
    with tracer.start_as_current_span(name, context=context, kind=SpanKind[kind.upper()]) as live:
        yield _LiveSpan(live)


def current_traceparent() -> str | None:
    """The W3C `traceparent` of the span in progress; None when off or outside a span."""
    if _tracer is None:
        return None
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    carrier: dict[str, str] = {}
    TraceContextTextMapPropagator().inject(carrier)
    return carrier.get(TRACEPARENT)


def with_trace_headers(headers: dict[str, str]) -> dict[str, str]:
    """`headers` and the propagation headers of the span in progress (`traceparent`,
    `tracestate` when there is one; `OTEL_PROPAGATORS` may name others), in a new dict;
    `headers` itself when tracing is off."""
    if _tracer is None:
        return headers
    from opentelemetry import propagate

    carrier = dict(headers)
    propagate.inject(carrier)
    return carrier
