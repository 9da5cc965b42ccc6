"""Where an ingested call's CPU goes: the router under `cProfile` while wrk posts calls.

The router runs as `bench/run.py` runs it (`serve --no-auth`, SQLite, uvloop) but under
`python -m cProfile`, with rules that route nothing (`--match` routes every call to a
local sink); wrk posts the sample with a new id for `--seconds` (after a 1 s warm-up
that is profiled too). Prints the functions with the most own time per call accepted
(cProfile's overhead inflates every figure, so read them as shares; only the event
loop's thread is profiled, not the store's writer thread), the server's
CPU time per request, and writes the `.prof` file for `python -m pstats` or snakeviz.

With `--spy`, the router runs as it is (no cProfile) and py-spy samples it instead
(`--nonblocking --threads`: every thread, the store's writer included, which cProfile
does not see, and no profiler's overhead on each call): the top frames by own and
inclusive time per thread (`profile_summary.py`).

    python bench/profile_ingest.py [--match] [--seconds 8] [--top 40] [--spy]
"""

from __future__ import annotations

import argparse
import json
import pstats
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

import wrk_load  # noqa: E402
from procs import PYTHON, Proc, cpu_seconds, free_port, wait_http  # noqa: E402
from scenarios import Sink, router_rules  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--match", action="store_true", help="route every call to a sink")
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--output", type=Path, default=None, help="the .prof file")
    parser.add_argument("--spy", action="store_true", help="py-spy instead of cProfile")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="profile-ingest-"))
    output = args.output or work / "router.prof"
    script = wrk_load.write_script(work / "ingest.lua")
    with Sink(work) as sink:
        rules = work / "rules.yaml"
        rules.write_text(router_rules(sink.url, match=args.match))
        port = free_port()
        profiler = [] if args.spy else ["-m", "cProfile", "-o", str(output)]
        argv = [PYTHON, *profiler, "-m", "router", "serve"]
        argv += ["--no-auth", "--store", f"sqlite:///{work / 'router.db'}"]
        argv += ["--config", str(rules), "--port", str(port), "--retention-days", "0"]
        router = Proc("router", argv, work / "router.log", cwd=ROOT.parent)
        router.start()
        try:
            wait_http(f"http://127.0.0.1:{port}/readyz", router, timeout=60)
            url = f"http://127.0.0.1:{port}/webhooks/revring"
            wrk_load.run(url, script, connections=32, seconds=1)
            spy = start_spy(router.pid, args.seconds, work / "spy.txt") if args.spy else None
            before = cpu_seconds(router.pid)
            result = wrk_load.run(url, script, connections=32, seconds=args.seconds)
            after = cpu_seconds(router.pid)
            if spy is not None:
                spy.wait(args.seconds + 30)
        finally:
            router.stop()  # SIGTERM: the router exits cleanly, and cProfile writes its file
    ok = result["ok"]
    cpu = "-" if before is None or after is None else f"{1000 * (after - before) / ok:.3f}"
    print(f"{ok} requests answered 200 in {args.seconds:g} s; server CPU ms per request {cpu}")
    if args.spy:
        from profile_summary import summarize

        print(f"profile: {work / 'spy.txt'}")
        print(json.dumps(summarize(work / "spy.txt", top=args.top), indent=1))
        return
    stats = pstats.Stats(str(output))
    print(f"profile: {output}")
    stats.sort_stats("tottime").print_stats(args.top)


def start_spy(pid: int, seconds: float, out: Path) -> subprocess.Popen[bytes]:
    """py-spy sampling every thread of `pid` for `seconds`, without pausing it."""
    spy = str(Path(PYTHON).with_name("py-spy"))
    argv = [spy, "record", "--pid", str(pid), "--duration", str(int(seconds)), "--rate", "200"]
    argv += ["--nonblocking", "--threads", "--format", "raw", "-o", str(out)]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)


if __name__ == "__main__":
    main()
