"""Top frames of a py-spy profile in collapsed-stack form (`py-spy record --format raw`).

Self time: the share of samples whose innermost frame is the function. Inclusive
time: the share of samples with the function anywhere on the stack.

    python bench/profile_summary.py bench/results/raw/profile-ingest.txt
"""

from __future__ import annotations

import json
import re
import sys
from collections import Counter
from pathlib import Path

FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^():]*)(?::\d+)?\)$")


def frame_name(frame: str) -> str:
    """`send (sinks/http.py:40)` -> `send (sinks/http.py)`: one entry per function."""
    match = FRAME.match(frame.strip())
    if match is None:
        return frame.strip()
    path = match["file"]
    for marker in ("site-packages/", "lib/python3.11/", "/work/wt/bench/", "/work/main/"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{match['func']} ({path})"


def summarize(path: Path, top: int = 15) -> dict:
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [frame_name(frame) for frame in stack.split(";") if frame]
        if not frames:
            continue
        total += count
        own[frames[-1]] += count
        for name in set(frames):
            inclusive[name] += count

    def share(counter: Counter[str]) -> list[dict]:
        return [
            {"frame": name, "percent": round(100 * count / total, 1)}
            for name, count in counter.most_common(top)
        ]

    return {"samples": total, "self": share(own), "inclusive": share(inclusive)}


def main() -> None:
    for name in sys.argv[1:]:
        print(json.dumps(summarize(Path(name)), indent=2))


if __name__ == "__main__":
    main()
