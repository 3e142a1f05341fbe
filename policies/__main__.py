"""Entry point of the policy pack, and the only place a `PolicyPack` is constructed: constructing it starts the
gRPC server the Pulumi CLI talks to and blocks. The CLI runs `python -m pulumi.policy <engine> <this directory>`,
which runs this file; the rules live in side-effect-free modules (`policies.catalog`)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository root, so `policies` imports

from pulumi_policy import EnforcementLevel, PolicyPack  # noqa: E402

from policies import catalog, levels, wire  # noqa: E402

wire.keep_secret_markers()
_policies = list(catalog.all_policies())
_environment = levels.stack_environment()
PolicyPack(
    name="dataplatform",
    description="Security, reliability and cost guardrails for the data platform (compose, VMs, Kubernetes, AWS).",
    policies=_policies,
    enforcement_level=EnforcementLevel.ADVISORY,
    initial_config=levels.load(levels.config_file(_environment), _policies),
)
