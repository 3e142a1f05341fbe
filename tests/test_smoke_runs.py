"""The smoke suite (tests/smoke) and `dp smoke`, as CI runs them.

- Offline: the inventory of each target built from the outputs its real stack program exports (captured under
  Pulumi's mocks, passed through JSON like `pulumi stack output --json`), and `dp smoke --outputs` on them.
- For real: ONE embedded platform (fresh DP_HOME, free ports), then the whole suite against it twice: through
  testinfra's `local://` backend (`dp smoke --local`) and through its `ssh://` backend to an SSH server on
  127.0.0.1 (asyncssh, generated keys, strict host key checking); then a stopped service and a wrong API key
  must fail the run, naming the check.
"""
from __future__ import annotations

import json
import os
import re
import secrets
import socket
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from dp.inventory import Inventory, from_stack_outputs
from local import lifecycle
from local.settings import LocalSettings

REPO = Path(__file__).resolve().parents[1]
STACKS = {"compose": "Pulumi.dev.yaml", "vm": "examples/stacks/Pulumi.vm.yaml",
          "kubernetes": "examples/stacks/Pulumi.k8s.yaml", "aws": "Pulumi.prod.yaml"}


def dp(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dp.cli", *args], capture_output=True, text=True, cwd=REPO,
                          env=env, timeout=timeout)


# --- inventories from stack outputs (offline) ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def stack_outputs() -> dict[str, dict]:
    """Each target's stack outputs as `pulumi stack output --json --show-secrets` would print them."""
    from stacks.loader import load_stack_file
    from stacks.offline import capture

    return {target: json.loads(json.dumps(capture(load_stack_file(REPO / path), target).outputs))
            for target, path in STACKS.items()}


def test_compose_inventory_reaches_containers_through_published_ports(stack_outputs):
    inventory = from_stack_outputs("dev", stack_outputs["compose"])
    [host] = inventory.hosts
    assert (host.name, host.uri) == ("docker-host", "local://")
    units = {u.name: u for u in host.units}
    assert units["dataplatform-dev-kafka-1"].kind == "container" and not units["dataplatform-dev-kafka-1"].one_shot
    assert units["dataplatform-dev-storage-init-1"].one_shot  # restart: "no" jobs must have exited 0
    assert {19092, 8333, 8181, 9090, 3000} <= set(host.ports)
    assert inventory.kafka.bootstrap_servers == "localhost:19092"  # the EXTERNAL listener, not kafka:9092
    assert inventory.catalog.properties["uri"] == "http://127.0.0.1:8181/catalog"
    assert inventory.catalog.properties["s3.endpoint"] == "http://127.0.0.1:8333"
    urls = {c.name: c.url for c in inventory.http}
    assert urls["catalog"] == "http://127.0.0.1:8181/health"
    assert urls["prometheus"] == "http://127.0.0.1:9090/-/ready"
    assert urls["grafana"] == "http://127.0.0.1:3000/api/health"
    assert inventory.prometheus.url == "http://127.0.0.1:9090" and inventory.prometheus.sigv4_region is None
    assert "not published" in inventory.skips["http flink"]  # its container is still checked
    # dev deploys the workloads: the medallion tables are checked, the MCP server through its published port
    assert "gold.revenue_daily" in inventory.tables.identifiers and "tables" not in inventory.skips
    assert urls["mcp"] == "http://127.0.0.1:8765/healthz" and inventory.mcp.url == "http://127.0.0.1:8765"
    assert inventory.mcp.api_key_env == "DP_MCP_AGENT_KEY" and "gold.revenue_daily" in inventory.mcp.expect_tables


def test_vm_inventory_reaches_each_host_over_ssh(stack_outputs):
    inventory = from_stack_outputs("vm", stack_outputs["vm"], ssh_key="~/.ssh/dataplatform")
    hosts = {h.name: h for h in inventory.hosts}
    assert hosts["node-1"].uri == "ssh://ubuntu@10.20.0.11:22?ssh_identity_file=~/.ssh/dataplatform"
    assert all(h.discover == "dataplatform-*" and not h.units for h in inventory.hosts)
    assert {8333, 8181, 9092} <= set(hosts["node-1"].ports)  # storage, catalog, a broker on node-1
    assert set(hosts["node-2"].ports) == {9092}
    assert 8081 in hosts["node-3"].ports  # the Flink jobmanager lives on the flink host
    assert inventory.kafka.bootstrap_servers == "10.20.0.11:9092,10.20.0.12:9092,10.20.0.13:9092"
    assert {c.name for c in inventory.http} >= {"object_storage", "catalog", "flink", "trino", "qdrant"}
    assert "observability" in inventory.skips["prometheus"]


def test_kubernetes_inventory_checks_the_pods_by_label(stack_outputs):
    inventory = from_stack_outputs("k8s", stack_outputs["kubernetes"])
    [host] = inventory.hosts
    [pods] = host.units
    assert (host.uri, pods.kind, pods.name) == ("local://", "pods", "app.kubernetes.io/part-of=dataplatform")
    assert (pods.config, pods.ctl) == ("dataplatform", "staging")  # namespace, kube context
    assert "inside the cluster" in inventory.vantage
    assert inventory.kafka.bootstrap_servers == "kafka-kafka-bootstrap.dataplatform.svc:9092"


def test_aws_inventory_uses_managed_endpoints(stack_outputs):
    inventory = from_stack_outputs("prod", stack_outputs["aws"])
    assert inventory.hosts[0].units[0].kind == "pods"
    assert "aws eks update-kubeconfig" in inventory.vantage
    assert (inventory.kafka.security_protocol, inventory.kafka.sasl_mechanism, inventory.kafka.region) == (
        "SASL_SSL", "OAUTHBEARER", "eu-west-1")
    assert inventory.prometheus.sigv4_region == "eu-west-1" and "aps-workspaces" in inventory.prometheus.url
    assert inventory.catalog.properties["rest.sigv4-enabled"] == "true"
    assert {"http object_storage", "http catalog", "http schema_registry"} <= set(inventory.skips)
    assert "catalog" not in {c.name for c in inventory.http}


def test_dp_smoke_outputs_file_shows_the_inventory_with_credentials_masked(stack_outputs, tmp_path):
    saved = tmp_path / "dev.json"
    saved.write_text(json.dumps(stack_outputs["compose"]))
    result = dp("smoke", "dev", "--outputs", str(saved), "--show")
    assert result.returncode == 0, result.stderr
    assert "docker-host" in result.stdout and "Not on this target" in result.stdout
    shown = json.loads(result.stdout[result.stdout.index("\n{") + 1:])
    assert Inventory.model_validate(shown).kafka.bootstrap_servers == "localhost:19092"
    assert shown["catalog"]["properties"]["s3.secret-access-key"] == "***"
    assert "mock-password" not in result.stdout


@pytest.mark.parametrize("outputs, message", [
    ({"endpoints": {}}, "no smoke"),
    ({"smoke": {"kind": "compose"}, "endpoints": {"catalog": {"properties": "[secret]"}}}, "--show-secrets"),
    ("not json", "not JSON"),
])
def test_dp_smoke_refuses_unusable_outputs(tmp_path, outputs, message):
    saved = tmp_path / "out.json"
    saved.write_text(outputs if isinstance(outputs, str) else json.dumps(outputs))
    result = dp("smoke", "x", "--outputs", str(saved))
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr


def test_dp_smoke_stack_without_pulumi_cli_says_how_to_save_outputs():
    result = dp("smoke", "prod", env={**os.environ, "PATH": str(Path(sys.executable).parent)})
    assert result.returncode == 2
    assert "pulumi stack output -s prod --json --show-secrets > prod.json" in result.stderr


def test_dp_smoke_local_needs_a_running_platform(tmp_path):
    result = dp("smoke", "--local", env={**os.environ, "DP_HOME": str(tmp_path / "home")})
    assert result.returncode == 2
    assert "not running" in result.stderr and "dp local up --detach" in result.stderr


@pytest.mark.parametrize("host, message", [("node-9=ssh://a@b", "no host node-9"), ("node-1", "expected NAME=URI")])
def test_dp_smoke_refuses_a_bad_host_override(stack_outputs, tmp_path, host, message):
    saved = tmp_path / "vm.json"
    saved.write_text(json.dumps(stack_outputs["vm"]))
    result = dp("smoke", "vm", "--outputs", str(saved), "--host", host, "--show")
    assert result.returncode == 2 and message in result.stderr


def test_dp_smoke_host_override_reaches_a_host_another_way(stack_outputs, tmp_path):
    saved = tmp_path / "vm.json"
    saved.write_text(json.dumps(stack_outputs["vm"]))
    result = dp("smoke", "vm", "--outputs", str(saved), "--host", "node-2=ssh://admin@bastion-node-2", "--show")
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout[result.stdout.index("\n{") + 1:])
    assert [h["uri"] for h in shown["hosts"]] == ["ssh://ubuntu@10.20.0.11:22", "ssh://admin@bastion-node-2",
                                                  "ssh://ubuntu@10.20.0.13:22"]


def test_smoke_suite_is_not_collected_without_an_inventory():
    env = {k: v for k, v in os.environ.items() if k != "DP_SMOKE_INVENTORY"}
    result = subprocess.run([sys.executable, "-m", "pytest", "tests/smoke", "--collect-only", "-q",
                             "-p", "no:cacheprovider"], capture_output=True, text=True, cwd=REPO, env=env, timeout=120)
    assert result.returncode == 5 and "no tests collected" in result.stdout  # 5: pytest's "nothing collected"


# --- host checks whose tools (docker, kubectl, systemd) this machine lacks: their verdict on real outputs ------------
class CannedHost:
    """A testinfra-like host answering `run` with a recorded output of the tool (docker/kubectl/systemctl)."""

    def __init__(self, stdout: str, rc: int = 0):
        self.stdout, self.rc = stdout, rc

    def run(self, command: str, *args: str) -> SimpleNamespace:
        return SimpleNamespace(rc=self.rc, stdout=self.stdout, stderr="error from the tool")


def docker_state(status: str, exit_code: int = 0, health: str | None = None) -> str:
    state = {"Status": status, "Running": status == "running", "ExitCode": exit_code,
             **({"Health": {"Status": health}} if health else {})}
    return json.dumps([{"Name": "/c", "State": state}])


def pods(*states: tuple[str, bool]) -> str:
    return json.dumps({"items": [{"metadata": {"name": f"pod-{i}"}, "status": {
        "phase": phase, "containerStatuses": [{"ready": ready}]}} for i, (phase, ready) in enumerate(states)]})


def systemd(active: str, sub: str, result: str = "success", triggered_by: str = "") -> str:
    return f"ActiveState={active}\nSubState={sub}\nResult={result}\nTriggeredBy={triggered_by}\n"


@pytest.mark.parametrize("kind, one_shot, output, problem", [
    ("container", False, docker_state("running", health="healthy"), None),
    ("container", False, docker_state("running"), None),  # no healthcheck declared
    ("container", False, docker_state("running", health="unhealthy"), "running but unhealthy"),
    ("container", False, docker_state("restarting", 137), "restarting (exit code 137)"),
    ("container", True, docker_state("exited", 0), None),
    ("container", True, docker_state("exited", 1), "exited (exit code 1)"),
    ("pods", False, pods(("Running", True), ("Succeeded", False)), None),
    ("pods", False, pods(("Running", True), ("Running", False)), "pod-1 Running (not ready)"),
    ("pods", False, pods(("Pending", False)), "pod-0 Pending (not ready)"),
    ("pods", False, pods(), "no pods match"),
    ("systemd", False, systemd("active", "running"), None),
    ("systemd", False, systemd("inactive", "dead", "success", "dataplatform-backups.timer"), None),
    ("systemd", False, systemd("failed", "failed", "exit-code", "dataplatform-backups.timer"),
     "failed/failed (result exit-code)"),
    ("systemd", False, systemd("activating", "auto-restart", "exit-code"), "activating/auto-restart (result exit-code)"),
])
def test_host_check_verdicts(kind, one_shot, output, problem):
    from dp.inventory import Unit
    from tests.smoke import test_hosts

    check = {"container": test_hosts.container_problem, "pods": test_hosts.pods_problem,
             "systemd": test_hosts.systemd_problem}[kind]
    assert check(CannedHost(output), Unit(kind=kind, name="x", one_shot=one_shot, config="ns")) == problem


def test_missing_container_is_named():
    from dp.inventory import Unit
    from tests.smoke.test_hosts import container_problem

    assert container_problem(CannedHost("", rc=1), Unit(kind="container", name="c")).startswith("no such container")


# --- against the embedded platform, for real ------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    """One embedded platform for every run below (fresh state dir, free ports, an agent key for the MCP server)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DP_", "PYICEBERG_CATALOG__"))}
    env.update({"DP_HOME": str(tmp_path_factory.mktemp("smoke") / "home"), "DP_LOCAL_KAFKA_PORT": str(free_port()),
                "DP_LOCAL_MCP_PORT": str(free_port()), "DP_LOCAL_RATE": "50", "DP_LOCAL_INTERVAL": "1",
                "DP_MCP_AGENT_KEY": secrets.token_urlsafe(24), "COLUMNS": "200"})
    settings = LocalSettings.from_env(env)
    try:
        up = dp("local", "up", "--detach", env=env, timeout=400)
        assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
        yield env
    finally:
        dp("local", "down", env=env, timeout=200)
        lifecycle.stop_all(settings)


def outcomes(output: str) -> dict[str, str]:
    """`test_x[id]` -> PASSED / FAILED / SKIPPED, from pytest's verbose lines."""
    return {m.group(1): m.group(2) for m in re.finditer(r"::(test_\S+) (PASSED|FAILED|SKIPPED|ERROR)", output)}


def assert_whole_suite_passed(result: subprocess.CompletedProcess, env: dict[str, str]) -> dict[str, str]:
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    seen = outcomes(result.stdout)
    kafka_port, mcp_port = env["DP_LOCAL_KAFKA_PORT"], env["DP_LOCAL_MCP_PORT"]
    for check in (f"test_port_listening[local:{kafka_port}]", f"test_port_listening[local:{mcp_port}]",
                  "test_unit_running[local:broker]", "test_unit_running[local:init]",
                  "test_unit_running[local:ingest]", "test_unit_running[local:mcp-server]",
                  "test_http_healthy[mcp]", "test_kafka_round_trip", "test_namespaces_present",
                  "test_table_present[bronze.orders]", "test_table_present[gold.revenue_daily]",
                  "test_layer_fresh[bronze]", "test_layer_fresh[silver]", "test_layer_fresh[gold]",
                  "test_mcp_refuses_a_caller_without_key", "test_mcp_tool_call"):
        assert seen.get(check) == "PASSED", (check, seen)
    assert seen["test_prometheus_targets_up"] == "SKIPPED"
    assert "SKIPPED [1] tests/smoke/test_services.py:" in result.stdout
    assert "the embedded platform runs no Prometheus" in result.stdout  # the report says why
    return seen


@pytest.mark.slow
def test_local_smoke_run(platform):
    result = dp("smoke", "--local", env=platform)
    seen = assert_whole_suite_passed(result, platform)
    assert "reached through" in result.stdout and "local://" in result.stdout
    assert not [name for name, outcome in seen.items() if outcome in ("FAILED", "ERROR")]


@pytest.mark.slow
def test_ssh_smoke_run(platform, tmp_path):
    """The same suite with its host reached by testinfra's ssh:// backend (OpenSSH client -> asyncssh server)."""
    from tests.smoke.loopback_ssh import LoopbackSsh

    with LoopbackSsh(tmp_path) as server:
        result = dp("smoke", "--local", "--host", f"local={server.uri}", env=platform)
        commands = list(server.commands)
    assert_whole_suite_passed(result, platform)
    assert f"ssh://{server.user}@127.0.0.1:{server.port}" in result.stdout
    home = platform["DP_HOME"]
    assert any(c.endswith("ss --numeric --listening") for c in commands), commands  # ports: through SSH
    for service in ("broker", "ingest", "refine", "mcp-server"):  # every unit's state: through SSH
        assert any(f"{home}/supervisord.conf status {service}" in c for c in commands), (service, commands)


@pytest.mark.slow
def test_smoke_run_fails_naming_a_stopped_service_and_a_refused_key(platform):
    """Last (it stops a service): a stopped program and a wrong key fail the run, and the output says which."""
    settings = LocalSettings.from_env(platform)
    ctl = [str(Path(sys.executable).parent / "supervisorctl"), "-c", str(settings.supervisor_conf)]
    subprocess.run([*ctl, "stop", "maintain"], check=True, capture_output=True, timeout=120)
    try:
        result = dp("smoke", "--local", "-k", "unit_running or mcp_tool_call",
                    env={**platform, "DP_MCP_AGENT_KEY": "not-the-key-0123456789"})
    finally:
        subprocess.run([*ctl, "start", "maintain"], capture_output=True, timeout=120)
    assert result.returncode == 1, result.stdout[-3000:]
    seen = outcomes(result.stdout)
    assert seen["test_unit_running[local:maintain]"] == "FAILED"
    assert seen["test_unit_running[local:ingest]"] == "PASSED"
    assert seen["test_mcp_tool_call"] == "FAILED"
    assert "supervisor maintain on local: STOPPED" in result.stdout
    assert "test_kafka_round_trip" not in seen  # -k selected only these checks
