"""Milvus on AWS: the Kubernetes adapter on EKS. Milvus reads and writes `milvus/` in the warehouse bucket with its own
IAM role (IRSA, `useIAM`: no keys), the etcd snapshot job writes `milvus-etcd/` in the backups bucket with another;
both may use the platform key. The Milvus namespace may leave the cluster on HTTPS only (S3, STS)."""
from __future__ import annotations

import dataclasses

import pulumi

from components.milvus import ETCD_STORE, ROOT_PATH, MilvusArgs, MilvusEndpoints, require_storage
from components.milvus import kubernetes as on_kubernetes
from components.qdrant import snapshots
from components.qdrant.aws import prefix_statements


def deploy(name: str, args: MilvusArgs, parent: pulumi.Resource) -> MilvusEndpoints:
    require_storage(args)
    foundation = args.substrate
    cluster = foundation.kubernetes
    namespace = on_kubernetes.namespace_of(cluster)
    key = foundation.kms_key.arn
    role = foundation.irsa_role(f"{name}-server", namespace, name,
                                prefix_statements(args.storage.buckets["warehouse"], ROOT_PATH, key), parent)
    backup_annotations = None
    if (bucket := snapshots.bucket(args.storage)) is not None:
        backup_role = foundation.irsa_role(f"{name}-etcd-backup", namespace, f"{name}-etcd-backup",
                                           prefix_statements(bucket, ETCD_STORE, key), parent)
        backup_annotations = {"eks.amazonaws.com/role-arn": backup_role.arn}
    region = foundation.region
    s3 = {"host": f"s3.{region}.amazonaws.com", "port": "443", "useSSL": True, "useIAM": True,
          "cloudProvider": "aws", "region": region}
    egress = [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}], "ports": [{"protocol": "TCP", "port": 443}]}]
    return on_kubernetes.milvus(name, dataclasses.replace(args, substrate=cluster), parent, s3=s3, egress=egress,
                                s3_port=None, service_account_annotations={"eks.amazonaws.com/role-arn": role.arn},
                                backup_service_account_annotations=backup_annotations)
