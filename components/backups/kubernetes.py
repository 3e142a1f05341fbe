"""Backups on Kubernetes: a CronJob per store on `services.backups.schedule` (UTC, never two runs at once). For the
catalog database an init container runs `pg_dump -Fc` (the postgres image: the server's own major version, the
password from the catalog's Secret) into an emptyDir, then rclone uploads the dump and the Kafka topic definitions
and expires old copies. The S3 keys come from a Secret built from Pulumi secrets."""
from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from components.backups import (BACKUP_OF, STAMP, TOPICS_KEY, BackupArgs, BackupEndpoints, backups_bucket,
                                catalog_database, expire_command, kafka_topics, rclone_env, remote, topics_document)
from components.backups.schedule import parse
from stacks.config import Resources

POSTGRES_UID = 999  # `postgres` in the official image; rclone runs as any user
JOB_RESOURCES = Resources(cpu="100m", memory="256Mi")
DUMP_DIR, TOPICS_DIR = "/backup", "/etc/backups"


def upload_script(bucket: str, store: str, retention_days: int, topics: bool) -> str:
    return "\n".join([
        "set -eu",
        f"stamp=$(date -u +{STAMP})",
        f'rclone copyto {DUMP_DIR}/{store}.dump "{remote(bucket, store)}/$stamp.dump"',
        *([f"rclone copyto {TOPICS_DIR}/topics.json {remote(bucket, TOPICS_KEY)}"] if topics else []),
        expire_command(bucket, store, retention_days),
        f'echo "backed up {store} to s3://{bucket}/{store}/$stamp.dump"',
    ])


def deploy(name: str, args: BackupArgs, parent: pulumi.Resource) -> BackupEndpoints:
    cluster = args.substrate
    settings = args.settings
    bucket = backups_bucket(args)
    parse(settings.schedule)  # refuse what the CronJob would not run, naming the key
    database = catalog_database(args)
    topics = kafka_topics(args.kafka)
    stores = (database.service,) if database else ()
    if database is not None:
        plain, secret = rclone_env(args.storage)
        credentials = k8s.core.v1.Secret(f"{name}-rclone", metadata=cluster.metadata(f"{name}-rclone", name,
                                                                                    "credentials"),
                                         type="Opaque", string_data=secret, opts=cluster.opts(parent))
        volumes = [{"name": "dump", "emptyDir": {"sizeLimit": "20Gi"}}]
        mounts = [{"name": "dump", "mountPath": DUMP_DIR, "readOnly": True}]
        depends = [credentials]
        if topics:
            depends.append(k8s.core.v1.ConfigMap(
                f"{name}-kafka-topics", metadata=cluster.metadata(f"{name}-kafka-topics", name, "kafka-topics"),
                data={"topics.json": topics_document(topics)}, opts=cluster.opts(parent)))
            volumes.append({"name": "topics", "configMap": {"name": f"{name}-kafka-topics"}})
            mounts.append({"name": "topics", "mountPath": TOPICS_DIR, "readOnly": True})
        store = database.service
        dump = cluster.container(
            "dump", args.versions.image("postgres"), JOB_RESOURCES,
            command=["pg_dump", "-h", cluster.host(store), "-U", database.user, "-d", database.database, "-Fc",
                     "-f", f"{DUMP_DIR}/{store}.dump"],
            env=[{"name": "PGPASSWORD", "valueFrom": {"secretKeyRef": {"name": database.credentials_secret,
                                                                       "key": database.password_key}}}],
            mounts=[{"name": "dump", "mountPath": DUMP_DIR}])
        upload = cluster.container(
            "upload", args.versions.image("rclone"), JOB_RESOURCES,
            command=["/bin/sh", "-ec", upload_script(bucket, store, settings.retention_days, bool(topics))],
            env=[{"name": "HOME", "value": "/tmp"}, *({"name": k, "value": v} for k, v in plain.items())],
            envFrom=[{"secretRef": {"name": f"{name}-rclone"}}], mounts=mounts)
        job = f"{name}-{store}"
        k8s.batch.v1.CronJob(job, metadata=cluster.metadata(job, name, store, {BACKUP_OF: store}), spec={
            "schedule": settings.schedule, "timeZone": "Etc/UTC", "concurrencyPolicy": "Forbid",
            "startingDeadlineSeconds": 3600, "successfulJobsHistoryLimit": 3, "failedJobsHistoryLimit": 3,
            "jobTemplate": {"spec": {"backoffLimit": 2, "activeDeadlineSeconds": 3 * 3600, "template": {
                "metadata": {"labels": cluster.labels(name, store)},
                "spec": cluster.pod_spec([upload], POSTGRES_UID, initContainers=[dump], restartPolicy="Never",
                                         volumes=volumes)}}}},
            opts=cluster.opts(parent, depends_on=depends))
    return BackupEndpoints(bucket=bucket, schedule=settings.schedule, retention_days=settings.retention_days,
                           stores=stores, kafka_topics=topics)
