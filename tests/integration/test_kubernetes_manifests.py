"""deploy/kubernetes: every manifest is valid against Kubernetes' own schemas (offline,
`kubernetes-validate`), strictly (an unknown or misspelt field is an error), and the
Deployment has what operators rely on (#32 item 7)."""

from __future__ import annotations

import re
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = ROOT / "deploy" / "kubernetes"
# The oldest Kubernetes release still supported upstream when this was written: what
# validates here validates on every newer one (the schemas only add fields).
KUBERNETES_VERSION = "1.31.0"
# The router's drain after SIGTERM with the default ROUTER_SHUTDOWN_GRACE (docs/operations).
DRAIN_SECONDS = 8
FILES = sorted(MANIFESTS.rglob("*.yaml"))


def documents(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def resources() -> dict[str, dict]:
    found: dict[str, dict] = {}
    for path in FILES:
        for doc in documents(path):
            found[doc["kind"]] = doc
    return found


def test_the_directory_has_the_resources():
    assert FILES
    assert {"Deployment", "Service", "PodDisruptionBudget", "ConfigMap", "Secret"} <= set(
        resources()
    )


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(MANIFESTS)))
def test_manifest_is_valid_against_the_kubernetes_schema(path):
    docs = documents(path)
    assert docs, path
    for doc in docs:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_strict_validation_refuses_an_unknown_field():
    deployment = resources()["Deployment"]
    deployment["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


def pod_spec() -> dict:
    return resources()["Deployment"]["spec"]["template"]["spec"]


def router_container() -> dict:
    (container,) = pod_spec()["containers"]
    return container


def env(container: dict) -> dict[str, dict]:
    return {item["name"]: item for item in container["env"]}


def test_two_replicas_of_the_image():
    deployment = resources()["Deployment"]
    assert deployment["spec"]["replicas"] == 2
    assert router_container()["image"] == "revring-router:latest"


def test_liveness_is_healthz_and_readiness_is_readyz():
    container = router_container()
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    port = container["ports"][0]
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"]["port"] in (port["name"], port["containerPort"])


def test_grace_period_fits_the_prestop_sleep_and_the_drain():
    container = router_container()
    command = container["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep"
    sleep = int(command[1])
    assert 0 < sleep <= 10
    assert "ROUTER_SHUTDOWN_GRACE" not in env(container)
    # The preStop hook's time counts in the grace period: the drain must end after it.
    assert pod_spec()["terminationGracePeriodSeconds"] > sleep + DRAIN_SECONDS


def test_read_only_root_with_an_emptydir_on_tmp():
    container = router_container()
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    (tmp,) = [m for m in container["volumeMounts"] if m["mountPath"] == "/tmp"]
    volumes = {volume["name"]: volume for volume in pod_spec()["volumes"]}
    assert "emptyDir" in volumes[tmp["name"]]


def test_non_root_security_context():
    pod = pod_spec()["securityContext"]
    container = router_container()["securityContext"]
    assert pod["runAsNonRoot"] is True and container["runAsNonRoot"] is True
    assert container["runAsUser"] == 10001  # the Dockerfile's user
    assert container["allowPrivilegeEscalation"] is False
    assert container["capabilities"]["drop"] == ["ALL"]
    assert "add" not in container["capabilities"]
    assert container["seccompProfile"]["type"] == "RuntimeDefault"
    assert "privileged" not in container or container["privileged"] is False


def test_secrets_come_from_a_secret():
    variables = env(router_container())
    secret = resources()["Secret"]
    for name in ("ROUTER_API_KEYS", "ROUTER_ADMIN_TOKEN", "ROUTER_STORE"):
        assert "value" not in variables[name], name
        ref = variables[name]["valueFrom"]["secretKeyRef"]
        assert ref["name"] == secret["metadata"]["name"]
        assert ref["key"] in secret["stringData"]
    assert secret["stringData"]["ROUTER_STORE"].startswith("postgresql://")
    assert variables["ROUTER_HOST"]["value"] == "0.0.0.0"


def test_the_example_secret_is_not_applied_with_the_directory():
    # `kubectl apply -f deploy/kubernetes/` reads the top level only.
    top = [doc["kind"] for path in MANIFESTS.glob("*.yaml") for doc in documents(path)]
    assert "Secret" not in top


def test_rules_come_from_a_configmap_mounted_as_a_directory():
    container = router_container()
    configmap = resources()["ConfigMap"]
    volumes = {volume["name"]: volume for volume in pod_spec()["volumes"]}
    (mount,) = [
        m
        for m in container["volumeMounts"]
        if volumes[m["name"]].get("configMap", {}).get("name") == configmap["metadata"]["name"]
    ]
    # A subPath mount never sees an update of the ConfigMap.
    assert "subPath" not in mount and "subPathExpr" not in mount
    assert "items" not in volumes[mount["name"]]["configMap"]
    config = env(container)["ROUTER_CONFIG"]["value"]
    assert config == mount["mountPath"].rstrip("/") + "/rules.yaml"
    assert "rules.yaml" in configmap["data"]


def test_the_configmap_holds_the_shipped_rules():
    assert resources()["ConfigMap"]["data"]["rules.yaml"] == (ROOT / "rules.yaml").read_text()


def test_service_selects_the_pods_and_targets_the_port():
    found = resources()
    labels = found["Deployment"]["spec"]["template"]["metadata"]["labels"]
    service = found["Service"]
    assert service["spec"]["selector"].items() <= labels.items()
    assert service["spec"]["ports"][0]["targetPort"] in ("http", 8080)


def test_disruption_budget_keeps_one_replica():
    found = resources()
    budget = found["PodDisruptionBudget"]
    assert budget["spec"]["minAvailable"] == 1
    labels = found["Deployment"]["spec"]["template"]["metadata"]["labels"]
    assert budget["spec"]["selector"]["matchLabels"].items() <= labels.items()


def test_memory_fits_the_service_and_its_parse_workers():
    # ~160 MB for the service at peak and ~80 MB per parse worker, at most 2 of them.
    resources_ = router_container()["resources"]

    def mebibytes(quantity: str) -> int:
        number, unit = re.fullmatch(r"(\d+)(Mi|Gi)", quantity).groups()
        return int(number) * (1024 if unit == "Gi" else 1)

    assert mebibytes(resources_["requests"]["memory"]) >= 160 + 80
    assert mebibytes(resources_["limits"]["memory"]) >= 160 + 2 * 80
