"""Backups on compose: two small long-running services sharing a spool volume.

- `<name>-catalog-db` (the postgres image, so `pg_dump` matches the server's major version): checks the schedule
  every minute (`schedule.SHELL_MATCHER`) and dumps the catalog database into `<spool>/catalog-db/<stamp>.dump`
  (written under `.partial/` first, then moved: the uploader never sees half a dump);
- `<name>-upload` (rclone): every minute moves what the spool holds into the `backups` bucket, then deletes copies
  older than the retention; at start it uploads the Kafka topic definitions;
- `<name>-object-storage` (rclone, with `services.backups.offsite`): at each minute the schedule matches, runs the
  off-site copy of every bucket (`offsite.copy_script`, mounted as a config file).

Each writes a heartbeat and a failure marker; their health checks turn unhealthy when the loop stalls or the last
dump or upload failed, so `docker compose ps` shows a backup problem. The database password and the S3 keys come
from the project's `${VARS}`, as for every other service.
"""
from __future__ import annotations

import pulumi

from components.backups import (BACKUP_OF, STAMP, TOPICS_KEY, BackupArgs, BackupEndpoints, backups_bucket,
                                catalog_database, expire_command, kafka_topics, rclone_env, remote, topics_document)
from components.backups.offsite import STORE, OffsiteCopy, copy_script, offsite_copy
from components.backups.schedule import SHELL_MATCHER, parse

SPOOL = "/spool"
TOPICS_FILE = "/etc/backups/kafka-topics.json"
COPY_FILE = "/etc/backups/offsite-copy.sh"
POLL_S = 20  # how often the scheduler checks on a running copy (and keeps its heartbeat fresh)
OFFSITE_VARIABLES = {"RCLONE_CONFIG_OFFSITE_ACCESS_KEY_ID": "OFFSITE_ACCESS_KEY_ID",
                     "RCLONE_CONFIG_OFFSITE_SECRET_ACCESS_KEY": "OFFSITE_SECRET_ACCESS_KEY"}
UPLOAD_EVERY_S = 60
# the project variables the object storage adapter already passes the S3 keys in
S3_VARIABLES = {"RCLONE_CONFIG_BACKUPS_ACCESS_KEY_ID": "S3_ACCESS_KEY_ID",
                "RCLONE_CONFIG_BACKUPS_SECRET_ACCESS_KEY": "S3_SECRET_ACCESS_KEY"}


def health(marker_dir: str = "/tmp") -> dict:
    """Healthy while the loop's heartbeat is under 3 minutes old and its last attempt did not fail."""
    return {"test": ["CMD-SHELL", f"test -n \"$$(find {marker_dir}/heartbeat -mmin -3)\" && "
                                  f"test ! -e {marker_dir}/failed"],
            "interval": "30s", "timeout": "5s", "retries": 3, "start_period": "30s"}


def dump_loop(schedule: str, database, store: str) -> str:
    """The scheduler: at each minute the schedule matches, dump the database into the spool."""
    dump = (f"pg_dump -h {database.service} -U {database.user} -d {database.database} -Fc "
            f'-f "{SPOOL}/.partial/{store}-$stamp.dump"')
    return "\n".join([
        f"# {BACKUP_OF}: {store}",
        "set -euf",
        SHELL_MATCHER.strip(),
        f"mkdir -p {SPOOL}/.partial {SPOOL}/{store}",
        "while true; do",
        "  touch /tmp/heartbeat",
        "  # shellcheck disable=SC2046 # five numbers",
        f"  if cron_matches \"$SCHEDULE\" $(date -u '+%-M %-H %-d %-m %w'); then",
        f"    stamp=$(date -u +{STAMP})",
        f"    if {dump}; then",
        f'      mv "{SPOOL}/.partial/{store}-$stamp.dump" "{SPOOL}/{store}/$stamp.dump"',
        f'      rm -f /tmp/failed; echo "dumped {store} ($stamp)"',
        "    else",
        f'      rm -f "{SPOOL}/.partial/{store}-$stamp.dump"; touch /tmp/failed; echo "pg_dump of {store} failed" >&2',
        "    fi",
        "  fi",
        "  sleep $((60 - $(date +%-S)))",
        "done",
        "",
    ])


def upload_loop(bucket: str, stores: tuple[str, ...], retention_days: int, topics: bool) -> str:
    """The uploader: ship the spool (all but partial dumps) to the bucket, expire old copies, every minute."""
    steps = [f"rclone move {SPOOL} {remote(bucket)} --exclude '.partial/**' --min-age 5s",
             *(expire_command(bucket, store, retention_days) for store in stores)]
    return "\n".join([
        "set -eu",
        *([f"rclone copyto {TOPICS_FILE} {remote(bucket, TOPICS_KEY)}"] if topics else []),
        "while true; do",
        "  touch /tmp/heartbeat",
        f"  if {' && '.join(steps)}; then rm -f /tmp/failed; else touch /tmp/failed; "
        "echo 'upload to the backups bucket failed' >&2; fi",
        f"  sleep {UPLOAD_EVERY_S}",
        "done",
        "",
    ])


def copy_loop() -> str:
    """The off-site scheduler: at each minute the schedule matches, run the copy in the background and keep the
    heartbeat fresh while it runs (a copy can take hours); its exit status sets or clears the failure marker."""
    return "\n".join([
        "set -euf",
        SHELL_MATCHER.strip(),
        "while true; do",
        "  touch /tmp/heartbeat",
        "  # shellcheck disable=SC2046 # five numbers",
        "  if cron_matches \"$SCHEDULE\" $(date -u '+%-M %-H %-d %-m %w'); then",
        f"    sh -eu {COPY_FILE} &",
        "    copy=$!",
        f'    while kill -0 "$copy" 2>/dev/null; do touch /tmp/heartbeat; sleep {POLL_S}; done',
        '    if wait "$copy"; then rm -f /tmp/failed; else touch /tmp/failed; echo "off-site copy failed" >&2; fi',
        "  fi",
        "  sleep $((60 - $(date +%-S)))",
        "done",
        "",
    ])


def _offsite_service(project, name: str, args: BackupArgs, copy: OffsiteCopy) -> None:
    plain, secret = rclone_env(args.storage)
    environment = {"SCHEDULE": args.settings.schedule, "TZ": "UTC", **plain,
                   **{key: project.secret(S3_VARIABLES[key], value) for key, value in secret.items()},
                   **copy.plain,
                   **{key: project.secret(OFFSITE_VARIABLES[key], value) for key, value in copy.secret.items()}}
    project.add_config(f"{name}-offsite-copy", copy_script(copy).replace("$", "$$"))
    project.add_service(f"{name}-{STORE}", {
        "image": args.versions.image("rclone"), "restart": "unless-stopped", "entrypoint": ["/bin/sh", "-c"],
        "command": [copy_loop().replace("$", "$$")], "environment": environment,
        "configs": [{"source": f"{name}-offsite-copy", "target": COPY_FILE}],
        "labels": {BACKUP_OF: ",".join(copy.covers)}, "healthcheck": health(),
    })


def deploy(name: str, args: BackupArgs, parent: pulumi.Resource) -> BackupEndpoints:
    project = args.substrate
    settings = args.settings
    bucket = backups_bucket(args)
    parse(settings.schedule)  # refuse a schedule the loop could not run, naming the key
    database = catalog_database(args)
    topics = kafka_topics(args.kafka)
    copy = offsite_copy(args, ("localhost", "127.0.0.1"))
    spool = f"{name}-spool"
    stores = (database.service,) if database else ()
    if database is not None:
        if database.password_variable not in project.secret_env:
            raise ValueError(f"the compose catalog no longer passes {database.password_variable}; "
                             "components/backups cannot reach its database")
        project.add_service(f"{name}-{database.service}", {
            "image": args.versions.image("postgres"), "restart": "unless-stopped", "entrypoint": ["/bin/sh", "-c"],
            "command": [dump_loop(settings.schedule, database, database.service).replace("$", "$$")],
            "environment": {"SCHEDULE": settings.schedule, "TZ": "UTC",
                            "PGPASSWORD": "${" + database.password_variable + ":?set by pulumi}"},
            "volumes": [f"{spool}:{SPOOL}"], "labels": {BACKUP_OF: database.service},
            "healthcheck": health(),
            "depends_on": {database.service: {"condition": "service_healthy"}},
        }, volumes=(spool,))
    if stores or topics:
        plain, secret = rclone_env(args.storage)
        environment = {**plain, **{key: project.secret(S3_VARIABLES[key], value) for key, value in secret.items()}}
        if topics:
            project.add_config(f"{name}-kafka-topics", topics_document(topics).replace("$", "$$"))
        project.add_service(f"{name}-upload", {
            "image": args.versions.image("rclone"), "restart": "unless-stopped", "entrypoint": ["/bin/sh", "-c"],
            "command": [upload_loop(bucket, stores, settings.retention_days, bool(topics)).replace("$", "$$")],
            "environment": environment, "volumes": [f"{spool}:{SPOOL}"], "labels": {BACKUP_OF: spool},
            "configs": [{"source": f"{name}-kafka-topics", "target": TOPICS_FILE}] if topics else [],
            "healthcheck": health(),
        }, volumes=(spool,))
    if copy is not None:
        _offsite_service(project, name, args, copy)
    return BackupEndpoints(bucket=bucket, schedule=settings.schedule, retention_days=settings.retention_days,
                           stores=stores + ((STORE,) if copy else ()), kafka_topics=topics,
                           offsite=copy.outputs() if copy else None)
