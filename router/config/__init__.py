"""rules.yaml: its schema and loading into a compiled `Config` (every problem at
FILE:LINE:COL), `${VAR}` interpolation, its templates tried on sample calls
(`sample_findings`), and the live `Runtime` that reloads it."""

from __future__ import annotations

from router.config.runtime import Runtime, watch_config_file
from router.config.sample_renders import (
    Findings,
    digest_of_one,
    missing_paths,
    sample_findings,
)
from router.config.schema import Config, ConfigError, load_config, parse_config
from router.config.yaml_source import Position, SourceError

__all__ = [
    "Config",
    "ConfigError",
    "Findings",
    "Position",
    "Runtime",
    "SourceError",
    "digest_of_one",
    "load_config",
    "missing_paths",
    "parse_config",
    "sample_findings",
    "watch_config_file",
]
