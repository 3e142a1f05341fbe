"""RDS databases are reachable only from inside the VPC."""
from policies.rule import Severity, resource_rule


def check(database, config):
    if database.props.get("publiclyAccessible") is True:
        yield "publicly_accessible is True"


policy = resource_rule(
    name="aws-rds-no-public-access", domain="aws", severity=Severity.CRITICAL, check=check,
    applies={"aws:rds/instance:Instance", "aws:rds/clusterInstance:ClusterInstance"},
    description="RDS instances are not publicly accessible.",
    remediation="Set publicly_accessible=False and place the database in private subnets (db_subnet_group_name); "
                "reach it from EKS through its security group.")
