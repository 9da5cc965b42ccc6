"""Renders the default Slack alert of two sample calls to PNG pictures for the README.

Turns the Block Kit blocks into a small HTML page styled like a Slack message and
screenshots it with headless Chromium. Run from the repository root:

    python docs/render_slack_preview.py [--chromium /usr/bin/chromium] [--html-only]

It writes docs/slack-alert-failed.png and docs/slack-alert-completed.png, and for a
sink with a `signing_secret` docs/slack-alert-buttons.png (the failed call with its
buttons) and docs/slack-alert-silenced.png (the same message after "Silence similar for
1h": the router's update through the click's response_url), docs/slack-alert-thread.png
(the first alert of a trunk's thread once two more replied in it: `thread_by`), and the
HTML pages beside them when --html-only is given. `--only NAME` writes that picture alone.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from router.web.ui import STATIC  # noqa: E402
from sinks.base import DeliveryRequest  # noqa: E402
from sinks.slack.actions import silenced_text, updated_message  # noqa: E402
from sinks.slack.message import ActionButtons, build_message  # noqa: E402
from sinks.slack.preview import message_html  # noqa: E402
from sinks.slack.threads import with_reply_count  # noqa: E402

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
PREVIEWS = {
    # picture name: (sample, rule, window height)
    "slack-alert-failed.png": ("failed-outbound", "failed-calls", 275),
    "slack-alert-completed.png": ("completed-inbound", "inbound-calls", 490),
}
BUTTON_PREVIEWS = {
    # picture name: (after a click?, window height)
    "slack-alert-buttons.png": (False, 330),
    "slack-alert-silenced.png": (True, 360),
}
THREAD_PREVIEW = ("slack-alert-thread.png", 300)  # picture name, window height
CLICKED_AFTER = 300  # the picture's click comes 5 minutes after the call
WIDTH = 760


def page(message: dict[str, Any]) -> str:
    style = (STATIC / "slack.css").read_text(encoding="utf-8")
    return f"""<!doctype html><html><head><meta charset="utf-8"><style>
body {{ margin: 0; background: #fff; }}
{style}</style></head><body>{message_html(message)}</body></html>"""


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


def button_messages() -> dict[str, dict[str, Any]]:
    """The failed call's alert with its buttons, and the same message once silenced."""
    event = json.loads((SAMPLES / "failed-outbound.json").read_text())
    request = DeliveryRequest("preview", event["id"], "ops-slack", "failed-calls", event)
    buttons = ActionButtons("ops-slack", (3600.0, 4 * 3600.0, 24 * 3600.0))
    alert = build_message(request, buttons=buttons)
    clicked_at = datetime.fromisoformat(event["initiatedAt"]).timestamp() + CLICKED_AFTER
    outcome = silenced_text("U0ALICE", 3600.0, clicked_at + 3600, extended=False)
    # Slack shows the mention as the user's name; the preview needs it spelled out.
    silenced = updated_message(alert, outcome.replace("<@U0ALICE>", "<@U0ALICE|alice>"))
    return {"slack-alert-buttons.png": alert, "slack-alert-silenced.png": silenced}


def write(args: argparse.Namespace, out_dir: Path, picture: str, message: Any, height: int) -> None:
    html_path = out_dir / picture.replace(".png", ".html")
    html_path.write_text(page(message), encoding="utf-8")
    if not args.html_only:
        screenshot(args.chromium, html_path, out_dir / picture, height)
        html_path.unlink()
        print(f"wrote {out_dir / picture}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--html-only", action="store_true")
    parser.add_argument("--only", help="write this picture alone (such as slack-alert-thread.png)")
    args = parser.parse_args()
    out_dir = Path(__file__).resolve().parent
    wanted = lambda picture: args.only in (None, picture)  # noqa: E731
    for picture, (sample, rule, height) in PREVIEWS.items():
        if wanted(picture):
            event = json.loads((SAMPLES / f"{sample}.json").read_text())
            request = DeliveryRequest("preview", event["id"], "ops-slack", rule, event)
            write(args, out_dir, picture, build_message(request), height)
    with_buttons = button_messages()
    for picture, (_, height) in BUTTON_PREVIEWS.items():
        if wanted(picture):
            write(args, out_dir, picture, with_buttons[picture], height)
    picture, height = THREAD_PREVIEW
    if wanted(picture):
        event = json.loads((SAMPLES / "failed-outbound.json").read_text())
        request = DeliveryRequest("preview", event["id"], "ops-slack", "failed-calls", event)
        write(args, out_dir, picture, with_reply_count(build_message(request), 2), height)


if __name__ == "__main__":
    main()
