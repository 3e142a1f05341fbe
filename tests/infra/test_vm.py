"""The vm target: hosts provisioned over SSH, services as systemd units on the hosts with their roles, Kafka
spread over hosts with stable node ids, idempotent jobs, scripts that pass shellcheck, and no secret in any
command line or plain file."""
import re
import shlex

import pytest

from components.kafka.vm import CONTROLLER_ID_OFFSET
from components.targets.vm import FILES, env_file, host_port, systemd_exec
from stacks.config import Secret
from stacks.loader import ConfigError, load_stack_file, parse
from stacks.offline import capture
from stacks.versions import resolve
from tests.infra.checks import shellcheck

from .test_config import REPO

COMMAND = "command:remote:Command"
EXAMPLE = REPO / "examples" / "stacks" / "Pulumi.vm.yaml"
ALL_ROLES = ["kafka", "object-storage", "catalog"]


def host(name: str, address: str, roles: list[str], **extra) -> dict:
    return {"name": name, "address": address, "roles": roles,
            "private_key": Secret(f"-----BEGIN OPENSSH PRIVATE KEY-----\nkey-of-{name}\n"), **extra}


DEV_HOSTS = [host("vm1", "10.0.0.10", ALL_ROLES, user="admin", port=2222)]
PROD_HOSTS = ([host(f"node{i}", f"10.0.1.{i}", ["kafka", "object-storage"] + (["catalog"] if i < 3 else []))
               for i in (1, 2, 3)] + [host(f"ctl{i}", f"10.0.2.{i}", ["kafka-controller"]) for i in (1, 2, 3)])


@pytest.fixture(scope="module")
def dev():
    return capture(parse({"target": "vm", "vm": {"hosts": DEV_HOSTS}}), "vm-dev")


@pytest.fixture(scope="module")
def prod():
    return capture(parse({"target": "vm", "environment": "prod", "size": "medium", "vm": {"hosts": PROD_HOSTS}}),
                   "vm-prod")


@pytest.fixture(scope="module")
def example():
    return capture(load_stack_file(EXAMPLE), "vm-example")


def commands(graph):
    return graph.of_type(COMMAND)


def on_host(resource) -> str:
    return resource.inputs["connection"]["host"]


def units(graph, service: str) -> dict[str, dict]:
    """host address -> the unit command of `service` there (its `stdin` is the unit file)."""
    return {on_host(r): r.inputs for r in commands(graph) if r.name.endswith("-unit")
            and f"unit-apply dataplatform-{service} " in r.inputs["create"]}


def env_of(graph, service: str) -> dict[str, dict[str, str]]:
    """host address -> the plain environment of `service` there."""
    found = {}
    for r in commands(graph):
        if r.name.startswith(f"{service}-") and r.name.endswith("-env") and \
                f"/etc/dataplatform/{service}/env " in r.inputs["create"]:
            found[on_host(r)] = dict(line.split("=", 1) for line in r.inputs["stdin"].splitlines())
    return found


def test_each_host_is_provisioned_over_ssh_with_its_user_port_and_secret_key(dev, prod):
    for graph, hosts in ((dev, DEV_HOSTS), (prod, PROD_HOSTS)):
        for spec in hosts:
            tools, base = (graph.named(f"platform-{spec['name']}-{step}") for step in ("tools", "provision"))
            assert tools.inputs["stdin"] == (FILES / "dpctl.sh").read_text()
            assert base.inputs["stdin"] == (FILES / "provision.sh").read_text()
            for r in (tools, base):
                connection = r.inputs["connection"]
                assert (connection["host"], connection["user"], connection["port"]) == (
                    spec["address"], spec.get("user", "ubuntu"), spec.get("port", 22))
                assert connection["privateKey"] == spec["private_key"].value
                assert "connection" in r.secret_paths
        # every command on a host waits for that host's provisioning
        address_to_name = {h["address"]: h["name"] for h in hosts}
        for r in commands(graph):
            if not r.name.startswith("platform-"):
                name = address_to_name[on_host(r)]
                assert {f"platform-{name}-tools", f"platform-{name}-provision"} <= set(r.dependencies), r.name
    assert dev.named("platform-vm1-tools").inputs["create"].startswith("sudo -n install -d")
    assert "bash -s -- /var/lib/dataplatform" in dev.named("platform-vm1-provision").inputs["create"]


def test_root_user_needs_no_sudo():
    graph = capture(parse({"target": "vm", "vm": {"hosts": [host("vm1", "10.0.0.10", ALL_ROLES, user="root")]}}),
                    "vm-root")
    assert not any("sudo" in r.inputs["create"] for r in commands(graph))


def test_dev_runs_one_combined_kafka_node_advertised_on_the_host(dev):
    [(address, env)] = env_of(dev, "kafka").items()
    assert address == "10.0.0.10"
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller" and env["KAFKA_NODE_ID"] == "1"
    assert env["KAFKA_ADVERTISED_LISTENERS"] == "PLAINTEXT://10.0.0.10:9092"
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == "1@10.0.0.10:9093"
    assert env["KAFKA_DEFAULT_REPLICATION_FACTOR"] == "1" and env["KAFKA_MIN_INSYNC_REPLICAS"] == "1"
    assert not units(dev, "kafka-controller")
    assert dev.outputs["endpoints"]["kafka"]["bootstrap_servers"] == "10.0.0.10:9092"


def test_prod_spreads_three_brokers_and_three_dedicated_controllers(prod):
    brokers, controllers = env_of(prod, "kafka"), env_of(prod, "kafka-controller")
    assert set(brokers) == {"10.0.1.1", "10.0.1.2", "10.0.1.3"}
    assert set(controllers) == {"10.0.2.1", "10.0.2.2", "10.0.2.3"}
    voters = ",".join(f"{CONTROLLER_ID_OFFSET + i}@10.0.2.{i - 3}:9093" for i in (4, 5, 6))
    for i, address in enumerate(sorted(brokers), start=1):
        env = brokers[address]
        assert env["KAFKA_NODE_ID"] == str(i) and env["KAFKA_PROCESS_ROLES"] == "broker"
        assert env["KAFKA_ADVERTISED_LISTENERS"] == f"PLAINTEXT://{address}:9092"
        assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == voters
        assert (env["KAFKA_DEFAULT_REPLICATION_FACTOR"], env["KAFKA_MIN_INSYNC_REPLICAS"]) == ("3", "2")
    for env in controllers.values():
        assert env["KAFKA_PROCESS_ROLES"] == "controller" and "KAFKA_ADVERTISED_LISTENERS" not in env
        assert env["KAFKA_LISTENERS"] == "CONTROLLER://:9093"
    ids = [e["KAFKA_NODE_ID"] for e in [*brokers.values(), *controllers.values()]]
    assert len(set(ids)) == 6
    assert len({e["CLUSTER_ID"] for e in [*brokers.values(), *controllers.values()]}) == 1
    # applied one node after the other (a rolling restart on change): controllers first, then brokers
    order = ["kafka-controller-ctl1", "kafka-controller-ctl2", "kafka-controller-ctl3", "kafka-node1", "kafka-node2",
             "kafka-node3"]
    for before, after in zip(order, order[1:]):
        assert f"{before}-unit" in prod.named(f"{after}-unit").dependencies
    assert "unit-apply dataplatform-kafka-controller 9093" in prod.named("kafka-controller-ctl1-unit").inputs["create"]
    assert "unit-apply dataplatform-kafka 9092" in prod.named("kafka-node1-unit").inputs["create"]
    assert prod.outputs["endpoints"]["kafka"]["bootstrap_servers"] == "10.0.1.1:9092,10.0.1.2:9092,10.0.1.3:9092"


def test_without_controller_hosts_the_first_brokers_double_as_controllers(example):
    brokers = env_of(example, "kafka")
    assert len(brokers) == 3 and not env_of(example, "kafka-controller")
    assert {e["KAFKA_PROCESS_ROLES"] for e in brokers.values()} == {"broker,controller"}
    assert {e["KAFKA_CONTROLLER_QUORUM_VOTERS"] for e in brokers.values()} == {
        "1@10.20.0.11:9093,2@10.20.0.12:9093,3@10.20.0.13:9093"}
    # a combined node is ready once its controller listens: its broker waits for the quorum, i.e. the next nodes
    assert "unit-apply dataplatform-kafka 9093" in example.named("kafka-node-1-unit").inputs["create"]
    assert "kafka-node-1-unit" in example.named("kafka-node-2-unit").dependencies


def test_node_ids_follow_the_host_list_so_appending_a_host_keeps_them():
    first = [host("a", "10.0.0.1", ["kafka", "object-storage", "catalog"])]
    more = first + [host("b", "10.0.0.2", ["kafka"])]
    ids = [env_of(capture(parse({"target": "vm", "vm": {"hosts": hosts}, "services": {"kafka": {"brokers": n}}}),
                          f"ids-{n}"), "kafka") for n, hosts in ((1, first), (2, more))]
    assert ids[0]["10.0.0.1"]["KAFKA_NODE_ID"] == ids[1]["10.0.0.1"]["KAFKA_NODE_ID"] == "1"
    assert ids[1]["10.0.0.2"]["KAFKA_NODE_ID"] == "2"


@pytest.mark.parametrize("stack,brokers", [("dev", 1), ("prod", 3)])
def test_topics_are_created_idempotently_once_every_broker_registered(stack, brokers, request):
    graph = request.getfixturevalue(stack)
    job = graph.named("kafka-topics")
    bootstrap = graph.outputs["endpoints"]["kafka"]["bootstrap_servers"]
    assert job.inputs["create"].endswith(f"--network host --entrypoint /bin/bash {resolve().image('kafka')} -s")
    script = job.inputs["stdin"]
    assert f'"$registered" -ge {brokers}' in script
    for topic in ("shop.orders", "shop.order_lines", "shop.customers", "shop.clickstream"):
        assert f"--bootstrap-server {bootstrap} --create --if-not-exists --topic {topic} " in script
        assert f"--alter --entity-type topics --entity-name {topic} " in script
    assert "cleanup.policy=compact" in script
    assert {r.name for r in commands(graph) if re.fullmatch(r"kafka-(vm|node)\d-unit", r.name)} <= set(
        job.dependencies)


def test_object_storage_servers_identities_and_buckets(dev, prod):
    [(address, unit)] = units(dev, "storage").items()
    assert address == "10.0.0.10"
    assert "--volume /etc/dataplatform/storage/s3.json:/etc/seaweedfs/s3.json:ro" in unit["stdin"]
    assert "-master.defaultReplication=000" in unit["stdin"] and "-s3.port=8333" in unit["stdin"]
    identities = dev.named("storage-vm1-file-s3.json")
    assert "stdin" in identities.secret_paths and " 0600 root:root dataplatform-storage.service" in \
        identities.inputs["create"]
    assert '"accessKey": "mock-password-storage-access-key-id"' in identities.inputs["stdin"]
    buckets = dev.named("storage-buckets")
    for bucket in ("warehouse", "checkpoints", "backups"):
        assert f"s3.bucket.create -name {bucket}" in buckets.inputs["stdin"]
    assert "storage-vm1-unit" in buckets.dependencies
    servers = units(prod, "storage")
    assert set(servers) == {"10.0.1.1", "10.0.1.2", "10.0.1.3"}
    for unit in servers.values():
        assert "-master.peers=10.0.1.1:9333,10.0.1.2:9333,10.0.1.3:9333" in unit["stdin"]
        assert "-master.defaultReplication=002" in unit["stdin"]
    assert prod.outputs["endpoints"]["object_storage"]["endpoint"] == "http://10.0.1.1:8333"
    assert all("-metricsPort=9327" in unit["stdin"] for unit in servers.values())


def test_catalog_database_server_and_bootstrap(dev, prod):
    [(address, db)] = units(dev, "catalog-db").items()
    assert address == "10.0.0.10" and "listen_addresses=127.0.0.1" in db["stdin"]
    [serve] = units(dev, "catalog").values()
    assert re.search(r"ExecStartPre=/usr/bin/docker run .* quay\.io/lakekeeper/catalog:\S+ migrate\n", serve["stdin"])
    assert re.search(r"ExecStart=/usr/bin/docker run .*--env-file /etc/dataplatform/catalog/secret.env .* serve\n",
                     serve["stdin"])
    assert "catalog-db-vm1-unit" in dev.named("catalog-vm1-unit").dependencies
    secret_env = dev.named("catalog-vm1-secret-env")
    assert "LAKEKEEPER__PG_DATABASE_URL_WRITE=postgresql://lakekeeper:mock-password-catalog-db-password@127.0.0.1:" \
           "5432/lakekeeper" in secret_env.inputs["stdin"] and "stdin" in secret_env.secret_paths
    request, bootstrap = dev.named("catalog-bootstrap-vm1-request"), dev.named("catalog-bootstrap")
    assert '"warehouse-name": "lakehouse"' in request.inputs["stdin"] and "stdin" in request.secret_paths
    assert "-d '@/warehouse.json'" in bootstrap.inputs["stdin"]
    assert {"catalog-vm1-unit", "catalog-bootstrap-vm1-request"} <= set(bootstrap.dependencies)
    catalog = dev.outputs["endpoints"]["catalog"]
    assert catalog["uri"] == "http://10.0.0.10:8181/catalog"
    assert catalog["properties"]["s3.endpoint"] == "http://10.0.0.10:8333"
    # prod: two Lakekeeper servers, one database (on the first), reachable from the second
    assert set(units(prod, "catalog")) == {"10.0.1.1", "10.0.1.2"} and set(units(prod, "catalog-db")) == {"10.0.1.1"}
    assert "catalog-node1-unit" in prod.named("catalog-node2-unit").dependencies  # rolling restarts
    assert "listen_addresses=*" in units(prod, "catalog-db")["10.0.1.1"]["stdin"]
    assert "@10.0.1.1:5432/" in prod.named("catalog-node2-secret-env").inputs["stdin"]


def test_units_run_pinned_images_under_systemd(dev, prod):
    pinned = set(resolve().images.values())
    for graph in (dev, prod):
        for r in commands(graph):
            if not r.name.endswith("-unit"):
                continue
            unit = r.inputs["stdin"]
            [start] = re.findall(r"^ExecStart=(.*)$", unit, re.M)
            argv = shlex.split(start)
            assert argv[:5] == ["/usr/bin/docker", "run", "--rm", "--name", argv[4]] and argv[4].startswith("dp-")
            assert "--network" in argv and argv[argv.index("--network") + 1] == "host"
            [image] = [a for a in argv if a in pinned]
            assert f"ExecStartPre=/usr/local/lib/dataplatform/dpctl pull {image}\n" in unit
            assert "Restart=always" in unit and "WantedBy=multi-user.target" in unit
            unit_name = r.inputs["create"].split("unit-apply ")[1].split()[0]
            assert unit_name.startswith("dataplatform-") and f"Description={unit_name.replace('-', ' ', 1)} (" in unit
            assert r.inputs["delete"].endswith(f"dpctl unit-remove {unit_name}")


def test_no_secret_in_any_command_line_or_plain_file(dev, prod, example):
    for graph in (dev, prod, example):
        generated = {f"mock-password-{r.name}" for r in graph.resources
                     if r.type == "random:index/randomPassword:RandomPassword"}  # what the mocks generate
        keys = {h["private_key"].value for h in DEV_HOSTS + PROD_HOSTS}
        assert generated
        secret_files = 0
        for r in commands(graph):
            assert "environment" not in r.inputs  # sshd rarely accepts it, and it is no place for secrets
            for field in ("create", "update", "delete"):
                text = r.inputs.get(field) or ""
                assert not any(s in text for s in generated | keys), f"{r.name}.{field}"
            if "stdin" in r.secret_paths:
                secret_files += 1
                assert " 0600 root:root" in r.inputs["create"], r.name
            else:
                assert not any(s in r.inputs.get("stdin", "") for s in generated | keys), r.name
            assert "mock-password" not in str(r.masked_inputs) and "PRIVATE KEY" not in str(r.masked_inputs)
        assert secret_files >= 4  # S3 identities, catalog db and server env, warehouse request


def _scripts(graph) -> dict[str, str]:
    """Every script a host runs: the shipped files, each job, and each command line."""
    found = {name: (FILES / name).read_text() for name in ("dpctl.sh", "provision.sh")}
    for r in commands(graph):
        entry = re.search(r"--entrypoint (\S+) \S+ -s$", r.inputs["create"])
        if entry:
            found[f"{graph.stack}:{r.name} ({entry.group(1)})"] = r.inputs["stdin"]
        found[f"{graph.stack}:{r.name} command line"] = r.inputs["create"]
    return found


def test_every_script_passes_shellcheck(dev, prod):
    scripts = {**_scripts(dev), **_scripts(prod)}
    unique = {}
    for name, text in scripts.items():
        shell = "sh" if "(/bin/sh)" in name or name.endswith("command line") else "bash"
        unique.setdefault((shell, text), name)
    jobs = {name.split(":")[1].split()[0] for name in scripts if "(/bin/" in name}
    assert jobs == {"kafka-topics", "storage-buckets", "catalog-bootstrap"}
    for (shell, text), name in unique.items():
        result = shellcheck(text if text.startswith("#!") else f"#!/bin/{shell}\n{text}", shell)
        assert result.returncode == 0, f"{name}:\n{result.stdout}"


def test_shellcheck_is_not_vacuous():
    assert shellcheck("#!/bin/sh\nrm -rf $DIR/tmp\n", "sh").returncode != 0


def test_example_stack_file_loads_and_captures(example):
    config = load_stack_file(EXAMPLE)
    assert config.target == "vm" and config.environment == "prod"
    assert all(h.private_key == Secret(None) for h in config.vm.hosts)
    tools = example.named("platform-node-1-tools")
    assert "connection" in tools.secret_paths and tools.inputs["connection"]["privateKey"].startswith("offline-plan")
    assert set(units(example, "storage")) == {"10.20.0.11", "10.20.0.12", "10.20.0.13"}
    assert set(units(example, "catalog")) == {"10.20.0.11", "10.20.0.12"}


BAD = [
    ({"target": "vm"}, "dataplatform:vm.hosts", "at least one host"),
    ({"target": "vm", "vm": {"hosts": []}}, "dataplatform:vm.hosts", "at least 1 item"),
    ({"target": "vm", "vm": {"hosts": [host("vm1", "10.0.0.1", [])]}}, "dataplatform:vm.hosts[0].roles",
     "at least 1 item"),
    ({"target": "vm", "vm": {"hosts": [host("vm1", "10.0.0.1", ALL_ROLES)]}, "services": {"kafka": {"brokers": 2}}},
     "dataplatform:services.kafka.brokers", "2 brokers need 2 hosts with the role 'kafka', but vm.hosts has 1 (vm1)"),
    ({"target": "vm", "environment": "prod", "size": "medium",
      "vm": {"hosts": PROD_HOSTS[:2] + PROD_HOSTS[3:]}}, "dataplatform:services.kafka.brokers", "has 2"),
    ({"target": "vm", "size": "medium", "vm": {"hosts": PROD_HOSTS[:4]}}, "dataplatform:services.kafka.controllers",
     "3 controllers need 3 hosts with the role 'kafka-controller'"),
    ({"target": "vm", "vm": {"hosts": [host("vm1", "10.0.0.1", ALL_ROLES)]}, "services": {"kafka": {"controllers": 3}}},
     "dataplatform:services.kafka.controllers", "only the 1 broker(s) can double as controllers"),
    ({"target": "vm", "vm": {"hosts": [host("vm1", "10.0.0.1", ALL_ROLES)]},
      "services": {"object_storage": {"replicas": 2}}}, "dataplatform:services.object_storage.replicas", "has 1"),
    ({"target": "vm", "vm": {"hosts": [host("vm1", "10.0.0.1", ALL_ROLES)]}, "services": {"catalog": {"replicas": 2}}},
     "dataplatform:services.catalog.replicas", "2 replicas need 2 hosts with the role 'catalog'"),
]


@pytest.mark.parametrize("data,key,fragment", BAD, ids=[f"{b[1]}:{i}" for i, b in enumerate(BAD)])
def test_bad_vm_config_is_refused_naming_the_key(data, key, fragment):
    with pytest.raises(ConfigError) as caught:
        parse(data)
    assert caught.value.key == key
    assert fragment in caught.value.message
    assert "PRIVATE KEY" not in str(caught.value)


def test_rendering_helpers_quote_what_they_must():
    assert host_port("10.0.0.1", 9092) == "10.0.0.1:9092" and host_port("fd00::1", 9092) == "[fd00::1]:9092"
    assert systemd_exec(["/usr/bin/docker", "run", "-e", "A=b c", "x%y$z"]) == \
        '/usr/bin/docker run -e "A=b c" "x%%y$$z"'
    assert env_file({"B": "2", "A": "1 2"}) == "A=1 2\nB=2\n"
    with pytest.raises(ValueError):
        env_file({"A": "line\nbreak"})
