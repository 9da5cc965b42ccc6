"""Microsoft Teams: the Adaptive Card built for a call (`card`) and the sink that posts
it to a Workflows webhook."""

from __future__ import annotations

from sinks.teams.sink import TeamsSink, TeamsSinkConfig

__all__ = ["TeamsSink", "TeamsSinkConfig"]
