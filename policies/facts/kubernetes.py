"""Pod specs inside Kubernetes workloads, and their containers."""
from __future__ import annotations

from typing import Any

from policies.rule import ResourceView

POD_SPEC_PATHS = {
    "kubernetes:core/v1:Pod": "spec",
    "kubernetes:apps/v1:Deployment": "spec.template.spec",
    "kubernetes:apps/v1:StatefulSet": "spec.template.spec",
    "kubernetes:apps/v1:DaemonSet": "spec.template.spec",
    "kubernetes:apps/v1:ReplicaSet": "spec.template.spec",
    "kubernetes:batch/v1:Job": "spec.template.spec",
    "kubernetes:batch/v1:CronJob": "spec.jobTemplate.spec.template.spec",
}
WORKLOAD_TYPES = tuple(POD_SPEC_PATHS)
LONG_RUNNING_TYPES = ("kubernetes:apps/v1:Deployment", "kubernetes:apps/v1:StatefulSet",
                      "kubernetes:apps/v1:DaemonSet", "kubernetes:apps/v1:ReplicaSet")


def pod_spec(resource: ResourceView) -> dict[str, Any]:
    spec = resource.get(POD_SPEC_PATHS.get(resource.type, "__none__"))
    return spec if isinstance(spec, dict) else {}


def pod_labels(resource: ResourceView) -> dict[str, str]:
    path = {"kubernetes:core/v1:Pod": "metadata.labels",
            "kubernetes:batch/v1:CronJob": "spec.jobTemplate.spec.template.metadata.labels"}.get(
        resource.type, "spec.template.metadata.labels")
    labels = resource.get(path)
    return labels if isinstance(labels, dict) else {}


def pod_annotations(resource: ResourceView) -> dict[str, str]:
    path = {"kubernetes:core/v1:Pod": "metadata.annotations",
            "kubernetes:batch/v1:CronJob": "spec.jobTemplate.spec.template.metadata.annotations"}.get(
        resource.type, "spec.template.metadata.annotations")
    annotations = resource.get(path)
    return annotations if isinstance(annotations, dict) else {}


def containers(resource: ResourceView, init: bool = True) -> list[tuple[str, dict[str, Any]]]:
    """(label, container) for every container (and init container) of the workload's pod template."""
    spec = pod_spec(resource)
    found = [(f"container {c.get('name', '?')}", c) for c in spec.get("containers") or [] if isinstance(c, dict)]
    if init:
        found += [(f"init container {c.get('name', '?')}", c) for c in spec.get("initContainers") or []
                  if isinstance(c, dict)]
    return found


def namespace_of(resource: ResourceView) -> str | None:
    namespace = resource.get("metadata.namespace")
    return namespace if isinstance(namespace, str) else None


def object_name(resource: ResourceView) -> str:
    name = resource.get("metadata.name")
    return name if isinstance(name, str) else resource.name


def selects(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    """A label selector (`matchLabels` and simple `matchExpressions`) matching these labels; empty selects all."""
    if not isinstance(selector, dict):
        return False
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = expression.get("key"), expression.get("operator"), expression.get("values") or []
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and labels.get(key) in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
    return True
