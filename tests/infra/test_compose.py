"""The compose target: a valid compose project (checked by the real `docker compose config -q`) with storage,
catalog and Kafka, secrets passed by environment only."""
import pytest
import yaml

from stacks.loader import load_stack_file, parse
from stacks.offline import capture
from stacks.versions import resolve
from tests.infra.checks import compose_file, docker_compose_config, referenced_variables

from .test_config import REPO

LONG_RUNNING = {"restart": "unless-stopped"}


@pytest.fixture(scope="module")
def dev():
    return capture(load_stack_file(REPO / "Pulumi.dev.yaml"), "dev")


@pytest.fixture(scope="module")
def medium():
    return capture(parse({"target": "compose", "environment": "prod", "size": "medium"}), "prod-compose")


def services(graph) -> dict:
    return yaml.safe_load(compose_file(graph))["services"]


@pytest.mark.parametrize("stack", ["dev", "medium"])
def test_real_docker_compose_accepts_the_project(stack, request):
    content = compose_file(request.getfixturevalue(stack))
    result = docker_compose_config(content, referenced_variables(content))
    assert result.returncode == 0, result.stderr


def test_docker_compose_check_is_not_vacuous(dev):
    content = compose_file(dev).replace("restart: unless-stopped", "restartt: unless-stopped", 1)
    assert docker_compose_config(content, referenced_variables(content)).returncode != 0
    missing = docker_compose_config(compose_file(dev), [])  # secrets are required variables
    assert missing.returncode != 0 and "set by pulumi" in missing.stderr


def test_dev_runs_one_combined_kafka_node_with_declared_topics(dev):
    svc = services(dev)
    assert svc["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert svc["kafka"]["environment"]["KAFKA_DEFAULT_REPLICATION_FACTOR"] == "1"
    script = svc["kafka-init"]["command"][0]
    for topic in ("shop.orders", "shop.order_lines", "shop.customers", "shop.clickstream"):
        assert f"--topic {topic} " in script
    assert "--topic shop.clickstream --partitions 6" in script and "retention.ms=86400000" in script
    assert svc["kafka-init"]["depends_on"] == {"kafka": {"condition": "service_healthy"}}


def test_prod_size_runs_dedicated_controllers_and_three_brokers(medium):
    svc = services(medium)
    brokers = [s for s in svc if s.startswith("kafka-broker-")]
    controllers = [s for s in svc if s.startswith("kafka-controller-")]
    assert len(brokers) == 3 and len(controllers) == 3
    env = svc["kafka-broker-0"]["environment"]
    assert env["KAFKA_PROCESS_ROLES"] == "broker"
    assert env["KAFKA_DEFAULT_REPLICATION_FACTOR"] == "3" and env["KAFKA_MIN_INSYNC_REPLICAS"] == "2"
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"].count("@") == 3
    assert {s["environment"]["CLUSTER_ID"] for n, s in svc.items() if n.startswith("kafka-") and "CLUSTER_ID" in
            s.get("environment", {})} == {env["CLUSTER_ID"]}
    assert len({s["environment"]["KAFKA_NODE_ID"] for n, s in svc.items() if n in brokers + controllers}) == 6


def test_catalog_chain_and_storage_buckets(dev):
    svc = services(dev)
    assert svc["catalog-migrate"]["depends_on"] == {"catalog-db": {"condition": "service_healthy"}}
    assert svc["catalog"]["depends_on"] == {"catalog-migrate": {"condition": "service_completed_successfully"}}
    assert '"warehouse-name": "lakehouse"' in svc["catalog-bootstrap"]["command"][0]
    for bucket in ("warehouse", "checkpoints", "backups"):
        assert f"s3.bucket.create -name {bucket}" in svc["storage-init"]["command"][0]


def built_images(graph) -> set[str]:
    """The images the stack itself builds into the local engine (the workloads): tagged from their inputs."""
    return {tag for image in graph.of_type("docker-build:index:Image") for tag in image.inputs["tags"]}


def test_long_running_services_have_healthchecks_named_volumes_and_pinned_images(dev):
    pinned = set(resolve().images.values())
    built = built_images(dev)
    assert built, "dev builds the workload images"
    for name, spec in services(dev).items():
        assert spec["image"] in pinned | built, name
        if spec["image"] in built:
            assert spec.get("pull_policy") == "never", f"{name}: a registry's namesake could replace the build"
        if spec.get("restart") == "unless-stopped":
            assert "healthcheck" in spec, name
            for volume in spec.get("volumes", []):
                assert not volume.startswith(("/", ".")), f"{name}: state on a bind mount"


def test_secrets_reach_compose_only_as_secret_environment(dev):
    apply = dev.named("platform-up")
    content = apply.inputs["stdin"]
    assert "mock-password" not in content  # generated passwords never enter the file
    assert set(referenced_variables(content)) == set(apply.inputs["environment"])
    # every variable is a secret but the reference of the built workload image (the apply waits for the build)
    plain = {"WORKLOADS_IMAGE_REF": apply.inputs["environment"]["WORKLOADS_IMAGE_REF"]}
    assert set(plain.values()) <= built_images(dev)
    assert {f"environment.{v}" for v in set(apply.inputs["environment"]) - set(plain)} <= set(apply.secret_paths)
    endpoints = dev.outputs["endpoints"]
    assert "endpoints" in dev.secret_outputs
    assert endpoints["kafka"]["bootstrap_servers"] == "kafka:9092"
    assert endpoints["catalog"]["properties"]["uri"] == "http://catalog:8181/catalog"


def test_switching_a_service_off_removes_it():
    graph = capture(parse({"target": "compose", "services": {"kafka": {"enabled": False}}}), "nokafka")
    assert not any(name.startswith("kafka") for name in services(graph))
    assert not graph.of_type("dataplatform:kafka:Kafka") and "kafka" not in graph.outputs["endpoints"]


def test_captures_are_isolated():
    first = capture(parse({"target": "compose"}), "one")
    second = capture(parse({"target": "compose", "services": {"catalog": {"enabled": False}}}), "two")
    assert len(first.resources) > len(second.resources)
    assert all(":two::" in r.urn for r in second.resources)
    import pulumi.runtime.settings as settings
    assert settings.get_root_resource() is None
