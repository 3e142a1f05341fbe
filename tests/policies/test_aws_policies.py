"""AWS policies: a compliant program of real pulumi-aws resources passes every policy; flipping one setting
makes exactly the policy about it report that resource."""
import json

import pulumi
import pulumi_aws as aws
import pytest

from .conftest import messages, run

TAGS = {"owner": "data-platform-team", "environment": "prod", "cost-center": "cc-4711"}


def aws_program(flip: str | None = None):
    def program():
        tags = {k: v for k, v in TAGS.items() if not (flip == "tags" and k == "cost-center")}
        key = aws.kms.Key("key", enable_key_rotation=flip != "kms-rotation", tags=tags)
        bucket = aws.s3.Bucket("warehouse", tags=tags)
        if flip != "s3-encryption":
            aws.s3.BucketServerSideEncryptionConfiguration("warehouse-sse", bucket=bucket.id, rules=[{
                "apply_server_side_encryption_by_default": {"sse_algorithm": "aws:kms", "kms_master_key_id": key.arn},
                "bucket_key_enabled": True}])
        aws.s3.BucketVersioning("warehouse-versioning", bucket=bucket.id, versioning_configuration={
            "status": "Suspended" if flip == "s3-versioning" else "Enabled"})
        aws.s3.BucketPublicAccessBlock("warehouse-pab", bucket=bucket.id, block_public_acls=True,
                                       block_public_policy=flip != "s3-public-access", ignore_public_acls=True,
                                       restrict_public_buckets=True)
        effect, secure = ("Allow", "true") if flip == "s3-tls" else ("Deny", "false")
        aws.s3.BucketPolicy("warehouse-policy", bucket=bucket.id, policy=bucket.arn.apply(lambda arn: json.dumps({
            "Version": "2012-10-17", "Statement": [{
                "Effect": effect, "Principal": "*", "Action": "s3:*", "Resource": [arn, f"{arn}/*"],
                "Condition": {"Bool": {"aws:SecureTransport": secure}}}]})))
        sg = aws.ec2.SecurityGroup("kafka-sg", vpc_id="vpc-0123456789abcdef0", tags=tags, ingress=[{
            "protocol": "tcp", "from_port": 9098, "to_port": 9098,
            "cidr_blocks": ["0.0.0.0/0" if flip == "sg-data-port" else "10.40.0.0/16"]}])
        aws.vpc.SecurityGroupIngressRule("ssh", security_group_id=sg.id, ip_protocol="tcp", from_port=22, to_port=22,
                                         cidr_ipv4="0.0.0.0/0" if flip == "sg-admin-port" else "10.40.0.0/16",
                                         tags=tags)
        aws.vpc.SecurityGroupIngressRule("https", security_group_id=sg.id, ip_protocol="tcp", from_port=443,
                                         to_port=443, cidr_ipv4="0.0.0.0/0", tags=tags)  # not an admin/data port
        aws.msk.Cluster(
            "kafka", kafka_version="3.9.x", number_of_broker_nodes=3, tags=tags,
            broker_node_group_info={"instance_type": "kafka.m7g.large", "client_subnets": ["a", "b", "c"],
                                    "security_groups": [sg.id]},
            encryption_info={
                **({} if flip == "msk-cmk" else {"encryption_at_rest_kms_key_arn": key.arn}),
                "encryption_in_transit": {"client_broker": "TLS_PLAINTEXT" if flip == "msk-tls" else "TLS",
                                          "in_cluster": True}},
            client_authentication={"sasl": {"iam": flip != "msk-iam"}, "unauthenticated": flip == "msk-iam"})
        aws.rds.Instance(
            "catalog-db", engine="postgres", instance_class="db.t4g.medium", allocated_storage=20, username="app",
            password=pulumi.Output.secret("generated-password"), storage_encrypted=flip != "rds-encryption",
            kms_key_id=key.arn, backup_retention_period=1 if flip == "rds-backups" else 7,
            skip_final_snapshot=False, final_snapshot_identifier="catalog-db-final",
            publicly_accessible=flip == "rds-public", tags=tags)
        aws.eks.Cluster(
            "eks", role_arn="arn:aws:iam::123456789012:role/eks", tags=tags,
            vpc_config={"subnet_ids": ["a", "b"], "endpoint_private_access": True,
                        "endpoint_public_access": flip == "eks-public"},
            enabled_cluster_log_types=["api", "audit"] if flip == "eks-logs" else ["api", "audit", "authenticator"])
    return program


def test_compliant_aws_program_passes_every_mandatory_policy():
    report = run(aws_program())
    assert report.mandatory == [], [v.message for v in report.mandatory]
    assert report.policies_evaluated >= 25


CASES = [
    ("s3-encryption", "aws-s3-encryption", "warehouse: bucket warehouse has no server-side encryption"),
    ("s3-versioning", "aws-s3-versioning", "versioning Suspended"),
    ("s3-public-access", "aws-s3-public-access-block", "leaves blockPublicPolicy off"),
    ("s3-tls", "aws-s3-tls-only", "aws:SecureTransport is false"),
    ("kms-rotation", "aws-kms-key-rotation", "key: key rotation is off"),
    ("msk-tls", "aws-msk-tls", "TLS_PLAINTEXT"),
    ("msk-iam", "aws-msk-iam-auth", "unauthenticated access is enabled"),
    ("msk-cmk", "aws-msk-encryption-at-rest", "AWS-managed default key"),
    ("rds-encryption", "aws-rds-encryption", "catalog-db: storage_encrypted"),
    ("rds-backups", "aws-rds-backups", "backup retention is 1, below 7 days"),
    ("rds-public", "aws-rds-no-public-access", "publicly_accessible"),
    ("eks-public", "aws-eks-private-endpoint", "open to 0.0.0.0/0"),
    ("eks-logs", "aws-eks-control-plane-logging", "not enabled: authenticator"),
    ("sg-data-port", "aws-security-group-open-ports", "kafka-sg: ports [9098] are open to 0.0.0.0/0"),
    ("sg-admin-port", "aws-security-group-open-ports", "ssh: ports [22] are open to 0.0.0.0/0"),
    ("tags", "aws-required-tags", "missing tags: cost-center"),
]


@pytest.mark.parametrize("flip, policy, expected", CASES, ids=[c[0] for c in CASES])
def test_flipping_one_setting_violates_its_policy(flip, policy, expected):
    report = run(aws_program(flip))
    assert run(aws_program()).of(policy) == []
    found = messages(report, policy)
    assert any(expected in m for m in found), found
    assert {v.level for v in report.of(policy)} == {"mandatory"}


def test_the_same_violation_is_advisory_in_dev():
    report = run(aws_program("rds-public"), environment="dev")
    assert [v.level for v in report.of("aws-rds-no-public-access")] == ["advisory"]
    assert report.mandatory == []


def test_tags_from_the_providers_default_tags_count():
    def program():
        provider = aws.Provider("tagged", region="eu-west-1", default_tags={"tags": TAGS})
        aws.s3.Bucket("logs", opts=pulumi.ResourceOptions(provider=provider))
        aws.s3.Bucket("untagged")
    found = messages(run(program), "aws-required-tags")
    assert found == ["untagged: missing tags: owner, environment, cost-center"]
