"""`dp plan` as users and scripts run it: the JSON shape, masked secrets, exit codes and messages."""
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DP = [sys.executable, "-m", "dp.cli"]


def dp(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*DP, *args], capture_output=True, text=True, cwd=REPO, timeout=300)


def test_plan_json_shape_and_masked_secrets():
    result = dp("plan", "dev", "--json")
    assert result.returncode in (0, 1), result.stderr  # 1 only when a mandatory policy is violated
    plan = json.loads(result.stdout)
    assert {"stack", "target", "resources"} <= set(plan)
    assert (plan["stack"], plan["target"]) == ("dev", "compose")
    assert all(set(r) == {"type", "name", "parent", "inputs"} for r in plan["resources"])
    up = next(r for r in plan["resources"] if r["name"] == "platform-up")
    assert up["parent"] == "platform"
    environment = dict(up["inputs"]["environment"])
    # the reference of the workload image the stack builds (the apply waits for the build): not a secret
    assert environment.pop("WORKLOADS_IMAGE_REF").startswith("dataplatform/workloads:")
    assert set(environment.values()) == {"[secret]"}
    assert "mock-password" not in result.stdout


def test_plan_prints_the_tree_with_compose_services():
    result = dp("plan", "dev")
    assert "compose service kafka apache/kafka:" in result.stdout
    for workload in ("medallion-ingest", "mcp-server", "governance"):  # built and deployed by the dev stack
        assert f"compose service {workload}" in result.stdout, workload
    assert "resources per type" in result.stdout


def test_bad_config_exits_2_naming_the_key(tmp_path):
    bad = tmp_path / "Pulumi.bad.yaml"
    bad.write_text("config:\n  dataplatform:target: compose\n  dataplatform:services:\n    kafka:\n      brokers: 0\n")
    result = dp("plan", "--file", str(bad))
    assert result.returncode == 2
    assert "dataplatform:services.kafka.brokers" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout and result.stdout == ""


def test_target_override_and_missing_stack():
    assert dp("plan", "dev", "--target", "vm").returncode == 2  # the dev file has no vm hosts
    missing = dp("plan", "nosuchstack")
    assert missing.returncode == 2 and "Pulumi.nosuchstack.yaml" in missing.stderr


def test_adapter_refusals_are_config_errors_too(tmp_path):
    small_vpc = tmp_path / "Pulumi.small.yaml"
    small_vpc.write_text("config:\n  dataplatform:target: aws\n  dataplatform:aws:\n    region: eu-west-1\n"
                         "    vpc_cidr: 10.0.0.0/26\n")
    result = dp("plan", "--file", str(small_vpc))
    assert result.returncode == 2
    assert "dataplatform:aws.vpc_cidr" in result.stderr and "Traceback" not in result.stderr
