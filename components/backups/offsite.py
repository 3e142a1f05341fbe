"""The off-site copy of the object storage (compose, VMs, Kubernetes): on `services.backups.schedule`, every platform
bucket is mirrored with rclone to `services.backups.offsite`, an S3 bucket outside the platform. A copy inside the
platform's own SeaweedFS (its `backups` bucket) would be lost with it, so without an off-site target the object
storage stays unprotected and the stateful-backups policy keeps saying so.

Layout in the off-site bucket, under `<prefix>/`:
- `current/<bucket>/...`: the mirror, as of the last run (`rclone sync`, so objects deleted on the platform
  disappear from here too, which keeps restores to exactly what the platform held);
- `history/<UTC stamp>/<bucket>/...`: what that run overwrote or deleted in the mirror (`--backup-dir`), so a
  deletion or corruption on the platform, mirrored by the next run, is still recoverable; expired after
  `retention_days` (whole runs, by their stamp: a moved object keeps its original modification time).
Why sync with `--backup-dir` rather than `copy`: `copy` never deletes, so the mirror would grow forever and a
restore would bring back every object ever deleted (dropped Iceberg files, expired dumps); the history keeps what
sync removes for the retention, and no longer.

Each run compares by checksum (`--checksum`: no per-object HEAD requests), copies bucket by bucket and fails when
any bucket failed. The restore procedure is docs/restore.md.
"""
from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlparse

import pulumi

from components.backups import BACKUP_OF, REMOTE, STAMP

STORE = "object-storage"  # its name in `endpoints.backups.stores` and the jobs' names
OFFSITE = "offsite"  # the rclone remote, configured entirely from RCLONE_CONFIG_OFFSITE_* variables
OFFLINE = "offline-plan: the stack's secrets provider decrypts the real key under `pulumi up`"
DIRECTORY_NOT_FOUND = 3  # rclone's exit code when a listed prefix holds nothing yet


@dataclass(frozen=True)
class OffsiteCopy:
    buckets: tuple[str, ...]  # the platform's buckets, as named on its S3 API
    base: str  # `<offsite bucket>[/<prefix>]`
    endpoint: str | None  # None: AWS S3
    retention_days: int
    covers: tuple[str, ...]  # what the backup marker names: where the object storage keeps its data
    plain: dict[str, str]  # RCLONE_CONFIG_OFFSITE_* settings
    secret: dict[str, pulumi.Input[str]]  # RCLONE_CONFIG_OFFSITE_* keys, Pulumi secrets

    @property
    def port(self) -> int:
        """The TCP port the copy reaches the off-site endpoint on (endpoints are https)."""
        return (urlparse(self.endpoint).port or 443) if self.endpoint else 443

    def outputs(self) -> dict:
        return {"endpoint": self.endpoint, "bucket": self.base.split("/", 1)[0],
                "mirror": f"s3://{self.base}/current/", "history": f"s3://{self.base}/history/",
                "buckets": list(self.buckets)}


def _secret(value: str | None) -> pulumi.Output[str]:
    return pulumi.Output.secret(value or OFFLINE)


def offsite_copy(args, platform_hosts: tuple[str, ...] = ()) -> OffsiteCopy | None:
    """The copy to run, or None without `services.backups.offsite`. Refuses a target on the platform's own storage
    (`platform_hosts`: the addresses its S3 API answers on, besides the endpoint's)."""
    settings = args.settings.offsite
    if settings is None:
        return None
    storage = args.storage
    own = {urlparse(str(storage.endpoint)).hostname, *platform_hosts} - {None}
    if settings.endpoint and urlparse(settings.endpoint).hostname in own:
        raise ValueError(f"services.backups.offsite.endpoint: {settings.endpoint} is the platform's own object "
                         "storage; an off-site copy must live elsewhere (another provider, account or site)")
    if not storage.stateful:
        raise ValueError("services.backups.offsite: this target's object storage names no stateful resources to "
                         "protect (StorageEndpoints.stateful)")
    path_style = settings.path_style if settings.path_style is not None else settings.endpoint is not None
    plain = {"RCLONE_CONFIG_OFFSITE_TYPE": "s3", "RCLONE_CONFIG_OFFSITE_PROVIDER": "Other" if settings.endpoint
             else "AWS", "RCLONE_CONFIG_OFFSITE_REGION": settings.region,
             **({"RCLONE_CONFIG_OFFSITE_ENDPOINT": settings.endpoint} if settings.endpoint else {}),
             "RCLONE_CONFIG_OFFSITE_FORCE_PATH_STYLE": "true" if path_style else "false",
             "RCLONE_CONFIG_OFFSITE_NO_CHECK_BUCKET": "true"}  # the bucket exists; the keys need no CreateBucket
    secret = {"RCLONE_CONFIG_OFFSITE_ACCESS_KEY_ID": _secret(settings.access_key_id.value),
              "RCLONE_CONFIG_OFFSITE_SECRET_ACCESS_KEY": _secret(settings.secret_access_key.value)}
    return OffsiteCopy(buckets=tuple(str(storage.buckets[b]) for b in storage.buckets),
                       base="/".join(p for p in (settings.bucket, settings.prefix) if p), endpoint=settings.endpoint,
                       retention_days=args.settings.retention_days, covers=tuple(storage.stateful), plain=plain,
                       secret=secret)


def copy_script(copy: OffsiteCopy) -> str:
    """One run (POSIX sh, in the rclone image; both remotes configured from the environment): mirror each bucket,
    keep what the mirror loses under this run's stamp, then drop runs older than the retention."""
    base = f"{OFFSITE}:{copy.base}"
    return "\n".join([
        f"# {BACKUP_OF}: {','.join(copy.covers)}",
        "# The off-site copy of the object storage (components/backups/offsite.py); managed by Pulumi.",
        "set -eu",
        f"stamp=$(date -u +{STAMP})",
        "failed=0",
        f"for bucket in {' '.join(copy.buckets)}; do",
        f'  if rclone sync "{REMOTE}:$bucket" "{base}/current/$bucket" --backup-dir "{base}/history/$stamp/$bucket" '
        "--checksum --stats 5m --stats-one-line --stats-log-level NOTICE; then",
        f'    echo "copied $bucket to s3://{copy.base}/current/$bucket"',
        "  else",
        '    echo "off-site copy of $bucket failed" >&2',
        "    failed=1",
        "  fi",
        "done",
        f"cutoff=$(date -u -d \"@$(($(date +%s) - {copy.retention_days} * 86400))\" +{STAMP})",
        f'runs=$(rclone lsf --dirs-only "{base}/history") || [ $? -eq {DIRECTORY_NOT_FOUND} ]',
        "for run in $(printf '%s\\n' \"$runs\" | awk -v cutoff=\"$cutoff\" '{ sub(\"/$\", \"\") } "
        "$0 != \"\" && $0 < cutoff'); do",
        f'  rclone purge "{base}/history/$run"',
        f'  echo "expired s3://{copy.base}/history/$run"',
        "done",
        'exit "$failed"',
        "",
    ])
