"""Qdrant on AWS: the Kubernetes adapter on EKS (volumes on the platform's KMS-encrypted gp3 storage class). The
snapshot job uploads to the S3 backups bucket with its own IAM role (IRSA), limited to the bucket's `qdrant/` prefix
and the platform key; rclone takes the role from the pod's web identity (`env_auth`)."""
from __future__ import annotations

import dataclasses

import pulumi

from components.qdrant import STORE, QdrantArgs, QdrantEndpoints, snapshots
from components.qdrant import kubernetes as on_kubernetes


def prefix_statements(bucket: pulumi.Input[str], prefix: str, key_arn: pulumi.Input[str]) -> list[dict]:
    """Read, write and delete under `<prefix>/` of one bucket (encrypted with the platform key), nothing else."""
    bucket_arn = pulumi.Output.concat("arn:aws:s3:::", bucket)
    return [
        {"Sid": "ListPrefix", "Effect": "Allow", "Action": ["s3:ListBucket", "s3:GetBucketLocation"],
         "Resource": bucket_arn, "Condition": {"StringLike": {"s3:prefix": [f"{prefix}/*", prefix, ""]}}},
        {"Sid": "ObjectsUnderPrefix", "Effect": "Allow",
         "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"],
         "Resource": pulumi.Output.concat(bucket_arn, f"/{prefix}/*")},
        {"Sid": "PlatformKey", "Effect": "Allow", "Action": ["kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey"],
         "Resource": key_arn}]


def deploy(name: str, args: QdrantArgs, parent: pulumi.Resource) -> QdrantEndpoints:
    foundation = args.substrate
    cluster = foundation.kubernetes
    annotations = None
    bucket = snapshots.bucket(args.storage)
    if bucket is not None:
        role = foundation.irsa_role(f"{name}-snapshots", cluster.namespace, f"{name}-snapshots",
                                    prefix_statements(bucket, STORE, foundation.kms_key.arn), parent)
        annotations = {"eks.amazonaws.com/role-arn": role.arn}
    return on_kubernetes.qdrant(name, dataclasses.replace(args, substrate=cluster), parent,
                                service_account_annotations=annotations)
