"""The sink types, one line each in `SINKS`; the rest is derived from that list: the
`type:` names, the settings model rules.yaml's `sinks:` entries are validated against
(a union told apart by `type`), and the class that sends for given settings.

A new sink type is one module (a `SinkConfig` subclass whose `type` is a `Literal` of
its name, and a `Sink` subclass naming it as `config_class`) and one line here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Union, get_args

from pydantic import Field

from sinks.base import Sink, SinkConfig, SinkResources
from sinks.email import EmailSink
from sinks.google_sheets import GoogleSheetsSink
from sinks.http import HttpSink
from sinks.log import LogSink
from sinks.nats import NatsSink
from sinks.pagerduty import PagerDutySink
from sinks.rabbitmq import RabbitMqSink
from sinks.redis_stream import RedisStreamSink
from sinks.slack import SlackSink
from sinks.teams import TeamsSink

SINKS: tuple[type[Sink[Any]], ...] = (
    SlackSink,
    EmailSink,
    HttpSink,
    LogSink,
    PagerDutySink,
    TeamsSink,
    GoogleSheetsSink,
    RabbitMqSink,
    RedisStreamSink,
    NatsSink,
)


def type_name(sink: type[Sink[Any]]) -> str:
    """The `type:` that selects `sink` in rules.yaml (its settings' `Literal`)."""
    (name,) = get_args(sink.config_class.model_fields["type"].annotation)
    return str(name)


SINK_TYPES: dict[str, type[Sink[Any]]] = {type_name(sink): sink for sink in SINKS}
SINK_TYPE_NAMES: tuple[str, ...] = tuple(SINK_TYPES)

if TYPE_CHECKING:
    AnySinkConfig = SinkConfig
else:
    AnySinkConfig = Annotated[
        Union[tuple(sink.config_class for sink in SINKS)],  # noqa: UP007 - built from a tuple
        Field(discriminator="type"),
    ]


def sink_class(config: SinkConfig) -> type[Sink[Any]]:
    """The class that sends for `config` (one of `SINKS`)."""
    return SINK_TYPES[config.type].sending_class(config)


def build_sink(name: str, config: SinkConfig, resources: SinkResources) -> Sink[Any]:
    """The sink object for one configured `sinks:` entry."""
    return sink_class(config)(name, config, resources)
