"""Kubernetes policies over real pulumi-kubernetes resources: a hardened workload passes, each weakening is
reported by the policy about it."""
import json

import pulumi_kubernetes as k8s
import pytest

from .conftest import messages, run

NS = "data"
LABELS = {"app": "web"}


def container(flip: str | None) -> dict:
    security = {"runAsNonRoot": True, "runAsUser": 1000, "readOnlyRootFilesystem": True,
                "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
    if flip == "root":
        security = {**security, "runAsNonRoot": False, "runAsUser": 0}
    if flip == "writable":
        security = {**security, "readOnlyRootFilesystem": False}
    if flip == "privileged":
        security = {**security, "privileged": True}
    resources = {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"memory": "256Mi"}}
    if flip == "resources":
        resources = {"requests": {"cpu": "250m"}}
    probe = {"httpGet": {"path": "/health", "port": 8080}}
    return {"name": "web", "image": "ghcr.io/example/web:latest" if flip == "latest" else "ghcr.io/example/web:1.4.2",
            "ports": [{"containerPort": 8080, "name": "http"}], "resources": resources, "securityContext": security,
            "readinessProbe": probe, **({} if flip == "probes" else {"livenessProbe": probe})}


def k8s_program(flip: str | None = None):
    def program():
        meta = {"namespace": NS}
        volumes = [{"name": "tmp", "emptyDir": {}}]
        if flip == "hostpath":
            volumes.append({"name": "host", "hostPath": {"path": "/var/run"}})
        k8s.apps.v1.Deployment("web", metadata={**meta, "name": "web"}, spec={
            "selector": {"matchLabels": LABELS}, "template": {
                "metadata": {"labels": LABELS},
                "spec": {"containers": [container(flip)], "volumes": volumes}}})
        k8s.core.v1.Service("web", metadata={**meta, "name": "web", "labels": LABELS}, spec={
            "type": "LoadBalancer" if flip == "lb" else "ClusterIP", "selector": LABELS,
            "ports": [{"name": "http", "port": 80, "targetPort": 8080}]})
        k8s.apiextensions.CustomResource("web-monitor", api_version="monitoring.coreos.com/v1", kind="ServiceMonitor",
                                         metadata={**meta, "name": "web"},
                                         spec={"selector": {"matchLabels": LABELS}, "endpoints": [{"port": "http"}]})
        k8s.apiextensions.CustomResource("prometheus", api_version="monitoring.coreos.com/v1", kind="Prometheus",
                                         metadata=meta, spec={"serviceMonitorSelector": {}})
    return program


def test_hardened_workload_passes_every_policy():
    report = run(k8s_program())
    assert report.violations == [], [(v.policy, v.message) for v in report.violations]


CASES = [
    ("resources", "k8s-resources", "container web has no requests.memory, limits.memory"),
    ("root", "k8s-non-root", "container web may run as root"),
    ("writable", "k8s-read-only-root-filesystem", "container web has a writable root filesystem"),
    ("privileged", "k8s-no-privileged", "container web is privileged"),
    ("hostpath", "k8s-no-host-path", "volume host mounts host path /var/run"),
    ("probes", "k8s-probes", "container web has no livenessProbe"),
    ("latest", "k8s-pinned-images", "floating tag :latest"),
    ("lb", "k8s-no-load-balancer", "service data/web is of type LoadBalancer"),
]


@pytest.mark.parametrize("flip, policy, expected", CASES, ids=[c[0] for c in CASES])
def test_weakening_a_workload_violates_its_policy(flip, policy, expected):
    found = messages(run(k8s_program(flip)), policy)
    assert any(expected in m for m in found), found


def test_an_allowed_load_balancer_passes_through_policy_config(tmp_path):
    from policies.evaluate import evaluate
    from stacks.loader import parse
    from stacks.offline import capture

    config = tmp_path / "config.json"
    config.write_text(json.dumps({"all": "mandatory", "k8s-no-load-balancer": {"allowed": ["data/web"]}}))
    graph = capture(parse({"target": "compose"}), "lb", program=lambda _: k8s_program("lb")())
    assert evaluate(graph, "prod", config_file=config).of("k8s-no-load-balancer") == []
    assert evaluate(graph, "prod").of("k8s-no-load-balancer") != []


def test_job_containers_need_no_probes_but_the_rest_applies():
    def program():
        k8s.batch.v1.Job("init", metadata={"namespace": NS}, spec={"template": {"spec": {
            "restartPolicy": "Never", "containers": [{"name": "init", "image": "curlimages/curl"}]}}})
    report = run(program)
    assert report.of("k8s-probes") == []
    assert any("no tag" in m for m in messages(report, "k8s-pinned-images"))
    assert any("may run as root" in m for m in messages(report, "k8s-non-root"))
