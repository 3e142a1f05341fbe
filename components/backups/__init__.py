"""Backups: what the platform itself keeps, copied on `services.backups.schedule` (cron, UTC) into the `backups`
bucket and expired after `retention_days`; the restore procedure per target is docs/restore.md.

- Catalog PostgreSQL (compose, VMs, Kubernetes): `pg_dump -Fc` (custom format: `pg_restore` can restore it into an
  empty database, table by table if need be) to `s3://<backups>/catalog-db/<UTC timestamp>.dump`.
  compose: a scheduler container (the postgres image, checking the schedule every minute) writes the dumps to a
  spool volume that an uploader (rclone) moves to the bucket; VMs: a systemd timer on the database's host runs the
  dump and the upload; Kubernetes: a CronJob (pg_dump in an init container, rclone uploads).
- AWS: AWS Backup, a vault encrypted with the platform key and a plan on the same schedule and retention, covering
  the warehouse bucket and, with `catalog.aws_flavor: rest`, the catalog's RDS instance (which also keeps its own
  automated backups for point-in-time recovery). The Glue Data Catalog keeps no data of its own to back up: each
  table points at Iceberg metadata in the (versioned, backed up) warehouse bucket.
- Kafka: the topics are configuration (`services.kafka.topics`), so `pulumi up` recreates them; their definitions
  (partitions, replication, configs, and the `kafka-topics.sh` command that creates each) are also exported, in the
  stack output and as `s3://<backups>/kafka/topics.json`, to recreate a cluster without Pulumi. Messages are
  protected by replication, not copied.
- Flink state needs no job here: checkpoints and savepoints already live in the `checkpoints` bucket. The schema
  registry's content is registered from code on every `pulumi up`.
- Object storage (compose, VMs, Kubernetes), with `services.backups.offsite` set: every platform bucket mirrored
  by rclone to an S3 bucket outside the platform, with the history of what each run replaced or deleted
  (`offsite.py`); a scheduler container on compose, a systemd timer on the first object-storage host, a CronJob on
  Kubernetes. Without an off-site target nothing copies the buckets (a copy into the `backups` bucket would live
  on the storage it protects), and the stateful-backups policy keeps flagging the object storage. On AWS the
  buckets are versioned and covered by AWS Backup; `offsite` is refused there.

Adding a store (Qdrant snapshots, when Qdrant lands): produce a file and upload it under `<store>/` with the same
rclone remote (`rclone_env`) and retention (`expire_command`): on compose a scheduler service writing
`<spool>/<store>/<stamp><ext>` into the spool volume is enough (the uploader ships everything there); on VMs and
Kubernetes add the dump and upload steps next to the catalog's (`vm.py`, `kubernetes.py`). Mark it
`dataplatform.io/backup-of: <store>` so the stateful-backups policy sees it covered.
"""
from __future__ import annotations

import json
import shlex
from dataclasses import dataclass

import pulumi

from components.base import Service, ServiceArgs
from components.kafka import topic_config

BACKUP_OF = "dataplatform.io/backup-of"
BACKUPS_BUCKET = "backups"
REMOTE = "backups"  # the rclone remote, configured entirely from RCLONE_CONFIG_BACKUPS_* variables
TOPICS_KEY = "kafka/topics.json"
STAMP = "%Y%m%dT%H%M%SZ"  # `date -u +...`: keys sort in time order


@dataclass(frozen=True)
class CatalogDatabase:
    """How the catalog's adapters run its PostgreSQL; tests/infra/test_backups.py checks these against the catalog's
    actual resources on every target, so a change there cannot silently break the dumps."""
    service: str  # compose service, VM unit service (its container is `dp-<service>`), Kubernetes Service
    user: str = "lakekeeper"
    database: str = "lakekeeper"
    password_variable: str = "CATALOG_DB_PASSWORD"  # compose: the project variable holding the password
    password_key: str = "POSTGRES_PASSWORD"  # Kubernetes: its key in the `<service>-credentials` Secret

    @property
    def credentials_secret(self) -> str:
        return f"{self.service}-credentials"


@dataclass(frozen=True)
class BackupEndpoints:
    bucket: pulumi.Input[str] | None  # where the copies go
    schedule: str
    retention_days: int
    stores: tuple[str, ...]  # what is backed up, e.g. catalog-db (pg_dump), warehouse (AWS Backup)
    kafka_topics: tuple[dict, ...] = ()  # the topic definitions, also at s3://<bucket>/kafka/topics.json
    vault: pulumi.Input[str] | None = None  # AWS Backup vault
    offsite: dict | None = None  # where the off-site copy of the object storage goes (`OffsiteCopy.outputs`)

    def outputs(self) -> dict:
        return {"bucket": self.bucket, "schedule": self.schedule, "retention_days": self.retention_days,
                "stores": list(self.stores), "kafka_topics": list(self.kafka_topics),
                "kafka_topics_object": pulumi.Output.concat("s3://", self.bucket, f"/{TOPICS_KEY}")
                if self.bucket is not None and self.kafka_topics else None,
                "vault": self.vault, "offsite": self.offsite}


@dataclass(frozen=True)
class BackupArgs(ServiceArgs):
    storage: object = None  # StorageEndpoints: the `backups` bucket (and the warehouse, on AWS)
    catalog: object = None  # CatalogEndpoints, None when the catalog is off
    catalog_name: str = "catalog"  # the catalog component's name (its database is `<name>-db`)
    kafka: object = None  # the Kafka settings (services.kafka), None when Kafka is off: the topics to export


class Backups(Service):
    type_token = "dataplatform:backups:Backups"
    endpoints: BackupEndpoints


def backups_bucket(args: BackupArgs) -> pulumi.Input[str]:
    storage = args.storage
    if storage is None:
        raise ValueError("services.object_storage.enabled: backups are copied to the object storage's `backups` "
                         "bucket; switch object storage on (or backups off)")
    if BACKUPS_BUCKET not in storage.buckets:
        raise ValueError(f"services.object_storage.buckets: backups need a {BACKUPS_BUCKET!r} bucket (configured: "
                         f"{', '.join(storage.buckets)})")
    return storage.buckets[BACKUPS_BUCKET]


def catalog_database(args: BackupArgs) -> CatalogDatabase | None:
    """The catalog database to dump, when the catalog runs one itself (Lakekeeper on PostgreSQL)."""
    if args.catalog is None or args.catalog.type != "rest":
        return None
    return CatalogDatabase(service=f"{args.catalog_name}-db")


def kafka_topics(kafka) -> tuple[dict, ...]:
    """Each topic as configured (what `pulumi up` creates), with the command that recreates it by hand."""
    if kafka is None:
        return ()
    topics = []
    for topic in kafka.topics:
        replication = topic.replication or kafka.replication
        config = topic_config(topic, kafka.replication, kafka.min_isr)
        command = ["kafka-topics.sh", "--bootstrap-server", "$BOOTSTRAP_SERVERS", "--create", "--if-not-exists",
                   "--topic", topic.name, "--partitions", str(topic.partitions), "--replication-factor",
                   str(replication), *[arg for key, value in config.items() for arg in ("--config", f"{key}={value}")]]
        topics.append({"name": topic.name, "partitions": topic.partitions, "replication": replication,
                       "config": config, "create": shlex.join(command).replace("'$BOOTSTRAP_SERVERS'",
                                                                               '"$BOOTSTRAP_SERVERS"')})
    return tuple(topics)


def topics_document(topics: tuple[dict, ...]) -> str:
    return json.dumps({"topics": list(topics)}, indent=2) + "\n"


def rclone_env(storage) -> tuple[dict[str, str], dict[str, pulumi.Input[str]]]:
    """(plain, secret) environment configuring the rclone remote `backups` on the platform's S3 API."""
    plain = {"RCLONE_CONFIG_BACKUPS_TYPE": "s3", "RCLONE_CONFIG_BACKUPS_PROVIDER": "Other",
             "RCLONE_CONFIG_BACKUPS_ENDPOINT": storage.endpoint, "RCLONE_CONFIG_BACKUPS_REGION": storage.region,
             "RCLONE_CONFIG_BACKUPS_FORCE_PATH_STYLE": "true" if storage.path_style else "false"}
    secret = {"RCLONE_CONFIG_BACKUPS_ACCESS_KEY_ID": storage.access_key_id,
              "RCLONE_CONFIG_BACKUPS_SECRET_ACCESS_KEY": storage.secret_access_key}
    return plain, secret


def remote(bucket: str, *path: str) -> str:
    return "/".join([f"{REMOTE}:{bucket}", *path])


def expire_command(bucket: str, store: str, retention_days: int) -> str:
    """Delete the copies of `store` older than the retention (rclone's `--min-age` is the object's age)."""
    return f"rclone delete {remote(bucket, store)} --min-age {retention_days}d"
