"""S3 buckets are encrypted at rest: each has a server-side encryption configuration (pulumi-aws 7 keeps it in a
separate resource, so this is a stack rule)."""
from policies.facts.aws import BUCKET, attached
from policies.rule import Severity, stack_rule

SSE = ("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
       "aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2")


def check(stack, config):
    for bucket in stack.of_type(BUCKET):
        configurations = [c for type_ in SSE for c in attached(stack, bucket, type_, "bucket")]
        algorithms = {rule.get("applyServerSideEncryptionByDefault", {}).get("sseAlgorithm")
                      for c in configurations for rule in c.props.get("rules") or []}
        if not configurations:
            yield f"bucket {bucket.name} has no server-side encryption configuration", bucket.urn
        elif not algorithms & set(config["algorithms"]):
            yield (f"bucket {bucket.name} encrypts with {sorted(map(str, algorithms))}, "
                   f"not one of {config['algorithms']}", bucket.urn)


policy = stack_rule(
    name="aws-s3-encryption", domain="aws", severity=Severity.HIGH, check=check,
    description="S3 buckets are encrypted at rest by default (SSE-KMS or SSE-S3).",
    remediation="Add an aws.s3.BucketServerSideEncryptionConfiguration for the bucket with "
                "apply_server_side_encryption_by_default.sse_algorithm='aws:kms' and the platform's KMS key.",
    config={"algorithms": {"type": "array", "items": {"type": "string"},
                           "default": ["aws:kms", "aws:kms:dsse", "AES256"]}})
