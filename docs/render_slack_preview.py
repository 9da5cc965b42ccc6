"""Renders the default Slack alert of two sample calls to PNG pictures for the README.

Turns the Block Kit blocks into a small HTML page styled like a Slack message and
screenshots it with headless Chromium. Run from the repository root:

    python docs/render_slack_preview.py [--chromium /usr/bin/chromium] [--html-only]

It writes docs/slack-alert-failed.png and docs/slack-alert-completed.png (and the
HTML pages beside them when --html-only is given).
"""

from __future__ import annotations

import argparse
import html
import json
import re
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sinks.base import DeliveryRequest  # noqa: E402
from sinks.slack_message import build_message  # noqa: E402

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
PREVIEWS = {
    # picture name: (sample, rule, window height)
    "slack-alert-failed.png": ("failed-outbound", "failed-calls", 275),
    "slack-alert-completed.png": ("completed-inbound", "inbound-calls", 490),
}
WIDTH = 760

EMOJI = {
    "red_circle": "🔴",
    "white_check_mark": "✅",
    "arrow_right_hook": "↪️",
    "no_entry_sign": "🚫",
    "grey_question": "❔",
    "warning": "⚠️",
    "arrow_forward": "▶️",
    "bellhop_bell": "🛎️",
}

STYLE = """
body { margin: 0; background: #fff; font: 15px/1.47 "Lato", "Liberation Sans", "DejaVu Sans",
       "Noto Color Emoji", sans-serif; color: #1d1c1d; }
.message { display: flex; gap: 8px; padding: 16px 20px; }
.avatar { width: 36px; height: 36px; border-radius: 6px; background: #4a154b; color: #fff;
          font-weight: 900; display: flex; align-items: center; justify-content: center;
          flex-shrink: 0; font-size: 16px; }
.body { flex: 1; min-width: 0; }
.meta { margin-bottom: 2px; }
.name { font-weight: 900; }
.badge { background: #e8e8e8; color: #616061; font-size: 10px; font-weight: 700;
         padding: 1px 3px; border-radius: 2px; margin-left: 4px; vertical-align: 2px; }
.time { color: #616061; font-size: 12px; margin-left: 6px; }
.header { font-size: 18px; font-weight: 900; line-height: 1.33; margin: 6px 0 4px; }
.section { margin: 4px 0 8px; white-space: normal; }
.fields { display: grid; grid-template-columns: 1fr 1fr; gap: 8px 16px; margin: 4px 0 10px; }
pre { font: 12px/1.5 "DejaVu Sans Mono", monospace; background: #f8f8f8;
      border: 1px solid #dddddd; border-radius: 4px; padding: 8px; margin: 4px 0 0;
      white-space: pre-wrap; }
code { font: 12px "DejaVu Sans Mono", monospace; color: #e01e5a; background: #f6f6f6;
       border: 1px solid #dddddd; border-radius: 3px; padding: 1px 3px; }
.actions { margin: 6px 0 10px; }
.button { display: inline-block; border: 1px solid #bbbbbb; border-radius: 4px;
          padding: 3px 12px; font-size: 14px; font-weight: 700; }
.context { color: #616061; font-size: 12px; margin: 4px 0; }
.context code { font-size: 11px; }
"""


def emoji(text: str) -> str:
    return re.sub(r":([a-z_]+):", lambda m: EMOJI.get(m.group(1), m.group(0)), text)


def slack_date(match: re.Match[str]) -> str:
    stamp = datetime.fromtimestamp(int(match.group(1)), UTC)
    return stamp.strftime("%b %-d, %Y at %-I:%M %p")


def mrkdwn_to_html(text: str) -> str:
    """Enough of Slack's mrkdwn for a preview; entities stay entities, as Slack shows them."""
    text = re.sub(r"<!date\^(\d+)\^[^|>]*\|[^>]*>", slack_date, text)
    parts = re.split(r"```(.*?)```", text, flags=re.S)
    out = []
    for index, part in enumerate(parts):
        if index % 2:
            out.append(f"<pre>{part}</pre>")
            continue
        part = re.sub(r"`([^`]+)`", r"<code>\1</code>", part)
        part = re.sub(r"\*([^*\n]+)\*", r"<b>\1</b>", part)
        out.append(part.replace("\n", "<br>"))
    return emoji("".join(out))


def block_to_html(block: dict[str, Any]) -> str:
    kind = block["type"]
    if kind == "header":
        return f'<div class="header">{emoji(html.escape(block["text"]["text"]))}</div>'
    if kind == "section":
        pieces = []
        if "text" in block:
            pieces.append(f'<div class="section">{mrkdwn_to_html(block["text"]["text"])}</div>')
        if "fields" in block:
            cells = "".join(f"<div>{mrkdwn_to_html(f['text'])}</div>" for f in block["fields"])
            pieces.append(f'<div class="fields">{cells}</div>')
        return "".join(pieces)
    if kind == "actions":
        buttons = "".join(
            f'<span class="button">{emoji(html.escape(e["text"]["text"]))}</span>'
            for e in block["elements"]
        )
        return f'<div class="actions">{buttons}</div>'
    if kind == "context":
        items = " ".join(mrkdwn_to_html(e["text"]) for e in block["elements"])
        return f'<div class="context">{items}</div>'
    return ""


def page(message: dict[str, Any]) -> str:
    blocks = "".join(block_to_html(block) for block in message["blocks"])
    return f"""<!doctype html><html><head><meta charset="utf-8"><style>{STYLE}</style></head>
<body><div class="message"><div class="avatar">RR</div><div class="body">
<div class="meta"><span class="name">Call Router</span><span class="badge">APP</span>
<span class="time">3:04 PM</span></div>{blocks}</div></div></body></html>"""


def screenshot(chromium: str, html_path: Path, png_path: Path, height: int) -> None:
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(  # noqa: S603 - fixed arguments, local file
            [
                chromium,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
                f"--user-data-dir={profile}",
                f"--screenshot={png_path}",
                f"--window-size={WIDTH},{height}",
                html_path.as_uri(),
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--html-only", action="store_true")
    args = parser.parse_args()
    out_dir = Path(__file__).resolve().parent
    for picture, (sample, rule, height) in PREVIEWS.items():
        event = json.loads((SAMPLES / f"{sample}.json").read_text())
        message = build_message(DeliveryRequest("preview", event["id"], "ops-slack", rule, event))
        html_path = out_dir / picture.replace(".png", ".html")
        html_path.write_text(page(message), encoding="utf-8")
        if not args.html_only:
            screenshot(args.chromium, html_path, out_dir / picture, height)
            html_path.unlink()
            print(f"wrote {out_dir / picture}")


if __name__ == "__main__":
    main()
