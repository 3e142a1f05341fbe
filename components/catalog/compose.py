"""Iceberg catalog on compose: PostgreSQL, then Lakekeeper `migrate` (one-shot), `serve`, and a one-shot
bootstrap that accepts the server's first-run bootstrap and creates the warehouse on the object storage.
Each step waits for the previous one through compose health checks and `service_completed_successfully`."""
from __future__ import annotations

import json

import pulumi
import pulumi_random as random

from components.base import MetricsEndpoint
from components.catalog import CatalogArgs, CatalogEndpoints

PORT = 8181
METRICS_PORT = 9000  # Lakekeeper's Prometheus endpoint (LAKEKEEPER__METRICS_PORT)


def generated_secret(name: str, parent: pulumi.Resource, length: int = 32) -> pulumi.Output[str]:
    return pulumi.Output.secret(random.RandomPassword(name, length=length, special=False,
                                                      opts=pulumi.ResourceOptions(parent=parent)).result)


def warehouse_request(args: CatalogArgs, access_ref: str, secret_ref: str) -> str:
    """The Lakekeeper management API body that creates the warehouse on the S3-compatible storage."""
    storage = args.storage
    return json.dumps({
        "warehouse-name": args.settings.warehouse,
        "storage-profile": {"type": "s3", "bucket": storage.buckets["warehouse"], "key-prefix": args.settings.warehouse,
                            "endpoint": storage.endpoint, "region": storage.region, "path-style-access": True,
                            "flavor": "s3-compat", "sts-enabled": False},
        "storage-credential": {"type": "s3", "credential-type": "access-key", "aws-access-key-id": access_ref,
                               "aws-secret-access-key": secret_ref},
    })


def bootstrap_script(base: str, body: str, dollar: str = "$$") -> str:
    """Idempotent: a second run finds the server bootstrapped (4xx) and the warehouse present (409).
    `body` is curl's `-d` value: the JSON itself, or `@path` of a file holding it; `dollar` is how a shell `$` is
    written (`$$` inside a compose file, `$` in a plain script)."""
    d = dollar
    return "\n".join([
        f"curl -sS -o /dev/null -X POST {base}/management/v1/bootstrap -H 'Content-Type: application/json' "
        "-d '{\"accept-terms-of-use\": true}' || true",
        f"code={d}(curl -sS -o /tmp/out -w '%{{http_code}}' -X POST {base}/management/v1/warehouse "
        f"-H 'Content-Type: application/json' -d '{body}')",
        "cat /tmp/out; echo",
        f'case "{d}code" in 2??|409) echo "warehouse ready ({d}code)";; *) echo "warehouse creation failed: {d}code"; '
        "exit 1;; esac",
    ])


def deploy(name: str, args: CatalogArgs, parent: pulumi.Resource) -> CatalogEndpoints:
    project = args.substrate
    settings = args.settings
    db_password = (pulumi.Output.secret(settings.db_password.value) if settings.db_password and
                   settings.db_password.value else generated_secret(f"{name}-db-password", parent))
    encryption_key = generated_secret(f"{name}-encryption-key", parent, length=48)
    password_ref = project.secret("CATALOG_DB_PASSWORD", db_password)
    db_url = f"postgresql://lakekeeper:{password_ref}@{name}-db:5432/lakekeeper"
    env = {"LAKEKEEPER__PG_DATABASE_URL_WRITE": db_url, "LAKEKEEPER__PG_DATABASE_URL_READ": db_url,
           "LAKEKEEPER__PG_ENCRYPTION_KEY": project.secret("CATALOG_ENCRYPTION_KEY", encryption_key)}
    image = args.versions.image("lakekeeper")

    project.add_service(f"{name}-db", {
        "image": args.versions.image("postgres"), "restart": "unless-stopped",
        "environment": {"POSTGRES_USER": "lakekeeper", "POSTGRES_DB": "lakekeeper", "POSTGRES_PASSWORD": password_ref},
        "volumes": [f"{name}-db-data:/var/lib/postgresql/data"],
        "healthcheck": {"test": ["CMD-SHELL", "pg_isready -U lakekeeper -d lakekeeper"], "interval": "5s",
                        "timeout": "5s", "retries": 20},
    }, volumes=(f"{name}-db-data",))
    project.add_service(f"{name}-migrate", {
        "image": image, "restart": "no", "command": ["migrate"], "environment": env,
        "depends_on": {f"{name}-db": {"condition": "service_healthy"}},
    })
    project.add_service(name, {
        "image": image, "restart": "unless-stopped", "command": ["serve"], "hostname": name,
        "environment": {**env, "LAKEKEEPER__BASE_URI": f"http://{name}:{PORT}"},
        "ports": [project.port(project.settings.ports.catalog, PORT)],
        "healthcheck": {"test": ["CMD", "/home/nonroot/lakekeeper", "healthcheck"], "interval": "5s",
                        "timeout": "5s", "retries": 20, "start_period": "5s"},
        "depends_on": {f"{name}-migrate": {"condition": "service_completed_successfully"}},
        "deploy": project.deploy(settings.resources),
    })
    access_ref = project.secret("S3_ACCESS_KEY_ID", args.storage.access_key_id)
    secret_ref = project.secret("S3_SECRET_ACCESS_KEY", args.storage.secret_access_key)
    project.add_service(f"{name}-bootstrap", {
        "image": args.versions.image("curl"), "restart": "no", "entrypoint": ["/bin/sh", "-ec"],
        "command": [bootstrap_script(f"http://{name}:{PORT}", warehouse_request(args, access_ref, secret_ref))],
        "depends_on": {name: {"condition": "service_healthy"}},
    })
    uri = f"http://{name}:{PORT}/catalog"
    properties = pulumi.Output.all(args.storage.access_key_id, args.storage.secret_access_key).apply(
        lambda keys: {"type": "rest", "uri": uri, "warehouse": settings.warehouse,
                      "s3.endpoint": args.storage.endpoint, "s3.region": args.storage.region,
                      "s3.path-style-access": "true", "s3.access-key-id": keys[0], "s3.secret-access-key": keys[1]})
    return CatalogEndpoints(type="rest", uri=uri, warehouse=settings.warehouse, properties=properties,
                            namespaces=settings.namespaces,
                            metrics=(MetricsEndpoint("catalog", (f"{name}:{METRICS_PORT}",)),))
