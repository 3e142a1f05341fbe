"""Scheduled copies to the `backups` bucket, per target: a `take` script (POSIX sh, curl image) writes files into a
directory, rclone ships the directory to `s3://<backups>/<store>/<UTC stamp>/` and deletes copies older than the
retention. Qdrant snapshots and Milvus' etcd snapshots both run this way.

- compose: a scheduler (curl) checking the cron schedule every minute, writing into a spool volume (`.partial/`
  first, then moved), and an uploader (rclone) shipping what the spool holds every minute; both keep a heartbeat and
  a failure marker that their health checks read.
- VMs: a systemd timer (`OnCalendar=` from the schedule, `Persistent=true`) running both steps in throwaway
  containers on the host's network; `journalctl -u <unit>` shows each run.
- Kubernetes: a CronJob (UTC, never two runs at once): `take` in an init container, rclone in the main one.
Each carries the `dataplatform.io/backup-of` marker naming what it protects.
"""
from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_command as command
import pulumi_kubernetes as k8s

from components.backups import BACKUP_OF, STAMP, expire_command, remote
from components.backups.schedule import SHELL_MATCHER, on_calendar
from components.targets.vm import CONFIG_DIR, env_file
from stacks.config import Resources

SPOOL = "/spool"
CURL_UID = 100  # `curl_user` in curlimages/curl; rclone runs as any user
JOB_RESOURCES = Resources(cpu="100m", memory="256Mi")
S3_VARIABLES = {"RCLONE_CONFIG_BACKUPS_ACCESS_KEY_ID": "S3_ACCESS_KEY_ID",
                "RCLONE_CONFIG_BACKUPS_SECRET_ACCESS_KEY": "S3_SECRET_ACCESS_KEY"}


@dataclass(frozen=True)
class Copy:
    """One scheduled copy: what runs (`take` writes into `$out`), when, where it goes and what it protects."""
    store: str  # prefix in the bucket, and the job's name
    take: str  # POSIX sh; writes the files into the directory "$out"
    schedule: str  # cron, UTC
    bucket: pulumi.Input[str]
    retention_days: int
    covers: tuple[str, ...]  # what the backup marker names (services, volumes, StatefulSets)
    uploader_env: tuple[dict, dict]  # (plain, secret) rclone settings
    take_env: dict  # name -> value (str) for the take step; secret values are given separately per target


def upload_script(bucket: str, directory: str, store: str, retention_days: int) -> str:
    """rclone: ship one run's directory under its stamp (`$stamp`, set by the caller), then expire old copies."""
    return "\n".join([f'rclone copy "{directory}" "{remote(bucket, store)}/$stamp"',
                      expire_command(bucket, store, retention_days),
                      f'echo "{store} copied to s3://{bucket}/{store}/$stamp"'])


def _take(copy: Copy, directory: str) -> str:
    return "\n".join([f"# {BACKUP_OF}: {','.join(copy.covers)}", f'out="{directory}"', 'mkdir -p "$out"', copy.take])


# -- compose ----------------------------------------------------------------------------------------------------------
def _heartbeat_health() -> dict:
    return {"test": ["CMD-SHELL", "test -n \"$$(find /tmp/heartbeat -mmin -3)\" && test ! -e /tmp/failed"],
            "interval": "30s", "timeout": "5s", "retries": 3, "start_period": "30s"}


def scheduler_loop(copy: Copy) -> str:
    """At each minute the schedule matches, take into `<spool>/.partial/<stamp>`, then move it to `<stamp>`. The take
    step runs in its own shell (`sh -e`), so a failing command stops it even though it is tested by `if`."""
    return "\n".join([
        "set -euf",
        SHELL_MATCHER.strip(),
        "cat > /tmp/take.sh <<'TAKE'",
        _take(copy, f"{SPOOL}/.partial/$stamp"),
        "TAKE",
        "while true; do",
        "  touch /tmp/heartbeat",
        "  # shellcheck disable=SC2046 # five numbers",
        "  if cron_matches \"$SCHEDULE\" $(date -u '+%-M %-H %-d %-m %w'); then",
        f"    stamp=$(date -u +{STAMP})",
        '    if stamp="$stamp" sh -eu /tmp/take.sh; then',
        f'      mv "{SPOOL}/.partial/$stamp" "{SPOOL}/$stamp"; rm -f /tmp/failed',
        "    else",
        f'      rm -rf "{SPOOL}/.partial/$stamp"; touch /tmp/failed; echo "{copy.store} run failed" >&2',
        "    fi",
        "  fi",
        "  sleep $((60 - $(date +%-S)))",
        "done",
        "",
    ])


def uploader_loop(copy: Copy) -> str:
    """Every minute: each finished run directory to the bucket (then off the spool), then expire old copies."""
    return "\n".join([
        "set -eu",
        "while true; do",
        "  touch /tmp/heartbeat",
        "  failed=0",
        f"  for run in {SPOOL}/*; do",
        '    [ -d "$run" ] || continue',
        '    stamp=$(basename "$run")',
        f'    if rclone copy "$run" "{remote(copy.bucket, copy.store)}/$stamp"; then rm -rf "$run"; '
        "else failed=1; fi",
        "  done",
        f"  {expire_command(copy.bucket, copy.store, copy.retention_days)} || failed=1",
        '  if [ "$failed" -eq 0 ]; then rm -f /tmp/failed; else touch /tmp/failed; fi',
        "  sleep 60",
        "done",
        "",
    ])


def compose_services(project, name: str, copy: Copy, curl_image: str, rclone_image: str,
                     take_secret_env: dict[str, pulumi.Input[str]], depends_on: str) -> None:
    """The scheduler and the uploader (`<name>` and `<name>-upload`) sharing the spool volume `<name>-spool`; the
    take step's secrets are project variables of the same names."""
    spool = f"{name}-spool"
    secrets = {key: project.secret(key, value) for key, value in take_secret_env.items()}
    project.add_service(name, {
        "image": curl_image, "restart": "unless-stopped", "user": "0:0", "entrypoint": ["/bin/sh", "-c"],
        "command": [scheduler_loop(copy).replace("$", "$$")],
        "environment": {"SCHEDULE": copy.schedule, "TZ": "UTC", **copy.take_env, **secrets},
        "volumes": [f"{spool}:{SPOOL}"], "labels": {BACKUP_OF: ",".join(copy.covers)},
        "healthcheck": _heartbeat_health(), "depends_on": {depends_on: {"condition": "service_healthy"}},
    }, volumes=(spool,))
    plain, secret = copy.uploader_env
    project.add_service(f"{name}-upload", {
        "image": rclone_image, "restart": "unless-stopped", "entrypoint": ["/bin/sh", "-c"],
        "command": [uploader_loop(copy).replace("$", "$$")],
        "environment": {**plain, **{k: project.secret(S3_VARIABLES[k], v) for k, v in secret.items()}},
        "volumes": [f"{spool}:{SPOOL}"], "labels": {BACKUP_OF: spool}, "healthcheck": _heartbeat_health(),
    }, volumes=(spool,))


# -- VMs --------------------------------------------------------------------------------------------------------------
def _quoted(script: str) -> str:
    return "'" + script.replace("'", "'\\''") + "'"


def vm_script(copy: Copy, directory: str, spool: str, curl_image: str, rclone_image: str) -> str:
    """The timer's script (bash on the host)."""
    return "\n".join([
        "#!/usr/bin/env bash",
        f"# {BACKUP_OF}: {','.join(copy.covers)}",
        "# Run by its systemd timer; managed by Pulumi.",
        "set -euo pipefail",
        f"stamp=$(date -u +{STAMP})",
        f'spool="{spool}"',
        'mkdir -p "$spool"',
        "trap 'rm -rf \"$spool/$stamp\"' EXIT",
        f'docker run --rm --network host --user 0:0 --env-file {directory}/take.env --env "stamp=$stamp" '
        f'--volume "$spool:{SPOOL}" --entrypoint /bin/sh {curl_image} -ec {_quoted(_take(copy, SPOOL + "/$stamp"))}',
        f'docker run --rm --network host --env-file {directory}/rclone.env --env "stamp=$stamp" '
        f'--volume "$spool:{SPOOL}:ro" --entrypoint /bin/sh {rclone_image} -ec '
        f'{_quoted(upload_script(copy.bucket, SPOOL + "/$stamp", copy.store, copy.retention_days))}',
        "",
    ])


def vm_units(unit: str, copy: Copy, directory: str) -> tuple[str, str]:
    header = "# Managed by Pulumi (dataplatform vm target): edits are overwritten on the next `pulumi up`."
    service = "\n".join([header, "[Unit]", f"Description=dataplatform {copy.store} copies to the backups bucket",
                         "Requires=docker.service", "After=docker.service network-online.target", "",
                         "[Service]", "Type=oneshot", f"ExecStart=/bin/bash {directory}/run.sh",
                         "TimeoutStartSec=3h", ""])
    timer = "\n".join([header, "[Unit]", f"Description=dataplatform {copy.store} copies on {copy.schedule} (UTC)",
                       "", "[Timer]", *(f"OnCalendar={line}" for line in on_calendar(copy.schedule)),
                       "Persistent=true", "", "[Install]", "WantedBy=timers.target", ""])
    return service, timer


def install_script(unit: str, service: str, timer: str) -> str:
    """Install (or update) both units and enable the timer: idempotent."""
    return "\n".join(["set -euo pipefail",
                      f"cat > /etc/systemd/system/{unit}.service <<'UNIT'", service.rstrip("\n"), "UNIT",
                      f"cat > /etc/systemd/system/{unit}.timer <<'UNIT'", timer.rstrip("\n"), "UNIT",
                      "systemctl daemon-reload", f"systemctl enable --quiet {unit}.timer",
                      f"systemctl restart {unit}.timer", ""])


def vm_timer(fleet, host, name: str, copy: Copy, curl_image: str, rclone_image: str,
             take_secret_env: dict[str, pulumi.Input[str]], parent: pulumi.Resource,
             depends_on: list) -> command.remote.Command:
    unit = f"dataplatform-{copy.store}-copies"
    directory = f"{CONFIG_DIR}/{copy.store}-copies"
    plain, secret = copy.uploader_env

    def secret_file(suffix: str, path: str, values: dict, extra: dict) -> pulumi.Resource:
        content = env_file(extra) if not values else pulumi.Output.secret(
            pulumi.Output.all(**values).apply(lambda v: env_file({**extra, **v})))
        return fleet.put_file(f"{name}-{host.name}-{suffix}", host, path, content, mode="0600", parent=parent)

    files = [secret_file("rclone-env", f"{directory}/rclone.env", secret, plain),
             secret_file("take-env", f"{directory}/take.env", take_secret_env, copy.take_env),
             fleet.put_file(f"{name}-{host.name}-script", host, f"{directory}/run.sh", vm_script(
                 copy, directory, fleet.data_path(f"{copy.store}-copies"), curl_image, rclone_image),
                 mode="0750", parent=parent)]
    sudo = fleet.sudo(host)
    return command.remote.Command(
        f"{name}-{host.name}-timer", connection=fleet.connections[host.name], create=f"{sudo}bash -s",
        stdin=install_script(unit, *vm_units(unit, copy, directory)),
        delete=f"{sudo}systemctl disable --now {unit}.timer && {sudo}rm -f /etc/systemd/system/{unit}.timer "
               f"/etc/systemd/system/{unit}.service && {sudo}systemctl daemon-reload",
        opts=pulumi.ResourceOptions(parent=parent, depends_on=[*fleet.provisioned[host.name], *files, *depends_on],
                                    delete_before_replace=True))


# -- Kubernetes -------------------------------------------------------------------------------------------------------
def cronjob(cluster, name: str, app: str, copy: Copy, curl_image: str, rclone_image: str, parent: pulumi.Resource, *,
            take_env: list[dict], size_gb: int, depends_on: list, namespace: str | None = None,
            service_account_annotations: dict | None = None) -> k8s.batch.v1.CronJob:
    """`take` in an init container, rclone in the main one, sharing an emptyDir of `size_gb`."""
    def metadata(object_name: str, component: str, annotations: dict | None = None) -> dict:
        meta = cluster.metadata(object_name, app, component, annotations)
        return {**meta, "namespace": namespace} if namespace else meta

    plain, secret = copy.uploader_env
    depends = list(depends_on)
    if secret:
        depends.append(k8s.core.v1.Secret(f"{name}-rclone", metadata=metadata(f"{name}-rclone", "backup"),
                                          type="Opaque", string_data=secret, opts=cluster.opts(parent)))
    service_account = None
    if service_account_annotations:
        service_account = name
        depends.append(k8s.core.v1.ServiceAccount(f"{name}-service-account", metadata=metadata(
            name, "backup", service_account_annotations), automount_service_account_token=False,
            opts=cluster.opts(parent)))
    take = cluster.container("take", curl_image, JOB_RESOURCES, command=["/bin/sh", "-ec", _take(copy, SPOOL)],
                             env=[*({"name": k, "value": v} for k, v in copy.take_env.items()), *take_env] or None,
                             mounts=[{"name": "spool", "mountPath": SPOOL}])
    upload = cluster.container(
        "upload", rclone_image, JOB_RESOURCES,
        command=["/bin/sh", "-ec", pulumi.Output.from_input(copy.bucket).apply(lambda bucket: "\n".join([
            f"stamp=$(date -u +{STAMP})", upload_script(bucket, SPOOL, copy.store, copy.retention_days)]))],
        env=[{"name": "HOME", "value": "/tmp"}, *({"name": k, "value": v} for k, v in plain.items())],
        envFrom=[{"secretRef": {"name": f"{name}-rclone"}}] if secret else None,
        mounts=[{"name": "spool", "mountPath": SPOOL, "readOnly": True}])
    return k8s.batch.v1.CronJob(name, metadata=metadata(name, "backup", {BACKUP_OF: ",".join(copy.covers)}), spec={
        "schedule": copy.schedule, "timeZone": "Etc/UTC", "concurrencyPolicy": "Forbid",
        "startingDeadlineSeconds": 3600, "successfulJobsHistoryLimit": 3, "failedJobsHistoryLimit": 3,
        "jobTemplate": {"spec": {"backoffLimit": 2, "activeDeadlineSeconds": 3 * 3600, "template": {
            "metadata": {"labels": cluster.labels(app, "backup")},
            "spec": cluster.pod_spec([upload], CURL_UID, initContainers=[take], restartPolicy="Never",
                                     service_account=service_account,
                                     volumes=[{"name": "spool", "emptyDir": {"sizeLimit": f"{size_gb}Gi"}}])}}}},
        opts=cluster.opts(parent, depends_on=depends))
