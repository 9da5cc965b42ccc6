"""Email over SMTP: the settings, the header rules, the default alert's words
(`templates`), the message built from them (`message`) and the sink that sends it."""

from __future__ import annotations

from sinks.email.settings import EmailSinkConfig
from sinks.email.sink import EmailSink

__all__ = ["EmailSink", "EmailSinkConfig"]
