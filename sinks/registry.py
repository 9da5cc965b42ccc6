"""Maps the `type:` of a rules.yaml sink to its settings model and sink class."""

from __future__ import annotations

from typing import Annotated, Union

from pydantic import Field

from sinks.base import Sink, SinkConfig, SinkResources
from sinks.email import EmailSinkConfig
from sinks.http import HttpSinkConfig
from sinks.log import LogSinkConfig
from sinks.pagerduty import PagerDutySinkConfig
from sinks.slack import SlackSinkConfig
from sinks.teams import TeamsSinkConfig

SINK_CONFIG_TYPES: tuple[type[SinkConfig], ...] = (
    SlackSinkConfig,
    EmailSinkConfig,
    HttpSinkConfig,
    LogSinkConfig,
    PagerDutySinkConfig,
    TeamsSinkConfig,
)

SINK_TYPE_NAMES: tuple[str, ...] = ("slack", "email", "http", "log", "pagerduty", "teams")

AnySinkConfig = Annotated[
    Union[  # noqa: UP007
        SlackSinkConfig,
        EmailSinkConfig,
        HttpSinkConfig,
        LogSinkConfig,
        PagerDutySinkConfig,
        TeamsSinkConfig,
    ],
    Field(discriminator="type"),
]


def build_sink(name: str, config: SinkConfig, resources: SinkResources) -> Sink:
    """The sink object for one configured `sinks:` entry."""
    return config.sink_class(name, config, resources)
