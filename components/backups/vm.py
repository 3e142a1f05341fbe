"""Backups on VMs: a systemd timer on the catalog database's host (the first host with the role `catalog`).

The timer (`OnCalendar=` from the cron schedule, `Persistent=true`: a run missed while the host was down happens at
boot) starts a oneshot service running `backup.sh`: `pg_dump -Fc` inside the database's own container (local
socket, no password needed), then rclone in a throwaway container uploads the dump and the Kafka topic definitions
and expires old copies. The S3 keys reach the host only in a root-only env file. `systemctl list-timers` and
`journalctl -u dataplatform-backup` show when it ran and what it did.

With `services.backups.offsite`, a second timer (`dataplatform-offsite`, same schedule) on the first object-storage
host runs the off-site copy of every bucket (`offsite.copy_script`) in a throwaway rclone container; both remotes'
keys reach the host only in its own root-only env file.
"""
from __future__ import annotations

import pulumi
import pulumi_command as command

from components.backups import (BACKUP_OF, STAMP, TOPICS_KEY, BackupArgs, BackupEndpoints, backups_bucket,
                                catalog_database, expire_command, kafka_topics, rclone_env, remote, topics_document)
from components.backups.offsite import STORE, OffsiteCopy, copy_script, offsite_copy
from components.backups.schedule import on_calendar
from components.targets.vm import CONFIG_DIR, VmFleet, env_file

UNIT = "dataplatform-backup"
OFFSITE_UNIT = "dataplatform-offsite"
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


def offsite_script(image: str) -> str:
    """The off-site timer's script: the copy in a throwaway rclone container on the host's network."""
    return "\n".join([
        "#!/usr/bin/env bash",
        f"# Run by {OFFSITE_UNIT}.service (its timer); managed by Pulumi.",
        "set -euo pipefail",
        f"exec docker run --rm --network host --env-file {DIRECTORY}/offsite.env --env HOME=/tmp "
        f"--volume {DIRECTORY}/offsite-copy.sh:/offsite-copy.sh:ro --entrypoint /bin/sh {image} -eu /offsite-copy.sh",
        "",
    ])


def units(schedule: str, script: str = f"{DIRECTORY}/backup.sh", what: str = "backups to the backups bucket",
          timeout: str = "3h") -> tuple[str, str]:
    service = "\n".join([
        "# Managed by Pulumi (dataplatform vm target): edits are overwritten on the next `pulumi up`.",
        "[Unit]",
        f"Description=dataplatform {what}",
        "Requires=docker.service",
        "After=docker.service network-online.target",
        "",
        "[Service]",
        "Type=oneshot",
        f"ExecStart=/bin/bash {script}",
        f"TimeoutStartSec={timeout}",
        "",
    ])
    timer = "\n".join([
        "# Managed by Pulumi (dataplatform vm target): edits are overwritten on the next `pulumi up`.",
        "[Unit]",
        f"Description=dataplatform {what} on schedule {schedule} (UTC)",
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


def install_script(service: str, timer: str, unit: str = UNIT) -> str:
    """Install (or update) both units and enable the timer: idempotent."""
    return "\n".join([
        "set -euo pipefail",
        f"cat > /etc/systemd/system/{unit}.service <<'UNIT'",
        service.rstrip("\n"),
        "UNIT",
        f"cat > /etc/systemd/system/{unit}.timer <<'UNIT'",
        timer.rstrip("\n"),
        "UNIT",
        "systemctl daemon-reload",
        f"systemctl enable --quiet {unit}.timer",
        f"systemctl restart {unit}.timer",
        f"systemctl list-timers {unit}.timer --no-pager",
        "",
    ])


def _timer(fleet: VmFleet, host, name: str, unit: str, install: str, files: list,
           parent: pulumi.Resource) -> command.remote.Command:
    sudo = fleet.sudo(host)
    return command.remote.Command(
        name, connection=fleet.connections[host.name], create=f"{sudo}bash -s", stdin=install,
        delete=f"{sudo}systemctl disable --now {unit}.timer && {sudo}rm -f /etc/systemd/system/{unit}.timer "
               f"/etc/systemd/system/{unit}.service && {sudo}systemctl daemon-reload",
        opts=pulumi.ResourceOptions(parent=parent, depends_on=[*fleet.provisioned[host.name], *files],
                                    delete_before_replace=True))


def _offsite(fleet: VmFleet, name: str, args: BackupArgs, copy: OffsiteCopy, parent: pulumi.Resource) -> None:
    """The off-site timer on the first object-storage host (the platform's S3 endpoint is that host's)."""
    host = fleet.hosts_with_role("object-storage")[0]
    plain, secret = rclone_env(args.storage)
    keys = {**secret, **copy.secret}
    files = [
        fleet.put_file(f"{name}-{host.name}-offsite-env", host, f"{DIRECTORY}/offsite.env", pulumi.Output.secret(
            pulumi.Output.all(**keys).apply(lambda values: env_file({**plain, **copy.plain, **values}))),
            mode="0600", parent=parent),
        fleet.put_file(f"{name}-{host.name}-offsite-copy", host, f"{DIRECTORY}/offsite-copy.sh", copy_script(copy),
                       mode="0644", parent=parent),
        fleet.put_file(f"{name}-{host.name}-offsite-script", host, f"{DIRECTORY}/offsite.sh",
                       offsite_script(args.versions.image("rclone")), mode="0750", parent=parent)]
    service, timer = units(args.settings.schedule, f"{DIRECTORY}/offsite.sh",
                           f"off-site copy of the object storage to s3://{copy.base}", "20h")
    _timer(fleet, host, f"{name}-{host.name}-offsite-timer", OFFSITE_UNIT,
           install_script(service, timer, OFFSITE_UNIT), files, parent)


def deploy(name: str, args: BackupArgs, parent: pulumi.Resource) -> BackupEndpoints:
    fleet: VmFleet = args.substrate
    settings = args.settings
    bucket = backups_bucket(args)
    database = catalog_database(args)
    topics = kafka_topics(args.kafka)
    copy = offsite_copy(args, tuple(h.address for h in fleet.hosts_with_role("object-storage")))
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
        _timer(fleet, host, f"{name}-{host.name}-timer", UNIT, install_script(*units(settings.schedule)), files,
               parent)
    if copy is not None:
        _offsite(fleet, name, args, copy, parent)
    return BackupEndpoints(bucket=bucket, schedule=settings.schedule, retention_days=settings.retention_days,
                           stores=stores + ((STORE,) if copy else ()), kafka_topics=topics,
                           offsite=copy.outputs() if copy else None)
