"""Iceberg catalog on AWS, by `services.catalog.aws_flavor`:

- `glue` (default): the Glue Data Catalog, one database per namespace with its location under the warehouse
  bucket (so tables created through the Iceberg REST API land there). Clients use Glue's Iceberg REST endpoint
  with SigV4 and the workloads' IAM role; the pyiceberg `warehouse` is the account id (the default catalog).
- `rest`: Lakekeeper on EKS through the Kubernetes adapter, its metadata in RDS PostgreSQL (encrypted with the
  platform key, automated backups, private subnets only, reachable from the EKS nodes alone), reading and
  writing the warehouse bucket with its own IAM role (IRSA) instead of keys.
"""
from __future__ import annotations

import dataclasses

import pulumi
import pulumi_aws as aws

from components.catalog import CatalogArgs, CatalogEndpoints
from components.catalog import kubernetes as on_kubernetes

BACKUP_DAYS = {True: 14, False: 7}  # by prod


def deploy(name: str, args: CatalogArgs, parent: pulumi.Resource) -> CatalogEndpoints:
    if args.settings.aws_flavor == "glue":
        return glue(name, args, parent)
    return rest(name, args, parent)


def _warehouse_location(args: CatalogArgs, *parts: str) -> pulumi.Output[str]:
    return pulumi.Output.concat("s3://", args.storage.buckets["warehouse"], "/", "/".join(
        [args.settings.warehouse, *parts]))


def glue(name: str, args: CatalogArgs, parent: pulumi.Resource) -> CatalogEndpoints:
    foundation = args.substrate
    settings = args.settings
    region = foundation.region
    for namespace in settings.namespaces:
        aws.glue.CatalogDatabase(f"{name}-{namespace}", name=namespace,
                                 location_uri=_warehouse_location(args, f"{namespace}.db"),
                                 description=f"Iceberg namespace {namespace} of the {settings.warehouse} warehouse",
                                 tags=foundation.tagged(), opts=foundation.opts(parent))
    glue_arn = pulumi.Output.concat("arn:aws:glue:", region, ":", foundation.account_id)
    foundation.grant([
        {"Sid": "GlueCatalog", "Effect": "Allow",
         "Action": ["glue:GetCatalog", "glue:GetDatabase", "glue:GetDatabases", "glue:GetTable", "glue:GetTables",
                    "glue:CreateTable", "glue:UpdateTable", "glue:DeleteTable", "glue:CreateDatabase"],
         "Resource": [pulumi.Output.concat(glue_arn, ":catalog"),
                      *[pulumi.Output.concat(glue_arn, f":database/{ns}") for ns in settings.namespaces],
                      *[pulumi.Output.concat(glue_arn, f":table/{ns}/*") for ns in settings.namespaces]]},
    ])
    uri = f"https://glue.{region}.amazonaws.com/iceberg"
    properties = foundation.account_id.apply(lambda account: {
        "type": "rest", "uri": uri, "warehouse": account, "rest.sigv4-enabled": "true",
        "rest.signing-name": "glue", "rest.signing-region": region, "s3.region": region})
    return CatalogEndpoints(type="glue", uri=uri, warehouse=foundation.account_id, properties=properties,
                            namespaces=settings.namespaces)


def rds(name: str, args: CatalogArgs, parent: pulumi.Resource, password: pulumi.Output[str]) -> aws.rds.Instance:
    foundation = args.substrate
    settings = args.settings
    prod = foundation.prod
    identifier = f"{foundation.prefix}-{name}"
    subnets = aws.rds.SubnetGroup(f"{name}-db-subnets", name=f"{identifier}-subnets",
                                  subnet_ids=foundation.private_subnet_ids,
                                  description="Catalog database: private subnets only", tags=foundation.tagged(),
                                  opts=foundation.opts(parent))
    security_group = foundation.data_security_group(f"{name}-db", on_kubernetes.DB_PORT, "Catalog PostgreSQL",
                                                    parent)
    foundation.allow_from_pods(f"{name}-db", on_kubernetes.DB_PORT, {"app.kubernetes.io/name": name}, parent)
    return aws.rds.Instance(
        f"{name}-db", identifier=identifier, engine="postgres",
        engine_version=args.versions.managed["rds_postgres_version"],
        instance_class=foundation.settings.rds_instance_class,
        allocated_storage=settings.db_storage_gb, max_allocated_storage=settings.db_storage_gb * 4,
        storage_type="gp3", storage_encrypted=True, kms_key_id=foundation.kms_key.arn,
        db_name=on_kubernetes.DB_NAME, username=on_kubernetes.DB_USER, password=password,
        db_subnet_group_name=subnets.name, vpc_security_group_ids=[security_group.id], publicly_accessible=False,
        multi_az=prod, backup_retention_period=BACKUP_DAYS[prod], copy_tags_to_snapshot=True,
        deletion_protection=prod, skip_final_snapshot=not prod,
        final_snapshot_identifier=f"{identifier}-final" if prod else None,
        auto_minor_version_upgrade=True, performance_insights_enabled=True,
        performance_insights_kms_key_id=foundation.kms_key.arn,
        enabled_cloudwatch_logs_exports=["postgresql", "upgrade"], tags=foundation.tagged(identifier),
        opts=foundation.opts(parent))


def rest(name: str, args: CatalogArgs, parent: pulumi.Resource) -> CatalogEndpoints:
    foundation = args.substrate
    settings = args.settings
    storage = args.storage
    cluster = foundation.kubernetes
    password = on_kubernetes.db_password(name, args, parent)  # generated ones are alphanumeric, as RDS wants
    instance = rds(name, args, parent, password)
    database = on_kubernetes.Database(
        url=on_kubernetes.database_url(instance.address, instance.port, password, "require"), ready=[instance])

    bucket_arn = pulumi.Output.concat("arn:aws:s3:::", storage.buckets["warehouse"])
    role = foundation.irsa_role(f"{name}-server", cluster.namespace, name, [
        {"Effect": "Allow", "Action": ["s3:ListBucket", "s3:GetBucketLocation"], "Resource": bucket_arn},
        {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"],
         "Resource": pulumi.Output.concat(bucket_arn, "/", settings.warehouse, "/*")},
        {"Effect": "Allow", "Action": ["kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey"],
         "Resource": foundation.kms_key.arn}], parent)
    warehouse = pulumi.Output.from_input(storage.buckets["warehouse"]).apply(lambda bucket: {
        "warehouse-name": settings.warehouse,
        "storage-profile": {"type": "s3", "bucket": bucket, "key-prefix": settings.warehouse,
                            "region": foundation.region, "flavor": "aws", "sts-enabled": False},
        "storage-credential": {"type": "s3", "credential-type": "aws-system-identity"},
    })
    on_eks = dataclasses.replace(args, substrate=cluster)
    base = on_kubernetes.lakekeeper(
        name, on_eks, parent, database, warehouse,
        env={"LAKEKEEPER__ENABLE_AWS_SYSTEM_CREDENTIALS": "true",
             "LAKEKEEPER__S3_ENABLE_DIRECT_SYSTEM_CREDENTIALS": "true", "AWS_REGION": foundation.region},
        service_account_annotations={"eks.amazonaws.com/role-arn": role.arn})
    uri = f"{base}/catalog"
    properties = {"type": "rest", "uri": uri, "warehouse": settings.warehouse, "s3.region": foundation.region}
    return CatalogEndpoints(type="rest", uri=uri, warehouse=settings.warehouse, properties=properties,
                            namespaces=settings.namespaces, metrics=(on_kubernetes.metrics_endpoint(name, cluster),))
