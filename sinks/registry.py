"""Maps the `type:` of a rules.yaml sink to its settings model and sink class."""

from __future__ import annotations

from typing import Annotated, Union

from pydantic import Field

from sinks.base import Sink, SinkConfig, SinkResources
from sinks.email import EmailSinkConfig
from sinks.http import HttpSinkConfig
from sinks.log import LogSinkConfig
from sinks.slack import SlackSinkConfig

SINK_CONFIG_TYPES: tuple[type[SinkConfig], ...] = (
    SlackSinkConfig,
    EmailSinkConfig,
    HttpSinkConfig,
    LogSinkConfig,
)

SINK_TYPE_NAMES: tuple[str, ...] = ("slack", "email", "http", "log")

AnySinkConfig = Annotated[
    Union[SlackSinkConfig, EmailSinkConfig, HttpSinkConfig, LogSinkConfig],  # noqa: UP007
    Field(discriminator="type"),
]


def build_sink(name: str, config: SinkConfig, resources: SinkResources) -> Sink:
    """The sink object for one configured `sinks:` entry."""
    return config.sink_class(name, config, resources)
