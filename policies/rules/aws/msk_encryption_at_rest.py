"""MSK encrypts broker storage with the platform's customer-managed KMS key (not the AWS-owned default)."""
from policies.rule import Severity, resource_rule


def check(cluster, config):
    if not cluster.get("encryptionInfo.encryptionAtRestKmsKeyArn"):
        yield "broker storage is encrypted with the AWS-managed default key, not a customer-managed KMS key"


policy = resource_rule(
    name="aws-msk-encryption-at-rest", domain="aws", severity=Severity.MEDIUM, check=check,
    applies={"aws:msk/cluster:Cluster"},
    description="MSK clusters encrypt data at rest with a customer-managed KMS key.",
    remediation="Set encryption_info.encryption_at_rest_kms_key_arn to the platform KMS key's ARN on the "
                "aws.msk.Cluster.")
