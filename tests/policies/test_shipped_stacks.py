"""Every shipped stack passes every mandatory policy of its environment (dev is advisory, prod/staging mandatory),
with no tolerated gaps."""
import pytest

from policies.evaluate import evaluate
from stacks.loader import load_stack_file
from stacks.offline import capture

from .conftest import REPO

STACKS = {"dev": REPO / "Pulumi.dev.yaml", "prod": REPO / "Pulumi.prod.yaml",
          "k8s": REPO / "examples/stacks/Pulumi.k8s.yaml", "vm": REPO / "examples/stacks/Pulumi.vm.yaml"}


@pytest.fixture(scope="module", params=sorted(STACKS))
def shipped(request):
    config = load_stack_file(STACKS[request.param])
    return request.param, evaluate(capture(config, request.param), config.environment)


def test_shipped_stack_passes_every_mandatory_policy(shipped):
    name, report = shipped
    assert [(v.policy, v.resource, v.message) for v in report.mandatory] == [], name


def test_levels_follow_the_stack_environment(shipped):
    name, report = shipped
    expected = "config.dev.json" if report.environment in ("dev", "test") else "config.prod.json"
    assert report.config_file.name == expected
    if report.environment == "dev":
        assert report.mandatory == []
