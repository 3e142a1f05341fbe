"""Flink on compose: a session cluster, one jobmanager and `taskmanagers` taskmanagers, each configured by its own
rendered `config.yaml` (a compose config) and reaching the object storage with the platform's S3 keys as
environment variables (`${VARS}` the apply command receives as Pulumi secrets). Submit jobs to the REST API
(`rest_url`) or with `sql-client.sh` inside the jobmanager container."""
from __future__ import annotations

import pulumi

from components.base import MetricsEndpoint
from components.flink import FlinkArgs, FlinkEndpoints
from components.flink.conf import (FLINK_UID, JOBMANAGER_METRICS_PORT, REST_PORT, TASKMANAGER_METRICS_PORT,
                                   checkpoints_bucket, render, session_options, start_script)

CONFIG_PATH = "/etc/flink/config.yaml"


def tcp_check(port: int) -> dict:
    """Compose healthcheck: the port accepts connections (bash's /dev/tcp; the image has no HTTP client to rely on)."""
    return {"test": ["CMD", "bash", "-c", f"</dev/tcp/127.0.0.1/{port}"], "interval": "10s", "timeout": "5s",
            "retries": 12, "start_period": "30s"}


def deploy(name: str, args: FlinkArgs, parent: pulumi.Resource) -> FlinkEndpoints:
    project = args.substrate
    settings = args.settings
    storage = args.storage
    bucket = checkpoints_bucket(storage)
    checkpoints, savepoints = f"s3://{bucket}/flink/checkpoints", f"s3://{bucket}/flink/savepoints"
    environment = {"AWS_ACCESS_KEY_ID": project.secret("S3_ACCESS_KEY_ID", storage.access_key_id),
                   "AWS_SECRET_ACCESS_KEY": project.secret("S3_SECRET_ACCESS_KEY", storage.secret_access_key)}
    image = args.versions.image("flink")
    jobmanager = f"{name}-jobmanager"

    def process(service: str, role: str, resources, **extra) -> None:
        options = session_options(settings, storage, checkpoints, savepoints, jobmanager=jobmanager, role=role,
                                  host=service if role == "taskmanager" else None)
        project.add_config(f"{service}-config", render(options).replace("$", "$$"))
        project.add_service(service, {
            "image": image, "restart": "unless-stopped", "hostname": service, "user": f"{FLINK_UID}:{FLINK_UID}",
            "command": ["bash", "-ec", start_script(role, CONFIG_PATH)], "environment": dict(environment),
            "configs": [{"source": f"{service}-config", "target": CONFIG_PATH}],
            "deploy": project.deploy(resources), **extra})

    process(jobmanager, "jobmanager", settings.resources, healthcheck=tcp_check(REST_PORT))
    taskmanagers = [f"{name}-taskmanager-{i}" for i in range(settings.taskmanagers)]
    for service in taskmanagers:
        process(service, "taskmanager", settings.taskmanager_resources,
                healthcheck=tcp_check(TASKMANAGER_METRICS_PORT),
                depends_on={jobmanager: {"condition": "service_healthy"}})
    return FlinkEndpoints(
        mode="session", rest_url=f"http://{jobmanager}:{REST_PORT}", checkpoints=checkpoints, savepoints=savepoints,
        metrics=(MetricsEndpoint("flink", (f"{jobmanager}:{JOBMANAGER_METRICS_PORT}",
                                           *(f"{tm}:{TASKMANAGER_METRICS_PORT}" for tm in taskmanagers))),))
