"""The sink registry is derived from its one list: each sink type's `type:` name, the
settings union rules.yaml is validated against, and the class built for given settings."""

from __future__ import annotations

import re
from typing import get_args

import pytest

from router.config.schema import ConfigError, parse_config
from sinks.registry import SINK_TYPE_NAMES, SINKS, AnySinkConfig, sink_class, type_name


def test_every_listed_sink_has_its_own_type_name_and_is_built_for_its_settings() -> None:
    assert SINK_TYPE_NAMES == (
        "slack",
        "email",
        "http",
        "log",
        "pagerduty",
        "teams",
        "google_sheets",
        "rabbitmq",
        "redis_stream",
        "nats",
    )
    assert len(set(SINK_TYPE_NAMES)) == len(SINKS)
    for sink in SINKS:
        settings = sink.config_class.model_construct(type=type_name(sink))
        assert sink_class(settings) is sink


def test_the_settings_union_holds_each_listed_sinks_settings_once() -> None:
    union, _discriminator = get_args(AnySinkConfig)
    assert get_args(union) == tuple(sink.config_class for sink in SINKS)


def test_an_unknown_type_names_every_listed_one() -> None:
    text = "version: 1\nsinks:\n  x: {type: fax}\nrules: []\n"
    with pytest.raises(ConfigError, match=re.escape(f"one of: {', '.join(SINK_TYPE_NAMES)}")):
        parse_config(text, "rules.yaml")
