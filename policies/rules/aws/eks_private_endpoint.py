"""The EKS API server is reachable privately, and not from the whole internet."""
from policies.rule import Severity, resource_rule

ANYWHERE = {"0.0.0.0/0", "::/0"}


def check(cluster, config):
    vpc = cluster.props.get("vpcConfig") or {}
    if vpc.get("endpointPrivateAccess") is not True:
        yield "the private API endpoint is off (vpc_config.endpoint_private_access)"
    if vpc.get("endpointPublicAccess", True) is not False:  # the EKS default is public, from anywhere
        cidrs = set(vpc.get("publicAccessCidrs") or ["0.0.0.0/0"])
        if cidrs & ANYWHERE:
            yield "the public API endpoint is open to 0.0.0.0/0"


policy = resource_rule(
    name="aws-eks-private-endpoint", domain="aws", severity=Severity.HIGH, check=check,
    applies={"aws:eks/cluster:Cluster"},
    description="EKS clusters enable the private API endpoint and do not expose the public one to 0.0.0.0/0.",
    remediation="Set vpc_config.endpoint_private_access=True and endpoint_public_access=False (or limit "
                "public_access_cidrs to your operators' ranges).")
