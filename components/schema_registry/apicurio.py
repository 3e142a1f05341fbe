"""What the Apicurio targets (compose, VMs, Kubernetes) share: the server's settings and the registration job.

The job is POSIX sh for the curl image. It waits for the registry, sets the global compatibility (PUT: idempotent),
then posts each schema file (`<subject>.json`, a Confluent-API request body) to `/subjects/<subject>/versions`:
an identical schema returns its existing id, a compatible change adds a version, an incompatible one (HTTP 409)
stops the job with the subject and the registry's explanation, so a bad change is refused and nothing is lost.
"""
from __future__ import annotations

import hashlib

from components.schema_registry import SchemaRegistryArgs
from components.schema_registry.schemas import COMPATIBILITY, event_schemas, registration_body, subject

PORT = 8085  # not Apicurio's default 8080: SeaweedFS's volume server holds 8080 on a VM that runs both
API_PATH, CCOMPAT_PATH = "/apis/registry/v3", "/apis/ccompat/v7"
METRICS_PATH = "/q/metrics"
UID = 185  # the image's non-root user (UBI OpenJDK runtime)
SCHEMA_DIR = "/schemas"
WAIT_ATTEMPTS = 60
CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"


def bootstrap_servers(args: SchemaRegistryArgs) -> str:
    if args.kafka is None:
        raise ValueError("services.kafka.enabled: the schema registry stores its schemas in Kafka (Apicurio "
                         "KafkaSQL); switch Kafka on (or the schema registry off)")
    return args.kafka.bootstrap_servers


def server_env(args: SchemaRegistryArgs) -> dict[str, str]:
    """Apicurio Registry 3 settings: KafkaSQL storage on the platform's Kafka, the platform's port."""
    return {"APICURIO_STORAGE_KIND": "kafkasql", "APICURIO_KAFKASQL_BOOTSTRAP_SERVERS": bootstrap_servers(args),
            "QUARKUS_HTTP_PORT": str(PORT)}


def schema_files(args: SchemaRegistryArgs) -> dict[str, str]:
    """`<subject>.json` -> the registration request body, one per configured topic the event model describes."""
    return {f"{subject(topic)}.json": registration_body(schema)
            for topic, schema in event_schemas(args.topics).items()}


def subjects(files: dict[str, str]) -> tuple[str, ...]:
    return tuple(name.removesuffix(".json") for name in files)


def fingerprint(files: dict[str, str]) -> str:
    return hashlib.sha256("\n".join(f"{n}\n{b}" for n, b in sorted(files.items())).encode()).hexdigest()[:16]


def register_script(base: str, files: dict[str, str], schema_dir: str = SCHEMA_DIR) -> str:
    """Register `files` (read from `<schema_dir>/<subject>.json`) at the registry `base` URL. The files'
    fingerprint is part of the script, so the job runs again whenever a schema changes."""
    api = f"{base}{CCOMPAT_PATH}"
    header = f"-H 'Content-Type: {CONTENT_TYPE}'"
    names = subjects(files)
    wait = [
        f"# schemas {fingerprint(files)}",
        "set -eu",
        f'api="{api}"',
        "attempt=0",
        'until curl -fsS -o /dev/null "$api/subjects"; do',
        "  attempt=$((attempt + 1))",
        f'  if [ "$attempt" -ge {WAIT_ATTEMPTS} ]; then echo "no schema registry at $api" >&2; exit 1; fi',
        "  sleep 5",
        "done",
        f"curl -fsS -X PUT {header} --data '{{\"compatibility\": \"{COMPATIBILITY}\"}}' \"$api/config\"",
        "echo",
    ]
    register = [
        f"for subject in {' '.join(names)}; do",
        f"  code=$(curl -sS -o /tmp/response -w '%{{http_code}}' -X POST {header} "
        f'--data-binary "@{schema_dir}/$subject.json" "$api/subjects/$subject/versions")',
        '  case "$code" in',
        '    200) echo "$subject registered: $(cat /tmp/response)";;',
        f'    409) echo "$subject: the new schema is not {COMPATIBILITY} compatible with the registered one: '
        '$(cat /tmp/response)" >&2; exit 1;;',
        '    *) echo "$subject: registration failed (HTTP $code): $(cat /tmp/response)" >&2; exit 1;;',
        "  esac",
        "done",
    ] if names else []
    return "\n".join([*wait, *register, ""])
