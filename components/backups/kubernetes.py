"""Backups on Kubernetes: a CronJob per store on `services.backups.schedule` (UTC, never two runs at once). For the
catalog database an init container runs `pg_dump -Fc` (the postgres image: the server's own major version, the
password from the catalog's Secret) into an emptyDir, then rclone uploads the dump and the Kafka topic definitions
and expires old copies. The S3 keys come from a Secret built from Pulumi secrets.

With `services.backups.offsite`, the CronJob `<name>-object-storage` runs the off-site copy of every bucket
(`offsite.copy_script`, rclone), marked as the backup of the SeaweedFS StatefulSets; the off-site keys come from
their own Secret, and a NetworkPolicy lets only these pods leave the cluster, on the endpoint's port."""
from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from components.backups import (BACKUP_OF, STAMP, TOPICS_KEY, BackupArgs, BackupEndpoints, backups_bucket,
                                catalog_database, expire_command, kafka_topics, rclone_env, remote, topics_document)
from components.backups.offsite import STORE, OffsiteCopy, copy_script, offsite_copy
from components.backups.schedule import parse
from stacks.config import Resources

POSTGRES_UID = 999  # `postgres` in the official image; rclone runs as any user
COPY_UID = 65534  # nobody: the copy writes nothing but rclone's cache under /tmp
JOB_RESOURCES = Resources(cpu="100m", memory="256Mi")
COPY_RESOURCES = Resources(cpu="250m", memory="1Gi")  # rclone holds one directory listing at a time in memory
COPY_DEADLINE_S = 20 * 3600  # a first copy of a large store may need several runs; each resumes the last
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


def _cronjob_spec(schedule: str, deadline_s: int, labels: dict, pod: dict) -> dict:
    return {"schedule": schedule, "timeZone": "Etc/UTC", "concurrencyPolicy": "Forbid",
            "startingDeadlineSeconds": 3600, "successfulJobsHistoryLimit": 3, "failedJobsHistoryLimit": 3,
            "jobTemplate": {"spec": {"backoffLimit": 2, "activeDeadlineSeconds": deadline_s, "template": {
                "metadata": {"labels": labels}, "spec": pod}}}}


def _offsite(name: str, args: BackupArgs, copy: OffsiteCopy, rclone_secret: pulumi.Resource,
             parent: pulumi.Resource) -> None:
    cluster = args.substrate
    plain, _ = rclone_env(args.storage)
    keys = k8s.core.v1.Secret(f"{name}-offsite", metadata=cluster.metadata(f"{name}-offsite", name, STORE),
                              type="Opaque", string_data=copy.secret, opts=cluster.opts(parent))
    cluster.allow_egress(f"{name}-offsite", cluster.selector(name, STORE), ["0.0.0.0/0"], (copy.port,), parent)
    container = cluster.container(
        "copy", args.versions.image("rclone"), COPY_RESOURCES, command=["/bin/sh", "-ec", copy_script(copy)],
        env=[{"name": "HOME", "value": "/tmp"},
             *({"name": k, "value": v} for k, v in {**plain, **copy.plain}.items())],
        envFrom=[{"secretRef": {"name": f"{name}-rclone"}}, {"secretRef": {"name": f"{name}-offsite"}}])
    job = f"{name}-{STORE}"
    k8s.batch.v1.CronJob(job, metadata=cluster.metadata(job, name, STORE, {BACKUP_OF: ",".join(copy.covers)}),
                         spec=_cronjob_spec(args.settings.schedule, COPY_DEADLINE_S, cluster.labels(name, STORE),
                                            cluster.pod_spec([container], COPY_UID, restartPolicy="Never")),
                         opts=cluster.opts(parent, depends_on=[rclone_secret, keys]))


def deploy(name: str, args: BackupArgs, parent: pulumi.Resource) -> BackupEndpoints:
    cluster = args.substrate
    settings = args.settings
    bucket = backups_bucket(args)
    parse(settings.schedule)  # refuse what the CronJob would not run, naming the key
    database = catalog_database(args)
    topics = kafka_topics(args.kafka)
    copy = offsite_copy(args)
    stores = (database.service,) if database else ()
    plain, secret = rclone_env(args.storage)
    credentials = None
    if database is not None or copy is not None:
        credentials = k8s.core.v1.Secret(f"{name}-rclone", metadata=cluster.metadata(f"{name}-rclone", name,
                                                                                    "credentials"),
                                         type="Opaque", string_data=secret, opts=cluster.opts(parent))
    if database is not None:
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
        k8s.batch.v1.CronJob(job, metadata=cluster.metadata(job, name, store, {BACKUP_OF: store}),
                             spec=_cronjob_spec(settings.schedule, 3 * 3600, cluster.labels(name, store),
                                                cluster.pod_spec([upload], POSTGRES_UID, initContainers=[dump],
                                                                 restartPolicy="Never", volumes=volumes)),
                             opts=cluster.opts(parent, depends_on=depends))
    if copy is not None:
        _offsite(name, args, copy, credentials, parent)
    return BackupEndpoints(bucket=bucket, schedule=settings.schedule, retention_days=settings.retention_days,
                           stores=stores + ((STORE,) if copy else ()), kafka_topics=topics,
                           offsite=copy.outputs() if copy else None)
