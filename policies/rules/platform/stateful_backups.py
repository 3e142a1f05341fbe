"""Every store the platform runs itself has a backup or snapshot schedule: compose services with named volumes,
VM services with data directories, Kubernetes StatefulSets and PVCs. A backup job names what it protects with
`dataplatform.io/backup-of: "<service or PVC>,..."`: a compose label, a Kubernetes CronJob annotation, or that
line in a VM job's or unit's text. On Kubernetes a Velero Schedule covering the namespace or a VolumeSnapshot of
the claim counts too. Managed AWS stores are covered by aws-rds-backups and aws-s3-versioning. Exempt by default
(policy setting `exemptImages`, matched against the image repository's last path segment): Kafka, whose durability
is its replication (kafka-replication); Prometheus, whose data is telemetry with a bounded retention; Grafana,
provisioned from the repository."""
import re

from policies.facts import compose
from policies.facts.kubernetes import namespace_of, object_name
from policies.facts.units import unit_of
from policies.rule import Severity, stack_rule

BACKUP_OF = "dataplatform.io/backup-of"
_BACKUP_LINE = re.compile(r"dataplatform\.io/backup-of\s*[=:]\s*['\"]?([A-Za-z0-9_.,\- ]+)")
STATEFUL_SET = "kubernetes:apps/v1:StatefulSet"
PVC = "kubernetes:core/v1:PersistentVolumeClaim"
CRONJOB = "kubernetes:batch/v1:CronJob"


def _names(value) -> set[str]:
    return {n.strip() for n in str(value or "").split(",") if n.strip()}


def _exempt(image, config) -> bool:
    repository = str(image or "").split("@")[0].rsplit(":", 1)[0]
    return repository.rsplit("/", 1)[-1] in config["exemptImages"]


def _compose(stack, config):
    for resource in stack.resources:
        if (project := compose.project_of(resource)) is None:
            continue
        covered = set()
        for spec in project.services.values():
            labels = spec.get("labels") or {}
            if isinstance(labels, list):
                labels = dict(str(label).partition("=")[::2] for label in labels)
            covered |= _names(labels.get(BACKUP_OF))
        for name, spec in project.services.items():
            volumes = [source for kind, source, _ in compose.volume_mounts(spec) if kind == "volume" and source]
            if (volumes and not compose.is_one_shot(spec) and not _exempt(spec.get("image"), config)
                    and not {name, *volumes} & covered):
                yield (f"compose service {name} keeps state in {', '.join(volumes)} and nothing backs it up",
                       resource.urn)


def _vms(stack, config):
    covered = set()
    for resource in stack.of_type("command:remote:Command"):
        for text in (resource.props.get("stdin"), resource.props.get("create")):
            for match in _BACKUP_LINE.findall(text if isinstance(text, str) else ""):
                covered |= _names(match)
    for resource in stack.of_type("command:remote:Command"):
        unit = unit_of(resource)
        if unit and unit.data_paths and not _exempt(unit.image, config) and unit.service not in covered:
            yield (f"VM service {unit.service} on {unit.host} keeps state in {', '.join(unit.data_paths)} and "
                   "nothing backs it up", resource.urn)


def _kubernetes(stack):
    velero_namespaces = set()
    for schedule in stack.resources:
        if schedule.type.startswith("kubernetes:velero.io/") and schedule.type.endswith(":Schedule"):
            velero_namespaces |= set(schedule.get("spec.template.includedNamespaces") or ["*"])
    snapshotted = {s.get("spec.source.persistentVolumeClaimName") for s in stack.resources
                   if s.type.startswith("kubernetes:snapshot.storage.k8s.io/") and s.type.endswith(":VolumeSnapshot")}
    backed_up = set()
    for job in stack.of_type(CRONJOB):
        backed_up |= _names((job.get("metadata.annotations") or {}).get(BACKUP_OF))
    for resource in stack.of_type(STATEFUL_SET, PVC):
        if resource.type == STATEFUL_SET and not resource.get("spec.volumeClaimTemplates"):
            continue
        name, namespace = object_name(resource), namespace_of(resource) or "default"
        claims = {name} | {f"{(t.get('metadata') or {}).get('name')}-{name}-0"
                           for t in resource.get("spec.volumeClaimTemplates") or []}
        if namespace in velero_namespaces or "*" in velero_namespaces or claims & (snapshotted | backed_up):
            continue
        yield f"{resource.label} keeps state in persistent volumes and nothing backs it up", resource.urn


def check(stack, config):
    yield from _compose(stack, config)
    yield from _vms(stack, config)
    yield from _kubernetes(stack)


policy = stack_rule(
    name="stateful-backups", domain="platform", severity=Severity.HIGH, check=check,
    description="Stores the platform runs itself (compose volumes, VM data directories, Kubernetes StatefulSets "
                "and PVCs) are backed up or snapshotted.",
    remediation="Add a backup job marked `dataplatform.io/backup-of: <service>` (compose label, Kubernetes CronJob "
                "annotation, or that line in the VM job) that copies the store to the `backups` bucket (pg_dump for "
                "the catalog DB, an S3 sync for object storage), or a Velero Schedule for the namespace.",
    config={"exemptImages": {"type": "array", "items": {"type": "string"},
                             "default": ["kafka", "prometheus", "grafana"]}})
