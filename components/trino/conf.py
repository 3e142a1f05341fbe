"""Trino's configuration files, the same on every target (only addresses, sizes and the catalog differ).

Secrets never appear in these files: they hold `${ENV:NAME}` references that Trino resolves from the process
environment (S3 keys, the shared secret of node-to-node traffic). Paths are those of the `trinodb/trino` image
(`/etc/trino`, data in `/data/trino`).
"""
from __future__ import annotations

from components.targets.vm import mebibytes
from components.trino import CATALOG, HTTP_PORT, HTTPS_PORT
from components.trino import access
from stacks.config import Resources

ETC = "/etc/trino"
DATA_DIR = "/data/trino"
TLS_FILE = f"{ETC}/tls/server.pem"
PASSWORD_FILE = f"{ETC}/password.db"
RULES_FILE = f"{ETC}/rules.json"
GROUP_FILE = f"{ETC}/group.txt"
SHARED_SECRET_ENV = "TRINO_SHARED_SECRET"
S3_KEY_ENV, S3_SECRET_ENV = "S3_ACCESS_KEY_ID", "S3_SECRET_ACCESS_KEY"
HEAP_FRACTION = 0.75  # of the container's memory limit (the rest: metaspace, threads, direct buffers)
QUERY_MEMORY_FRACTION = 0.3  # of the heap, per node, for one query
# MBeans Prometheus gets through /metrics next to Trino's own metrics (query counts and failures, memory)
JMX_OBJECTS = ("trino.execution:name=QueryManager", "trino.memory:type=ClusterMemoryManager",
               "trino.execution:name=TaskManager", "java.lang:type=Memory", "java.lang:type=Threading")


def properties(values: dict[str, object]) -> str:
    return "".join(f"{key}={value}\n" for key, value in values.items())


def query_memory_mb(resources: Resources) -> int:
    return max(256, int(mebibytes(resources.memory) * HEAP_FRACTION * QUERY_MEMORY_FRACTION))


def jvm_config() -> str:
    """Trino's recommended JVM flags, the heap sized from the container's memory limit."""
    percent = int(HEAP_FRACTION * 100)
    return "\n".join([
        "-server", f"-XX:InitialRAMPercentage={percent}", f"-XX:MaxRAMPercentage={percent}",
        "-XX:G1HeapRegionSize=32M", "-XX:+ExplicitGCInvokesConcurrent", "-XX:+ExitOnOutOfMemoryError",
        "-XX:+HeapDumpOnOutOfMemoryError", f"-XX:HeapDumpPath={DATA_DIR}", "-XX:-OmitStackTraceInFastThrow",
        "-XX:ReservedCodeCacheSize=512M", "-XX:PerMethodRecompilationCutoff=10000",
        "-XX:PerBytecodeRecompilationCutoff=10000", "-Djdk.attach.allowAttachSelf=true",
        "-Djdk.nio.maxCachedBufferSize=2000000", "-Dfile.encoding=UTF-8", "-XX:+EnableDynamicAgentLoading", "",
    ])


def node_properties(environment: str) -> str:
    """No node.id: the image's launcher uses the host name (unique per container and pod)."""
    return properties({"node.environment": environment.replace("-", "_"), "node.data-dir": DATA_DIR})


def coordinator_config(discovery: str, resources: Resources, workers: int, workers_resources: Resources) -> str:
    """The coordinator: HTTPS with password authentication for clients; it also runs queries when there are no
    workers."""
    per_node = query_memory_mb(resources if workers == 0 else workers_resources)
    return properties({
        "coordinator": "true",
        "node-scheduler.include-coordinator": "true" if workers == 0 else "false",
        "http-server.http.port": HTTP_PORT,
        "http-server.https.enabled": "true",
        "http-server.https.port": HTTPS_PORT,
        "http-server.https.keystore.path": TLS_FILE,
        "http-server.authentication.type": "PASSWORD",
        "internal-communication.shared-secret": "${ENV:" + SHARED_SECRET_ENV + "}",
        "discovery.uri": discovery,
        "query.max-memory-per-node": f"{per_node}MB",
        "query.max-memory": f"{per_node * max(1, workers)}MB",
        "openmetrics.jmx-object-names": "|".join(JMX_OBJECTS),
    })


def worker_config(discovery: str, resources: Resources) -> str:
    return properties({
        "coordinator": "false",
        "http-server.http.port": HTTP_PORT,
        "internal-communication.shared-secret": "${ENV:" + SHARED_SECRET_ENV + "}",
        "discovery.uri": discovery,
        "query.max-memory-per-node": f"{query_memory_mb(resources)}MB",
        "openmetrics.jmx-object-names": "|".join(JMX_OBJECTS),
    })


def rest_catalog(uri: str, warehouse: str, *, s3_endpoint: str | None, region: str, path_style: bool,
                 static_keys: bool) -> str:
    """The `iceberg` catalog on an Iceberg REST catalog; S3 keys by reference when the storage has keys (on AWS
    the pod's IAM role answers instead)."""
    values: dict[str, object] = {
        "connector.name": "iceberg",
        "iceberg.catalog.type": "rest",
        "iceberg.rest-catalog.uri": uri,
        "iceberg.rest-catalog.warehouse": warehouse,
        "fs.native-s3.enabled": "true",
        "s3.region": region,
    }
    if s3_endpoint:
        values["s3.endpoint"] = s3_endpoint
    values["s3.path-style-access"] = "true" if path_style else "false"
    if static_keys:
        values["s3.aws-access-key"] = "${ENV:" + S3_KEY_ENV + "}"
        values["s3.aws-secret-key"] = "${ENV:" + S3_SECRET_ENV + "}"
    return properties(values)


def glue_catalog(region: str) -> str:
    """The `iceberg` catalog on the Glue Data Catalog, S3 through the default AWS credential chain (IRSA)."""
    return properties({
        "connector.name": "iceberg",
        "iceberg.catalog.type": "glue",
        "hive.metastore.glue.region": region,
        "fs.native-s3.enabled": "true",
        "s3.region": region,
    })


def security_files() -> dict[str, str]:
    """access-control, password-authenticator and group-provider properties (the files they name come apart)."""
    return {
        "access-control.properties": properties({"access-control.name": "file", "security.config-file": RULES_FILE,
                                                 "security.refresh-period": "1m"}),
        "password-authenticator.properties": properties({"password-authenticator.name": "file",
                                                         "file.password-file": PASSWORD_FILE}),
        "group-provider.properties": properties({"group-provider.name": "file", "file.group-file": GROUP_FILE}),
    }


def files(settings, environment: str, discovery: str, catalog: str, policy: dict) -> tuple[dict, dict]:
    """(coordinator, worker) files under /etc/trino, by relative path; the secret ones (password.db, the TLS
    keystore) are added by the adapters, from Pulumi secrets."""
    common = {"node.properties": node_properties(environment), "jvm.config": jvm_config(),
              f"catalog/{CATALOG}.properties": catalog}
    coordinator = {**common, "config.properties": coordinator_config(
        discovery, settings.resources, settings.workers, settings.worker_resources),
        **security_files(), "rules.json": access.rules_json(policy), "group.txt": access.groups_file(policy)}
    worker = {**common, "config.properties": worker_config(discovery, settings.worker_resources)}
    return coordinator, worker
