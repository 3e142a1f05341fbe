"""The workloads on AWS: the Kubernetes adapter on EKS, the images in ECR (images.py), and no keys anywhere: every
pod runs as the `dataplatform-workloads` service account, which assumes the workloads' IAM role (IRSA). The service
adapters already grant that role what their service needs (the buckets and the platform key, the Glue catalog's
namespaces, the MSK topics); the workloads add idempotent writes to MSK (the producer and ingest's clients are
idempotent). The namespace's egress to MSK and the AWS APIs is opened by the Kafka adapter and the foundation.
"""
from __future__ import annotations

import dataclasses

import pulumi

from components.targets.aws import WORKLOAD_SERVICE_ACCOUNT
from components.workloads import WorkloadEndpoints, WorkloadsArgs
from components.workloads.kubernetes import on_cluster


def deploy(name: str, args: WorkloadsArgs, parent: pulumi.Resource) -> WorkloadEndpoints:
    foundation = args.substrate
    if args.kafka is not None:
        scope = pulumi.Output.concat("arn:aws:kafka:", foundation.region, ":", foundation.account_id)
        foundation.grant([{"Sid": "WorkloadsIdempotentWrites", "Effect": "Allow",
                           "Action": ["kafka-cluster:WriteDataIdempotently"],
                           "Resource": pulumi.Output.concat(scope, f":cluster/{foundation.prefix}-*/*")}])
    return on_cluster(name, dataclasses.replace(args, substrate=foundation.kubernetes), parent, foundation.kubernetes,
                      service_account=WORKLOAD_SERVICE_ACCOUNT, create_service_account=False,
                      extra_env={"AWS_REGION": foundation.region})
