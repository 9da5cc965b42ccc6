"""What every layer shares, each module one small thing: the event model (`events`),
templates and their bounds (`templates`, `template_limits`, `json_printing`), units and
retry maths (`units`, `retry`, `pacing`), JSON depth (`nesting`), phone numbers
(`phones`), the public base URL (`public_url`), metrics, logs, traces (`tracing`), the
sample calls and the collector's settings. Import the module you need; nothing here
imports a layer above."""

from __future__ import annotations

__all__ = [
    "collector",
    "events",
    "json_printing",
    "logs",
    "metrics",
    "nesting",
    "pacing",
    "phones",
    "public_url",
    "retry",
    "samples",
    "template_limits",
    "templates",
    "tracing",
    "units",
]
