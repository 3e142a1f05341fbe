"""Qdrant snapshots: what the scheduled copy (`scheduled.py`) runs for Qdrant on every target.

The take step (curl image) asks each node for a snapshot of each collection (a node snapshots its own shards),
downloads it into `"$out"/<node>/<collection>.snapshot` and deletes it on the node, so snapshots never fill the
node's disk; the API key travels in a header file, never on a command line. rclone then uploads the run to
`s3://<backups>/qdrant/<UTC stamp>/`. The scripts are POSIX sh and pass shellcheck (tests/infra/test_qdrant.py).
"""
from __future__ import annotations

import pulumi

from components.backups import BACKUPS_BUCKET, rclone_env
from components.backups.schedule import ScheduleError, parse
from components.qdrant import STORE
from components.qdrant.scheduled import Copy

KEY = "services.qdrant.snapshot_schedule"


def check_schedule(expression: str, key: str = KEY) -> None:
    """The same five-field cron expressions as the backups schedule, refused under the caller's own key."""
    try:
        parse(expression)
    except ScheduleError as error:
        raise ValueError(f"{key}: {str(error).split(': ', 1)[1]}") from None


def bucket(storage) -> pulumi.Input[str] | None:
    """The backups bucket, or None when the stack has no object storage or no such bucket (no copies then)."""
    if storage is None or BACKUPS_BUCKET not in storage.buckets:
        return None
    return storage.buckets[BACKUPS_BUCKET]


def uploader_env(storage) -> tuple[dict[str, str], dict[str, pulumi.Input[str]]]:
    """(plain, secret) rclone settings: the platform's S3 API and keys, or on AWS the pod's IAM role."""
    if storage.access_key_id is None:
        return ({"RCLONE_CONFIG_BACKUPS_TYPE": "s3", "RCLONE_CONFIG_BACKUPS_PROVIDER": "AWS",
                 "RCLONE_CONFIG_BACKUPS_ENV_AUTH": "true", "RCLONE_CONFIG_BACKUPS_REGION": storage.region}, {})
    return rclone_env(storage)


def snapshot_script(nodes: dict[str, str]) -> str:
    """Snapshot every collection on every node (`nodes`: node name -> base URL) into "$out"/<node>/. Each reply goes
    to a file before it is parsed, so a failed request stops the script (no pipeline hides curl's status)."""
    pairs = " ".join(f"{node}={url}" for node, url in nodes.items())
    return "\n".join([
        "umask 077",
        "work=$(mktemp -d)",
        "trap 'rm -rf \"$work\"' EXIT",
        "printf 'api-key: %s\\n' \"$QDRANT_API_KEY\" > \"$work/headers\"",
        "name_of() { grep -o '\"name\": *\"[^\"]*\"' \"$1\" | cut -d'\"' -f4; }",
        f"nodes='{pairs}'",
        "for pair in $nodes; do",
        "  node=${pair%%=*}",
        "  url=${pair#*=}",
        '  mkdir -p "$out/$node"',
        '  curl -fsS -H "@$work/headers" -o "$work/collections" "$url/collections"',
        '  for collection in $(name_of "$work/collections"); do',
        '    curl -fsS -X POST -H "@$work/headers" -o "$work/created" \\',
        '      "$url/collections/$collection/snapshots?wait=true"',
        '    snapshot=$(name_of "$work/created" | head -n 1)',
        '    if [ -z "$snapshot" ]; then echo "no snapshot of $collection on $node" >&2; exit 1; fi',
        '    curl -fsS -H "@$work/headers" -o "$out/$node/$collection.snapshot" \\',
        '      "$url/collections/$collection/snapshots/$snapshot"',
        '    curl -fsS -X DELETE -H "@$work/headers" -o /dev/null \\',
        '      "$url/collections/$collection/snapshots/$snapshot?wait=true"',
        '    echo "snapshot of $collection on $node: $snapshot"',
        "  done",
        "done",
    ])


def copy(settings, storage, retention_days: int, nodes: dict[str, str], covers: tuple[str, ...]) -> Copy | None:
    """The scheduled copy of a Qdrant deployment's snapshots (None without a backups bucket)."""
    target = bucket(storage)
    if target is None:
        return None
    return Copy(store=STORE, take=snapshot_script(nodes), schedule=settings.snapshot_schedule, bucket=target,
                retention_days=retention_days, covers=covers, uploader_env=uploader_env(storage), take_env={})
