"""rules.yaml: its schema and loading into a compiled `Config` (every problem at
FILE:LINE:COL), `${VAR}` interpolation, what `check` says of it beyond loading it
(`check_findings`: its templates tried on sample calls), and the live `Runtime` that
reloads it."""

from __future__ import annotations

from router.config.runtime import Runtime, watch_config_file
from router.config.sample_renders import (
    check_findings,
    digest_of_one,
    missing_paths,
    sample_findings,
)
from router.config.schema import Config, ConfigError, load_config, parse_config
from router.config.yaml_source import Position, SourceError

__all__ = [
    "Config",
    "ConfigError",
    "Position",
    "Runtime",
    "SourceError",
    "check_findings",
    "digest_of_one",
    "load_config",
    "missing_paths",
    "parse_config",
    "sample_findings",
    "watch_config_file",
]
