"""Qdrant on compose: one node (`qdrant`, REST and gRPC published on the bind address) on a named volume, and two
small services that take the snapshots:

- `qdrant-snapshots` (curl): checks `snapshot_schedule` every minute and, when it matches, snapshots every collection
  into a spool volume (under `.partial/` first, then moved, so the uploader never ships half a run);
- `qdrant-snapshots-upload` (rclone): every minute moves what the spool holds to the backups bucket and expires old
  copies.
Each writes a heartbeat and a failure marker its health check reads, so `docker compose ps` shows a stalled or
failed snapshot. The API key and the S3 keys are project `${VARS}` (Pulumi secrets).
"""
from __future__ import annotations

import pulumi

from components.backups import BACKUP_OF
from components.backups.schedule import SHELL_MATCHER
from components.base import MetricsEndpoint
from components.qdrant import (GRPC_PORT, HTTP_PORT, STORAGE, STORE, QdrantArgs, QdrantEndpoints, api_key,
                               cluster_env, snapshots)

SPOOL = "/spool"
S3_VARIABLES = {"RCLONE_CONFIG_BACKUPS_ACCESS_KEY_ID": "S3_ACCESS_KEY_ID",
                "RCLONE_CONFIG_BACKUPS_SECRET_ACCESS_KEY": "S3_SECRET_ACCESS_KEY"}
# the image has bash but neither curl nor wget: probe /readyz (no API key needed) over bash's /dev/tcp
READY = ("exec 3<>/dev/tcp/127.0.0.1/6333 && printf 'GET /readyz HTTP/1.0\\r\\n\\r\\n' >&3 && "
         "grep -q '200 OK' <&3")


def heartbeat_health() -> dict:
    """Healthy while the loop's heartbeat is fresh and its last attempt did not fail."""
    return {"test": ["CMD-SHELL", "test -n \"$$(find /tmp/heartbeat -mmin -3)\" && test ! -e /tmp/failed"],
            "interval": "30s", "timeout": "5s", "retries": 3, "start_period": "30s"}


def snapshot_loop(nodes: dict[str, str]) -> str:
    """At each minute the schedule matches, snapshot into `<spool>/.partial/<stamp>`, then move it to `<stamp>`."""
    return "\n".join([
        "set -euf",
        SHELL_MATCHER.strip(),
        "take() {",
        '  partial="$1"',
        *("  " + line for line in snapshots.snapshot_script(nodes, "$partial").splitlines() if line),
        "}",
        f"mkdir -p {SPOOL}/.partial",
        "while true; do",
        "  touch /tmp/heartbeat",
        "  # shellcheck disable=SC2046 # five numbers",
        "  if cron_matches \"$SCHEDULE\" $(date -u '+%-M %-H %-d %-m %w'); then",
        f"    {snapshots.stamp_command()}",
        f'    if (take "{SPOOL}/.partial/$stamp"); then',
        f'      mv "{SPOOL}/.partial/$stamp" "{SPOOL}/$stamp"; rm -f /tmp/failed',
        "    else",
        f'      rm -rf "{SPOOL}/.partial/$stamp"; touch /tmp/failed; echo "snapshot run failed" >&2',
        "    fi",
        "  fi",
        "  sleep $((60 - $(date +%-S)))",
        "done",
        "",
    ])


def upload_loop(bucket: str, retention_days: int) -> str:
    """Each finished run directory goes to `qdrant/<stamp>/` in the bucket, then leaves the spool."""
    upload, expire, _ = snapshots.upload_commands(bucket, f"{SPOOL}/$stamp", retention_days)
    return "\n".join([
        "set -eu",
        "while true; do",
        "  touch /tmp/heartbeat",
        "  failed=0",
        f"  for run in {SPOOL}/*; do",
        '    [ -d "$run" ] || continue',
        '    stamp=$(basename "$run")',
        f'    if {upload}; then rm -rf "$run"; else failed=1; fi',
        "  done",
        f"  {expire} || failed=1",
        '  if [ "$failed" -eq 0 ]; then rm -f /tmp/failed; else touch /tmp/failed; fi',
        "  sleep 60",
        "done",
        "",
    ])


def deploy(name: str, args: QdrantArgs, parent: pulumi.Resource) -> QdrantEndpoints:
    project = args.substrate
    settings = args.settings
    snapshots.check_schedule(settings.snapshot_schedule)
    if settings.replicas > 1:
        raise ValueError("services.qdrant.replicas: compose runs one Qdrant node (a workstation has no room for a "
                         "cluster); use 1 here, or the vm or kubernetes target for distributed mode")
    key = api_key(name, args, parent)
    key_ref = project.secret("QDRANT_API_KEY", key)
    data = f"{name}-data"
    project.add_service(name, {
        "image": args.versions.image("qdrant"), "restart": "unless-stopped", "hostname": name,
        "environment": {**cluster_env(1), "QDRANT__SERVICE__API_KEY": key_ref,
                        "QDRANT__STORAGE__SNAPSHOTS_PATH": f"{STORAGE}/snapshots"},
        "volumes": [f"{data}:{STORAGE}"],
        "ports": [project.port(HTTP_PORT, HTTP_PORT), project.port(GRPC_PORT, GRPC_PORT)],
        "healthcheck": {"test": ["CMD", "bash", "-c", READY], "interval": "5s", "timeout": "5s", "retries": 24},
        "deploy": project.deploy(settings.resources),
    }, volumes=(data,))
    bucket = snapshots.bucket(args.storage)
    if bucket is not None:
        spool = f"{name}-snapshots-spool"
        project.add_service(f"{name}-snapshots", {
            "image": args.versions.image("curl"), "restart": "unless-stopped", "user": "0:0",
            "entrypoint": ["/bin/sh", "-c"],
            "command": [snapshot_loop({name: f"http://{name}:{HTTP_PORT}"}).replace("$", "$$")],
            "environment": {"SCHEDULE": settings.snapshot_schedule, "TZ": "UTC", "QDRANT_API_KEY": key_ref},
            "volumes": [f"{spool}:{SPOOL}"], "labels": {BACKUP_OF: f"{name},{data}"},
            "healthcheck": heartbeat_health(), "depends_on": {name: {"condition": "service_healthy"}},
        }, volumes=(spool,))
        plain, secret = snapshots.uploader_env(args.storage)
        project.add_service(f"{name}-snapshots-upload", {
            "image": args.versions.image("rclone"), "restart": "unless-stopped", "entrypoint": ["/bin/sh", "-c"],
            "command": [upload_loop(bucket, args.retention_days).replace("$", "$$")],
            "environment": {**plain, **{k: project.secret(S3_VARIABLES[k], v) for k, v in secret.items()}},
            "volumes": [f"{spool}:{SPOOL}"], "labels": {BACKUP_OF: spool}, "healthcheck": heartbeat_health(),
        }, volumes=(spool,))
    return QdrantEndpoints(
        url=f"http://{name}:{HTTP_PORT}", grpc_url=f"http://{name}:{GRPC_PORT}", api_key=key,
        nodes=1, snapshot_schedule=settings.snapshot_schedule,
        snapshots=f"s3://{bucket}/{STORE}/" if bucket is not None else None,
        metrics=(MetricsEndpoint("qdrant", (f"{name}:{HTTP_PORT}",)),))
