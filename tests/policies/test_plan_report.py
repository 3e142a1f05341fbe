"""`dp plan` runs the pack offline: a clean report for prod, exit 1 with the violation for an insecure stack,
and the `--json` keys scripts read."""
import json

import yaml
from typer.testing import CliRunner

from dp.cli import app

from .conftest import REPO

runner = CliRunner()


def stack_file(tmp_path, name: str, **changes) -> str:
    """Pulumi.prod.yaml with some `dataplatform:` keys changed, as a new stack file."""
    document = yaml.safe_load((REPO / "Pulumi.prod.yaml").read_text())
    for key, value in changes.items():
        document["config"][f"dataplatform:{key}"] = value
    path = tmp_path / f"Pulumi.{name}.yaml"
    path.write_text(yaml.safe_dump(document))
    return str(path)


def violated(path: str, policy: str) -> list[dict]:
    return [v for v in json.loads(runner.invoke(app, ["plan", "--file", path, "--json"]).output)["violations"]
            if v["policy"] == policy]


def test_prod_plans_clean():
    result = runner.invoke(app, ["plan", "prod"])
    assert result.exit_code == 0, result.output
    assert "mandatory" not in result.output
    document = json.loads(runner.invoke(app, ["plan", "prod", "--json"]).output)
    assert {"stack", "target", "resources", "violations", "policies_evaluated"} <= set(document)
    assert document["policies_evaluated"] >= 25
    assert all(set(v) == {"policy", "resource", "level", "message"} for v in document["violations"])
    assert all(v["level"] == "advisory" for v in document["violations"])


def test_an_under_replicated_prod_topic_shows_the_violation_and_exits_1(tmp_path):
    """The config accepts a topic-level `replication: 1` in prod; the pack does not."""
    kafka = {"brokers": 3, "default_replication": 3, "min_insync_replicas": 2}
    topics = [{"name": "shop.orders", "replication": 1}]
    insecure = stack_file(tmp_path, "insecure", services={"kafka": {**kafka, "topics": topics}})
    result = runner.invoke(app, ["plan", "--file", insecure], env={"COLUMNS": "300"})
    assert result.exit_code == 1, result.output
    assert "kafka-replication" in result.output and "topic shop.orders: replication factor 1 < 3" in result.output
    assert "remove topic-level `replication` overrides below 3" in result.output  # the remediation hint
    document = json.loads(runner.invoke(app, ["plan", "--file", insecure, "--json"]).output)
    assert {"policy": "kafka-replication", "level": "mandatory",
            "message": "topic shop.orders: replication factor 1 < 3"} in [
        {k: v[k] for k in ("policy", "level", "message")} for v in document["violations"]]
    secure = stack_file(tmp_path, "secure", services={"kafka": {**kafka, "topics": [{"name": "shop.orders"}]}})
    assert violated(secure, "kafka-replication") == []


def test_a_floating_image_tag_in_prod_exits_1(tmp_path):
    services = {"catalog": {"aws_flavor": "rest"}}
    insecure = stack_file(tmp_path, "floating", services=services,
                          versions={"images": {"lakekeeper": "quay.io/lakekeeper/catalog:nightly"}})
    result = runner.invoke(app, ["plan", "--file", insecure, "--json"])
    assert result.exit_code == 1
    found = {(v["resource"], v["level"]) for v in json.loads(result.output)["violations"]
             if v["policy"] == "k8s-pinned-images"}
    assert found == {("catalog-server", "mandatory"), ("catalog-migrate", "mandatory")}
    assert violated(stack_file(tmp_path, "pinned", services=services), "k8s-pinned-images") == []


def test_the_same_weakness_in_dev_is_advisory(tmp_path):
    dev = tmp_path / "Pulumi.dev2.yaml"
    document = yaml.safe_load((REPO / "Pulumi.dev.yaml").read_text())
    document["config"]["dataplatform:versions"] = {"images": {"kafka": "apache/kafka:nightly"}}
    dev.write_text(yaml.safe_dump(document))
    result = runner.invoke(app, ["plan", "--file", str(dev), "--json"])
    assert result.exit_code == 0
    found = [v for v in json.loads(result.output)["violations"] if v["policy"] == "compose-pinned-images"]
    assert found and {v["level"] for v in found} == {"advisory"}


def test_bad_config_still_exits_2(tmp_path):
    assert runner.invoke(app, ["plan", "--file", stack_file(tmp_path, "bad", size="huge")]).exit_code == 2
