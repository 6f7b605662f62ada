"""Render the chart offline with helm-python-sdk and look things up in what it rendered.

``render`` is ``helm template`` with a pinned Kubernetes version: helm-python-sdk 0.2.2's
``Chart.render`` does not expose the native ``kube_version`` option, so the native call is
made here with the same arguments plus that option. Imports: helm_python, yaml.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from helm_python import Chart, _native

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART_DIR = REPO_ROOT / "helm" / "token-gateway"
CI_VALUES = sorted((CHART_DIR / "ci").glob("*-values.yaml"))
RELEASE, NAMESPACE = "tg", "llm"
FULLNAME = "tg-token-gateway"

# The chart's floor (Chart.yaml kubeVersion) and the newest schemas kubernetes-validate ships.
KUBE_VERSIONS = ("1.29.0", "1.37.0")
RENDER_KUBE_VERSION = KUBE_VERSIONS[-1]

Doc = dict[str, Any]


def load_values(path: Path) -> dict[str, Any]:
    values = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    assert isinstance(values, dict)
    return values


@dataclass(frozen=True)
class Rendered:
    """The objects one render produced, and NOTES.txt."""

    docs: tuple[Doc, ...]
    notes: str

    def kinds(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for doc in self.docs:
            counts[doc["kind"]] = counts.get(doc["kind"], 0) + 1
        return dict(sorted(counts.items()))

    def of_kind(self, kind: str) -> list[Doc]:
        return [doc for doc in self.docs if doc["kind"] == kind]

    def one(self, kind: str, name: str = FULLNAME) -> Doc:
        found = [doc for doc in self.of_kind(kind) if doc["metadata"]["name"] == name]
        assert len(found) == 1, f"{kind}/{name}: {len(found)} rendered"
        return found[0]

    def env(self, name: str = FULLNAME) -> dict[str, Doc]:
        """The gateway container's env entries by name."""
        container = self.one("Deployment", name)["spec"]["template"]["spec"]["containers"][0]
        return {entry["name"]: entry for entry in container.get("env", [])}

    def gateway_config(self) -> Doc:
        text = self.one("ConfigMap")["data"]["config.yaml"]
        config = yaml.safe_load(text)
        assert isinstance(config, dict)
        return config


def render(chart: Chart, values: Mapping[str, Any] | None = None) -> Rendered:
    """Render like ``helm template tg CHART -n llm --kube-version 1.37.0``."""
    options = {"name": RELEASE, "namespace": NAMESPACE, "kube_version": RENDER_KUBE_VERSION}
    payload = _native.call_string(
        "helm_render",
        chart._raw(),
        None if values is None else json.dumps(values),
        json.dumps(options),
    )
    manifests: dict[str, str] = json.loads(payload)
    docs: list[Doc] = []
    notes = ""
    for path, text in sorted(manifests.items()):
        if path.endswith("NOTES.txt"):
            notes = text
            continue
        docs.extend(doc for doc in yaml.safe_load_all(text) if doc)
    return Rendered(tuple(docs), notes)


def containers(doc: Doc) -> Iterator[Doc]:
    """Every container and init container of a workload's pod template."""
    pod = doc["spec"]["template"]["spec"]
    yield from pod.get("initContainers", [])
    yield from pod["containers"]


def selects(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    """A matchLabels-style selector matches these labels (and is not empty)."""
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())
