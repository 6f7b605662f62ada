"""Each part of the chart on its own: switched off it renders nothing; switched on it has the
right names, labels, selectors and ports; values it cannot honour fail with a clear message."""

from __future__ import annotations

from typing import Any

import pytest
from helm_python import Chart, HelmRenderError, HelmValuesError

from tests.helm.rendering import FULLNAME, Rendered, containers, render, selects

GROUP_7B: dict[str, Any] = {
    "name": "qwen-7b",
    "replicas": 2,
    "model": {"size": "7B", "variant": "Instruct"},
    "tensorParallelSize": 1,
    "gpu": {"type": "h100", "hourUsd": 3.99},
}
GROUP_CODER: dict[str, Any] = {
    "name": "coder-32b",
    "replicas": 1,
    "model": {"size": "32B", "variant": "Coder"},
    "tensorParallelSize": 4,
    "gpu": {"type": "a100", "hourUsd": 1.8},
}


def workers(*groups: dict[str, Any]) -> dict[str, Any]:
    return {"workers": {"enabled": True, "groups": list(groups)}}


def test_optional_parts_render_nothing_by_default(chart: Chart) -> None:
    rendered = render(chart)
    names = {(d["kind"], d["metadata"]["name"]) for d in rendered.docs}
    assert rendered.of_kind("Ingress") == []
    assert rendered.of_kind("HorizontalPodAutoscaler") == []
    assert rendered.of_kind("ServiceMonitor") == []
    assert rendered.of_kind("PrometheusRule") == []
    assert [n for n in names if "dashboard" in n[1]] == []
    assert [d for d in rendered.docs if d["metadata"]["labels"].get("token-gateway/role")] == []
    assert "discovery" not in str(rendered.gateway_config())


def test_switched_off_parts_render_nothing(chart: Chart) -> None:
    values = {
        "redis": {"mode": "embedded"},
        "replicaCount": 1,
        "podDisruptionBudget": {"enabled": False},
        "serviceAccount": {"create": False},
        "masterKey": {"existingSecret": "admin"},
        **workers(GROUP_7B),
    }
    values["workers"]["enabled"] = False
    rendered = render(chart, values)
    assert rendered.kinds() == {"ConfigMap": 1, "Deployment": 1, "Service": 1}
    assert "redis_url" not in rendered.gateway_config().get("accounting", {})
    assert "REDIS_URL" not in rendered.env()
    pod = rendered.one("Deployment")["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "default"


def test_each_monitoring_object_switches_on_alone(chart: Chart) -> None:
    base = render(chart).kinds()
    for part, added in (
        ("serviceMonitor", {"ServiceMonitor": 1}),
        ("prometheusRule", {"PrometheusRule": 1}),
        ("dashboards", {"ConfigMap": 3}),
    ):
        kinds = render(chart, {"monitoring": {part: {"enabled": True}}}).kinds()
        extra = {k: n - base.get(k, 0) for k, n in kinds.items() if n != base.get(k, 0)}
        assert extra == added, part
    dashboards = render(chart, {"monitoring": {"dashboards": {"enabled": True}}})
    maps = [d for d in dashboards.of_kind("ConfigMap") if "dashboard" in d["metadata"]["name"]]
    assert sorted(m["metadata"]["name"] for m in maps) == [
        f"{FULLNAME}-dashboard-budgets",
        f"{FULLNAME}-dashboard-fleet",
        f"{FULLNAME}-dashboard-overview",
    ]
    assert all(m["metadata"]["labels"]["grafana_dashboard"] == "1" for m in maps)


def test_config_change_changes_the_checksum_and_nothing_else_does(chart: Chart) -> None:
    def checksum(values: dict[str, Any]) -> str:
        pod = render(chart, values).one("Deployment")["spec"]["template"]
        return str(pod["metadata"]["annotations"]["checksum/config"])

    base = checksum({})
    assert checksum({"config": {"cache": {"ttl_s": 60}}}) != base
    assert checksum(workers(GROUP_7B)) != base
    assert checksum({"redis": {"mode": "embedded"}, "replicaCount": 1}) != base
    assert checksum({"replicaCount": 3}) == base
    assert checksum({}) == base


def test_worker_groups_become_deployments_headless_services_and_gateway_groups(
    chart: Chart,
) -> None:
    rendered = render(chart, workers(GROUP_7B, GROUP_CODER))
    config = rendered.gateway_config()
    by_name = {d["name"]: d for d in config["deployments"]}
    for group, model, gpus in (
        (GROUP_7B, "Qwen/Qwen2.5-7B-Instruct", 1),
        (GROUP_CODER, "Qwen/Qwen2.5-Coder-32B-Instruct", 4),
    ):
        name = f"{FULLNAME}-{group['name']}"
        service = rendered.one("Service", name)
        assert service["spec"]["clusterIP"] == "None"
        assert service["spec"]["publishNotReadyAddresses"] is False
        deployment = rendered.one("Deployment", name)
        pod = deployment["spec"]["template"]
        assert selects(service["spec"]["selector"], pod["metadata"]["labels"])
        assert selects(deployment["spec"]["selector"]["matchLabels"], pod["metadata"]["labels"])
        assert deployment["spec"]["replicas"] == group["replicas"]
        (vllm,) = containers(deployment)
        assert vllm["image"].startswith("vllm/vllm-openai:")
        assert vllm["args"][0] == model
        assert f"--tensor-parallel-size={gpus}" in vllm["args"]
        assert vllm["resources"]["requests"]["nvidia.com/gpu"] == gpus
        assert vllm["resources"]["limits"]["nvidia.com/gpu"] == gpus
        assert service["spec"]["ports"][0]["port"] == 8000
        assert vllm["ports"][0]["name"] == service["spec"]["ports"][0]["targetPort"]
        startup = vllm["startupProbe"]
        assert startup["httpGet"]["path"] == "/health"
        assert startup["periodSeconds"] * startup["failureThreshold"] >= 20 * 60
        assert pod["spec"]["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
        assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod[
            "spec"
        ]["tolerations"]
        volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
        assert volumes["shm"]["emptyDir"]["medium"] == "Memory"
        assert {"name": "HF_HOME", "value": "/models"} in vllm["env"]
        gateway_side = by_name[group["name"]]
        assert gateway_side["discovery"] == {
            "dns": f"{name}.llm.svc.cluster.local",
            "port": 8000,
            "interval_s": 10,
            "path": "/v1",
        }
        assert (gateway_side["model"], gateway_side["gpus"], gateway_side["local"]) == (
            model,
            gpus,
            True,
        )
        assert gateway_side["gpu"] == group["gpu"]["type"]
        assert "base_url" not in gateway_side
    # Two pods: a PodDisruptionBudget; one pod: none (it would block every drain).
    assert rendered.one("PodDisruptionBudget", f"{FULLNAME}-qwen-7b")
    assert [p["metadata"]["name"] for p in rendered.of_kind("PodDisruptionBudget")] == [
        FULLNAME,
        f"{FULLNAME}-qwen-7b",
    ]
    # Paid deployments from values keep their place after the worker groups.
    assert [d["name"] for d in config["deployments"]] == [
        "qwen-7b",
        "coder-32b",
        "openai-gpt-4o-mini",
    ]


def test_worker_group_settings_override_the_worker_defaults(chart: Chart) -> None:
    group = {
        **GROUP_7B,
        "model": {"name": "Qwen/Qwen2.5-7B-Instruct-AWQ", "size": "7B"},
        "nodeSelector": {"gpu": "l40s"},
        "extraArgs": ["--quantization=awq"],
    }
    values = {**workers(group), "clusterDomain": "corp.local"}
    values["workers"]["modelCache"] = {"existingClaim": "hf-cache"}
    rendered = render(chart, values)
    deployment = rendered.one("Deployment", f"{FULLNAME}-qwen-7b")
    pod = deployment["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"gpu": "l40s"}
    (vllm,) = containers(deployment)
    assert vllm["args"][0] == "Qwen/Qwen2.5-7B-Instruct-AWQ"
    assert vllm["args"][-1] == "--quantization=awq"
    models = next(v for v in pod["volumes"] if v["name"] == "models")
    assert models == {"name": "models", "persistentVolumeClaim": {"claimName": "hf-cache"}}
    dns = rendered.gateway_config()["deployments"][0]["discovery"]["dns"]
    assert dns == f"{FULLNAME}-qwen-7b.llm.svc.corp.local"


def test_a_group_with_zero_replicas_is_parked_not_defaulted(chart: Chart) -> None:
    rendered = render(chart, workers({**GROUP_7B, "replicas": 0}))
    assert rendered.one("Deployment", f"{FULLNAME}-qwen-7b")["spec"]["replicas"] == 0


@pytest.mark.parametrize(
    ("groups", "taken_in"),
    [
        ([GROUP_7B, GROUP_7B], "workers.groups"),
        ([{**GROUP_7B, "name": "openai-gpt-4o-mini"}], "config.deployments"),
    ],
    ids=["two-groups", "a-paid-deployment"],
)
def test_a_group_name_must_be_unique_among_deployments(
    chart: Chart, groups: list[dict[str, Any]], taken_in: str
) -> None:
    with pytest.raises(HelmRenderError, match=rf"is already taken \(in {taken_in}\)"):
        render(chart, workers(*groups))


def test_an_unknown_qwen_size_for_the_variant_fails_naming_the_group(chart: Chart) -> None:
    bad = {**GROUP_7B, "model": {"size": "0.5B", "variant": "Math"}}
    with pytest.raises(HelmRenderError, match=r'worker group "qwen-7b": Qwen2.5 Math comes in'):
        render(chart, workers(bad))


@pytest.mark.parametrize(
    ("values", "url"),
    [
        ({}, "redis://:$(REDIS_PASSWORD)@tg-token-gateway-redis:6379/0"),
        (
            {"redis": {"mode": "external", "external": {"url": "rediss://r.internal:6380/1"}}},
            "rediss://r.internal:6380/1",
        ),
        (
            {
                "redis": {
                    "mode": "external",
                    "external": {
                        "url": "redis://r.internal:6379/0",
                        "passwordSecret": {"name": "redis-auth", "key": "pw"},
                    },
                }
            },
            "redis://:$(REDIS_PASSWORD)@r.internal:6379/0",
        ),
        (
            {
                "redis": {
                    "mode": "external",
                    "external": {"sentinel": {"hosts": ["s0:26379", "s1:26379"], "db": 2}},
                }
            },
            "redis+sentinel://s0:26379,s1:26379/mymaster/2",
        ),
    ],
    ids=["bundled", "external-url", "external-url-password", "external-sentinel"],
)
def test_redis_url_reaches_the_gateway_through_the_environment(
    chart: Chart, values: dict[str, Any], url: str
) -> None:
    rendered = render(chart, values)
    env = rendered.env()
    assert env["REDIS_URL"]["value"] == url
    names = list(env)
    if "$(REDIS_PASSWORD)" in url:
        # Kubernetes expands $(VAR) only from entries listed before it.
        assert names.index("REDIS_PASSWORD") < names.index("REDIS_URL")
        assert "secretKeyRef" in env["REDIS_PASSWORD"]["valueFrom"]
    assert rendered.gateway_config()["accounting"]["redis_url"] == "${REDIS_URL}"


def test_bundled_redis_is_one_persistent_aof_pod_behind_its_service(chart: Chart) -> None:
    rendered = render(chart)
    statefulset = rendered.one("StatefulSet", f"{FULLNAME}-redis")
    service = rendered.one("Service", f"{FULLNAME}-redis")
    pod = statefulset["spec"]["template"]
    assert statefulset["spec"]["replicas"] == 1
    assert selects(service["spec"]["selector"], pod["metadata"]["labels"])
    assert not selects(rendered.one("Service")["spec"]["selector"], pod["metadata"]["labels"])
    (redis,) = containers(statefulset)
    assert redis["args"][redis["args"].index("--appendonly") + 1] == "yes"
    assert redis["args"][redis["args"].index("--requirepass") + 1] == "$(REDIS_PASSWORD)"
    claim = statefulset["spec"]["volumeClaimTemplates"][0]
    assert claim["metadata"]["name"] == "data"
    assert {"name": "data", "mountPath": "/data"} in redis["volumeMounts"]


def test_only_gateway_pods_may_reach_the_bundled_redis(chart: Chart) -> None:
    rendered = render(chart)
    policy = rendered.one("NetworkPolicy", f"{FULLNAME}-redis")["spec"]
    redis_pod = rendered.one("StatefulSet", f"{FULLNAME}-redis")["spec"]["template"]
    gateway_pod = rendered.one("Deployment")["spec"]["template"]
    assert selects(policy["podSelector"]["matchLabels"], redis_pod["metadata"]["labels"])
    (rule,) = policy["ingress"]
    (peer,) = rule["from"]
    assert selects(peer["podSelector"]["matchLabels"], gateway_pod["metadata"]["labels"])
    assert rule["ports"] == [{"port": "redis", "protocol": "TCP"}]
    off = render(chart, {"redis": {"bundled": {"networkPolicy": False}}})
    assert off.of_kind("NetworkPolicy") == []


def test_external_redis_without_an_address_fails_clearly(chart: Chart) -> None:
    with pytest.raises(HelmRenderError, match=r"redis\.mode external needs"):
        render(chart, {"redis": {"mode": "external"}})


@pytest.mark.parametrize(
    "values",
    [
        {"redis": {"mode": "embedded"}, "replicaCount": 2},
        {"redis": {"mode": "embedded"}, "replicaCount": 1, "autoscaling": {"enabled": True}},
        {"redis": {"mode": "embedded"}, "replicaCount": 1, "processes": 2},
    ],
    ids=["replicas", "autoscaling", "processes"],
)
def test_embedded_store_refuses_more_than_one_gateway_process(
    chart: Chart, values: dict[str, Any]
) -> None:
    with pytest.raises(HelmRenderError, match=r"redis\.mode embedded .* exactly one replica"):
        render(chart, values)


def test_embedded_store_with_one_replica_renders(chart: Chart) -> None:
    rendered = render(chart, {"redis": {"mode": "embedded"}, "replicaCount": 1})
    assert rendered.one("Deployment")["spec"]["replicas"] == 1
    assert "embedded" in rendered.notes


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"replicaCont": 2}, "at '': additional properties 'replicaCont' not allowed"),
        (
            workers({**GROUP_7B, "tensorParalelSize": 2}),
            "at '/workers/groups/0': additional properties 'tensorParalelSize' not allowed",
        ),
        (
            workers({**GROUP_7B, "model": {"size": "8B"}}),
            "at '/workers/groups/0/model/size': value must be one of",
        ),
        ({"redis": {"mode": "embeded"}}, "at '/redis/mode': value must be one of"),
        (
            {"config": {"cache": {"ttl": 60}}},
            "at '/config/cache': additional properties 'ttl' not allowed",
        ),
        (
            {"config": {"accounting": {"redis_url": "redis://r:6379"}}},
            "at '/config/accounting': additional properties 'redis_url' not allowed",
        ),
        ({"monitoring": {"serviceMonitor": {"enable": True}}}, "'enable' not allowed"),
    ],
    ids=["top-level", "worker-group", "qwen-size", "redis-mode", "config", "redis-url", "nested"],
)
def test_schema_rejects_a_misspelt_value_naming_it(
    chart: Chart, values: dict[str, Any], message: str
) -> None:
    with pytest.raises(HelmValuesError) as caught:
        chart.validate_schema(values)
    assert message in str(caught.value)


def test_default_values_and_every_example_pass_the_schema(
    chart: Chart, ci_renders: dict[str, Rendered]
) -> None:
    chart.validate_schema(None)
    assert ci_renders  # each was rendered, which validates it against the schema too


def test_notes_tell_how_to_call_the_gateway(ci_renders: dict[str, Rendered]) -> None:
    notes = ci_renders["default-values"].notes
    assert "kubectl -n llm port-forward svc/tg-token-gateway 8080:8080" in notes
    assert "/v1/chat/completions" in notes and '"model": "gpt-4o-mini"' in notes
    assert "https://llm.example.internal/v1" in ci_renders["external-redis-values"].notes
    assert (
        "qwen-32b (Qwen/Qwen2.5-32B-Instruct, 1 x 2 GPU)" in ci_renders["gpu-workers-values"].notes
    )
