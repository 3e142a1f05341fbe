"""Trino on VMs: the coordinator on the first host with the role `trino`, one worker on each of the next `workers`
hosts (host networking: a node advertises its host's address). Files reach /etc/dataplatform/trino/ on each host and
are mounted read-only into /etc/trino; the password hashes and the TLS keystore are root-only files, the S3 keys and
the shared secret a root-only env file. Trino keeps no state of its own (the tables live in the warehouse), so its
data directory stays inside the container."""
from __future__ import annotations

import pulumi

from components.base import MetricsEndpoint
from components.catalog.compose import generated_secret
from components.targets.vm import Container, ServiceFile, VmFleet, host_port
from components.trino import HTTP_PORT, HTTPS_PORT, TrinoArgs, TrinoEndpoints, access, conf, require, tls
from components.trino.kubernetes import catalog_properties


def service_files(files: dict[str, str]) -> tuple[ServiceFile, ...]:
    return tuple(ServiceFile(path.replace("/", "-"), f"{conf.ETC}/{path}", content) for path, content in files.items())


def deploy(name: str, args: TrinoArgs, parent: pulumi.Resource) -> TrinoEndpoints:
    require(args)
    fleet: VmFleet = args.substrate
    settings = args.settings
    storage = args.storage
    hosts = fleet.hosts_with_role("trino")
    if len(hosts) < settings.workers + 1:
        raise ValueError(f"services.trino.workers: a coordinator and {settings.workers} worker(s) need "
                         f"{settings.workers + 1} hosts with the role 'trino', but vm.hosts has {len(hosts)} "
                         f"({', '.join(h.name for h in hosts)}); add hosts or lower `workers` (0: the coordinator "
                         "runs the queries)")
    coordinator, workers = hosts[0], hosts[1:settings.workers + 1]
    policy = access.load_policy(args.access_policy)
    coordinator_files, worker_files = conf.files(
        settings, args.environment, f"http://{host_port(coordinator.address, HTTP_PORT)}", catalog_properties(args),
        policy)
    generated = access.passwords(name, policy, parent)
    server = tls.server_tls(name, [coordinator.address], parent)
    secret_env = {conf.SHARED_SECRET_ENV: generated_secret(f"{name}-shared-secret", parent, length=48)}
    if storage.access_key_id is not None:
        secret_env |= {conf.S3_KEY_ENV: storage.access_key_id, conf.S3_SECRET_ENV: storage.secret_access_key}
    image = args.versions.image("trino")
    secrets = (ServiceFile("password.db", conf.PASSWORD_FILE, access.password_db(generated), secret=True),
               ServiceFile("server.pem", conf.TLS_FILE, server.pem, secret=True))
    started = fleet.run_service(name, coordinator, Container(
        image=image, secret_env=secret_env, files=service_files(coordinator_files) + secrets,
        memory=settings.resources.memory, ready_port=HTTP_PORT), parent=parent)
    for host in workers:
        fleet.run_service(f"{name}-worker", host, Container(
            image=image, secret_env=secret_env, files=service_files(worker_files),
            memory=settings.worker_resources.memory, ready_port=HTTP_PORT), parent=parent, depends_on=[started])
    return TrinoEndpoints(
        url=f"https://{host_port(coordinator.address, HTTPS_PORT)}", passwords=access.password_map(generated),
        users=tuple(generated), ca_certificate=server.ca_certificate,
        metrics=(MetricsEndpoint("trino", tuple(host_port(h.address, HTTP_PORT) for h in (coordinator, *workers))),))
