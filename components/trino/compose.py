"""Trino on compose: `trino` (the coordinator, HTTPS published on the bind address) and `trino-worker-<n>`.

Each file of /etc/trino is an inline compose config; the secret ones (password hashes, the TLS keystore) and the
environment (S3 keys, the shared secret) are project `${VARS}` that the apply command receives as Pulumi secrets.
`$` in Trino's files is doubled so compose leaves Trino's own `${ENV:...}` references alone.
"""
from __future__ import annotations

import pulumi

from components.base import MetricsEndpoint
from components.catalog.compose import generated_secret
from components.trino import HTTP_PORT, HTTPS_PORT, TrinoArgs, TrinoEndpoints, access, conf, require, tls
from components.trino.kubernetes import catalog_properties

HOST_PORT = 8443  # published on compose.bind_address
HEALTHCHECK = {"test": ["CMD", "/usr/lib/trino/bin/health-check"], "interval": "10s", "timeout": "5s",
               "retries": 30, "start_period": "30s"}


def _config_name(name: str, role: str, path: str) -> str:
    return f"{name}-{role}-{path.replace('/', '-').replace('.', '-')}"


def deploy(name: str, args: TrinoArgs, parent: pulumi.Resource) -> TrinoEndpoints:
    require(args)
    project = args.substrate
    settings = args.settings
    storage = args.storage
    policy = access.load_policy(args.access_policy)
    coordinator_files, worker_files = conf.files(settings, args.environment, f"http://{name}:{HTTP_PORT}",
                                                 catalog_properties(args), policy)
    generated = access.passwords(name, policy, parent)
    server = tls.server_tls(name, [name, "localhost", "127.0.0.1"], parent)
    project.add_config(f"{name}-password-db", project.secret("TRINO_PASSWORD_DB", access.password_db(generated)))
    project.add_config(f"{name}-keystore", project.secret("TRINO_TLS_PEM", server.pem))
    environment = {conf.SHARED_SECRET_ENV: project.secret(
        "TRINO_SHARED_SECRET", generated_secret(f"{name}-shared-secret", parent, length=48))}
    if storage.access_key_id is not None:
        environment[conf.S3_KEY_ENV] = project.secret("S3_ACCESS_KEY_ID", storage.access_key_id)
        environment[conf.S3_SECRET_ENV] = project.secret("S3_SECRET_ACCESS_KEY", storage.secret_access_key)

    def mounts(role: str, files: dict[str, str]) -> list[dict]:
        for path, content in files.items():
            project.add_config(_config_name(name, role, path), content.replace("$", "$$"))
        return [{"source": _config_name(name, role, path), "target": f"{conf.ETC}/{path}"} for path in files]

    secret_mounts = [{"source": f"{name}-password-db", "target": conf.PASSWORD_FILE},
                     {"source": f"{name}-keystore", "target": conf.TLS_FILE}]
    project.add_service(name, {
        "image": args.versions.image("trino"), "restart": "unless-stopped", "hostname": name,
        "environment": environment, "configs": [*mounts("coordinator", coordinator_files), *secret_mounts],
        "ports": [project.port(HOST_PORT, HTTPS_PORT)], "healthcheck": HEALTHCHECK,
        "deploy": project.deploy(settings.resources),
    })
    worker_mounts = mounts("worker", worker_files) if settings.workers else []
    workers = [f"{name}-worker-{i}" for i in range(1, settings.workers + 1)]
    for worker in workers:
        project.add_service(worker, {
            "image": args.versions.image("trino"), "restart": "unless-stopped", "hostname": worker,
            "environment": environment, "configs": worker_mounts, "healthcheck": HEALTHCHECK,
            "depends_on": {name: {"condition": "service_started"}},
            "deploy": project.deploy(settings.worker_resources),
        })
    return TrinoEndpoints(url=f"https://{name}:{HTTPS_PORT}", passwords=access.password_map(generated),
                          users=tuple(generated), ca_certificate=server.ca_certificate,
                          metrics=(MetricsEndpoint("trino", tuple(f"{n}:{HTTP_PORT}" for n in [name, *workers])),))
