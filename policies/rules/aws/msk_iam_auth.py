"""MSK clients authenticate with IAM (SASL/IAM), so access is granted per role, never to anyone on the network."""
from policies.rule import Severity, resource_rule


def check(cluster, config):
    if cluster.get("clientAuthentication.sasl.iam") is not True:
        yield "IAM authentication (client_authentication.sasl.iam) is not enabled"
    if cluster.get("clientAuthentication.unauthenticated") is True:
        yield "unauthenticated access is enabled"


policy = resource_rule(
    name="aws-msk-iam-auth", domain="aws", severity=Severity.HIGH, check=check, applies={"aws:msk/cluster:Cluster"},
    description="MSK clusters require IAM authentication and refuse unauthenticated clients.",
    remediation="Set client_authentication = {sasl: {iam: True}, unauthenticated: False} on the aws.msk.Cluster and "
                "grant kafka-cluster:* actions to the workloads' IAM roles.")
