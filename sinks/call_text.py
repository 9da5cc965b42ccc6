"""Plain-text descriptions of a call and of a digest, shared by the sinks that title an
incident or a card with them (PagerDuty, Teams, Slack), the call's free text (errors,
summaries, transcripts) with its phone numbers masked, shared by every default message,
what counts as a value worth showing (`present`) and a link safe to put in a message
(`safe_link`). Pure: no I/O, no markup, no escaping: each sink escapes for its own
destination.

    call_headline    "FAILED outbound call"
    call_line        "FAILED outbound call to +4420•••8750: SIP 503 Service Unavailable"
    digest_line      "37 FAILED calls on trunk sip-7 in 2 min"
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final
from urllib.parse import urlsplit

from router.core.phones import mask_phone, mask_phone_numbers
from router.core.templates import strip_line_breaks, transcript_excerpt
from sinks.base import Digest

# How a digest's group key reads in a sentence: `on trunk sip-7`, `on agent Ava`.
GROUP_KEY_WORDS: Final[Mapping[str, str]] = {
    "sipTrunkId": "trunk",
    "agentId": "agent",
    "agentName": "agent",
    "organizationId": "organization",
    "hangupCause": "hang-up cause",
    "status": "status",
    "direction": "direction",
    "fromNumber": "caller",
    "toNumber": "callee",
}


# Slack's limit for a button's URL, the strictest of the destinations that carry links.
MAX_LINK_URL: Final = 3000


def present(value: Any) -> bool:
    """A value worth showing: not None, not empty text, not an empty list or object."""
    return value is not None and value != "" and value != [] and value != {}


def safe_link(url: Any) -> str | None:
    """`url` if it is a plain http(s) URL every destination accepts as a link (no
    spaces, at most `MAX_LINK_URL` characters), else None."""
    if not isinstance(url, str) or len(url) > MAX_LINK_URL or any(c.isspace() for c in url):
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    return url


def shown_number(value: Any, masked: bool) -> str:
    """A phone number as shown to people: masked (`+1415•••0123`) unless `masked` is false."""
    if not present(value):
        return "–"
    return mask_phone(value) if masked else str(value)


def shown_text(value: Any, masked: bool) -> str:
    """Free text from a call (a summary, an error) with any phone number in it masked."""
    text = "" if value is None else str(value)
    return mask_phone_numbers(text) if masked else text


def _masked_text(value: Any) -> Any:
    """`value` as `transcript_excerpt` prints it, phone numbers masked (empty and missing
    values kept as they are, so `role or speaker` still falls through)."""
    if not value:
        return value
    return mask_phone_numbers(value if isinstance(value, str) else str(value))


def _masked_entry(entry: Any) -> Any:
    """A transcript entry with the phone numbers in its text masked, its shape kept."""
    if isinstance(entry, Mapping):
        return {key: _masked_text(value) for key, value in entry.items()}
    return _masked_text(entry)


def shown_transcript(
    transcript: Any, masked: bool, max_lines: int = 6, max_chars: int = 600
) -> str:
    """The first lines of a transcript (`transcript_excerpt`) with any phone number in them
    masked; each entry is masked before the excerpt is cut, so a cut never leaves part of
    a number showing."""
    if masked and isinstance(transcript, list):
        transcript = [_masked_entry(entry) for entry in transcript[: max_lines + 1]]
    elif masked and isinstance(transcript, str):
        transcript = mask_phone_numbers(transcript)
    return transcript_excerpt(transcript, max_lines, max_chars)


def direction_word(direction: Any) -> str:
    return str(direction).lower() if present(direction) else "unknown-direction"


def call_headline(event: Mapping[str, Any]) -> str:
    """`FAILED outbound call`."""
    status = str(event.get("status") or "UNKNOWN")
    return f"{status} {direction_word(event.get('direction'))} call"


def call_detail(event: Mapping[str, Any]) -> Any:
    """What went wrong, or how the call ended: the error, else the hang-up cause."""
    for name in ("errorMessage", "hangupCause"):
        if present(event.get(name)):
            return event[name]
    return None


def call_line(event: Mapping[str, Any], *, masked: bool = True) -> str:
    """One line saying what happened: the headline, the other party, and the detail.

    An inbound call names its caller, any other call its callee."""
    inbound = str(event.get("direction") or "").upper() == "INBOUND"
    party, word = ("fromNumber", "from") if inbound else ("toNumber", "to")
    line = call_headline(event)
    if present(event.get(party)):
        line += f" {word} {shown_number(event[party], masked)}"
    detail = call_detail(event)
    if detail is not None:
        line += f": {shown_text(detail, masked)}"
    return strip_line_breaks(line)


def counts_by(calls: list[Mapping[str, Any]], key: str) -> list[tuple[str, int]]:
    """How many calls have each value of `key` (`none` for a missing one), most first."""
    counts = Counter(str(call.get(key)) if present(call.get(key)) else "none" for call in calls)
    return counts.most_common()


def counts_text(calls: list[Mapping[str, Any]], key: str) -> str:
    """`FAILED ×36, CANCELED ×1`."""
    return ", ".join(f"{name} ×{count}" for name, count in counts_by(calls, key))


def group_key_text(group_key: Mapping[str, Any], *, masked: bool = True) -> str:
    """`trunk sip-7, agent Ava`: a digest's group key as words (numbers masked)."""
    parts = []
    for name, value in group_key.items():
        word = GROUP_KEY_WORDS.get(name, name)
        parts.append(f"{word} {'none' if value is None else value}")
    text = strip_line_breaks(", ".join(parts))
    return mask_phone_numbers(text) if masked else text


def _instant(text: str) -> float | None:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except (ValueError, OverflowError, OSError):
        return None


def window_length_text(start: str, end: str) -> str | None:
    """`2 min`, `45 s`, `1.5 h`: how long a digest's window ran; None when unknown or 0."""
    begin, finish = _instant(start), _instant(end)
    if begin is None or finish is None or finish <= begin:
        return None
    seconds = finish - begin
    if seconds < 60:
        return f"{round(seconds)} s"
    if seconds < 3600:
        return f"{round(seconds / 60)} min"
    return f"{seconds / 3600:.3g} h"


def digest_line(digest: Digest, *, masked: bool = True) -> str:
    """`37 FAILED calls on trunk sip-7 in 2 min` (the status only when every call shares it)."""
    statuses = {str(call.get("status")) for call in digest.calls if present(call.get("status"))}
    status = f"{statuses.pop()} " if len(statuses) == 1 else ""
    noun = "call" if digest.count == 1 else "calls"
    line = f"{digest.count} {status}{noun}"
    key = group_key_text(digest.group_key, masked=masked)
    if key:
        line += f" on {key}"
    length = window_length_text(digest.window_start, digest.window_end)
    if length is not None:
        line += f" in {length}"
    return line
