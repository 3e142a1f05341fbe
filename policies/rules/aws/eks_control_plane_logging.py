"""EKS sends its control-plane logs (API, audit, authenticator) to CloudWatch, so access can be audited."""
from policies.rule import Severity, resource_rule


def check(cluster, config):
    enabled = set(cluster.props.get("enabledClusterLogTypes") or [])
    missing = [t for t in config["requiredLogTypes"] if t not in enabled]
    if missing:
        yield f"control-plane log types not enabled: {', '.join(missing)}"


policy = resource_rule(
    name="aws-eks-control-plane-logging", domain="aws", severity=Severity.MEDIUM, check=check,
    applies={"aws:eks/cluster:Cluster"},
    description="EKS clusters log the API server, audit and authenticator to CloudWatch.",
    remediation="Set enabled_cluster_log_types=['api', 'audit', 'authenticator'] (plus 'controllerManager' and "
                "'scheduler' if wanted) on the aws.eks.Cluster.",
    config={"requiredLogTypes": {"type": "array", "items": {"type": "string"},
                                 "default": ["api", "audit", "authenticator"]}})
