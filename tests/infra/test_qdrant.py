"""Qdrant on every target: one node on compose, a distributed StatefulSet on Kubernetes and EKS, one node per host on
VMs; the API key only as a secret; snapshots of every collection on every node copied to the backups bucket on the
configured schedule, by scripts that pass shellcheck and that are run here against a stand-in Qdrant API."""
from __future__ import annotations

import json
import os
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from components.qdrant import QdrantEndpoints, scheduled, snapshots
from components.qdrant.kubernetes import start_script
from stacks.config import Secret
from stacks.loader import load_stack_file, parse
from stacks.offline import capture
from tests.infra.checks import (compose_file, docker_compose_config, is_builtin, referenced_variables, shellcheck,
                                validate_kubernetes)

from .test_config import REPO
from .test_trino import manifests, named, owned as trino_owned, vm_host

COMPONENT = "dataplatform:qdrant:Qdrant"
ON = {"qdrant": {"enabled": True}}


def owned(graph, component: str = COMPONENT) -> list:
    return trino_owned(graph, component)


def component_manifests(graph, kind: str | None = None) -> list[dict]:
    return manifests(graph, kind, COMPONENT)


@pytest.fixture(scope="module")
def compose():
    return capture(load_stack_file(REPO / "Pulumi.dev.yaml"), "dev")


@pytest.fixture(scope="module")
def kubernetes():
    return capture(parse({"target": "kubernetes", "environment": "prod", "size": "medium", "services": {
        "qdrant": {"enabled": True, "snapshot_schedule": "30 1 * * 0"}}}), "qdrant-k8s")


@pytest.fixture(scope="module")
def vm():
    hosts = [vm_host(f"vec-{i}", f"10.0.1.{i}", ["qdrant", *(["kafka", "object-storage", "catalog"] if i == 1 else [])])
             for i in (1, 2, 3)]
    return capture(parse({"target": "vm", "services": {"qdrant": {"enabled": True, "replicas": 3}},
                          "vm": {"hosts": hosts}}), "qdrant-vm")


@pytest.fixture(scope="module")
def aws():
    return capture(parse({"target": "aws", "size": "medium", "aws": {"region": "eu-west-1"}, "services": ON}),
                   "qdrant-aws")


# -- a stand-in for Qdrant's snapshot API ---------------------------------------------------------------------------
class FakeQdrant(BaseHTTPRequestHandler):
    key = "k3y"
    collections = ("docs", "faq")
    calls: list[tuple[str, str]] = []

    def _reply(self, status: int, body: bytes, kind: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _handle(self, method: str) -> None:
        self.calls.append((method, self.path))
        if self.headers.get("api-key") != self.key:
            return self._reply(403, b'{"status": {"error": "Invalid api-key"}}')
        parts = self.path.split("?")[0].strip("/").split("/")
        if method == "GET" and parts == ["collections"]:
            names = [{"name": c} for c in self.collections]
            return self._reply(200, json.dumps({"result": {"collections": names}}).encode())
        if method == "POST" and parts[2:] == ["snapshots"]:
            body = {"result": {"name": f"{parts[1]}-42.snapshot", "creation_time": "now", "size": 9}}
            return self._reply(200, json.dumps(body).encode())
        if method == "GET" and len(parts) == 4:
            return self._reply(200, f"SNAPSHOT {parts[1]}".encode(), "application/octet-stream")
        if method == "DELETE" and len(parts) == 4:
            return self._reply(200, b'{"result": true}')
        return self._reply(404, b"{}")

    def do_GET(self):  # noqa: N802 (http.server's naming)
        self._handle("GET")

    def do_POST(self):  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._handle("POST")

    def do_DELETE(self):  # noqa: N802
        self._handle("DELETE")

    def log_message(self, *args):
        pass


@pytest.fixture()
def fake_qdrant():
    FakeQdrant.calls = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeQdrant)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def run_sh(script: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(["sh", "-euc", script], capture_output=True, text=True, timeout=60,
                          env={"PATH": os.environ["PATH"], **env})


def test_snapshot_script_takes_downloads_and_removes_every_snapshot(fake_qdrant, tmp_path):
    script = snapshots.snapshot_script({"node-a": fake_qdrant, "node-b": fake_qdrant})
    result = run_sh(script, out=str(tmp_path), QDRANT_API_KEY=FakeQdrant.key)
    assert result.returncode == 0, result.stderr
    for node in ("node-a", "node-b"):
        for collection in FakeQdrant.collections:
            assert (tmp_path / node / f"{collection}.snapshot").read_text() == f"SNAPSHOT {collection}"
    deleted = [path for method, path in FakeQdrant.calls if method == "DELETE"]
    assert sorted(deleted) == sorted(f"/collections/{c}/snapshots/{c}-42.snapshot?wait=true"
                                     for c in FakeQdrant.collections for _ in "ab")
    assert FakeQdrant.key not in script  # the key travels in the environment and a header file only


def test_snapshot_script_fails_on_a_refused_key(fake_qdrant, tmp_path):
    result = run_sh(snapshots.snapshot_script({"node-a": fake_qdrant}), out=str(tmp_path), QDRANT_API_KEY="wrong")
    assert result.returncode != 0 and not list(tmp_path.rglob("*.snapshot"))


def copy_of(bucket: str = "backups") -> scheduled.Copy:
    return scheduled.Copy(store="qdrant", take=snapshots.snapshot_script({"qdrant-0": "http://q:6333"}),
                          schedule="0 2 * * *", bucket=bucket, retention_days=7, covers=("qdrant",),
                          uploader_env=({}, {}), take_env={})


def test_every_script_passes_shellcheck():
    copy = copy_of()
    for script, shell in [(scheduled.scheduler_loop(copy), "sh"), (scheduled.uploader_loop(copy), "sh"),
                          (scheduled._take(copy, "/spool"), "sh"),
                          ("stamp=now\n" + scheduled.upload_script("backups", "/spool", "qdrant", 7), "sh"),
                          (scheduled.vm_script(copy, "/etc/dataplatform/x", "/var/lib/x", "curl:1", "rclone:1"),
                           "bash"),
                          (scheduled.install_script("u", *scheduled.vm_units("u", copy, "/etc/x")), "bash"),
                          (start_script("qdrant", "qdrant-headless.ns.svc"), "bash")]:
        result = shellcheck(script, shell)
        assert result.returncode == 0, result.stdout


def test_shellcheck_is_not_vacuous():
    assert shellcheck("echo $undefined_var_x $1 `ls`", "sh").returncode != 0


def test_a_bad_schedule_is_refused_under_qdrants_key():
    with pytest.raises(Exception, match="services.qdrant.snapshot_schedule: '61 \\* \\* \\* \\*'"):
        capture(parse({"target": "compose", "services": {
            "qdrant": {"enabled": True, "snapshot_schedule": "61 * * * *"}}}), "qdrant-bad")


# -- compose --------------------------------------------------------------------------------------------------------
def test_compose_node_and_snapshot_services(compose):
    content = compose_file(compose)
    assert docker_compose_config(content, referenced_variables(content)).returncode == 0
    services = yaml.safe_load(content)["services"]
    node = services["qdrant"]
    assert node["environment"]["QDRANT__SERVICE__API_KEY"] == "${QDRANT_API_KEY:?set by pulumi}"
    assert node["volumes"] == ["qdrant-data:/qdrant/storage"] and node["ports"][0] == "127.0.0.1:6333:6333"
    taker, uploader = services["qdrant-snapshots"], services["qdrant-snapshots-upload"]
    assert taker["labels"]["dataplatform.io/backup-of"] == "qdrant,qdrant-data"
    assert taker["environment"]["SCHEDULE"] == "0 2 * * *" and taker["depends_on"]["qdrant"]
    assert "rclone copy" in uploader["command"][0] and "--min-age 14d" in uploader["command"][0]
    assert uploader["environment"]["RCLONE_CONFIG_BACKUPS_ACCESS_KEY_ID"] == "${S3_ACCESS_KEY_ID:?set by pulumi}"
    endpoints = compose.outputs["endpoints"]["qdrant"]
    assert endpoints["url"] == "http://qdrant:6333" and endpoints["snapshots"] == "s3://backups/qdrant/"
    assert "endpoints" in compose.secret_outputs


def test_compose_warns_and_runs_one_node_for_several_replicas():
    graph = capture(parse({"target": "compose", "size": "medium", "services": ON}), "qdrant-compose-medium")
    assert graph.outputs["endpoints"]["qdrant"]["nodes"] == 1


# -- kubernetes -----------------------------------------------------------------------------------------------------
def test_kubernetes_objects_pass_strict_validation(kubernetes, aws):
    for graph in (kubernetes, aws):
        for manifest in component_manifests(graph):
            if is_builtin(manifest):
                validate_kubernetes(manifest)


def test_kubernetes_runs_a_distributed_cluster(kubernetes):
    statefulset = named(kubernetes, "StatefulSet", "qdrant")
    spec = statefulset["spec"]
    assert spec["replicas"] == 3 and spec["serviceName"] == "qdrant-headless"  # medium: 3 nodes
    [container] = spec["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}
    assert env["QDRANT__CLUSTER__ENABLED"] == "true" and env["QDRANT__CLUSTER__P2P__PORT"] == "6335"
    assert env["QDRANT__SERVICE__API_KEY"] == {"secretKeyRef": {"name": "qdrant-api-key", "key": "api-key"}}
    assert "--bootstrap \"http://qdrant-0.qdrant-headless.dataplatform.svc:6335\"" in container["command"][2]
    assert container["securityContext"]["readOnlyRootFilesystem"] and container["readinessProbe"]["httpGet"]
    assert spec["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] == "100Gi"
    assert named(kubernetes, "PodDisruptionBudget", "qdrant")["spec"]["maxUnavailable"] == 1
    headless = named(kubernetes, "Service", "qdrant-headless")["spec"]
    assert headless["clusterIP"] == "None" and headless["publishNotReadyAddresses"] is True


def test_kubernetes_snapshot_cronjob_covers_every_node(kubernetes):
    cronjob = named(kubernetes, "CronJob", "qdrant-snapshots")
    assert cronjob["metadata"]["annotations"]["dataplatform.io/backup-of"] == "qdrant"
    assert cronjob["spec"]["schedule"] == "30 1 * * 0" and cronjob["spec"]["concurrencyPolicy"] == "Forbid"
    pod = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    [take], [upload] = pod["initContainers"], pod["containers"]
    for i in range(3):
        assert f"qdrant-{i}=http://qdrant-{i}.qdrant-headless.dataplatform.svc:6333" in take["command"][2]
    assert take["env"][0]["valueFrom"]["secretKeyRef"]["name"] == "qdrant-api-key"
    assert upload["envFrom"] == [{"secretRef": {"name": "qdrant-snapshots-rclone"}}]
    resources = {r.name: r for r in owned(kubernetes)}
    assert resources["qdrant-snapshots-rclone"].secret_paths and resources["qdrant-api-key-secret"].secret_paths


def test_a_configured_api_key_is_used_instead_of_a_generated_one():
    graph = capture(parse({"target": "kubernetes", "services": {"qdrant": {"enabled": True,
                                                                         "api_key": Secret("given-key")}}}),
                    "qdrant-key")
    assert not [r for r in owned(graph) if r.type.startswith("random:")]
    assert graph.outputs["endpoints"]["qdrant"]["api_key"] == "given-key"
    assert "endpoints" in graph.secret_outputs


# -- VMs ------------------------------------------------------------------------------------------------------------
def test_vm_nodes_join_the_first_and_a_timer_takes_the_snapshots(vm):
    units = {r.inputs["connection"]["host"]: r.inputs["stdin"] for r in owned(vm) if r.name.endswith("-unit")}
    assert "--uri http://10.0.1.1:6335" in units["10.0.1.1"] and "--bootstrap" not in units["10.0.1.1"]
    assert "--bootstrap http://10.0.1.1:6335 --uri http://10.0.1.3:6335" in units["10.0.1.3"]
    resources = {r.name: r.inputs for r in owned(vm)}
    timer = resources["qdrant-snapshots-vec-1-timer"]["stdin"]
    assert "OnCalendar=*-*-* 02:00:00 UTC" in timer and "Persistent=true" in timer
    script = resources["qdrant-snapshots-vec-1-script"]["stdin"]
    assert "# dataplatform.io/backup-of: qdrant" in script and shellcheck(script, "bash").returncode == 0
    for suffix in ("take-env", "rclone-env"):
        assert " 0600 " in resources[f"qdrant-snapshots-vec-1-{suffix}"]["create"]
    assert vm.outputs["endpoints"]["qdrant"]["nodes"] == 3


def test_vm_refuses_more_nodes_than_hosts():
    hosts = [vm_host("one", "10.0.0.1", ["qdrant", "kafka", "object-storage", "catalog"])]
    with pytest.raises(ValueError, match="services.qdrant.replicas: 3 nodes need 3 hosts"):
        capture(parse({"target": "vm", "services": {"qdrant": {"enabled": True, "replicas": 3}},
                       "vm": {"hosts": hosts}}), "qdrant-vm-one")


# -- AWS and the contract -------------------------------------------------------------------------------------------
def test_aws_snapshots_use_an_iam_role_limited_to_the_qdrant_prefix(aws):
    resources = {r.name: r for r in owned(aws)}
    policy = json.loads(resources["qdrant-snapshots-policy"].inputs["policy"])
    objects = [s for s in policy["Statement"] if "s3:PutObject" in s["Action"]]
    assert len(objects) == 1 and objects[0]["Resource"].endswith("/qdrant/*")
    account = named(aws, "ServiceAccount", "qdrant-snapshots")
    assert "eks.amazonaws.com/role-arn" in account["metadata"]["annotations"]
    upload = named(aws, "CronJob", "qdrant-snapshots")["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    env = {e["name"]: e["value"] for e in upload["containers"][0]["env"]}
    assert env["RCLONE_CONFIG_BACKUPS_ENV_AUTH"] == "true" and "envFrom" not in upload["containers"][0]


def test_contract_is_what_the_vector_workloads_read():
    env = QdrantEndpoints(url="http://q:6333", grpc_url="http://q:6334", api_key="k", nodes=1, snapshots=None,
                          snapshot_schedule="0 2 * * *").env()
    source = Path(REPO / "workloads" / "vector" / "store.py").read_text()
    assert env["DP_VECTOR_BACKEND"] == "qdrant" and all(name in source for name in env)


def test_qdrant_is_off_unless_switched_on():
    graph = capture(parse({"target": "kubernetes"}), "qdrant-off")
    assert not graph.of_type(COMPONENT) and "qdrant" not in graph.outputs["endpoints"]
