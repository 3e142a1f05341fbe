"""RDS databases encrypt their storage (and so their snapshots)."""
from policies.rule import Severity, resource_rule


def check(database, config):
    if database.props.get("storageEncrypted") is not True:
        yield "storage_encrypted is not True"


policy = resource_rule(
    name="aws-rds-encryption", domain="aws", severity=Severity.HIGH, check=check,
    applies={"aws:rds/instance:Instance", "aws:rds/cluster:Cluster"},
    description="RDS instances and clusters encrypt storage at rest.",
    remediation="Set storage_encrypted=True and kms_key_id to the platform KMS key (an existing unencrypted "
                "database must be restored from an encrypted snapshot copy).")
