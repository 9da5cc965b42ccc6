"""Prometheus Alertmanager as the comparison for end-to-end delivery.

One alert per request to /api/v2/alerts, each with its own `call_id` label; the route
groups by `call_id` with `group_wait: 0s`, so every alert is its own notification to
a webhook receiver: the same sink server the router delivers to. Clustering is off.
Alertmanager holds alerts in memory only (it snapshots silences and its notification
log, never the alerts, and fsyncs nothing per alert).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from procs import Proc

BINARY = "/usr/bin/prometheus-alertmanager"

CONFIG = """\
route:
  receiver: sink
  group_by: ['call_id']
  group_wait: 0s
  group_interval: 1m
  repeat_interval: 24h
receivers:
  - name: sink
    webhook_configs:
      - url: http://127.0.0.1:{sink_port}/alertmanager
        send_resolved: false
"""


def binary() -> str | None:
    if Path(BINARY).exists():
        return BINARY
    return shutil.which("alertmanager") or shutil.which("prometheus-alertmanager")


def version() -> str:
    import subprocess

    path = binary()
    if path is None:
        return "not installed"
    done = subprocess.run([path, "--version"], capture_output=True, text=True, check=False)
    return (done.stdout or done.stderr).splitlines()[0].strip()


def process(work: Path, port: int, sink_port: int) -> Proc:
    path = binary()
    if path is None:
        raise RuntimeError("Alertmanager not installed: apt-get install prometheus-alertmanager")
    work.mkdir(parents=True, exist_ok=True)
    config = work / "alertmanager.yml"
    config.write_text(CONFIG.format(sink_port=sink_port))
    return Proc(
        "alertmanager",
        [
            path,
            f"--config.file={config}",
            f"--storage.path={work / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
            "--log.level=warn",
        ],
        work / "alertmanager.log",
    )
