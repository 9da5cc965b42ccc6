"""rules.yaml: its schema and loading into a compiled `Config` (every problem at
FILE:LINE:COL), `${VAR}` interpolation, and the live `Runtime` that reloads it."""

from __future__ import annotations

from router.config.runtime import Runtime, watch_config_file
from router.config.schema import Config, ConfigError, load_config, parse_config
from router.config.yaml_source import Position

__all__ = [
    "Config",
    "ConfigError",
    "Position",
    "Runtime",
    "load_config",
    "parse_config",
    "watch_config_file",
]
