"""Flink 2 configuration every target shares: checkpoints on object storage, RocksDB state, restarts, metrics.

Options are Flink 2 names (`execution.checkpointing.dir`, not the removed `state.checkpoints.dir`), rendered as
Flink 2's standard-YAML `config.yaml`. S3 goes through the `flink-s3-fs-presto` plugin (the one Flink recommends for
checkpoints); it takes credentials from the AWS default chain (environment variables, or an IAM role on AWS), so
no key is ever written into the configuration.
"""
from __future__ import annotations

import re

import pulumi
import yaml

from components.targets.vm import mebibytes

FLINK_HOME = "/opt/flink"
FLINK_UID = 9999  # `flink` in the official image
CHECKPOINTS_BUCKET = "checkpoints"
RPC_PORT, BLOB_PORT, REST_PORT = 6123, 6124, 8081
TASKMANAGER_RPC_PORT, TASKMANAGER_DATA_PORT = 6122, 6121
JOBMANAGER_METRICS_PORT, TASKMANAGER_METRICS_PORT = 9249, 9250  # distinct: both run on one VM host
S3_PLUGIN = "flink-s3-fs-presto"
_VERSION = re.compile(r"^(\d+)\.(\d+)\.(\d+)")


def flink_version(image: str) -> str:
    """`2.1.1` from `flink:2.1.1-java17`; the operator and the plugin jar are chosen by it."""
    match = _VERSION.match(image.rsplit(":", 1)[-1])
    if not match:
        raise ValueError(f"versions.images.flink: {image!r} must be tagged with its Flink version, e.g. "
                         "flink:2.1.1-java17")
    return match.group(0)


def operator_flink_version(image: str) -> str:
    """The FlinkDeployment `flinkVersion` (`v2_1`): the operator refuses versions it does not support."""
    major, minor, _ = flink_version(image).split(".")
    return f"v{major}_{minor}"


def plugin_jar(image: str) -> str:
    return f"{S3_PLUGIN}-{flink_version(image)}.jar"


def checkpoints_bucket(storage) -> pulumi.Input[str]:
    if storage is None:
        raise ValueError("services.object_storage.enabled: Flink keeps its checkpoints and savepoints on object "
                         "storage; switch object storage on (or Flink off)")
    if CHECKPOINTS_BUCKET not in storage.buckets:
        raise ValueError(f"services.object_storage.buckets: Flink needs a {CHECKPOINTS_BUCKET!r} bucket for its "
                         f"checkpoints (configured: {', '.join(storage.buckets)})")
    return storage.buckets[CHECKPOINTS_BUCKET]


def state_uri(bucket: pulumi.Input[str], *path: str) -> pulumi.Output[str]:
    """`s3://<bucket>/flink/<path>`: where checkpoints, savepoints and HA metadata live."""
    return pulumi.Output.concat("s3://", bucket, "/", "/".join(("flink", *path)))


def s3_options(storage, region: str | None = None) -> dict[str, object]:
    """The S3 file system: the platform's endpoint (path-style on SeaweedFS), credentials from the AWS default chain
    (`presto.s3.use-instance-credentials: false`, else presto would only ask the EC2 instance metadata)."""
    options: dict[str, object] = {"presto.s3.use-instance-credentials": False}
    if storage.endpoint is not None:
        options.update({"s3.endpoint": storage.endpoint, "s3.path.style.access": storage.path_style})
    elif region:
        options["s3.endpoint"] = f"s3.{region}.amazonaws.com"
    return options


def common_options(settings, checkpoints: str, savepoints: str) -> dict[str, object]:
    """Checkpointing, state backend, restarts and metrics, as Flink 2 names them."""
    interval = settings.checkpoint_interval_s
    return {
        "taskmanager.numberOfTaskSlots": settings.task_slots,
        "parallelism.default": settings.taskmanagers * settings.task_slots,
        "state.backend.type": "rocksdb",
        "execution.checkpointing.incremental": True,
        "execution.checkpointing.interval": f"{interval}s",
        "execution.checkpointing.min-pause": f"{max(1, interval // 2)}s",
        "execution.checkpointing.mode": "EXACTLY_ONCE",
        "execution.checkpointing.dir": checkpoints,
        "execution.checkpointing.savepoint-dir": savepoints,
        "execution.checkpointing.externalized-checkpoint-retention": "RETAIN_ON_CANCELLATION",
        "execution.checkpointing.num-retained": 3,
        "restart-strategy.type": "exponential-delay",
        "metrics.reporter.prom.factory.class": "org.apache.flink.metrics.prometheus.PrometheusReporterFactory",
    }


def memory(quantity: str) -> str:
    """A Kubernetes quantity as a Flink memory size (`2Gi` -> `2048m`): the whole process, JVM overhead included."""
    return f"{mebibytes(quantity)}m"


def session_options(settings, storage, checkpoints: str, savepoints: str, *, jobmanager: str, role: str,
                    host: str | None = None) -> dict[str, object]:
    """A session cluster process (compose, VMs): `role` is jobmanager or taskmanager, `host` the address a
    taskmanager advertises (its VM's address; on compose the container's own)."""
    options = {
        **common_options(settings, checkpoints, savepoints),
        **s3_options(storage),
        "jobmanager.rpc.address": jobmanager, "jobmanager.rpc.port": RPC_PORT, "jobmanager.bind-host": "0.0.0.0",
        "blob.server.port": BLOB_PORT,
        "rest.address": jobmanager, "rest.port": REST_PORT, "rest.bind-address": "0.0.0.0",
        "jobmanager.memory.process.size": memory(settings.resources.memory),
        "taskmanager.memory.process.size": memory(settings.taskmanager_resources.memory),
        "taskmanager.bind-host": "0.0.0.0", "taskmanager.rpc.port": TASKMANAGER_RPC_PORT,
        "taskmanager.data.port": TASKMANAGER_DATA_PORT,
        "metrics.reporter.prom.port": JOBMANAGER_METRICS_PORT if role == "jobmanager" else TASKMANAGER_METRICS_PORT,
    }
    if host:
        options["taskmanager.host"] = host
    return options


def render(options: dict[str, object]) -> str:
    """Flink 2's `config.yaml` (flat keys, standard YAML)."""
    return "# Rendered by Pulumi (dataplatform): edits are overwritten on the next `pulumi up`.\n" + yaml.safe_dump(
        dict(sorted(options.items())), default_flow_style=False, width=120)


def start_script(role: str, config_path: str) -> str:
    """Start one session cluster process from the official image: enable the S3 plugin (copied from `opt/`, as
    the image's entrypoint does for ENABLE_BUILT_IN_PLUGINS), install the rendered config.yaml, run in the
    foreground. One line without `$`: it goes through compose interpolation and a systemd ExecStart unchanged."""
    script = {"jobmanager": "jobmanager.sh", "taskmanager": "taskmanager.sh"}[role]
    plugins = f"{FLINK_HOME}/plugins/{S3_PLUGIN.removeprefix('flink-')}"
    return " && ".join([
        f"mkdir -p {plugins}",
        f"cp {FLINK_HOME}/opt/{S3_PLUGIN}-*.jar {plugins}/",
        f"cp {config_path} {FLINK_HOME}/conf/config.yaml",
        f"exec {FLINK_HOME}/bin/{script} start-foreground",
    ])
