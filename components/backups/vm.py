"""Backups on VMs: a systemd timer on the catalog database's host (the first host with the role `catalog`).

The timer (`OnCalendar=` from the cron schedule, `Persistent=true`: a run missed while the host was down happens at
boot) starts a oneshot service running `backup.sh`: `pg_dump -Fc` inside the database's own container (local
socket, no password needed), then rclone in a throwaway container uploads the dump and the Kafka topic definitions
and expires old copies. The S3 keys reach the host only in a root-only env file. `systemctl list-timers` and
`journalctl -u dataplatform-backup` show when it ran and what it did.
"""
from __future__ import annotations

import pulumi
import pulumi_command as command

from components.backups import (BACKUP_OF, STAMP, TOPICS_KEY, BackupArgs, BackupEndpoints, backups_bucket,
                                catalog_database, expire_command, kafka_topics, rclone_env, remote, topics_document)
from components.backups.schedule import on_calendar
from components.targets.vm import CONFIG_DIR, VmFleet, env_file

UNIT = "dataplatform-backup"
DIRECTORY = f"{CONFIG_DIR}/backups"


def backup_script(bucket: str, database, store: str, spool: str, image: str, retention_days: int,
                  topics: bool) -> str:
    mounts = f'--volume "{spool}:/spool:ro"' + (f" --volume {DIRECTORY}/kafka-topics.json:/kafka-topics.json:ro"
                                                 if topics else "")
    return "\n".join([
        "#!/usr/bin/env bash",
        f"# {BACKUP_OF}: {store}",
        "# Run by dataplatform-backup.service (its timer); managed by Pulumi.",
        "set -euo pipefail",
        f'rclone() {{ docker run --rm --network host --env-file {DIRECTORY}/rclone.env {mounts} {image} "$@"; }}',
        f"stamp=$(date -u +{STAMP})",
        f'spool="{spool}"',
        'mkdir -p "$spool"',
        f'file="$spool/{store}-$stamp.dump"',
        'trap \'rm -f "$file"\' EXIT',
        f'docker exec dp-{database.service} pg_dump -U {database.user} -d {database.database} -Fc > "$file"',
        f'rclone copyto "/spool/{store}-$stamp.dump" "{remote(bucket, store)}/$stamp.dump"',
        *([f"rclone copyto /kafka-topics.json {remote(bucket, TOPICS_KEY)}"] if topics else []),
        expire_command(bucket, store, retention_days),
        f'echo "backed up {store} to s3://{bucket}/{store}/$stamp.dump"',
        "",
    ])


def units(schedule: str) -> tuple[str, str]:
    service = "\n".join([
        "# Managed by Pulumi (dataplatform vm target): edits are overwritten on the next `pulumi up`.",
        "[Unit]",
        "Description=dataplatform backups to the backups bucket",
        "Requires=docker.service",
        "After=docker.service network-online.target",
        "",
        "[Service]",
        "Type=oneshot",
        f"ExecStart=/bin/bash {DIRECTORY}/backup.sh",
        "TimeoutStartSec=3h",
        "",
    ])
    timer = "\n".join([
        "# Managed by Pulumi (dataplatform vm target): edits are overwritten on the next `pulumi up`.",
        "[Unit]",
        f"Description=dataplatform backups on schedule {schedule} (UTC)",
        "",
        "[Timer]",
        *(f"OnCalendar={line}" for line in on_calendar(schedule)),
        "Persistent=true",
        "",
        "[Install]",
        "WantedBy=timers.target",
        "",
    ])
    return service, timer


def install_script(service: str, timer: str) -> str:
    """Install (or update) both units and enable the timer: idempotent."""
    return "\n".join([
        "set -euo pipefail",
        f"cat > /etc/systemd/system/{UNIT}.service <<'UNIT'",
        service.rstrip("\n"),
        "UNIT",
        f"cat > /etc/systemd/system/{UNIT}.timer <<'UNIT'",
        timer.rstrip("\n"),
        "UNIT",
        "systemctl daemon-reload",
        f"systemctl enable --quiet {UNIT}.timer",
        f"systemctl restart {UNIT}.timer",
        f"systemctl list-timers {UNIT}.timer --no-pager",
        "",
    ])


def deploy(name: str, args: BackupArgs, parent: pulumi.Resource) -> BackupEndpoints:
    fleet: VmFleet = args.substrate
    settings = args.settings
    bucket = backups_bucket(args)
    database = catalog_database(args)
    topics = kafka_topics(args.kafka)
    stores = (database.service,) if database else ()
    if database is not None:
        host = fleet.hosts_with_role("catalog")[0]
        plain, secret = rclone_env(args.storage)
        credentials = fleet.put_file(
            f"{name}-{host.name}-rclone-env", host, f"{DIRECTORY}/rclone.env",
            pulumi.Output.secret(pulumi.Output.all(**secret).apply(lambda keys: env_file({**plain, **keys}))),
            mode="0600", parent=parent)
        files = [credentials]
        if topics:
            files.append(fleet.put_file(f"{name}-{host.name}-kafka-topics", host, f"{DIRECTORY}/kafka-topics.json",
                                        topics_document(topics), parent=parent))
        files.append(fleet.put_file(
            f"{name}-{host.name}-script", host, f"{DIRECTORY}/backup.sh",
            backup_script(bucket, database, database.service, fleet.data_path("backups", "spool"),
                          args.versions.image("rclone"), settings.retention_days, bool(topics)),
            mode="0750", parent=parent))
        sudo = fleet.sudo(host)
        command.remote.Command(
            f"{name}-{host.name}-timer", connection=fleet.connections[host.name],
            create=f"{sudo}bash -s", stdin=install_script(*units(settings.schedule)),
            delete=f"{sudo}systemctl disable --now {UNIT}.timer && {sudo}rm -f /etc/systemd/system/{UNIT}.timer "
                   f"/etc/systemd/system/{UNIT}.service && {sudo}systemctl daemon-reload",
            opts=pulumi.ResourceOptions(parent=parent, depends_on=[*fleet.provisioned[host.name], *files],
                                        delete_before_replace=True))
    return BackupEndpoints(bucket=bucket, schedule=settings.schedule, retention_days=settings.retention_days,
                           stores=stores, kafka_topics=topics)
