"""Pods do not mount directories of the node: that bypasses storage isolation and often means node takeover."""
from policies.facts.kubernetes import WORKLOAD_TYPES, pod_spec
from policies.rule import Severity, resource_rule


def check(resource, config):
    if resource.type == "kubernetes:core/v1:PersistentVolume":
        if resource.get("spec.hostPath"):
            yield f"persistent volume uses hostPath {resource.get('spec.hostPath.path')}"
        return
    for volume in pod_spec(resource).get("volumes") or []:
        if isinstance(volume, dict) and volume.get("hostPath"):
            yield f"volume {volume.get('name')} mounts host path {volume['hostPath'].get('path')}"


policy = resource_rule(
    name="k8s-no-host-path", domain="kubernetes", severity=Severity.HIGH, check=check,
    applies={*WORKLOAD_TYPES, "kubernetes:core/v1:PersistentVolume"},
    description="Kubernetes pods and persistent volumes do not use hostPath volumes.",
    remediation="Use a PersistentVolumeClaim (state), an emptyDir (scratch) or a ConfigMap/Secret (files) instead.")
