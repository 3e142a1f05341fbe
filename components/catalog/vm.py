"""Iceberg catalog on VMs: PostgreSQL on the first host with the role `catalog`, Lakekeeper on the first
`replicas` of them (each runs `migrate` before it serves: idempotent, and it keeps the schema in step with the
image), then a one-shot bootstrap that accepts the server's first-run bootstrap and creates the warehouse.

The database listens on 127.0.0.1 only, unless Lakekeeper runs on other hosts too (then on every interface,
password-authenticated as the image configures it). The database URL (it holds the password), the encryption
key and the warehouse request (it holds the S3 keys) reach the hosts only in root-only files; the bootstrap job
reads the request from its file (`curl -d @file`).
"""
from __future__ import annotations

import pulumi

from components.catalog import CatalogArgs, CatalogEndpoints
from components.catalog.compose import PORT, bootstrap_script, generated_secret, warehouse_request
from components.targets.vm import CONFIG_DIR, Container, VmFleet, host_port

DB_PORT = 5432
POSTGRES_UID = "999:999"  # postgres in the official image
WAIT_ATTEMPTS = 60


def bootstrap_job(base: str, request_file: str) -> str:
    return "\n".join([
        "set -eu",
        "attempt=0",
        f"until curl -fsS -o /dev/null {base}/health; do",
        "  attempt=$((attempt + 1))",
        f'  if [ "$attempt" -ge {WAIT_ATTEMPTS} ]; then echo "the catalog at {base} is not healthy" >&2; exit 1; fi',
        "  sleep 5",
        "done",
        bootstrap_script(base, f"@{request_file}", dollar="$"),
        "",
    ])


def deploy(name: str, args: CatalogArgs, parent: pulumi.Resource) -> CatalogEndpoints:
    fleet: VmFleet = args.substrate
    settings = args.settings
    storage = args.storage
    hosts = fleet.hosts_with_role("catalog")[:settings.replicas]
    db_host = hosts[0]
    remote_clients = len(hosts) > 1
    db_password = (pulumi.Output.secret(settings.db_password.value) if settings.db_password and
                   settings.db_password.value else generated_secret(f"{name}-db-password", parent))
    encryption_key = generated_secret(f"{name}-encryption-key", parent, length=48)

    listen = "*" if remote_clients else "127.0.0.1"  # "*": the address may be a NAT address no interface has
    database = fleet.run_service(f"{name}-db", db_host, Container(
        image=args.versions.image("postgres"), args=("postgres", "-c", f"listen_addresses={listen}"),
        env={"POSTGRES_USER": "lakekeeper", "POSTGRES_DB": "lakekeeper"},
        secret_env={"POSTGRES_PASSWORD": db_password},
        volumes={f"{name}-db": "/var/lib/postgresql/data"}, data_owner=POSTGRES_UID, ready_port=DB_PORT),
        parent=parent)

    image = args.versions.image("lakekeeper")
    servers = []
    for host in hosts:
        db_address = "127.0.0.1" if host == db_host else db_host.address
        url = db_password.apply(
            lambda password, a=db_address: f"postgresql://lakekeeper:{password}@{host_port(a, DB_PORT)}/lakekeeper")
        servers.append(fleet.run_service(name, host, Container(
            image=image, args=("serve",), init=(("migrate",),),
            env={"LAKEKEEPER__BASE_URI": f"http://{host_port(host.address, PORT)}",
                 "LAKEKEEPER__LISTEN_PORT": str(PORT)},
            secret_env={"LAKEKEEPER__PG_DATABASE_URL_WRITE": url, "LAKEKEEPER__PG_DATABASE_URL_READ": url,
                        "LAKEKEEPER__PG_ENCRYPTION_KEY": encryption_key},
            memory=settings.resources.memory, ready_port=PORT), parent=parent,
            depends_on=[database, *servers[-1:]]))  # one server after the other: rolling restarts

    request_path = f"{CONFIG_DIR}/{name}-bootstrap/warehouse.json"
    request = pulumi.Output.secret(pulumi.Output.all(storage.access_key_id, storage.secret_access_key).apply(
        lambda keys: warehouse_request(args, *keys)))
    request_file = fleet.put_file(f"{name}-bootstrap-{db_host.name}-request", db_host, request_path, request,
                                  mode="0600", parent=parent)
    fleet.run_job(f"{name}-bootstrap", db_host, args.versions.image("curl"),
                  bootstrap_job(f"http://127.0.0.1:{PORT}", "/warehouse.json"), parent=parent,
                  mounts={request_path: "/warehouse.json"}, as_root=True, depends_on=[request_file, *servers])

    uri = f"http://{host_port(db_host.address, PORT)}/catalog"
    properties = pulumi.Output.all(storage.access_key_id, storage.secret_access_key).apply(
        lambda keys: {"type": "rest", "uri": uri, "warehouse": settings.warehouse,
                      "s3.endpoint": storage.endpoint, "s3.region": storage.region,
                      "s3.path-style-access": "true", "s3.access-key-id": keys[0], "s3.secret-access-key": keys[1]})
    return CatalogEndpoints(type="rest", uri=uri, warehouse=settings.warehouse, properties=properties,
                            namespaces=settings.namespaces)
