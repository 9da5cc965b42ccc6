"""Renders the default Slack alert of two sample calls to PNG pictures for the README.

Turns the Block Kit blocks into a small HTML page styled like a Slack message and
screenshots it with headless Chromium. Run from the repository root:

    python docs/render_slack_preview.py [--chromium /usr/bin/chromium] [--html-only]

It writes docs/slack-alert-failed.png and docs/slack-alert-completed.png (and the
HTML pages beside them when --html-only is given).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from router.ui.slack_preview import STYLESHEET, message_html  # noqa: E402
from sinks.base import DeliveryRequest  # noqa: E402
from sinks.slack_message import build_message  # noqa: E402

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
PREVIEWS = {
    # picture name: (sample, rule, window height)
    "slack-alert-failed.png": ("failed-outbound", "failed-calls", 275),
    "slack-alert-completed.png": ("completed-inbound", "inbound-calls", 490),
}
WIDTH = 760


def page(message: dict[str, Any]) -> str:
    style = STYLESHEET.read_text(encoding="utf-8")
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
