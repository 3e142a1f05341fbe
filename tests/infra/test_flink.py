"""Flink on every target: a session cluster with a Flink 2 config.yaml on compose and VMs, the operator and one
FlinkDeployment per packaged job on Kubernetes (and on EKS, with IRSA), Managed Service for Apache Flink
applications on AWS; checkpoints on the object storage, S3 credentials only as secrets.

FlinkDeployment is a custom resource: no CRD schema is available offline (the operator's chart installs it at
deploy time), so it is checked structurally (apiVersion, kind, the fields the operator requires, values from the
settings); every built-in object is validated strictly."""
import re
import shlex

import pytest
import yaml

from components.flink import JOBS, SQL_DIR
from components.flink.conf import flink_version, operator_flink_version
from stacks.config import Secret
from stacks.loader import parse
from stacks.offline import capture
from stacks.versions import resolve
from tests.infra.checks import (compose_file, docker_compose_config, is_builtin, kubernetes_manifests,
                                referenced_variables, shellcheck, validate_kubernetes)

FLINK = {"flink": {"enabled": True, "taskmanagers": 2, "task_slots": 3, "checkpoint_interval_s": 30}}
IMAGE = resolve().image("flink")


def host(name: str, address: str, roles: list[str]) -> dict:
    return {"name": name, "address": address, "roles": roles, "private_key": Secret(f"key-of-{name}")}


@pytest.fixture(scope="module")
def compose():
    return capture(parse({"target": "compose", "services": FLINK}), "flink-compose")


@pytest.fixture(scope="module")
def vm():
    hosts = [host("vm1", "10.0.0.10", ["kafka", "object-storage", "catalog", "flink"]),
             host("vm2", "10.0.0.11", ["flink"]), host("vm3", "10.0.0.12", ["flink"])]
    return capture(parse({"target": "vm", "vm": {"hosts": hosts}, "services": FLINK}), "flink-vm")


@pytest.fixture(scope="module")
def k8s():
    return capture(parse({"target": "kubernetes", "services": FLINK}), "flink-k8s")


@pytest.fixture(scope="module")
def k8s_prod():
    return capture(parse({"target": "kubernetes", "environment": "prod", "size": "medium",
                          "services": {"flink": {"enabled": True}}}), "flink-k8s-prod")


def aws_config(mode: str):
    return parse({"target": "aws", "aws": {"region": "eu-west-1"},
                  "services": {"kafka": {"brokers": 2}, "flink": {"enabled": True, "aws_mode": mode}}})


@pytest.fixture(scope="module")
def eks():
    return capture(aws_config("eks"), "flink-eks")


@pytest.fixture(scope="module")
def managed():
    return capture(aws_config("managed"), "flink-managed")


def services(graph) -> dict:
    return yaml.safe_load(compose_file(graph))["services"]


def compose_config(graph, service: str) -> dict:
    """A service's rendered config.yaml, as Flink reads it (compose's `$$` escapes undone)."""
    document = yaml.safe_load(compose_file(graph))
    [source] = [c["source"] for c in document["services"][service]["configs"]]
    return yaml.safe_load(document["configs"][source]["content"].replace("$$", "$"))


def flink_deployments(graph) -> dict[str, dict]:
    return {r.inputs["metadata"]["name"]: r.inputs for r in graph.resources if r.type.endswith("FlinkDeployment")}


# -- versions ----------------------------------------------------------------------------------------------------
def test_flink_2_image_and_an_operator_release_that_supports_it():
    assert flink_version(IMAGE).startswith("2.") and IMAGE.endswith("-java17")
    chart = resolve().charts["flink-kubernetes-operator"]
    assert chart.version == "1.13.0" and chart.version in chart.repo
    assert operator_flink_version(IMAGE) in {"v2_0", "v2_1"}  # what operator 1.13 supports
    with pytest.raises(ValueError, match="versions.images.flink"):
        flink_version("flink:java17")


def test_the_jobs_run_every_medallion_flink_statement_exactly_once():
    """Each SQL file of workloads/medallion/sql/flink belongs to one packaged job: none can be left out."""
    files = sorted(path.stem for path in SQL_DIR.glob("*.sql"))
    assert files and sorted(s for job in JOBS for s in job.statements) == files
    assert all(s.startswith("silver_") for s in JOBS[0].statements)
    assert all(s.startswith("gold_") for s in JOBS[1].statements)


# -- compose -----------------------------------------------------------------------------------------------------
def test_real_docker_compose_accepts_the_session_cluster(compose):
    content = compose_file(compose)
    result = docker_compose_config(content, referenced_variables(content))
    assert result.returncode == 0, result.stderr


def test_compose_session_cluster_reads_a_flink_2_config_yaml(compose):
    svc = services(compose)
    assert {"flink-jobmanager", "flink-taskmanager-0", "flink-taskmanager-1"} <= set(svc)
    manager = compose_config(compose, "flink-jobmanager")
    assert manager["execution.checkpointing.dir"] == "s3://checkpoints/flink/checkpoints"
    assert manager["execution.checkpointing.savepoint-dir"] == "s3://checkpoints/flink/savepoints"
    assert manager["execution.checkpointing.interval"] == "30s" and manager["taskmanager.numberOfTaskSlots"] == 3
    assert manager["state.backend.type"] == "rocksdb" and manager["execution.checkpointing.mode"] == "EXACTLY_ONCE"
    assert manager["s3.endpoint"] == compose.outputs["endpoints"]["object_storage"]["endpoint"]
    assert manager["s3.path.style.access"] is True and manager["presto.s3.use-instance-credentials"] is False
    assert not [k for k in manager if k.startswith("state.checkpoints") or k.startswith("state.savepoints")]
    assert manager["jobmanager.memory.process.size"] == "2048m"  # the Flink preset: 2Gi
    for i in (0, 1):
        worker = compose_config(compose, f"flink-taskmanager-{i}")
        assert worker["taskmanager.host"] == f"flink-taskmanager-{i}"
        assert worker["jobmanager.rpc.address"] == "flink-jobmanager"
        assert svc[f"flink-taskmanager-{i}"]["depends_on"] == {"flink-jobmanager": {"condition": "service_healthy"}}
    command = svc["flink-jobmanager"]["command"]
    assert command[:2] == ["bash", "-ec"] and "cp /etc/flink/config.yaml /opt/flink/conf/config.yaml" in command[2]
    assert command[2].endswith("exec /opt/flink/bin/jobmanager.sh start-foreground")
    assert "flink-conf.yaml" not in compose_file(compose)


def test_compose_s3_keys_are_only_variables(compose):
    content = compose_file(compose)
    assert "mock-password" not in content
    env = services(compose)["flink-jobmanager"]["environment"]
    assert env == {"AWS_ACCESS_KEY_ID": "${S3_ACCESS_KEY_ID:?set by pulumi}",
                   "AWS_SECRET_ACCESS_KEY": "${S3_SECRET_ACCESS_KEY:?set by pulumi}"}
    [up] = [r for r in compose.resources if r.name == "platform-up"]
    assert {"environment.S3_ACCESS_KEY_ID", "environment.S3_SECRET_ACCESS_KEY"} <= set(up.secret_paths)


def test_start_script_passes_shellcheck(compose):
    for service in ("flink-jobmanager", "flink-taskmanager-0"):
        result = shellcheck("#!/bin/bash\nset -e\n" + services(compose)[service]["command"][2] + "\n")
        assert result.returncode == 0, result.stdout


def test_compose_metrics_for_prometheus(compose):
    manager = compose_config(compose, "flink-jobmanager")
    worker = compose_config(compose, "flink-taskmanager-0")
    assert manager["metrics.reporter.prom.port"] == 9249 and worker["metrics.reporter.prom.port"] == 9250
    assert "PrometheusReporterFactory" in manager["metrics.reporter.prom.factory.class"]


# -- VMs ---------------------------------------------------------------------------------------------------------
def unit_commands(graph, service: str) -> dict[str, dict]:
    return {r.inputs["connection"]["host"]: r for r in graph.of_type("command:remote:Command")
            if r.name.endswith("-unit") and f"unit-apply dataplatform-{service} " in r.inputs["create"]}


def test_vm_jobmanager_on_the_first_flink_host_and_one_taskmanager_per_host(vm):
    assert set(unit_commands(vm, "flink-jobmanager")) == {"10.0.0.10"}
    workers = unit_commands(vm, "flink-taskmanager")
    assert set(workers) == {"10.0.0.10", "10.0.0.11"}  # taskmanagers: 2 of the 3 flink hosts
    for worker in workers.values():
        assert "flink-jobmanager-vm1-unit" in worker.dependencies
    start = re.search(r"^ExecStart=(.*)$", unit_commands(vm, "flink-jobmanager")["10.0.0.10"].inputs["stdin"], re.M)
    argv = shlex.split(start.group(1).replace("$$", "$"))
    assert IMAGE in argv and argv[argv.index(IMAGE) + 1:argv.index(IMAGE) + 3] == ["bash", "-ec"]
    assert "--env-file" in argv and "/etc/dataplatform/flink-jobmanager/secret.env" in argv
    assert vm.outputs["endpoints"]["flink"]["rest_url"] == "http://10.0.0.10:8081"


def test_vm_config_advertises_each_host_and_keeps_keys_in_a_root_only_file(vm):
    config = yaml.safe_load(vm.named("flink-taskmanager-vm2-file-config.yaml").inputs["stdin"])
    assert config["taskmanager.host"] == "10.0.0.11" and config["jobmanager.rpc.address"] == "10.0.0.10"
    assert config["s3.endpoint"] == "http://10.0.0.10:8333"
    secret_env = vm.named("flink-taskmanager-vm2-secret-env")
    assert "stdin" in secret_env.secret_paths and " 0600 root:root " in secret_env.inputs["create"]
    assert "AWS_SECRET_ACCESS_KEY=mock-password-storage-secret-access-key" in secret_env.inputs["stdin"]
    assert "mock-password" not in vm.named("flink-taskmanager-vm2-file-config.yaml").inputs["stdin"]


def test_vm_start_command_is_one_line_and_passes_shellcheck(vm):
    unit = unit_commands(vm, "flink-taskmanager")["10.0.0.11"].inputs["stdin"]
    start = re.search(r"^ExecStart=(.*)$", unit, re.M).group(1)
    argv = shlex.split(start.replace("$$", "$"))
    script = argv[argv.index("-ec") + 1]
    assert "\n" not in script and script.endswith("exec /opt/flink/bin/taskmanager.sh start-foreground")
    assert shellcheck(f"#!/bin/bash\n{script}\n").returncode == 0


def test_vm_too_few_flink_hosts_is_refused_naming_the_key():
    hosts = [host("vm1", "10.0.0.10", ["kafka", "object-storage", "catalog", "flink"])]
    with pytest.raises(ValueError, match="services.flink.taskmanagers: 2 taskmanagers need 2 hosts"):
        capture(parse({"target": "vm", "vm": {"hosts": hosts}, "services": FLINK}), "flink-vm-short")


# -- Kubernetes --------------------------------------------------------------------------------------------------
def test_k8s_builtin_objects_pass_strict_validation(k8s, k8s_prod):
    for graph in (k8s, k8s_prod):
        flink = [r.inputs for r in graph.resources if r.type.startswith("kubernetes:") and r.name.startswith("flink")
                 and "helm.sh" not in r.type]
        builtin = [m for m in flink if is_builtin(m)]
        assert {m["kind"] for m in builtin} >= {"Secret", "Service", "NetworkPolicy"}
        for manifest in builtin:
            validate_kubernetes(manifest)


def test_k8s_operator_release_is_pinned_watches_the_namespace_and_passes_restricted(k8s):
    [release] = [r for r in k8s.of_type("kubernetes:helm.sh/v3:Release") if r.name == "flink-operator"]
    chart = resolve().charts["flink-kubernetes-operator"]
    assert (release.inputs["chart"], release.inputs["version"]) == (chart.chart, chart.version)
    assert release.inputs["repositoryOpts"]["repo"] == chart.repo
    values = release.inputs["values"]
    assert values["watchNamespaces"] == ["dataplatform"] and values["webhook"] == {"create": False}
    assert values["podSecurityContext"]["runAsNonRoot"] is True
    assert values["operatorSecurityContext"]["allowPrivilegeEscalation"] is False
    assert values["jobServiceAccount"]["name"] == "flink"


def test_k8s_one_flink_deployment_per_job_in_application_mode(k8s):
    deployments = flink_deployments(k8s)
    assert set(deployments) == {job.name for job in JOBS}
    for job in JOBS:
        resource = deployments[job.name]
        assert (resource["apiVersion"], resource["kind"]) == ("flink.apache.org/v1beta1", "FlinkDeployment")
        spec = resource["spec"]
        assert spec["image"] == IMAGE and spec["flinkVersion"] == operator_flink_version(IMAGE)
        assert spec["serviceAccount"] == "flink" and spec["mode"] == "native"
        assert spec["job"] == {"jarURI": "local:///opt/flink/usrlib/sql-runner.jar",
                               "args": [f"/opt/flink/usrlib/sql/{job.name}.sql"], "parallelism": 6,
                               "upgradeMode": "savepoint", "state": "running"}
        statements = resource["metadata"]["annotations"]["dataplatform.io/statements"].split(",")
        assert statements == list(job.statements) and statements
        conf = spec["flinkConfiguration"]
        assert all(isinstance(value, str) for value in conf.values())
        prefix = f"s3://checkpoints/flink/{job.name}"
        assert conf["execution.checkpointing.dir"] == f"{prefix}/checkpoints"
        assert conf["execution.checkpointing.savepoint-dir"] == f"{prefix}/savepoints"
        assert conf["high-availability.type"] == "kubernetes"
        assert conf["high-availability.storageDir"] == f"{prefix}/ha"
        assert conf["execution.checkpointing.interval"] == "30s"
        assert spec["jobManager"]["resource"] == {"cpu": 0.5, "memory": "2048m"}
        assert spec["taskManager"]["resource"] == {"cpu": 1, "memory": "4096m"}
        assert spec["jobManager"]["replicas"] == 1


def test_k8s_prod_runs_a_standby_jobmanager(k8s_prod):
    assert {d["spec"]["jobManager"]["replicas"] for d in flink_deployments(k8s_prod).values()} == {2}


def test_k8s_pods_pass_restricted_and_get_s3_keys_from_a_secret(k8s):
    for resource in flink_deployments(k8s).values():
        template = resource["spec"]["podTemplate"]
        pod = template["spec"]["securityContext"]
        assert pod["runAsNonRoot"] is True and pod["runAsUser"] == 9999
        assert pod["seccompProfile"] == {"type": "RuntimeDefault"}
        [container] = template["spec"]["containers"]
        assert container["name"] == "flink-main-container"
        assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        env = {e["name"]: e for e in container["env"]}
        assert env["ENABLE_BUILT_IN_PLUGINS"]["value"] == f"flink-s3-fs-presto-{flink_version(IMAGE)}.jar"
        assert env["AWS_SECRET_ACCESS_KEY"]["valueFrom"] == {
            "secretKeyRef": {"name": "flink-s3", "key": "AWS_SECRET_ACCESS_KEY"}}
        assert env["DP_KAFKA_BOOTSTRAP_SERVERS"]["value"] == "kafka-kafka-bootstrap.dataplatform.svc:9092"
        assert template["metadata"]["labels"]["dataplatform.io/flink-job"] == resource["metadata"]["name"]
        assert "mock-password" not in str(resource)
    secret = k8s.named("flink-s3")
    assert "stringData" in secret.secret_paths and set(secret.inputs["stringData"]) == {"AWS_ACCESS_KEY_ID",
                                                                                      "AWS_SECRET_ACCESS_KEY"}


def test_k8s_jobmanagers_and_the_operator_may_reach_the_api_server(k8s):
    policies = {m["metadata"]["name"]: m for m in kubernetes_manifests(k8s) if m["kind"] == "NetworkPolicy"}
    jobs = policies["flink-jobs-allow-kube-api"]["spec"]
    assert jobs["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "flink",
                                                  "app.kubernetes.io/component": "job"}
    operator = policies["flink-operator-allow-kube-api"]["spec"]
    assert operator["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "flink-kubernetes-operator"}
    metrics = k8s.named("flink-metrics").inputs["spec"]
    assert metrics["selector"] == jobs["podSelector"]["matchLabels"]
    assert metrics["ports"] == [{"name": "metrics", "port": 9249, "targetPort": 9249}]


# -- AWS ---------------------------------------------------------------------------------------------------------
def test_eks_mode_uses_irsa_instead_of_keys(eks):
    deployments = flink_deployments(eks)
    assert set(deployments) == {job.name for job in JOBS}
    bucket = eks.outputs["endpoints"]["object_storage"]["buckets"]["checkpoints"]
    for resource in deployments.values():
        conf = resource["spec"]["flinkConfiguration"]
        assert conf["execution.checkpointing.dir"].startswith(f"s3://{bucket}/flink/")
        assert conf["s3.endpoint"] == "s3.eu-west-1.amazonaws.com" and "s3.path.style.access" not in conf
        env = {e["name"] for e in resource["spec"]["podTemplate"]["spec"]["containers"][0]["env"]}
        assert "AWS_SECRET_ACCESS_KEY" not in env and "AWS_REGION" in env
        assert resource["spec"]["podTemplate"]["spec"]["containers"][0]["env"][1] == {"name": "AWS_REGION",
                                                                                       "value": "eu-west-1"}
    assert not [r for r in eks.resources if r.name == "flink-s3"]
    [release] = [r for r in eks.of_type("kubernetes:helm.sh/v3:Release") if r.name == "flink-operator"]
    role_arn = release.inputs["values"]["jobServiceAccount"]["annotations"]["eks.amazonaws.com/role-arn"]
    assert role_arn.endswith(":flink-jobs-role")  # the mocks' ARN of the role below
    assert "system:serviceaccount:dataplatform:flink" in eks.named("flink-jobs-role").inputs["assumeRolePolicy"]
    policy = eks.named("flink-jobs-policy").inputs["policy"]
    for action in ("s3:PutObject", "kms:GenerateDataKey", "glue:UpdateTable", "kafka-cluster:ReadData"):
        assert action in policy
    assert f"arn:aws:s3:::{bucket}" in policy
    egress = eks.named("flink-kafka-egress").inputs["spec"]
    assert egress["egress"][0]["ports"] == [{"protocol": "TCP", "port": 9098}]


def test_managed_mode_creates_one_application_per_job(managed):
    apps = {r.inputs["name"]: r.inputs for r in managed.of_type("aws:kinesisanalyticsv2/application:Application")}
    assert set(apps) == {f"dataplatform-flink-managed-{job.name}" for job in JOBS}
    assert not [r for r in managed.resources if r.type.endswith("FlinkDeployment")]
    for app in apps.values():
        assert app["runtimeEnvironment"] == resolve().managed["managed_flink_runtime"]
        configuration = app["applicationConfiguration"]
        location = configuration["applicationCodeConfiguration"]["codeContent"]["s3ContentLocation"]
        assert location["fileKey"] == "flink/applications/medallion-jobs.jar"
        flink = configuration["flinkApplicationConfiguration"]
        assert flink["checkpointConfiguration"]["checkpointInterval"] == 60_000
        assert flink["parallelismConfiguration"]["parallelism"] == 2
        assert configuration["applicationEncryptionConfiguration"]["keyType"] == "CUSTOMER_MANAGED_KEY"
        assert len(configuration["vpcConfiguration"]["subnetIds"]) == 3
        properties = configuration["environmentProperties"]["propertyGroups"][0]["propertyMap"]
        assert properties["kafka.security.protocol"] == "SASL_SSL" and properties["sql.script"].endswith(".sql")
        assert properties["sql.statements"]
        assert app["startApplication"] is True
    assert managed.outputs["endpoints"]["flink"]["mode"] == "managed"


# -- switches and bad input --------------------------------------------------------------------------------------
@pytest.mark.parametrize("target", ["compose", "kubernetes"])
def test_flink_off_creates_nothing(target):
    graph = capture(parse({"target": target}), f"flink-off-{target}")
    assert not [r for r in graph.resources if "flink" in r.name or "flink" in r.type.lower()]
    assert "flink" not in graph.outputs["endpoints"]


def test_flink_needs_the_checkpoints_bucket():
    config = parse({"target": "compose", "services": {**FLINK, "object_storage": {"buckets": ["warehouse"]}}})
    with pytest.raises(ValueError, match="services.object_storage.buckets: Flink needs a 'checkpoints' bucket"):
        capture(config, "flink-no-bucket")
