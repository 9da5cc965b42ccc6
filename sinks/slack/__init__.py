"""Slack: the sink (`sink`), the message it builds (`message`), the buttons' pure logic
(`actions`) and the HTML drawing of a message for the console and the docs (`preview`)."""

from __future__ import annotations

from sinks.slack.sink import SlackSink, SlackSinkConfig

__all__ = ["SlackSink", "SlackSinkConfig"]
