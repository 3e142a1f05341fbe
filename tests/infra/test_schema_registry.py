"""The schema registry on every target: Apicurio on Kafka (compose, VMs, Kubernetes) with a registration job, the
Glue Schema Registry on AWS; the registered schemas are JSON Schema exported from the medallion event model and
accept exactly what the model accepts."""
import json
import os
import subprocess
import tempfile
from itertools import islice
from pathlib import Path

import jsonschema
import pytest
import yaml

from components.schema_registry.apicurio import fingerprint, register_script
from components.schema_registry.schemas import canonical, event_schemas, json_schema, registration_body
from stacks.config import Secret
from stacks.loader import parse
from stacks.offline import capture
from stacks.versions import resolve
from tests.infra.checks import (COMPOSE_BIN, compose_file, docker_compose_config, is_builtin, kubernetes_manifests,
                                referenced_variables, shellcheck, validate_kubernetes)
from workloads.medallion.generator import Shop
from workloads.medallion.tables import EVENT_FIELDS, TOPICS

ON = {"schema_registry": {"enabled": True}}
SUBJECTS = {f"{topic}-value" for topic in TOPICS.values()}


@pytest.fixture(scope="module")
def compose():
    return capture(parse({"target": "compose", "services": ON}), "registry-compose")


@pytest.fixture(scope="module")
def vm():
    hosts = [{"name": f"vm{i}", "address": f"10.0.0.{10 + i}", "private_key": Secret(f"key-{i}"),
              "roles": ["kafka", "object-storage", "catalog", "schema-registry"] if i == 1 else ["schema-registry"]}
             for i in (1, 2)]
    return capture(parse({"target": "vm", "vm": {"hosts": hosts},
                          "services": {"schema_registry": {"enabled": True, "replicas": 2}}}), "registry-vm")


@pytest.fixture(scope="module")
def k8s():
    return capture(parse({"target": "kubernetes", "services": {"schema_registry": {"enabled": True,
                                                                                  "replicas": 2}}}),
                   "registry-k8s")


@pytest.fixture(scope="module")
def aws():
    return capture(parse({"target": "aws", "aws": {"region": "eu-west-1"},
                          "services": {"kafka": {"brokers": 2}, **ON}}), "registry-aws")


# -- the schemas -------------------------------------------------------------------------------------------------
def test_schemas_accept_every_event_the_shop_produces_including_evolved_ones():
    schemas = event_schemas(tuple(TOPICS.values()))
    validators = {topic: jsonschema.Draft7Validator(schema) for topic, schema in schemas.items()}
    for version in (1, 2):  # version 2 adds optional fields: accepted (bronze evolves them into columns)
        seen = set()
        for event in islice(Shop(seed=3, schema_version=version).events(), 3000):
            validators[event.topic].validate(event.value)
            seen.add(event.topic)
        assert seen == set(TOPICS.values())


@pytest.mark.parametrize("change, message", [
    (lambda e: e.pop("order_id"), "'order_id' is a required property"),
    (lambda e: e.update(total_amount="12.50"), "'12.50' is not of type 'number'"),
    (lambda e: e.update(status=None), "None is not of type 'string'"),
    (lambda e: e.update(item_count=2.5), "2.5 is not of type 'integer', 'null'"),
])
def test_schemas_refuse_what_bronze_would_quarantine(change, message):
    event = next(e for e in Shop(seed=5).events() if e.topic == "shop.orders").value
    change(event)
    errors = [e.message for e in jsonschema.Draft7Validator(event_schemas(("shop.orders",))["shop.orders"])
              .iter_errors(event)]
    assert message in errors


def test_schema_follows_the_model_field_by_field():
    schema = event_schemas(("shop.order_lines",))["shop.order_lines"]
    fields = EVENT_FIELDS["order_lines"]
    assert list(schema["properties"]) == [f.name for f in fields]
    assert schema["required"] == [f.name for f in fields if f.required]
    assert schema["properties"]["discount"]["type"] == ["number", "null"]
    assert schema["properties"]["event_time"] == {"type": "string", "format": "date-time",
                                                  "description": "when it happened at the source"}
    jsonschema.Draft7Validator.check_schema(schema)
    with pytest.raises(TypeError, match="no JSON Schema mapping"):
        from pyiceberg.types import BinaryType
        from workloads.medallion.tables import Field
        json_schema("t", [Field("blob", BinaryType())])


def test_topics_the_model_does_not_describe_get_no_subject():
    assert set(event_schemas(("shop.orders", "audit.log"))) == {"shop.orders"}


def test_registration_body_is_stable_and_fingerprinted():
    schema = event_schemas(("shop.orders",))["shop.orders"]
    body = json.loads(registration_body(schema))
    assert body["schemaType"] == "JSON" and json.loads(body["schema"]) == schema
    assert registration_body(json.loads(canonical(schema))) == registration_body(schema)
    files = {"shop.orders-value.json": registration_body(schema)}
    changed = {"shop.orders-value.json": registration_body({**schema, "required": []})}
    assert fingerprint(files) != fingerprint(changed)
    assert register_script("http://r:8085", files) != register_script("http://r:8085", changed)


def test_registration_script_passes_shellcheck_and_stops_on_incompatible_changes():
    files = {f"{s}.json": "{}" for s in sorted(SUBJECTS)}
    script = register_script("http://registry:8085", files)
    assert shellcheck(f"#!/bin/sh\n{script}", "sh").returncode == 0
    assert "PUT -H 'Content-Type: application/vnd.schemaregistry.v1+json' --data '{\"compatibility\": " \
           "\"BACKWARD\"}'" in script
    assert f"for subject in {' '.join(sorted(SUBJECTS))}; do" in script
    assert "409) echo \"$subject: the new schema is not BACKWARD compatible" in script and "exit 1" in script
    assert shellcheck(f"#!/bin/sh\n{register_script('http://registry:8085', {})}", "sh").returncode == 0


# -- compose -----------------------------------------------------------------------------------------------------
def services(graph) -> dict:
    return yaml.safe_load(compose_file(graph))["services"]


def test_real_docker_compose_accepts_the_registry(compose):
    content = compose_file(compose)
    result = docker_compose_config(content, referenced_variables(content))
    assert result.returncode == 0, result.stderr


def test_compose_reads_the_schema_files_literally(compose):
    """`$schema` survives compose's interpolation (escaped `$$`): compose's own normalised output still holds the
    escaped literal, where an unescaped `$schema` would have been replaced by an empty variable."""
    content = compose_file(compose)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "compose.yaml"
        path.write_text(content)
        env = {"PATH": os.environ["PATH"], "HOME": tmp, **{n: "x" for n in referenced_variables(content)}}
        result = subprocess.run([str(COMPOSE_BIN), "-f", str(path), "config"], capture_output=True, text=True,
                                env=env, cwd=tmp)
    assert result.returncode == 0 and "schema" not in result.stderr, result.stderr
    configs = yaml.safe_load(result.stdout)["configs"]
    for subject in SUBJECTS:
        body = configs[f"schema-registry-{subject}.json"]["content"].replace("$$", "$")
        topic = subject.removesuffix("-value")
        assert body == registration_body(event_schemas((topic,))[topic])


def test_compose_registry_runs_on_kafka_then_registers(compose):
    svc = services(compose)
    server = svc["schema-registry"]
    assert server["image"] == resolve().image("apicurio-registry") and server["restart"] == "unless-stopped"
    assert server["environment"] == {"APICURIO_STORAGE_KIND": "kafkasql",
                                     "APICURIO_KAFKASQL_BOOTSTRAP_SERVERS": "kafka:9092", "QUARKUS_HTTP_PORT": "8085"}
    assert server["depends_on"] == {"kafka": {"condition": "service_healthy"}} and server["healthcheck"]["test"]
    job = svc["schema-registry-register"]
    assert job["restart"] == "no" and job["depends_on"] == {"schema-registry": {"condition": "service_healthy"}}
    assert {c["target"] for c in job["configs"]} == {f"/schemas/{s}.json" for s in SUBJECTS}
    assert 'api="http://schema-registry:8085/apis/ccompat/v7"' in job["command"][0]
    registry = compose.outputs["endpoints"]["schema_registry"]
    assert registry["url"] == "http://schema-registry:8085/apis/ccompat/v7"
    assert set(registry["subjects"]) == SUBJECTS and registry["compatibility"] == "BACKWARD"


def test_compose_brokers_are_awaited_in_a_multi_broker_project():
    graph = capture(parse({"target": "compose", "size": "medium", "services": ON}), "registry-compose-medium")
    server = services(graph)["schema-registry"]
    assert set(server["depends_on"]) == {"kafka-broker-0", "kafka-broker-1", "kafka-broker-2"}


# -- VMs ---------------------------------------------------------------------------------------------------------
def test_vm_runs_replicas_on_registry_hosts_and_registers_on_the_first(vm):
    units = {r.inputs["connection"]["host"]: r for r in vm.of_type("command:remote:Command")
             if r.name.endswith("-unit") and "unit-apply dataplatform-schema-registry " in r.inputs["create"]}
    assert set(units) == {"10.0.0.11", "10.0.0.12"}
    assert "schema-registry-vm1-unit" in units["10.0.0.12"].dependencies
    env = dict(line.split("=", 1) for line in vm.named("schema-registry-vm1-env").inputs["stdin"].splitlines())
    assert env["APICURIO_KAFKASQL_BOOTSTRAP_SERVERS"] == "10.0.0.11:9092"
    job = vm.named("schema-registry-register")
    assert job.inputs["connection"]["host"] == "10.0.0.11"
    assert "--volume /etc/dataplatform/schema-registry-register:/schemas:ro" in job.inputs["create"]
    assert shellcheck(f"#!/bin/sh\n{job.inputs['stdin']}", "sh").returncode == 0
    written = {r.name for r in vm.resources if r.name.startswith("schema-registry-register-vm1-")}
    assert written == {f"schema-registry-register-vm1-{s}.json" for s in SUBJECTS}
    assert written <= set(job.dependencies)


def test_vm_more_replicas_than_hosts_is_refused():
    hosts = [{"name": "vm1", "address": "10.0.0.1", "private_key": Secret("k"),
              "roles": ["kafka", "object-storage", "catalog", "schema-registry"]}]
    with pytest.raises(ValueError, match="services.schema_registry.replicas: 2 replicas need 2 hosts"):
        capture(parse({"target": "vm", "vm": {"hosts": hosts},
                       "services": {"schema_registry": {"enabled": True, "replicas": 2}}}), "registry-vm-short")


# -- Kubernetes --------------------------------------------------------------------------------------------------
def registry_manifests(graph) -> dict[tuple[str, str], dict]:
    return {(m["kind"], m["metadata"]["name"]): m for m in kubernetes_manifests(graph)
            if m["metadata"]["name"].startswith("schema-registry")}


def test_k8s_objects_pass_strict_validation(k8s):
    found = registry_manifests(k8s)
    assert {("Deployment", "schema-registry"), ("Service", "schema-registry"), ("Job", "schema-registry-register"),
            ("ConfigMap", "schema-registry-schemas"), ("PodDisruptionBudget", "schema-registry")} <= set(found)
    for manifest in found.values():
        assert is_builtin(manifest)
        validate_kubernetes(manifest)


def test_k8s_deployment_is_restricted_and_probed(k8s):
    deployment = registry_manifests(k8s)[("Deployment", "schema-registry")]
    assert deployment["spec"]["replicas"] == 2
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    assert container["readinessProbe"]["httpGet"] == {"path": "/health/ready", "port": 8085}
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["APICURIO_KAFKASQL_BOOTSTRAP_SERVERS"] == "kafka-kafka-bootstrap.dataplatform.svc:9092"


def test_k8s_job_registers_the_schemas_from_the_configmap(k8s):
    found = registry_manifests(k8s)
    data = found[("ConfigMap", "schema-registry-schemas")]["data"]
    assert set(data) == {f"{s}.json" for s in SUBJECTS}
    job = found[("Job", "schema-registry-register")]
    [container] = job["spec"]["template"]["spec"]["containers"]
    assert container["command"][:2] == ["/bin/sh", "-ec"]
    assert f"# schemas {fingerprint(data)}" in container["command"][2]
    assert 'api="http://schema-registry.dataplatform.svc:8085/apis/ccompat/v7"' in container["command"][2]
    assert {"name": "schemas", "configMap": {"name": "schema-registry-schemas"}} in \
        job["spec"]["template"]["spec"]["volumes"]


# -- AWS ---------------------------------------------------------------------------------------------------------
def test_aws_glue_registry_with_one_backward_schema_per_topic(aws):
    [registry] = aws.of_type("aws:glue/registry:Registry")
    assert registry.inputs["registryName"] == "dataplatform-registry-aws-events"
    schemas = {r.inputs["schemaName"]: r.inputs for r in aws.of_type("aws:glue/schema:Schema")}
    assert set(schemas) == set(TOPICS.values())
    for topic, schema in schemas.items():
        assert (schema["dataFormat"], schema["compatibility"]) == ("JSON", "BACKWARD")
        assert json.loads(schema["schemaDefinition"]) == event_schemas((topic,))[topic]
    assert not [r for r in aws.resources if "apicurio" in json.dumps(r.inputs)]
    endpoints = aws.outputs["endpoints"]["schema_registry"]
    assert endpoints["type"] == "glue" and endpoints["registry"] == "dataplatform-registry-aws-events"


def test_aws_workloads_may_read_but_not_register(aws):
    [policy] = [r for r in aws.of_type("aws:iam/rolePolicy:RolePolicy") if r.name == "platform-workloads-policy"]
    text = policy.inputs["policy"]
    assert "glue:GetSchemaByDefinition" in text and "glue:GetSchemaVersion" in text
    assert "glue:RegisterSchemaVersion" not in text and "glue:CreateSchema" not in text


# -- switches and bad input --------------------------------------------------------------------------------------
@pytest.mark.parametrize("target", ["compose", "kubernetes"])
def test_registry_off_creates_nothing(target):
    graph = capture(parse({"target": target}), f"registry-off-{target}")
    assert not [r for r in graph.resources if r.name.startswith("schema-registry")]
    assert "schema_registry" not in graph.outputs["endpoints"]


def test_registry_needs_kafka_outside_aws():
    config = parse({"target": "compose", "services": {**ON, "kafka": {"enabled": False}}})
    with pytest.raises(ValueError, match="services.kafka.enabled: the schema registry stores its schemas in Kafka"):
        capture(config, "registry-no-kafka")
