"""The pack as a whole: its policies' metadata, enforcement per environment, and the pack served over gRPC exactly
as the Pulumi CLI launches it (`python -m pulumi.policy <engine> <pack dir>`), asked Analyze and AnalyzeStack."""
import json
import os
import pkgutil
import subprocess
import sys
import threading
from pathlib import Path

import grpc
import pulumi
import pulumi_command as command
import pytest
from google.protobuf import empty_pb2, json_format, struct_pb2
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc
from pulumi_policy import EnforcementLevel, ResourceValidationPolicy, Secret, Severity, StackValidationPolicy

from policies import catalog, levels, rules
from policies.wire import from_wire, plain
from stacks.loader import load_stack_file, parse
from stacks.offline import capture

from .conftest import REPO
from .test_aws_policies import aws_program

POLICIES = catalog.all_policies()


def test_at_least_25_policies_one_per_module_grouped_by_domain():
    modules = [m for m in pkgutil.walk_packages(rules.__path__, "policies.rules.") if not m.ispkg]
    assert len(POLICIES) == len(modules) >= 25
    for module in modules:
        policy = sys.modules[module.name].policy
        domain = module.name.split(".")[2]
        assert policy.tags == [domain], (module.name, policy.tags)
        assert policy.description and policy.remediation_steps and isinstance(policy.severity, Severity)
        assert policy.enforcement_level is None  # levels come from the policy config, per environment
    assert {p.tags[0] for p in POLICIES} == {"aws", "kubernetes", "compose", "vm", "platform"}
    assert any(isinstance(p, StackValidationPolicy) for p in POLICIES)
    assert any(isinstance(p, ResourceValidationPolicy) for p in POLICIES)


def test_dev_is_advisory_and_prod_mandatory_except_prometheus():
    dev = levels.reconcile(POLICIES, levels.load(levels.config_file("dev"), POLICIES))
    prod = levels.reconcile(POLICIES, levels.load(levels.config_file("prod"), POLICIES))
    assert {s.level for s in dev.values()} == {EnforcementLevel.ADVISORY}
    assert prod.pop("prometheus-scraping").level == EnforcementLevel.ADVISORY
    assert {s.level for s in prod.values()} == {EnforcementLevel.MANDATORY}
    assert levels.config_file("staging") == levels.config_file("prod")
    assert dev["aws-rds-backups"].properties == {"minRetentionDays": 7}  # schema defaults, as the engine fills them


def test_config_files_are_checked(tmp_path):
    bad = tmp_path / "config.json"
    bad.write_text(json.dumps({"all": "mandatory", "aws-s3-encrypton": "advisory"}))
    with pytest.raises(ValueError, match="unknown policy 'aws-s3-encrypton'"):
        levels.load(bad, POLICIES)
    bad.write_text(json.dumps({"aws-s3-encryption": "blocking"}))
    with pytest.raises(ValueError, match="blocking"):
        levels.load(bad, POLICIES)
    bad.write_text(json.dumps({"all": "mandatory", "aws-rds-backups": {"enforcementLevel": "advisory",
                                                                        "minRetentionDays": 14}}))
    settings = levels.reconcile(POLICIES, levels.load(bad, POLICIES))
    assert settings["aws-rds-backups"] == (EnforcementLevel.ADVISORY, {"minRetentionDays": 14})
    assert settings["aws-s3-encryption"].level == EnforcementLevel.MANDATORY


def test_wire_format_keeps_secret_markers():
    sig, secret_sig = "4dabf18193072939515e22adb298388d", "1b47061264138c4ac30d75fd1eb44270"
    props = from_wire({"environment": {"A": {sig: secret_sig, "value": "s3cret"}, "B": "plain"}, "port": 22.0})
    assert isinstance(props["environment"]["A"], Secret)
    assert plain(props) == ({"environment": {"A": "s3cret", "B": "plain"}, "port": 22}, {"environment.A"})


@pytest.fixture(scope="module")
def served():
    """The pack launched like the CLI does it, with the stack config the CLI passes (a prod stack)."""
    env = {**os.environ, "PULUMI_CONFIG": json.dumps({"dataplatform:environment": "prod"})}
    process = subprocess.Popen([sys.executable, "-m", "pulumi.policy", "127.0.0.1:0", "."], cwd=REPO / "policies",
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    timer = threading.Timer(60, process.kill)  # never hang the suite if the pack does not start
    timer.start()
    port = process.stdout.readline().decode().strip()
    timer.cancel()
    assert port.isdigit(), process.stderr.read().decode()[-2000:]
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    yield analyzer_pb2_grpc.AnalyzerStub(channel)
    channel.close()
    process.terminate()
    process.wait(timeout=10)


def configure(stub, level=analyzer_pb2.MANDATORY):
    """What the engine does after reconciling the config: every policy's level and settings."""
    stub.Configure(analyzer_pb2.ConfigureAnalyzerRequest(policyConfig={
        p.name: analyzer_pb2.PolicyConfig(enforcementLevel=level) for p in POLICIES}))


def struct(raw: dict) -> struct_pb2.Struct:
    return json_format.ParseDict(raw, struct_pb2.Struct())


def test_served_pack_describes_its_policies_and_prod_levels(served):
    info = served.GetAnalyzerInfo(empty_pb2.Empty())
    assert info.name == "dataplatform"
    assert {p.name for p in info.policies} == {p.name for p in POLICIES}
    assert all(p.description and p.remediation_steps and p.severity for p in info.policies)
    assert info.initialConfig["all"].enforcementLevel == analyzer_pb2.MANDATORY  # chosen from the stack's config
    assert info.initialConfig["prometheus-scraping"].enforcementLevel == analyzer_pb2.ADVISORY


def test_served_pack_analyzes_a_captured_resource(served):
    configure(served)
    graph = capture(parse({"target": "compose"}), "grpc", program=lambda _: aws_program("rds-public")())
    [db] = graph.of_type("aws:rds/instance:Instance")
    answer = served.Analyze(analyzer_pb2.AnalyzeRequest(type=db.type, urn=db.urn, name=db.name,
                                                        properties=struct(db.wire)))
    [diagnostic] = [d for d in answer.diagnostics if d.policyName == "aws-rds-no-public-access"]
    assert diagnostic.enforcementLevel == analyzer_pb2.MANDATORY and "publicly_accessible" in diagnostic.message
    assert {d.policyName for d in answer.diagnostics} == {"aws-rds-no-public-access"}


def test_served_pack_sees_which_values_are_pulumi_secrets(served):
    configure(served)

    def program(_):
        password = pulumi.Output.secret("generated-password")
        command.local.Command("leaky", create=pulumi.Output.concat("PGPASSWORD=", password, " psql -c 'select 1'"))
        command.local.Command("careful", create="psql -c 'select 1'", environment={"PGPASSWORD": password})

    graph = capture(parse({"target": "compose"}), "grpc-secrets", program=program)
    found = {}
    for resource in graph.of_type("command:local:Command"):
        answer = served.Analyze(analyzer_pb2.AnalyzeRequest(type=resource.type, urn=resource.urn, name=resource.name,
                                                            properties=struct(resource.wire)))
        found[resource.name] = [d.message for d in answer.diagnostics]
    assert any("contains a Pulumi secret" in m for m in found["leaky"]), found
    assert found["careful"] == []


def test_served_pack_analyzes_a_whole_stack(served):
    configure(served, analyzer_pb2.ADVISORY)
    graph = capture(load_stack_file(REPO / "Pulumi.dev.yaml"), "dev")
    resources = [analyzer_pb2.AnalyzerResource(type=r.type, urn=r.urn, name=r.name, properties=struct(r.wire),
                                               options=analyzer_pb2.AnalyzerResourceOptions(parent=r.parent_urn or ""))
                 for r in graph.resources]
    answer = served.AnalyzeStack(analyzer_pb2.AnalyzeStackRequest(resources=resources))
    found = {(d.policyName, d.enforcementLevel) for d in answer.diagnostics}
    assert ("stateful-backups", analyzer_pb2.ADVISORY) in found
    assert ("prometheus-scraping", analyzer_pb2.ADVISORY) in found


def test_readme_documents_every_policy_and_the_cli_commands():
    readme = (REPO / "policies" / "README.md").read_text()
    assert [p.name for p in POLICIES if f"| `{p.name}` |" not in readme] == []
    for command_line in ("pulumi preview -s prod --policy-pack policies",
                         "pulumi up      -s prod --policy-pack policies",
                         "--policy-pack-config policies/config.prod.json"):
        assert command_line in readme
