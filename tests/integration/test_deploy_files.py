"""The deployment files parse and point at what exists (no Docker engine here to run them)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_compose_file_has_the_sqlite_router_and_the_replicas_profile():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert "profiles" not in services["router"]
    assert "router-data:/data" in services["router"]["volumes"]
    assert services["router"]["environment"]["ROUTER_STORE"].startswith("sqlite:////data/")
    for name in ("postgres", "router-a", "router-b", "lb"):
        assert services[name]["profiles"] == ["replicas"]
    for name in ("router-a", "router-b"):
        assert services[name]["environment"]["ROUTER_STORE"].startswith("postgresql://")
    mounted = [v.split(":")[0] for s in services.values() for v in s.get("volumes", [])]
    for source in mounted:
        if source.startswith("./"):
            assert (ROOT / source).exists(), source


def test_compose_mounts_the_rules_directory_not_the_file():
    # A single-file bind mount keeps showing a replaced file: edits are never seen.
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    for name in ("router", "router-a", "router-b"):
        service = compose["services"][name]
        config = service["environment"]["ROUTER_CONFIG"]
        # source:target[:ro], the source possibly "${VAR:-default}"
        mounts = [re.fullmatch(r"(.+?):(/[^:]*)(?::r[ow])?", v) for v in service["volumes"]]
        pairs = [match.groups() for match in mounts if match is not None]
        assert len(pairs) == len(mounts)
        assert not [source for source, _ in pairs if source.endswith("rules.yaml")]
        (directory,) = [target for _, target in pairs if config.startswith(target + "/")]
        assert config == directory + "/rules.yaml"


def test_every_variable_of_the_shipped_rules_is_passed_by_compose():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    passed = set(compose["services"]["router"]["environment"])

    lines = (ROOT / "rules.yaml").read_text().splitlines()
    text = "\n".join(line for line in lines if not line.startswith("#"))
    used = set(re.findall(r"\$\{([A-Z_]+)", text))
    assert used <= passed, used - passed


def test_alert_rules_name_metrics_the_router_exports():
    from router.core.metrics import Metrics

    exported = {metric.name for metric in Metrics().registry.collect()}
    exported |= {name + "_total" for name in exported}
    rules = yaml.safe_load((ROOT / "deploy/prometheus/alerts.yml").read_text())

    for rule in rules["groups"][0]["rules"]:
        for metric in re.findall(r"revring_router_[a-z_]+", rule["expr"]):
            assert metric in exported, metric


def test_nginx_retries_a_webhook_post_on_the_other_replica():
    conf = (ROOT / "deploy/nginx.conf").read_text()
    directives = [line.split("#", 1)[0].strip() for line in conf.splitlines()]
    (next_upstream,) = [d for d in directives if d.startswith("proxy_next_upstream ")]
    conditions = next_upstream.rstrip(";").split()[1:]
    # Without non_idempotent nginx never passes a POST (every webhook) to the next server.
    assert "non_idempotent" in conditions
    assert {"error", "timeout", "http_502", "http_503"} <= set(conditions)
    assert sum(d.startswith("server router-") for d in directives) == 2


def test_the_images_health_is_readiness():
    """Docker's health (compose's depends_on: service_healthy, load balancers) must turn
    bad while the store refuses writes: /readyz, not /healthz, which only says the process
    runs."""
    text = (ROOT / "Dockerfile").read_text()
    healthcheck = text[text.index("HEALTHCHECK") :].split("\n\n")[0]
    assert "/readyz" in healthcheck and "/healthz" not in healthcheck
