"""The processes of one benchmark scenario: the router, the baseline, the sink server,
and the rules.yaml files the router runs with."""

from __future__ import annotations

import re
import time
import urllib.request
from pathlib import Path
from typing import Self

from procs import PYTHON, ROOT, Proc, free_port, http_json, wait_http

ROUTER_RULES = """\
# Benchmark rules: every call goes to one fast local HTTP sink.
version: 1
defaults:
  retry: {{max_attempts: 10, initial_delay: 1s, max_delay: 5s, max_age: 1h}}
sinks:
  bench-sink:
    type: http
    url: {url}
    timeout: 10s
    concurrency: {concurrency}
rules:
  - name: {rule_name}
{when}    to: [bench-sink]
"""

SINK_CONCURRENCY = 32


def router_rules(sink_url: str, *, match: bool = True, concurrency: int = SINK_CONCURRENCY) -> str:
    """rules.yaml routing every call to the sink at `sink_url` (or, match=False, none)."""
    return ROUTER_RULES.format(
        url=sink_url or '"${BENCH_SINK_URL:-}"',
        concurrency=concurrency,
        rule_name="every-call" if match else "never",
        when="" if match else "    when: {status: NO-SUCH-STATUS}\n",
    )


class _Server:
    """A server subprocess started on entry, stopped on exit; `ready_path` answers once
    it serves."""

    base: str
    proc: Proc
    ready_path = "/healthz"
    ready_timeout = 30.0

    def __enter__(self) -> Self:
        self.proc.start()
        try:
            wait_http(f"{self.base}{self.ready_path}", self.proc, timeout=self.ready_timeout)
        except BaseException:
            self.proc.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.proc.stop()


class Sink(_Server):
    """The sink server (bench/sink_server.py) on a fresh port."""

    ready_path = "/_stats"

    def __init__(self, work: Path, status: int = 200) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.url = f"{self.base}/deliveries"
        self.proc = Proc(
            "sink",
            [PYTHON, "bench/sink_server.py", "--port", str(self.port), "--status", str(status)],
            work / f"sink-{self.port}.log",
        )

    def stats(self) -> dict:
        return dict(http_json(f"{self.base}/_stats"))  # type: ignore[arg-type]

    def arrivals(self) -> dict[str, float]:
        return dict(http_json(f"{self.base}/_arrivals", timeout=60))  # type: ignore[arg-type]

    def wait_for(self, count: int, limit: float, poll: float = 0.2) -> float | None:
        """Wait until `count` distinct call ids arrived; the time it happened, or None."""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            if self.stats()["unique"] >= count:
                return time.time()
            time.sleep(poll)
        return None


class OtlpSink(_Server):
    """bench/otlp_sink.py on a fresh port: takes OTLP/HTTP trace exports and discards them."""

    ready_path = "/_stats"

    def __init__(self, work: Path) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc = Proc(
            "otlp-sink",
            [PYTHON, "bench/otlp_sink.py", "--port", str(self.port)],
            work / f"otlp-sink-{self.port}.log",
        )

    def stats(self) -> dict:
        return dict(http_json(f"{self.base}/_stats"))  # type: ignore[arg-type]


class Router(_Server):
    """`python -m router serve --no-auth` on a fresh port, store and rules.yaml."""

    ready_path = "/readyz"
    ready_timeout = 60.0

    def __init__(
        self,
        work: Path,
        rules_text: str,
        name: str = "router",
        loop: str = "auto",
        *,
        code: Path | None = None,
        env: dict[str, str] | None = None,
        store: str | None = None,
    ) -> None:
        """`code`: run the router of that checkout (its `router/` and `sinks/`, as for a
        before/after comparison) instead of this one's; `env`: more variables; `store`:
        a store URL instead of a fresh SQLite file (e.g. PostgreSQL, for replicas)."""
        work.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.url = f"{self.base}/webhooks/revring"
        self.rules = work / f"{name}-rules.yaml"
        self.rules.write_text(rules_text)
        self.db = work / f"{name}.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{self.db}{suffix}").unlink(missing_ok=True)
        self.proc = Proc(
            name,
            [
                PYTHON,
                "-m",
                "router",
                "serve",
                "--no-auth",
                "--store",
                store or f"sqlite:///{self.db}",
                "--config",
                str(self.rules),
                "--port",
                str(self.port),
                "--retention-days",
                "0",
                "--loop",
                loop,
            ],
            work / f"{name}.log",
            env={**(env or {}), **({"PYTHONPATH": str(code)} if code else {})},
            cwd=code or ROOT,
        )

    def metric_sum(self, name: str, **labels: str) -> float:
        """The sum of a metric's samples whose labels include `labels`."""
        with urllib.request.urlopen(f"{self.base}/metrics", timeout=30) as answer:
            text = answer.read().decode()
        total = 0.0
        for line in text.splitlines():
            if not line.startswith(f"revring_router_{name}"):
                continue
            head, _, value = line.rpartition(" ")
            found = dict(re.findall(r'(\w+)="([^"]*)"', head))
            if all(found.get(key) == want for key, want in labels.items()):
                total += float(value)
        return total


class Baseline(_Server):
    """bench/baseline_server.py on a fresh port."""

    def __init__(self, work: Path, loop: str = "asyncio") -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.url = f"{self.base}/webhooks/revring"
        self.proc = Proc(
            f"baseline-{loop}",
            [PYTHON, "bench/baseline_server.py", "--port", str(self.port), "--loop", loop],
            work / f"baseline-{loop}.log",
        )


class FullCeiling(_Server):
    """bench/full_ceiling_server.py (the one-process ceiling of a routed call: durable
    ingest, a send of each call to `sink_url`, its outcome recorded) on a fresh port."""

    def __init__(self, work: Path, sink_url: str, concurrency: int = SINK_CONCURRENCY) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.url = f"{self.base}/webhooks/revring"
        db = work / "full-ceiling.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
        argv = [PYTHON, "bench/full_ceiling_server.py", "--port", str(self.port), "--db", str(db)]
        argv += ["--sink", sink_url, "--concurrency", str(concurrency)]
        self.proc = Proc("full-ceiling", argv, work / "full-ceiling.log")


class Ceiling(_Server):
    """bench/ceiling_server.py (the one-process durable-ingest ceiling) on a fresh port."""

    def __init__(self, work: Path) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.url = f"{self.base}/webhooks/revring"
        db = work / "ceiling.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
        self.proc = Proc(
            "ceiling",
            [PYTHON, "bench/ceiling_server.py", "--port", str(self.port), "--db", str(db)],
            work / "ceiling.log",
        )
