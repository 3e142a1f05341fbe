"""Milvus on every target (off unless switched on): standalone Milvus on the platform's S3 storage with an etcd of
our own (no Bitnami chart or image anywhere), the milvus Helm chart through `helm.v3.Release` on Kubernetes in a
baseline namespace fenced by network policies, IAM roles on AWS, credentials only as secrets, and etcd snapshots
copied to the backups bucket by a script that is run here against a stand-in etcd gateway."""
from __future__ import annotations

import base64
import json
import os
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from components.milvus import MilvusEndpoints, etcd_snapshot_script
from stacks.loader import parse
from stacks.offline import capture
from stacks.versions import resolve
from tests.infra.checks import (compose_file, docker_compose_config, is_builtin, referenced_variables, shellcheck,
                                validate_kubernetes)

from .test_config import REPO
from .test_trino import manifests, named, owned, vm_host

COMPONENT = "dataplatform:milvus:Milvus"
ON = {"milvus": {"enabled": True}, "backups": {"enabled": True, "schedule": "15 4 * * *", "retention_days": 10}}


@pytest.fixture(scope="module")
def compose():
    return capture(parse({"target": "compose", "services": ON}), "milvus-compose")


@pytest.fixture(scope="module")
def kubernetes():
    return capture(parse({"target": "kubernetes", "services": ON, "kubernetes": {
        "storage_class": "fast-ssd", "allowed_ingress_cidrs": ["10.30.0.0/16"]}}), "milvus-k8s")


@pytest.fixture(scope="module")
def vm():
    hosts = [vm_host("data", "10.0.2.1", ["kafka", "object-storage", "catalog"]),
             vm_host("vectors", "10.0.2.2", ["milvus"])]
    return capture(parse({"target": "vm", "services": {"milvus": {"enabled": True}}, "vm": {"hosts": hosts}}),
                   "milvus-vm")


@pytest.fixture(scope="module")
def aws():
    return capture(parse({"target": "aws", "size": "medium", "aws": {"region": "eu-west-1"},
                          "services": {"milvus": {"enabled": True}}}), "milvus-aws")


def release(graph) -> dict:
    [found] = [r.inputs for r in owned(graph, COMPONENT) if r.type == "kubernetes:helm.sh/v3:Release"]
    return found


# -- etcd snapshots -------------------------------------------------------------------------------------------------
class FakeEtcdGateway(BaseHTTPRequestHandler):
    """etcd's grpc-gateway streaming a snapshot: one JSON message a line, each with a base64 chunk."""
    snapshot = bytes(range(256)) * 300
    fail = False

    def do_POST(self):  # noqa: N802 (http.server's naming)
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path != "/v3/maintenance/snapshot":
            self.send_response(404)
            self.end_headers()
            return
        chunks = [self.snapshot[i:i + 32 * 1024] for i in range(0, len(self.snapshot), 32 * 1024)]
        lines = [json.dumps({"result": {"remaining_bytes": str(len(self.snapshot) - 32 * 1024 * (i + 1)),
                                        "blob": base64.b64encode(chunk).decode()}}) for i, chunk in enumerate(chunks)]
        if self.fail:
            lines = [json.dumps({"error": {"grpc_code": 14, "message": "etcdserver: leader changed"}})]
        body = ("\n".join(lines) + "\n").encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture()
def gateway():
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeEtcdGateway)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    FakeEtcdGateway.fail = False


def take(url: str, out: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["sh", "-euc", etcd_snapshot_script()], capture_output=True, text=True, timeout=60,
                          env={"PATH": os.environ["PATH"], "ETCD_URL": url, "out": str(out)})


def test_etcd_snapshot_is_decoded_byte_for_byte(gateway, tmp_path):
    result = take(gateway, tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "etcd.db").read_bytes() == FakeEtcdGateway.snapshot
    assert sorted(p.name for p in tmp_path.iterdir()) == ["etcd.db"]


def test_an_etcd_error_fails_the_snapshot(gateway, tmp_path):
    FakeEtcdGateway.fail = True
    result = take(gateway, tmp_path)
    assert result.returncode != 0 and "leader changed" in result.stderr


def test_etcd_snapshot_script_passes_shellcheck():
    assert shellcheck('out=/spool\nETCD_URL=http://e:2379\n' + etcd_snapshot_script(), "sh").returncode == 0


# -- compose --------------------------------------------------------------------------------------------------------
def test_compose_etcd_milvus_and_the_etcd_copies(compose):
    content = compose_file(compose)
    result = docker_compose_config(content, referenced_variables(content))
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(content)["services"]
    milvus, etcd = services["milvus"], services["milvus-etcd"]
    assert milvus["command"] == ["milvus", "run", "standalone"]
    env = milvus["environment"]
    assert env["ETCD_ENDPOINTS"] == "milvus-etcd:2379" and env["MINIO_ADDRESS"] == "storage:8333"
    assert env["MINIO_BUCKET_NAME"] == "warehouse" and env["MINIO_ROOT_PATH"] == "milvus"
    assert env["MINIO_ACCESS_KEY_ID"] == "${S3_ACCESS_KEY_ID:?set by pulumi}"
    assert env["COMMON_SECURITY_DEFAULTROOTPASSWORD"] == "${MILVUS_ROOT_PASSWORD:?set by pulumi}"
    assert env["COMMON_SECURITY_AUTHORIZATIONENABLED"] == "true" and env["WOODPECKER_STORAGE_TYPE"] == "minio"
    assert milvus["depends_on"] == {"milvus-etcd": {"condition": "service_healthy"}}
    assert etcd["image"] == resolve().image("etcd") and etcd["healthcheck"]["test"][:2] == ["CMD", "etcdctl"]
    backup = services["milvus-etcd-backup"]
    assert backup["environment"]["SCHEDULE"] == "15 4 * * *"  # the backups schedule
    assert set(backup["labels"]["dataplatform.io/backup-of"].split(",")) == {
        "milvus-etcd", "milvus-etcd-data", "milvus", "milvus-data"}
    assert "--min-age 10d" in services["milvus-etcd-backup-upload"]["command"][0]
    endpoints = compose.outputs["endpoints"]["milvus"]
    assert endpoints["uri"] == "http://milvus:19530" and endpoints["token"].startswith("root:")
    assert endpoints["etcd_snapshots"] == "s3://backups/milvus-etcd/"


def test_no_bitnami_anywhere(compose, kubernetes):
    images = [s["image"] for s in yaml.safe_load(compose_file(compose))["services"].values()]
    images += [c["image"] for m in manifests(kubernetes, "StatefulSet", COMPONENT)
               for c in m["spec"]["template"]["spec"]["containers"]]
    assert images and not [i for i in images if "bitnami" in i]
    values = release(kubernetes)["values"]
    assert values["etcd"] == {"enabled": False} and values["kafka"] == {"enabled": False}
    assert "bitnami" not in json.dumps(values)


# -- kubernetes -----------------------------------------------------------------------------------------------------
def test_kubernetes_release_is_pinned_standalone_and_points_at_our_etcd_and_s3(kubernetes):
    chart = resolve().charts["milvus"]
    found = release(kubernetes)
    assert (found["chart"], found["version"], found["repositoryOpts"]["repo"]) == (chart.chart, chart.version,
                                                                                   chart.repo)
    assert found["namespace"] == "dataplatform-milvus" and found["atomic"] is True
    values = found["values"]
    assert values["cluster"] == {"enabled": False} and values["minio"] == {"enabled": False}
    assert values["externalEtcd"] == {"enabled": True, "endpoints": ["milvus-etcd.dataplatform-milvus.svc:2379"]}
    s3 = values["externalS3"]
    assert (s3["host"], s3["port"], s3["bucketName"], s3["rootPath"]) == ("storage.dataplatform.svc", "8333",
                                                                          "warehouse", "milvus")
    assert s3["accessKey"] == "" and s3["secretKey"] == ""  # keys only from the Secret, as environment
    env = {e["name"]: e.get("valueFrom") for e in values["standalone"]["extraEnv"]}
    assert env["MINIO_ACCESS_KEY_ID"] == {"secretKeyRef": {"name": "milvus-credentials", "key": "MINIO_ACCESS_KEY_ID"}}
    assert values["standalone"]["persistence"]["persistentVolumeClaim"] == {"size": "20Gi", "storageClass": "fast-ssd"}
    image = values["image"]["all"]
    assert f"{image['repository']}:{image['tag']}" == resolve().image("milvus")
    resources = {r.name: r for r in owned(kubernetes, COMPONENT)}
    assert resources["milvus-credentials"].secret_paths


def test_kubernetes_objects_pass_strict_validation_in_a_fenced_baseline_namespace(kubernetes):
    objects = manifests(kubernetes, None, COMPONENT)
    for manifest in objects:
        if is_builtin(manifest):
            validate_kubernetes(manifest)
    namespace = named(kubernetes, "Namespace", "dataplatform-milvus")["metadata"]["labels"]
    assert namespace["pod-security.kubernetes.io/enforce"] == "baseline"
    assert namespace["pod-security.kubernetes.io/warn"] == "restricted"
    policies = {m["metadata"]["name"]: m for m in objects if m["kind"] == "NetworkPolicy"}
    assert policies["milvus-default-deny"]["metadata"]["namespace"] == "dataplatform-milvus"
    to_s3 = policies["milvus-milvus-to-s3"]
    assert to_s3["metadata"]["namespace"] == "dataplatform"
    assert to_s3["spec"]["ingress"][0]["ports"] == [{"protocol": "TCP", "port": 8333}]
    assert [p["port"] for p in policies["milvus-allow-clients"]["spec"]["ingress"][0]["ports"]] == [19530]
    etcd = named(kubernetes, "StatefulSet", "milvus-etcd")
    assert etcd["metadata"]["namespace"] == "dataplatform-milvus"
    [container] = etcd["spec"]["template"]["spec"]["containers"]
    assert container["securityContext"]["readOnlyRootFilesystem"] and container["livenessProbe"]["httpGet"]
    backup = named(kubernetes, "CronJob", "milvus-etcd-backup")
    assert backup["metadata"]["annotations"]["dataplatform.io/backup-of"] == "milvus-etcd,milvus"
    assert backup["spec"]["schedule"] == "15 4 * * *"


# -- VMs and AWS ----------------------------------------------------------------------------------------------------
def test_vm_runs_etcd_and_milvus_on_the_milvus_host(vm):
    units = {r.name: r.inputs for r in owned(vm, COMPONENT) if r.name.endswith("-unit")}
    assert set(units) == {"milvus-etcd-vectors-unit", "milvus-vectors-unit"}
    assert all(u["connection"]["host"] == "10.0.2.2" for u in units.values())
    assert "--listen-client-urls=http://127.0.0.1:2379" in units["milvus-etcd-vectors-unit"]["stdin"]
    files = {r.name: r.inputs for r in owned(vm, COMPONENT)}
    assert "MINIO_ADDRESS=10.0.2.1:8333" in files["milvus-vectors-env"]["stdin"]
    assert " 0600 " in files["milvus-vectors-secret-env"]["create"]
    assert "# dataplatform.io/backup-of: milvus-etcd,milvus" in files["milvus-etcd-backup-vectors-script"]["stdin"]
    assert vm.outputs["endpoints"]["milvus"]["uri"] == "http://10.0.2.2:19530"


def test_aws_milvus_reaches_s3_with_its_own_role(aws):
    values = release(aws)["values"]
    s3 = values["externalS3"]
    assert s3["useIAM"] is True and s3["cloudProvider"] == "aws" and s3["host"] == "s3.eu-west-1.amazonaws.com"
    assert "eks.amazonaws.com/role-arn" in values["serviceAccount"]["annotations"]
    assert values["serviceAccount"]["create"] is True
    assert not [e for e in values["standalone"]["extraEnv"] if e["name"].startswith("MINIO_")]
    resources = {r.name: r for r in owned(aws, COMPONENT)}
    statements = json.loads(resources["milvus-server-policy"].inputs["policy"])["Statement"]
    assert [s["Resource"] for s in statements if "s3:PutObject" in s["Action"]][0].endswith("/milvus/*")
    egress = named(aws, "NetworkPolicy", "milvus-egress")["spec"]["egress"]
    assert egress == [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}], "ports": [{"protocol": "TCP", "port": 443}]}]


def test_milvus_is_off_by_default_and_needs_object_storage():
    graph = capture(parse({"target": "compose"}), "milvus-off")
    assert not graph.of_type(COMPONENT) and "milvus" not in graph.outputs["endpoints"]
    with pytest.raises(Exception, match="services.object_storage.enabled: Milvus"):
        capture(parse({"target": "compose", "services": {"object_storage": {"enabled": False},
                                                         "catalog": {"enabled": False},
                                                         "milvus": {"enabled": True}}}), "milvus-no-s3")


def test_contract_is_what_the_vector_workloads_read():
    env = MilvusEndpoints(uri="http://m:19530", token="root:x", bucket="warehouse").env()
    source = Path(REPO / "workloads" / "vector" / "store.py").read_text()
    assert env["DP_VECTOR_BACKEND"] == "milvus" and all(name in source for name in env)
