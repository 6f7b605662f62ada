"""Every ci/*-values.yaml: lint clean, render, validate every object, wire names together.

Kubernetes objects are validated (strict: unknown fields are errors) with kubernetes-validate
against the chart's floor and the newest schemas it ships (``KUBE_VERSIONS``). The Prometheus
Operator's ServiceMonitor and PrometheusRule are not in those schemas and their CRDs are not
vendored here, so they get structural checks (``test_monitoring_objects_are_well_formed``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import helm_python
import kubernetes_validate
import pytest
import yaml

from tests.helm.rendering import (
    CHART_DIR,
    CI_VALUES,
    FULLNAME,
    KUBE_VERSIONS,
    REPO_ROOT,
    Rendered,
    containers,
    load_values,
    selects,
)

CI_NAMES = [path.stem for path in CI_VALUES]

# The acceptance list: what each example renders, by kind.
EXPECTED_KINDS = {
    "autoscaling-values": {
        "ConfigMap": 1,
        "Deployment": 1,
        "HorizontalPodAutoscaler": 1,
        "PodDisruptionBudget": 1,
        "Secret": 1,
        "Service": 1,
        "ServiceAccount": 1,
        "ServiceMonitor": 1,
    },
    "default-values": {
        "ConfigMap": 1,
        "Deployment": 1,
        "NetworkPolicy": 1,
        "PodDisruptionBudget": 1,
        "Secret": 2,
        "Service": 2,
        "ServiceAccount": 1,
        "StatefulSet": 1,
    },
    "external-redis-values": {
        "ConfigMap": 1,
        "Deployment": 1,
        "Ingress": 1,
        "PodDisruptionBudget": 1,
        "Service": 1,
        "ServiceAccount": 1,
    },
    "gpu-workers-values": {
        "ConfigMap": 4,
        "Deployment": 3,
        "NetworkPolicy": 1,
        "PodDisruptionBudget": 2,
        "PrometheusRule": 1,
        "Secret": 2,
        "Service": 4,
        "ServiceAccount": 1,
        "ServiceMonitor": 2,
        "StatefulSet": 1,
    },
}
WORKLOADS = ("Deployment", "StatefulSet")


def test_every_ci_values_file_has_an_expected_object_count() -> None:
    assert CI_NAMES == sorted(EXPECTED_KINDS)


@pytest.mark.parametrize("path", [None, *CI_VALUES], ids=["chart-defaults", *CI_NAMES])
def test_chart_lints_clean_with_the_values_file(path: Path | None) -> None:
    values = None if path is None else load_values(path)
    report = helm_python.lint(CHART_DIR, values, strict=True, kube_version=f"v{KUBE_VERSIONS[-1]}")
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert report["errors"] == [] and problems == []


@pytest.mark.parametrize("name", CI_NAMES)
def test_rendered_objects_are_the_expected_kinds(
    ci_renders: dict[str, Rendered], name: str
) -> None:
    assert ci_renders[name].kinds() == EXPECTED_KINDS[name]


@pytest.mark.parametrize("version", KUBE_VERSIONS)
@pytest.mark.parametrize("name", CI_NAMES)
def test_every_kubernetes_object_validates_strictly(
    ci_renders: dict[str, Rendered], name: str, version: str
) -> None:
    for doc in ci_renders[name].docs:
        if doc["apiVersion"].startswith("monitoring.coreos.com/"):
            continue
        where = f"{doc['kind']}/{doc['metadata']['name']}"
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{where} is not valid Kubernetes {version}: {exc.message} at {exc.path}")


@pytest.mark.parametrize("name", CI_NAMES)
def test_every_container_runs_locked_down(ci_renders: dict[str, Rendered], name: str) -> None:
    for workload in (d for d in ci_renders[name].docs if d["kind"] in WORKLOADS):
        pod = workload["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert pod["automountServiceAccountToken"] is False
        for container in containers(workload):
            where = f"{workload['metadata']['name']}/{container['name']}"
            sc = container["securityContext"]
            assert sc["runAsNonRoot"] is True, where
            assert sc["allowPrivilegeEscalation"] is False, where
            assert sc["readOnlyRootFilesystem"] is True, where
            assert sc["capabilities"] == {"drop": ["ALL"]}, where
            assert sc["seccompProfile"] == {"type": "RuntimeDefault"}, where
            assert "memory" in container["resources"]["limits"], where
            assert "cpu" in container["resources"]["requests"], where


@pytest.mark.parametrize("name", CI_NAMES)
def test_gateway_service_pdb_and_probes_select_the_gateway_pods(
    ci_renders: dict[str, Rendered], name: str
) -> None:
    rendered = ci_renders[name]
    deployment = rendered.one("Deployment")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert selects(deployment["spec"]["selector"]["matchLabels"], pod_labels)
    service = rendered.one("Service")
    assert selects(service["spec"]["selector"], pod_labels)
    gateway = deployment["spec"]["template"]["spec"]["containers"][0]
    assert [p["name"] for p in gateway["ports"]] == [service["spec"]["ports"][0]["targetPort"]]
    assert gateway["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert gateway["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    pdb = rendered.one("PodDisruptionBudget")
    assert selects(pdb["spec"]["selector"]["matchLabels"], pod_labels)
    for spread in deployment["spec"]["template"]["spec"]["topologySpreadConstraints"]:
        assert selects(spread["labelSelector"]["matchLabels"], pod_labels)
    # Other components' pods are not picked up by the gateway's selectors.
    for other in rendered.of_kind("Deployment") + rendered.of_kind("StatefulSet"):
        if other is not deployment:
            other_labels = other["spec"]["template"]["metadata"]["labels"]
            assert not selects(service["spec"]["selector"], other_labels)


def test_hpa_scales_the_gateway_deployment_on_cpu_and_the_custom_metric(
    ci_renders: dict[str, Rendered],
) -> None:
    rendered = ci_renders["autoscaling-values"]
    hpa = rendered.one("HorizontalPodAutoscaler")
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", FULLNAME)
    assert "replicas" not in rendered.one("Deployment")["spec"]
    assert [m["type"] for m in hpa["spec"]["metrics"]] == ["Resource", "Pods"]
    assert hpa["spec"]["metrics"][1]["pods"]["metric"]["name"] == "gateway_upstream_inflight"
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (3, 20)


@pytest.mark.parametrize("name", CI_NAMES)
def test_monitoring_objects_are_well_formed(ci_renders: dict[str, Rendered], name: str) -> None:
    rendered = ci_renders[name]
    services = rendered.of_kind("Service")
    for monitor in rendered.of_kind("ServiceMonitor"):
        assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
        spec = monitor["spec"]
        assert set(spec) == {"selector", "namespaceSelector", "endpoints"}
        assert spec["namespaceSelector"] == {"matchNames": ["llm"]}
        matched = [
            s for s in services if selects(spec["selector"]["matchLabels"], s["metadata"]["labels"])
        ]
        assert matched, f"ServiceMonitor/{monitor['metadata']['name']} selects no Service"
        for endpoint in spec["endpoints"]:
            assert set(endpoint) <= {"port", "path", "interval", "scrapeTimeout", "relabelings"}
            assert endpoint["path"] == "/metrics"
            for service in matched:
                assert endpoint["port"] in [p["name"] for p in service["spec"]["ports"]]
            for relabel in endpoint["relabelings"]:
                assert set(relabel) <= {
                    "action",
                    "sourceLabels",
                    "separator",
                    "targetLabel",
                    "replacement",
                }
                assert relabel["action"] == "replace"
    for rule in rendered.of_kind("PrometheusRule"):
        assert rule["apiVersion"] == "monitoring.coreos.com/v1"
        assert list(rule["spec"]) == ["groups"]
        for group in rule["spec"]["groups"]:
            assert group["name"] and group["rules"]
            for r in group["rules"]:
                assert ("record" in r) != ("alert" in r) and r["expr"]


def test_monitors_give_the_job_names_the_rules_and_dashboards_query(
    ci_renders: dict[str, Rendered],
) -> None:
    rendered = ci_renders["gpu-workers-values"]
    jobs = {}
    for monitor in rendered.of_kind("ServiceMonitor"):
        relabels = monitor["spec"]["endpoints"][0]["relabelings"]
        jobs[monitor["metadata"]["name"]] = next(
            r["replacement"] for r in relabels if r["targetLabel"] == "job"
        )
    assert jobs == {FULLNAME: "token-gateway", f"{FULLNAME}-workers": "qwen-workers"}
    rules = (REPO_ROOT / "monitoring" / "rules" / "gateway.rules.yaml").read_text()
    assert 'job="token-gateway"' in rules and 'job="qwen-workers"' in rules
    worker_monitor = rendered.one("ServiceMonitor", f"{FULLNAME}-workers")
    member = next(
        r
        for r in worker_monitor["spec"]["endpoints"][0]["relabelings"]
        if r["targetLabel"] == "deployment"
    )
    # The gateway's name for a discovered pod: <group>@<pod IP>:<port>.
    assert member["separator"] == "@"
    assert member["sourceLabels"][1] == "__address__"


def _redis_url_as_kubernetes_expands_it(rendered: Rendered) -> str:
    entry = rendered.env().get("REDIS_URL")
    if entry is None:
        return ""
    if "valueFrom" in entry:
        return "rediss://:secret@redis.example.internal:6380/0"
    return str(entry["value"]).replace("$(REDIS_PASSWORD)", "secret")


@pytest.mark.parametrize("name", CI_NAMES)
def test_rendered_config_passes_the_gateways_own_check(
    ci_renders: dict[str, Rendered], name: str, tmp_path: Path
) -> None:
    rendered = ci_renders[name]
    config_file = tmp_path / "config.yaml"
    config_file.write_text(rendered.one("ConfigMap")["data"]["config.yaml"], encoding="utf-8")
    env = {**os.environ, "REDIS_URL": _redis_url_as_kubernetes_expands_it(rendered)}
    result = subprocess.run(
        [sys.executable, "-m", "gateway", "check-config", str(config_file)],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO_ROOT,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ok: ")


@pytest.mark.parametrize("name", CI_NAMES)
def test_no_secret_reaches_the_configmap(ci_renders: dict[str, Rendered], name: str) -> None:
    rendered = ci_renders[name]
    config = rendered.gateway_config()
    redis_url = config.get("accounting", {}).get("redis_url")
    assert redis_url in (None, "${REDIS_URL}")
    assert "REDIS_PASSWORD" not in yaml.safe_dump(config)
    for secret in rendered.of_kind("Secret"):
        for value in secret["data"].values():
            assert value not in rendered.one("ConfigMap")["data"]["config.yaml"]
