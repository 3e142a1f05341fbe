"""Flink on VMs: a session cluster on the hosts with the role `flink`. The first of them runs the jobmanager; the
first `taskmanagers` of them run one taskmanager each (so the first host runs both: their ports differ). Every
process is a systemd unit around the official image on the host's network, configured by its own `config.yaml`
(`taskmanager.host` is the host's address); the S3 keys reach it only through a root-only env file. Taskmanagers
start after the jobmanager is up."""
from __future__ import annotations

import pulumi

from components.base import MetricsEndpoint
from components.flink import FlinkArgs, FlinkEndpoints
from components.flink.conf import (JOBMANAGER_METRICS_PORT, REST_PORT, TASKMANAGER_METRICS_PORT,
                                   checkpoints_bucket, render, session_options, start_script)
from components.targets.vm import Container, ServiceFile, VmFleet, host_port

CONFIG_PATH = "/etc/flink/config.yaml"


def deploy(name: str, args: FlinkArgs, parent: pulumi.Resource) -> FlinkEndpoints:
    fleet: VmFleet = args.substrate
    settings = args.settings
    storage = args.storage
    hosts = fleet.place("flink", settings.taskmanagers, "services.flink.taskmanagers",
                        f"{settings.taskmanagers} taskmanagers")
    bucket = checkpoints_bucket(storage)
    checkpoints, savepoints = f"s3://{bucket}/flink/checkpoints", f"s3://{bucket}/flink/savepoints"
    credentials = {"AWS_ACCESS_KEY_ID": storage.access_key_id, "AWS_SECRET_ACCESS_KEY": storage.secret_access_key}
    image = args.versions.image("flink")
    jobmanager = hosts[0]

    def container(role: str, host, resources, ready_port: int) -> Container:
        options = session_options(settings, storage, checkpoints, savepoints, jobmanager=jobmanager.address,
                                  role=role, host=host.address if role == "taskmanager" else None)
        return Container(image=image, args=("bash", "-ec", start_script(role, CONFIG_PATH)),
                         secret_env=credentials, files=(ServiceFile("config.yaml", CONFIG_PATH, render(options)),),
                         memory=resources.memory, ready_port=ready_port)

    manager = fleet.run_service(f"{name}-jobmanager", jobmanager,
                                container("jobmanager", jobmanager, settings.resources, REST_PORT), parent=parent)
    taskmanagers = hosts
    for host in taskmanagers:
        fleet.run_service(f"{name}-taskmanager", host, container(
            "taskmanager", host, settings.taskmanager_resources, TASKMANAGER_METRICS_PORT), parent=parent,
            depends_on=[manager])
    return FlinkEndpoints(
        mode="session", rest_url=f"http://{host_port(jobmanager.address, REST_PORT)}", checkpoints=checkpoints,
        savepoints=savepoints,
        metrics=(MetricsEndpoint("flink", (host_port(jobmanager.address, JOBMANAGER_METRICS_PORT),
                                           *(host_port(h.address, TASKMANAGER_METRICS_PORT) for h in taskmanagers))),))
