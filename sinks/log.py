"""The `log` sink: writes each routed call as one JSON line (stdout or an appended file).

Useful to see routing at work with no accounts, and as an audit trail.
"""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from router.core.phones import mask_phone, mask_phone_numbers_in
from router.core.templates import TemplateRenderError, TextTemplate
from sinks.base import (
    DeliveryError,
    DeliveryRequest,
    Permanent,
    RendersText,
    SendResult,
    Sink,
    SinkConfig,
    template_context,
)
from sinks.exchange import Exchange, request_seen
from sinks.notices import notice_json


class LogSinkConfig(SinkConfig):
    type: Literal["log"]
    path: str | None = None
    text: TextTemplate | None = None
    mask_phone: bool = True

    def templates(self) -> dict[str, RendersText]:
        return {} if self.text is None else {"text": self.text}


class LogSink(Sink[str]):
    config: LogSinkConfig
    config_class = LogSinkConfig

    def build(self, request: DeliveryRequest) -> str:
        return json.dumps(self._line(request), ensure_ascii=False) + "\n"

    def show(self, text: str) -> Any:
        return json.loads(text)

    def _line(self, request: DeliveryRequest) -> dict[str, Any]:
        if request.notice is not None:  # a dead delivery's notice, as its JSON
            at = datetime.now(UTC).isoformat(timespec="milliseconds")
            return {"at": at, **notice_json(request.notice)}
        event = request.event
        line: dict[str, Any] = {
            "at": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "sink": request.sink,
            "rule": request.rule,
            "delivery_id": request.delivery_id,
            "event_id": request.event_id,
            "status": event.get("status"),
            "direction": event.get("direction"),
            "hangupCause": event.get("hangupCause"),
            "agent": event.get("agentName"),
            "durationSeconds": event.get("durationSeconds"),
            "errorMessage": event.get("errorMessage"),
            "summary": event.get("summary"),
        }
        line["from"], line["to"] = event.get("fromNumber"), event.get("toNumber")
        if request.digest is not None:
            line["count"] = request.digest.count
            line["group_key"] = dict(request.digest.group_key)
        if self.config.mask_phone:
            line["from"] = mask_phone(event.get("fromNumber"))
            line["to"] = mask_phone(event.get("toNumber"))
            for name in ("summary", "errorMessage", "group_key"):
                if name in line:
                    line[name] = mask_phone_numbers_in(line[name])
        if self.config.text is not None:
            try:
                line["text"] = self.config.text.render(template_context(request))
            except TemplateRenderError as exc:
                raise Permanent(str(exc)) from None
        return line

    async def transmit(self, text: str) -> SendResult:
        where = "stdout" if self.config.path is None else self.config.path
        sent = request_seen("WRITE", where, (), text, target_is_url=False)
        try:
            if self.config.path is None:
                sys.stdout.write(text)
                sys.stdout.flush()
            else:
                await asyncio.to_thread(_append, Path(self.config.path), text)
        except DeliveryError as failure:
            raise failure.with_exchange(Exchange(sent)) from None
        return SendResult(detail="written", exchange=Exchange(sent))


def _append(path: Path, text: str) -> None:
    try:
        with path.open("a", encoding="utf-8") as handle:
            handle.write(text)
    except OSError as exc:
        raise Permanent(f"cannot write {path}: {exc.strerror}") from None
