"""Trino on AWS: the Kubernetes adapter on EKS. The `iceberg` catalog is the Glue Data Catalog (or Lakekeeper with
`catalog.aws_flavor: rest`); S3, KMS and Glue are reached with Trino's own IAM role (IRSA: only its service account
can assume it), scoped to the warehouse bucket, the platform key and the catalog's namespaces. No keys anywhere.

`athena_workgroup: true` adds an Athena workgroup on the same Glue tables for ad-hoc SQL without Trino: engine v3,
its settings enforced, results under `athena-results/` in the warehouse bucket encrypted with the platform key; the
workloads' role may run queries in it.
"""
from __future__ import annotations

import dataclasses

import pulumi
import pulumi_aws as aws

from components.trino import TrinoArgs, TrinoEndpoints, conf, require
from components.trino import kubernetes as on_kubernetes

RESULTS_PREFIX = "athena-results"
GLUE_ACTIONS = ["glue:GetCatalog", "glue:GetDatabase", "glue:GetDatabases", "glue:GetTable", "glue:GetTables",
                "glue:CreateTable", "glue:UpdateTable", "glue:DeleteTable", "glue:GetPartitions"]


def iam_statements(args: TrinoArgs) -> list[dict]:
    foundation, storage, catalog = args.substrate, args.storage, args.catalog
    bucket_arn = pulumi.Output.concat("arn:aws:s3:::", storage.buckets["warehouse"])
    statements = [
        {"Sid": "WarehouseBucket", "Effect": "Allow", "Action": ["s3:ListBucket", "s3:GetBucketLocation"],
         "Resource": bucket_arn},
        {"Sid": "WarehouseObjects", "Effect": "Allow",
         "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"],
         "Resource": pulumi.Output.concat(bucket_arn, "/*")},
        {"Sid": "PlatformKey", "Effect": "Allow", "Action": ["kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey"],
         "Resource": foundation.kms_key.arn}]
    if catalog.type == "glue":
        glue_arn = pulumi.Output.concat("arn:aws:glue:", foundation.region, ":", foundation.account_id)
        statements.append({"Sid": "GlueCatalog", "Effect": "Allow", "Action": GLUE_ACTIONS, "Resource": [
            pulumi.Output.concat(glue_arn, ":catalog"),
            *[pulumi.Output.concat(glue_arn, f":database/{ns}") for ns in catalog.namespaces],
            *[pulumi.Output.concat(glue_arn, f":table/{ns}/*") for ns in catalog.namespaces]]})
    return statements


def athena_workgroup(name: str, args: TrinoArgs, parent: pulumi.Resource) -> aws.athena.Workgroup:
    foundation = args.substrate
    if args.catalog.type != "glue":
        raise ValueError("services.trino.athena_workgroup: Athena reads the Glue Data Catalog; it needs "
                         "services.catalog.aws_flavor: glue")
    results = pulumi.Output.concat("s3://", args.storage.buckets["warehouse"], f"/{RESULTS_PREFIX}/")
    workgroup = aws.athena.Workgroup(
        f"{name}-athena", name=f"{foundation.prefix}-{name}", force_destroy=not foundation.prod,
        description="Ad-hoc SQL on the platform's Glue tables", configuration={
            "enforce_workgroup_configuration": True, "publish_cloudwatch_metrics_enabled": True,
            "engine_version": {"selected_engine_version": "Athena engine version 3"},
            "result_configuration": {"output_location": results, "encryption_configuration": {
                "encryption_option": "SSE_KMS", "kms_key_arn": foundation.kms_key.arn}}},
        tags=foundation.tagged(), opts=foundation.opts(parent))
    foundation.grant([{"Sid": "AthenaWorkgroup", "Effect": "Allow", "Action": [
        "athena:StartQueryExecution", "athena:StopQueryExecution", "athena:GetQueryExecution",
        "athena:GetQueryResults", "athena:GetWorkGroup"], "Resource": workgroup.arn}])
    return workgroup


def deploy(name: str, args: TrinoArgs, parent: pulumi.Resource) -> TrinoEndpoints:
    require(args)
    foundation = args.substrate
    cluster = foundation.kubernetes
    catalog = args.catalog
    if catalog.type == "glue":
        properties = conf.glue_catalog(foundation.region)
    else:
        properties = conf.rest_catalog(catalog.uri, catalog.warehouse, s3_endpoint=None, region=foundation.region,
                                       path_style=False, static_keys=False)
    role = foundation.irsa_role(f"{name}-server", cluster.namespace, name, iam_statements(args), parent)
    endpoints = on_kubernetes.trino(
        name, dataclasses.replace(args, substrate=cluster), parent, properties, secret_env={},
        env={"AWS_REGION": foundation.region}, service_account_annotations={"eks.amazonaws.com/role-arn": role.arn})
    if args.settings.athena_workgroup:
        endpoints = dataclasses.replace(endpoints, athena_workgroup=athena_workgroup(name, args, parent).name)
    return endpoints
