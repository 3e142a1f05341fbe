"""S3 buckets block every form of public access (ACLs and policies), whatever a later change tries."""
from policies.facts.aws import BUCKET, attached
from policies.rule import Severity, stack_rule

PAB = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
FLAGS = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")


def check(stack, config):
    for bucket in stack.of_type(BUCKET):
        blocks = attached(stack, bucket, PAB, "bucket")
        if not blocks:
            yield f"bucket {bucket.name} has no public access block", bucket.urn
            continue
        missing = [flag for flag in FLAGS if not any(b.props.get(flag) is True for b in blocks)]
        if missing:
            yield f"bucket {bucket.name}: public access block leaves {', '.join(missing)} off", bucket.urn


policy = stack_rule(
    name="aws-s3-public-access-block", domain="aws", severity=Severity.CRITICAL, check=check,
    description="S3 buckets have a public access block with all four settings on.",
    remediation="Add an aws.s3.BucketPublicAccessBlock for the bucket with block_public_acls, block_public_policy, "
                "ignore_public_acls and restrict_public_buckets all True.")
