"""Top frames of a py-spy profile in collapsed-stack form (`py-spy record --format raw`).

Self time: the share of samples whose innermost frame is the function. Inclusive
time: the share of samples with the function anywhere on the stack. With
`--threads`, each thread (MainThread: the event loop; sqlite-writer, sqlite-reader)
is summarized on its own, and `all` sums them.

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


THREAD = re.compile(r"^thread \(\d+\): (?P<name>.*)$")


def _top(counter: Counter[str], total: int, top: int) -> list[dict]:
    return [
        {"frame": name, "percent": round(100 * count / total, 1)}
        for name, count in counter.most_common(top)
    ]


def summarize(path: Path, top: int = 15) -> dict:
    """Self and inclusive shares per thread (`py-spy record --threads`) and overall."""
    own: dict[str, Counter[str]] = {}
    inclusive: dict[str, Counter[str]] = {}
    samples: Counter[str] = Counter()
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [frame for frame in stack.split(";") if frame]
        thread = "all"
        if frames and (match := THREAD.match(frames[0])):
            thread = match["name"].split(":")[0]
            frames = frames[1:]
        names = [frame_name(frame) for frame in frames]
        if not names:
            continue
        for key in {thread, "all"}:
            samples[key] += count
            own.setdefault(key, Counter())[names[-1]] += count
            for name in set(names):
                inclusive.setdefault(key, Counter())[name] += count
    return {
        thread: {
            "samples": total,
            "self": _top(own[thread], total, top),
            "inclusive": _top(inclusive[thread], total, top),
        }
        for thread, total in samples.most_common()
    }


def main() -> None:
    for name in sys.argv[1:]:
        print(json.dumps(summarize(Path(name)), indent=2))


if __name__ == "__main__":
    main()
