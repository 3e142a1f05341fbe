"""Object storage on AWS: one S3 bucket per logical bucket, private and encrypted with the platform's KMS key
(bucket keys on, so KMS is called per bucket rather than per object), versioned, with lifecycle rules that expire
old versions and abandoned multipart uploads, and a policy that refuses any request not made over TLS. No keys:
workloads get read/write through the platform's IAM role (`AwsFoundation.grant`)."""
from __future__ import annotations

import pulumi
import pulumi_aws as aws

from components.object_storage import ObjectStorageArgs, StorageEndpoints
from components.targets.aws import policy_document

BUCKET_PREFIX_MAX = 37  # S3 allows 63 characters; Pulumi appends a 26-character unique suffix to the prefix


def bucket_prefix(stem: str, logical: str) -> str:
    return f"{stem[:BUCKET_PREFIX_MAX - len(logical) - 2].rstrip('-')}-{logical}-"


def deploy(name: str, args: ObjectStorageArgs, parent: pulumi.Resource) -> StorageEndpoints:
    foundation = args.substrate
    settings = args.settings
    key_arn = foundation.kms_key.arn
    buckets: dict[str, pulumi.Output[str]] = {}
    arns = []
    for logical in settings.buckets:
        base = f"{name}-{logical}"
        bucket = aws.s3.Bucket(base, bucket_prefix=bucket_prefix(foundation.prefix, logical),
                               force_destroy=not foundation.prod, tags=foundation.tagged(),
                               opts=foundation.opts(parent))
        child = foundation.opts(parent, depends_on=[bucket])
        block = aws.s3.BucketPublicAccessBlock(f"{base}-public-access", bucket=bucket.id, block_public_acls=True,
                                               block_public_policy=True, ignore_public_acls=True,
                                               restrict_public_buckets=True, opts=child)
        aws.s3.BucketVersioning(f"{base}-versioning", bucket=bucket.id,
                                versioning_configuration={"status": "Enabled"}, opts=child)
        aws.s3.BucketServerSideEncryptionConfiguration(f"{base}-encryption", bucket=bucket.id, rules=[{
            "apply_server_side_encryption_by_default": {"sse_algorithm": "aws:kms", "kms_master_key_id": key_arn},
            "bucket_key_enabled": True}], opts=child)
        aws.s3.BucketLifecycleConfiguration(f"{base}-lifecycle", bucket=bucket.id, rules=[{
            "id": "expire-noncurrent-versions-and-abandoned-uploads", "status": "Enabled", "filter": {"prefix": ""},
            "noncurrent_version_expiration": {"noncurrent_days": settings.noncurrent_version_days},
            "abort_incomplete_multipart_upload": {"days_after_initiation": settings.abort_multipart_days}}],
            opts=child)
        aws.s3.BucketPolicy(f"{base}-tls-only", bucket=bucket.id, policy=policy_document([{
            "Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
            "Resource": [bucket.arn, pulumi.Output.concat(bucket.arn, "/*")],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]),
            opts=foundation.opts(parent, depends_on=[block]))
        buckets[logical] = bucket.bucket
        arns.append(bucket.arn)

    foundation.grant([
        {"Sid": "PlatformBuckets", "Effect": "Allow", "Action": ["s3:ListBucket", "s3:GetBucketLocation"],
         "Resource": arns},
        {"Sid": "PlatformObjects", "Effect": "Allow",
         "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"],
         "Resource": [pulumi.Output.concat(arn, "/*") for arn in arns]},
        {"Sid": "PlatformKey", "Effect": "Allow", "Action": ["kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey"],
         "Resource": key_arn},
    ])
    return StorageEndpoints(endpoint=None, region=foundation.region, buckets=buckets, path_style=False,
                            kms_key_arn=key_arn)
