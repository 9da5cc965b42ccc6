"""Parsing of the durations (`500ms`, `10m`) and rates (`30/m`) used in rules.yaml."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BeforeValidator

_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$")
_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*(\d*)\s*(ms|s|m|h|d)\s*$")


def parse_duration(value: Any) -> float:
    """Seconds from `500ms`, `1s`, `10m`, `24h`, `7d`, or a plain number of seconds."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration such as 500ms, 10s, 5m, 24h; got {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (match := _DURATION.match(value)):
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    else:
        raise ValueError(f"expected a duration such as 500ms, 10s, 5m, 24h; got {value!r}")
    if not math.isfinite(seconds):
        raise ValueError(f"a duration must be a finite number; got {value!r}")
    if seconds < 0:
        raise ValueError(f"a duration cannot be negative; got {value!r}")
    return seconds


def format_duration(seconds: float) -> str:
    """The shortest exact spelling of a duration, the inverse of `parse_duration`.

    Whole counts of a unit are matched with a tolerance for float noise
    (`0.1h` is 360.00000000000006 seconds, spelled `6m`).
    """
    for unit in ("d", "h", "m", "s", "ms"):
        count = seconds / _UNIT_SECONDS[unit]
        whole = round(count)
        if whole >= 1 and math.isclose(count, whole, rel_tol=1e-9):
            return f"{whole}{unit}"
    milliseconds = f"{seconds * 1000:.6f}".rstrip("0").rstrip(".")
    return f"{milliseconds or '0'}ms"


@dataclass(frozen=True)
class Rate:
    """`count` events per `per_seconds`; `30/m` is Rate(30, 60)."""

    count: float
    per_seconds: float

    @property
    def per_second(self) -> float:
        return self.count / self.per_seconds

    def __str__(self) -> str:
        return f"{self.count:g}/{format_duration(self.per_seconds)}"


def parse_rate(value: Any) -> Rate:
    """A Rate from `1/s`, `30/m`, `100/h`, or `5/10s`."""
    if isinstance(value, Rate):
        return value
    match = _RATE.match(value) if isinstance(value, str) else None
    if not match:
        raise ValueError(f"expected a rate such as 1/s, 30/m, 100/h; got {value!r}")
    count = float(match.group(1))
    per = float(match.group(2) or 1) * _UNIT_SECONDS[match.group(3)]
    if not (math.isfinite(count) and math.isfinite(per)):
        raise ValueError(f"a rate must be a finite number; got {value!r}")
    if count <= 0 or per <= 0:
        raise ValueError(f"a rate must be positive; got {value!r}")
    return Rate(count, per)


Duration = Annotated[float, BeforeValidator(parse_duration)]
RateLimit = Annotated[Rate, BeforeValidator(parse_rate)]
