"""S3 buckets keep object versions, so an overwrite or delete (a bad job, a bad compaction) can be undone."""
from policies.facts.aws import BUCKET, attached
from policies.rule import Severity, stack_rule

VERSIONING = ("aws:s3/bucketVersioning:BucketVersioning", "aws:s3/bucketVersioningV2:BucketVersioningV2")


def check(stack, config):
    for bucket in stack.of_type(BUCKET):
        statuses = {c.get("versioningConfiguration.status") for type_ in VERSIONING
                    for c in attached(stack, bucket, type_, "bucket")}
        if "Enabled" not in statuses:
            state = f"versioning {sorted(map(str, statuses - {None}))[0]}" if statuses - {None} else "no versioning"
            yield f"bucket {bucket.name} has {state}", bucket.urn


policy = stack_rule(
    name="aws-s3-versioning", domain="aws", severity=Severity.MEDIUM, check=check,
    description="S3 buckets have versioning enabled.",
    remediation="Add an aws.s3.BucketVersioning for the bucket with versioning_configuration.status='Enabled' "
                "(and a lifecycle rule expiring noncurrent versions to bound the cost).")
