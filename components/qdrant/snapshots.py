"""Qdrant snapshots to the `backups` bucket: the scripts every target runs, in two steps.

1. `snapshot_script` (curl image): for each node and each collection, ask the node for a snapshot (its local shards),
   download it into `<dir>/<node>/<collection>.snapshot`, then delete it on the node so snapshots never fill the
   node's disk. The API key travels in a header file, never on a command line.
2. `upload_commands` (rclone image): copy the directory to `s3://<backups>/qdrant/<stamp>/` and delete copies older
   than the retention.
Both are POSIX sh (busybox in both images) and pass shellcheck (tests/infra/test_qdrant.py).
"""
from __future__ import annotations

import pulumi

from components.backups import BACKUP_OF, BACKUPS_BUCKET, STAMP, expire_command, rclone_env, remote
from components.backups.schedule import ScheduleError, parse
from components.qdrant import STORE

KEY = "services.qdrant.snapshot_schedule"


def check_schedule(expression: str) -> None:
    """The same five-field cron expressions as the backups schedule, refused under Qdrant's own key."""
    try:
        parse(expression)
    except ScheduleError as error:
        raise ValueError(f"{KEY}: {str(error).split(': ', 1)[1]}") from None


def bucket(storage) -> pulumi.Input[str] | None:
    """The backups bucket, or None when the stack has no object storage or no such bucket (no snapshots then)."""
    if storage is None or BACKUPS_BUCKET not in storage.buckets:
        return None
    return storage.buckets[BACKUPS_BUCKET]


def snapshot_script(nodes: dict[str, str], directory: str) -> str:
    """Snapshot every collection on every node (`nodes`: node name -> base URL) into `directory`."""
    pairs = " ".join(f"{node}={url}" for node, url in nodes.items())
    return "\n".join([
        f"# {BACKUP_OF}: {STORE}",
        "set -eu",
        "umask 077",
        "headers=$(mktemp)",
        "trap 'rm -f \"$headers\"' EXIT",
        "printf 'api-key: %s\\n' \"$QDRANT_API_KEY\" > \"$headers\"",
        f"for pair in {pairs}; do",
        "  node=${pair%%=*}",
        "  url=${pair#*=}",
        f'  mkdir -p "{directory}/$node"',
        '  collections=$(curl -fsS -H "@$headers" "$url/collections" | grep -o \'"name":"[^"]*"\' | cut -d\'"\' -f4)',
        "  for collection in $collections; do",
        '    snapshot=$(curl -fsS -X POST -H "@$headers" "$url/collections/$collection/snapshots?wait=true" |',
        "      grep -o '\"name\":\"[^\"]*\"' | head -n 1 | cut -d'\"' -f4)",
        '    if [ -z "$snapshot" ]; then echo "no snapshot of $collection on $node" >&2; exit 1; fi',
        f'    curl -fsS -H "@$headers" -o "{directory}/$node/$collection.snapshot" \\',
        '      "$url/collections/$collection/snapshots/$snapshot"',
        '    curl -fsS -X DELETE -H "@$headers" "$url/collections/$collection/snapshots/$snapshot?wait=true" \\',
        "      > /dev/null",
        '    echo "snapshot of $collection on $node: $snapshot"',
        "  done",
        "done",
        "",
    ])


def upload_commands(bucket_name: str, directory: str, retention_days: int) -> list[str]:
    """rclone steps: ship one run's directory under its stamp, then expire old copies (`$stamp` set by the caller)."""
    return [f'rclone copy "{directory}" "{remote(bucket_name, STORE)}/$stamp"',
            expire_command(bucket_name, STORE, retention_days),
            f'echo "snapshots uploaded to s3://{bucket_name}/{STORE}/$stamp"']


def stamp_command() -> str:
    return f"stamp=$(date -u +{STAMP})"


def uploader_env(storage) -> tuple[dict[str, str], dict[str, pulumi.Input[str]]]:
    """(plain, secret) rclone settings: the platform's S3 API and keys, or on AWS the pod's IAM role."""
    if storage.access_key_id is None:
        return ({"RCLONE_CONFIG_BACKUPS_TYPE": "s3", "RCLONE_CONFIG_BACKUPS_PROVIDER": "AWS",
                 "RCLONE_CONFIG_BACKUPS_ENV_AUTH": "true", "RCLONE_CONFIG_BACKUPS_REGION": storage.region}, {})
    return rclone_env(storage)
