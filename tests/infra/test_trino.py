"""Trino on every target: a coordinator and workers with the `iceberg` catalog on the platform's REST catalog and S3
(Glue and an IAM role on AWS), HTTPS + passwords for clients, file-based access control derived from the MCP
server's policy, metrics for Prometheus, and what the target receives passing the real validators (strict Kubernetes
schemas, `docker compose config`)."""
from __future__ import annotations

import json
import re
import subprocess
import tempfile
from pathlib import Path

import pytest
import yaml

from components.trino import SERVICE_USER, TrinoEndpoints, access, conf
from stacks.config import Secret
from stacks.loader import load_stack_file, parse
from stacks.offline import capture
from tests.infra.checks import (COMPOSE_BIN, compose_file, docker_compose_config, is_builtin, referenced_variables,
                                validate_kubernetes)

from .test_config import REPO

COMPONENT = "dataplatform:trino:Trino"
ON = {"trino": {"enabled": True}}


def vm_host(name: str, address: str, roles: list[str]) -> dict:
    return {"name": name, "address": address, "roles": roles, "private_key": Secret(f"key-of-{name}")}


def owned(graph, component: str = COMPONENT) -> list:
    """The resources of one service component (its descendants)."""
    [found] = graph.of_type(component)
    return graph.descendants(found)


def manifests(graph, kind: str | None = None, component: str = COMPONENT) -> list[dict]:
    return [r.inputs for r in owned(graph, component) if r.type.startswith("kubernetes:")
            and not r.type.startswith("kubernetes:helm") and (kind is None or r.inputs.get("kind") == kind)]


def named(graph, kind: str, name: str) -> dict:
    [found] = [r.inputs for r in graph.resources if r.type.startswith("kubernetes:") and
               r.inputs.get("kind") == kind and r.inputs.get("metadata", {}).get("name") == name]
    return found


def properties(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#"))


# -- stacks ---------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def compose():
    return capture(load_stack_file(REPO / "Pulumi.dev.yaml"), "dev")


@pytest.fixture(scope="module")
def kubernetes():
    return capture(parse({"target": "kubernetes", "environment": "prod", "size": "medium", "services": ON,
                          "kubernetes": {"allowed_ingress_cidrs": ["10.20.0.0/16"]}}), "trino-k8s")


@pytest.fixture(scope="module")
def aws():
    return capture(load_stack_file(REPO / "Pulumi.prod.yaml"), "prod")


@pytest.fixture(scope="module")
def vm():
    hosts = [vm_host("data", "10.0.0.10", ["kafka", "object-storage", "catalog", "trino"]),
             vm_host("query", "10.0.0.20", ["trino"])]
    return capture(parse({"target": "vm", "services": ON, "vm": {"hosts": hosts}}), "trino-vm")


# -- access control -------------------------------------------------------------------------------------------------
def first_table_rule(rules: dict, group: str, schema: str, table: str) -> dict | None:
    """Trino's file-based access control: the first table rule whose group, catalog, schema and table match."""
    for rule in rules["tables"]:
        if not re.fullmatch(rule.get("group", ".*"), group):
            continue
        if all(re.fullmatch(rule.get(key, ".*"), value) for key, value in
               (("catalog", "iceberg"), ("schema", schema), ("table", table))):
            return rule
    return None


def visible(rules: dict, group: str, schema: str, table: str) -> tuple[list[str], set[str]]:
    rule = first_table_rule(rules, group, schema, table) or {"privileges": []}
    return rule["privileges"], {c["name"] for c in rule.get("columns", []) if not c["allow"]}


def test_roles_see_what_the_mcp_policy_grants_and_no_pii():
    policy = access.load_policy()
    rules = access.rules(policy)
    privileges, hidden = visible(rules, "analyst", "silver", "customers")
    assert privileges == ["SELECT"] and {"email", "full_name", "phone", "address", "ip_address"} <= hidden
    assert visible(rules, "analyst", "bronze", "orders")[0] == []  # analysts do not read bronze
    assert "payload" in visible(rules, "analyst", "gold", "quarantine")[1]  # deny_columns on top of PII
    assert visible(rules, "agent", "silver", "orders")[0] == [] and visible(rules, "agent", "gold", "x")[0]
    for writer in ("admin", "engineer"):
        privileges, hidden = visible(rules, writer, "bronze", "orders")
        assert {"INSERT", "DELETE", "OWNERSHIP"} <= set(privileges) and not hidden
    privileges, hidden = visible(rules, access.SERVICE_GROUP, "bronze", "customers")
    assert privileges == ["SELECT"] and not hidden  # the MCP server masks by itself, per caller
    catalogs = {r.get("group"): r["allow"] for r in rules["catalogs"]}
    assert catalogs["admin|engineer"] == "all" and catalogs["analyst|agent|mcp"] == "read-only"
    assert rules["catalogs"][-1] == {"catalog": ".*", "allow": "none"}


def test_rules_follow_a_changed_policy(tmp_path):
    path = tmp_path / "access.yaml"
    path.write_text(yaml.safe_dump({"pii_columns": ["*.*.ssn"], "roles": {
        "auditor": {"tables": ["gold.*"], "pii": True},
        "support": {"tables": ["silver.tickets"], "deny_tables": ["silver.secret*"], "pii": False}}}))
    policy = access.load_policy(path)
    rules = access.rules(policy)
    assert visible(rules, "auditor", "gold", "people") == (["SELECT"], set())
    assert visible(rules, "support", "silver", "tickets") == (["SELECT"], {"ssn"})
    assert visible(rules, "support", "silver", "secrets")[0] == []
    assert access.users(policy) == ("auditor", "support", "admin", "engineer", SERVICE_USER)
    assert "support:support" in access.groups_file(policy).splitlines()


@pytest.mark.parametrize("content, fragment", [("roles: {}", "no `roles`"), ("roles: [", "access.yaml"),
                                               ("roles: {'Bad Role': {tables: []}}", "not usable")])
def test_a_broken_policy_is_refused_naming_the_file(tmp_path, content, fragment):
    path = tmp_path / "access.yaml"
    path.write_text(content)
    with pytest.raises(ValueError, match=re.escape(fragment)):
        access.load_policy(path)


def test_password_file_uses_the_bcrypt_notation_trino_reads():
    assert access.password_line("admin", "$2a$10$abcdefghijklmnopqrstuv") == "admin:$2y$10$abcdefghijklmnopqrstuv\n"
    assert access.password_line("agent", "$2y$12$x") == "agent:$2y$12$x\n"


# -- configuration files --------------------------------------------------------------------------------------------
def test_rest_catalog_on_s3_references_keys_never_holds_them():
    text = conf.rest_catalog("http://catalog:8181/catalog", "lakehouse", s3_endpoint="http://storage:8333",
                             region="us-east-1", path_style=True, static_keys=True)
    props = properties(text)
    assert props["iceberg.catalog.type"] == "rest"
    assert props["iceberg.rest-catalog.uri"] == "http://catalog:8181/catalog"
    assert props["iceberg.rest-catalog.warehouse"] == "lakehouse" and props["fs.native-s3.enabled"] == "true"
    assert props["s3.endpoint"] == "http://storage:8333" and props["s3.path-style-access"] == "true"
    assert props["s3.aws-access-key"] == "${ENV:S3_ACCESS_KEY_ID}"
    assert props["s3.aws-secret-key"] == "${ENV:S3_SECRET_ACCESS_KEY}"
    glue = properties(conf.glue_catalog("eu-west-1"))
    assert glue["iceberg.catalog.type"] == "glue" and glue["hive.metastore.glue.region"] == "eu-west-1"
    assert not any("key" in k for k in glue)


def test_coordinator_serves_https_with_passwords_and_workers_only_run_queries():
    from stacks.config import Trino

    settings = Trino(enabled=True, workers=2)
    coordinator, worker = conf.files(settings, "prod", "http://trino:8080", "connector.name=iceberg\n",
                                     access.load_policy())
    props = properties(coordinator["config.properties"])
    assert props["coordinator"] == "true" and props["node-scheduler.include-coordinator"] == "false"
    assert props["http-server.authentication.type"] == "PASSWORD" and props["http-server.https.enabled"] == "true"
    assert props["http-server.https.keystore.path"] == conf.TLS_FILE
    assert props["internal-communication.shared-secret"] == "${ENV:TRINO_SHARED_SECRET}"
    assert int(props["query.max-memory"].removesuffix("MB")) == 2 * int(
        props["query.max-memory-per-node"].removesuffix("MB"))
    assert {"access-control.properties", "password-authenticator.properties", "rules.json", "group.txt",
            "catalog/iceberg.properties"} <= set(coordinator)
    assert properties(worker["config.properties"])["coordinator"] == "false"
    assert "rules.json" not in worker and "access-control.properties" not in worker
    alone, _ = conf.files(Trino(enabled=True, workers=0), "dev", "http://t:8080", "", access.load_policy())
    assert properties(alone["config.properties"])["node-scheduler.include-coordinator"] == "true"


# -- compose --------------------------------------------------------------------------------------------------------
def compose_services(graph) -> dict:
    return yaml.safe_load(compose_file(graph))["services"]


def test_compose_project_passes_docker_compose_and_keeps_trinos_env_references(compose):
    content = compose_file(compose)
    result = docker_compose_config(content, referenced_variables(content))
    assert result.returncode == 0, result.stderr
    with tempfile.TemporaryDirectory() as tmp:  # what compose hands the containers: Trino's own ${ENV:..} intact
        (Path(tmp) / "compose.yaml").write_text(content)
        env = {"PATH": "/usr/bin:/bin", "HOME": tmp, **{v: "dummy" for v in referenced_variables(content)}}
        rendered = subprocess.run([str(COMPOSE_BIN), "-f", "compose.yaml", "config"], capture_output=True, text=True,
                                  env=env, cwd=tmp, check=True).stdout
    configs = yaml.safe_load(rendered)["configs"]
    assert configs["trino-keystore"]["content"] == "dummy"  # the project's secrets are interpolated ...
    catalog = properties(configs["trino-coordinator-catalog-iceberg-properties"]["content"])
    # ... Trino's references are not: the normalised output escapes a literal `$` as `$$` again
    assert catalog["s3.aws-access-key"] == "$${ENV:S3_ACCESS_KEY_ID}"
    assert catalog["s3.endpoint"] == "http://storage:8333"
    assert catalog["iceberg.rest-catalog.uri"] == "http://catalog:8181/catalog"


def test_compose_runs_a_coordinator_and_the_workers_with_secrets_by_reference(compose):
    services = compose_services(compose)
    coordinator, worker = services["trino"], services["trino-worker-1"]
    assert "trino-worker-2" not in services  # small size: one worker
    assert coordinator["ports"] == ["127.0.0.1:8443:8443"] and "ports" not in worker
    assert coordinator["image"].startswith("trinodb/trino:") and coordinator["healthcheck"]["test"]
    targets = {c["target"] for c in coordinator["configs"]}
    assert {conf.PASSWORD_FILE, conf.TLS_FILE, conf.RULES_FILE, "/etc/trino/catalog/iceberg.properties"} <= targets
    assert conf.PASSWORD_FILE not in {c["target"] for c in worker["configs"]}
    for service in (coordinator, worker):
        assert all(re.fullmatch(r"\$\{[A-Z0-9_]+:\?set by pulumi\}", v) for v in service["environment"].values())
    document = yaml.safe_load(compose_file(compose))
    assert document["configs"]["trino-keystore"]["content"] == "${TRINO_TLS_PEM:?set by pulumi}"


# -- kubernetes -----------------------------------------------------------------------------------------------------
def test_kubernetes_objects_pass_strict_validation(kubernetes):
    objects = manifests(kubernetes)
    assert {m["kind"] for m in objects} >= {"Deployment", "Service", "ConfigMap", "Secret", "PodDisruptionBudget"}
    for manifest in objects:
        if is_builtin(manifest):
            validate_kubernetes(manifest)


def test_kubernetes_coordinator_and_workers(kubernetes):
    coordinator = named(kubernetes, "Deployment", "trino-coordinator")
    workers = named(kubernetes, "Deployment", "trino-worker")
    assert coordinator["spec"]["replicas"] == 1 and workers["spec"]["replicas"] == 2  # medium
    pod = coordinator["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert container["securityContext"]["readOnlyRootFilesystem"] and pod["securityContext"]["runAsNonRoot"]
    assert {p["containerPort"] for p in container["ports"]} == {8080, 8443}
    assert container["readinessProbe"]["httpGet"]["path"] == "/v1/info" and container["startupProbe"]
    assert container["resources"]["limits"]["memory"] == "4Gi"
    assert container["envFrom"] == [{"secretRef": {"name": "trino-env"}}] and "env" not in container
    sources = {s.get("configMap", s.get("secret"))["name"]: {i["path"] for i in
                                                             s.get("configMap", s.get("secret"))["items"]}
               for s in pod["volumes"][1]["projected"]["sources"]}
    assert {"password.db", "tls/server.pem", "password-authenticator.properties"} == sources["trino-keystore"]
    assert "rules.json" in sources["trino-coordinator"]
    assert "checksum/config" in coordinator["spec"]["template"]["metadata"]["annotations"]
    service = named(kubernetes, "Service", "trino")
    assert {p["name"]: p["port"] for p in service["spec"]["ports"]} == {"https": 8443, "http": 8080}
    [clients] = [m for m in manifests(kubernetes, "NetworkPolicy") if m["metadata"]["name"] == "trino-allow-clients"]
    assert [p["port"] for p in clients["spec"]["ingress"][0]["ports"]] == [8443]  # never the internal port


def test_kubernetes_credentials_only_in_secrets(kubernetes):
    resources = {r.name: r for r in owned(kubernetes)}
    for secret in ("trino-env", "trino-keystore"):  # every value a Pulumi secret (the whole map, here)
        assert {p.split(".")[0] for p in resources[secret].secret_paths} == {"stringData"}
    assert {"S3_ACCESS_KEY_ID", "S3_SECRET_ACCESS_KEY", "TRINO_SHARED_SECRET"} == set(
        resources["trino-env"].inputs["stringData"])
    for config_map in manifests(kubernetes, "ConfigMap"):
        text = json.dumps(config_map)
        assert "mock-password" not in text and "PRIVATE KEY" not in text


def test_endpoints_are_what_the_mcp_server_connects_with(kubernetes):
    endpoints = kubernetes.outputs["endpoints"]["trino"]
    assert endpoints["url"] == "https://trino.dataplatform.svc:8443" and endpoints["catalog"] == "iceberg"
    assert endpoints["service_user"] == SERVICE_USER and set(endpoints["passwords"]) == set(endpoints["users"])
    from workloads.mcp_server.config import Settings
    from workloads.mcp_server.engine_trino import connection_kwargs

    settings = Settings(engine="trino", trino_url=endpoints["url"], trino_user=endpoints["service_user"],
                        trino_password=endpoints["passwords"][SERVICE_USER])
    kwargs = connection_kwargs(settings)
    assert (kwargs["host"], kwargs["port"], kwargs["http_scheme"]) == ("trino.dataplatform.svc", 8443, "https")
    assert kwargs["auth"] is not None
    contract = TrinoEndpoints(url="https://t:8443", passwords={SERVICE_USER: "p"}, ca_certificate="pem")
    assert set(contract.env()) == {"DP_QUERY_ENGINE", "DP_TRINO_URL", "DP_TRINO_USER", "DP_TRINO_PASSWORD",
                                   "DP_TRINO_CATALOG"}


# -- VMs ------------------------------------------------------------------------------------------------------------
def test_vm_coordinator_first_then_workers_and_secret_files(vm):
    units = {r.name: r for r in owned(vm) if r.name.endswith("-unit")}
    assert set(units) == {"trino-data-unit", "trino-worker-query-unit"}
    coordinator = units["trino-data-unit"].inputs
    assert coordinator["connection"]["host"] == "10.0.0.10" and "trinodb/trino:" in coordinator["stdin"]
    assert "/etc/dataplatform/trino/server.pem:/etc/trino/tls/server.pem:ro" in coordinator["stdin"]
    files = {r.name: r.inputs for r in owned(vm) if "-file-" in r.name}
    config = properties(files["trino-worker-query-file-config.properties"]["stdin"])
    assert config["discovery.uri"] == "http://10.0.0.10:8080"
    assert " 0600 " in files["trino-data-file-password.db"]["create"]
    assert vm.outputs["endpoints"]["trino"]["url"] == "https://10.0.0.10:8443"


def test_vm_refuses_more_workers_than_hosts():
    hosts = [vm_host("data", "10.0.0.10", ["kafka", "object-storage", "catalog", "trino"])]
    with pytest.raises(ValueError, match="services.trino.workers: a coordinator and 2 worker"):
        capture(parse({"target": "vm", "services": {"trino": {"enabled": True, "workers": 2}},
                       "vm": {"hosts": hosts}}), "trino-vm-small")


# -- AWS ------------------------------------------------------------------------------------------------------------
def test_aws_trino_reads_glue_with_its_own_role(aws):
    resources = {r.name: r for r in owned(aws)}
    catalog = properties(named(aws, "ConfigMap", "trino-coordinator")["data"]["catalog_iceberg.properties"])
    assert catalog["iceberg.catalog.type"] == "glue" and "s3.aws-access-key" not in catalog
    policy = json.loads(resources["trino-server-policy"].inputs["policy"])
    actions = {a for s in policy["Statement"] for a in s["Action"]}
    assert {"glue:GetTable", "s3:PutObject", "kms:Decrypt"} <= actions
    assert all("*" != s["Resource"] for s in policy["Statement"])
    account = named(aws, "ServiceAccount", "trino")
    assert "eks.amazonaws.com/role-arn" in account["metadata"]["annotations"]
    pod = named(aws, "Deployment", "trino-coordinator")["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "trino"
    assert "S3_ACCESS_KEY_ID" not in resources["trino-env"].inputs["stringData"]


def test_aws_athena_workgroup_writes_encrypted_results_to_the_warehouse(aws):
    [workgroup] = [r for r in owned(aws) if r.type == "aws:athena/workgroup:Workgroup"]
    configuration = workgroup.inputs["configuration"]
    assert configuration["enforceWorkgroupConfiguration"] is True
    result = configuration["resultConfiguration"]
    assert result["encryptionConfiguration"]["encryptionOption"] == "SSE_KMS"
    assert re.match(r"s3://.*-warehouse-.*/athena-results/$", result["outputLocation"])
    assert aws.outputs["endpoints"]["trino"]["athena_workgroup"] == workgroup.inputs["name"]


def test_athena_needs_glue():
    with pytest.raises(ValueError, match="athena_workgroup: Athena reads the Glue Data Catalog"):
        capture(parse({"target": "aws", "size": "medium", "aws": {"region": "eu-west-1"}, "services": {
            "catalog": {"aws_flavor": "rest"}, "trino": {"enabled": True, "athena_workgroup": True}}}), "athena-rest")


# -- switches and metrics -------------------------------------------------------------------------------------------
def test_trino_is_off_unless_switched_on_and_needs_the_catalog():
    graph = capture(parse({"target": "compose"}), "trino-off")
    assert not graph.of_type(COMPONENT) and "trino" not in graph.outputs["endpoints"]
    with pytest.raises(Exception, match="services.catalog.enabled"):
        capture(parse({"target": "compose", "services": {"catalog": {"enabled": False}, **ON}}), "trino-alone")


def test_prometheus_scrapes_every_trino_node(compose):
    scrape = next(r for r in compose.resources if r.name == "platform-up").inputs["stdin"]
    prometheus = yaml.safe_load(yaml.safe_load(scrape)["configs"]["observability-prometheus-config"]["content"])
    [job] = [j for j in prometheus["scrape_configs"] if j["job_name"] == "trino"]
    assert job["static_configs"][0]["targets"] == ["trino:8080", "trino-worker-1:8080"]
