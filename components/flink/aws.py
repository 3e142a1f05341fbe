"""Flink on AWS, by `services.flink.aws_mode`:

- `eks` (default): the Kubernetes adapter on EKS (operator, one FlinkDeployment per job, savepoint upgrades,
  Kubernetes HA), checkpoints in the `checkpoints` bucket, and no keys: the jobs' service account assumes an IAM
  role (IRSA) that may read and write the checkpoints and warehouse buckets, use the platform key, the Glue catalog
  and the MSK cluster. Why the default: the same FlinkDeployments, Flink version and SQL as on Kubernetes, savepoints
  the team controls (and can move), and no per-KPU price on top of the nodes that already run.
- `managed`: one Managed Service for Apache Flink application per job, running the job artifact from
  `s3://<checkpoints bucket>/flink/applications/medallion-jobs.jar` (uploaded by the job packaging issue; the
  deployment fails naming the object until it exists), inside the VPC (the `clients` security group lets it reach
  MSK), with service-managed checkpoints and snapshots (restored from the latest on every update), encrypted with
  the platform key, logging to CloudWatch. The service's nearest Flink 2 runtime is pinned in versions.yaml
  (`managed.managed_flink_runtime`); it is not the exact Flink version of the other targets.
"""
from __future__ import annotations

import json

import pulumi
import pulumi_aws as aws

from components.flink import JOBS, FlinkArgs, FlinkEndpoints, packaged_jobs
from components.flink import kubernetes as on_kubernetes
from components.flink.conf import checkpoints_bucket
from components.kafka.aws import IAM_PORT
from components.targets.aws import policy_document

CODE_KEY = "flink/applications/medallion-jobs.jar"
PROPERTY_GROUP = "dataplatform"


def deploy(name: str, args: FlinkArgs, parent: pulumi.Resource) -> FlinkEndpoints:
    if args.settings.aws_mode == "managed":
        return managed(name, args, parent)
    return eks(name, args, parent)


def _bucket_arn(bucket: pulumi.Input[str]) -> pulumi.Output[str]:
    return pulumi.Output.concat("arn:aws:s3:::", bucket)


def job_statements(args: FlinkArgs) -> list[dict]:
    """What a job needs: its state and the warehouse in S3 (and the key they are encrypted with), the Glue catalog,
    the platform's MSK cluster (IAM auth)."""
    foundation = args.substrate
    buckets = [checkpoints_bucket(args.storage), *([args.storage.buckets["warehouse"]]
                                                   if "warehouse" in args.storage.buckets else [])]
    arns = [_bucket_arn(b) for b in buckets]
    statements = [
        {"Sid": "FlinkBuckets", "Effect": "Allow", "Action": ["s3:ListBucket", "s3:GetBucketLocation"],
         "Resource": arns},
        {"Sid": "FlinkObjects", "Effect": "Allow",
         "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"],
         "Resource": [pulumi.Output.concat(arn, "/*") for arn in arns]},
        {"Sid": "FlinkKey", "Effect": "Allow", "Action": ["kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey"],
         "Resource": foundation.kms_key.arn},
    ]
    scope = pulumi.Output.concat(foundation.region, ":", foundation.account_id)
    if args.catalog is not None and args.catalog.type == "glue":
        glue = pulumi.Output.concat("arn:aws:glue:", scope)
        statements.append({
            "Sid": "FlinkGlueCatalog", "Effect": "Allow",
            "Action": ["glue:GetCatalog", "glue:GetDatabase", "glue:GetDatabases", "glue:GetTable",
                       "glue:GetTables", "glue:CreateTable", "glue:UpdateTable"],
            "Resource": [pulumi.Output.concat(glue, ":catalog"),
                         *[pulumi.Output.concat(glue, f":database/{ns}") for ns in args.catalog.namespaces],
                         *[pulumi.Output.concat(glue, f":table/{ns}/*") for ns in args.catalog.namespaces]]})
    if args.kafka is not None:
        kafka = pulumi.Output.concat("arn:aws:kafka:", scope)
        statements.append({
            "Sid": "FlinkKafka", "Effect": "Allow",
            "Action": ["kafka-cluster:Connect", "kafka-cluster:DescribeCluster", "kafka-cluster:DescribeTopic",
                       "kafka-cluster:ReadData", "kafka-cluster:WriteData", "kafka-cluster:AlterGroup",
                       "kafka-cluster:DescribeGroup", "kafka-cluster:DescribeTransactionalId",
                       "kafka-cluster:AlterTransactionalId"],
            "Resource": [pulumi.Output.concat(kafka, f":{kind}/{foundation.prefix}-*")
                         for kind in ("cluster", "topic", "group", "transactional-id")]})
    return statements


def eks(name: str, args: FlinkArgs, parent: pulumi.Resource) -> FlinkEndpoints:
    foundation = args.substrate
    cluster = foundation.kubernetes
    role = foundation.irsa_role(f"{name}-jobs", cluster.namespace, on_kubernetes.JOB_SERVICE_ACCOUNT,
                                job_statements(args), parent)
    if args.kafka is not None:
        foundation.allow_from_pods(f"{name}-kafka", IAM_PORT, cluster.selector(name, "job"), parent)
    return on_kubernetes.on_cluster(name, args, parent, cluster, env=[{"name": "AWS_REGION",
                                                                       "value": foundation.region}],
                                    region=foundation.region,
                                    service_account_annotations={"eks.amazonaws.com/role-arn": role.arn})


def _properties(args: FlinkArgs, job) -> dict[str, pulumi.Input[str]]:
    """What the job reads at run time (`KinesisAnalyticsRuntime.getApplicationProperties()`)."""
    properties: dict[str, pulumi.Input[str]] = {"sql.script": job.script, "sql.statements": ",".join(job.statements)}
    if args.kafka is not None:
        properties.update({"kafka.bootstrap.servers": args.kafka.bootstrap_servers,
                           "kafka.security.protocol": args.kafka.security_protocol,
                           **({"kafka.sasl.mechanism": args.kafka.sasl_mechanism} if args.kafka.sasl_mechanism
                              else {})})
    if args.catalog is not None:
        properties.update({"catalog.uri": args.catalog.uri, "catalog.warehouse": args.catalog.warehouse})
    return properties


def managed(name: str, args: FlinkArgs, parent: pulumi.Resource) -> FlinkEndpoints:
    foundation = args.substrate
    settings = args.settings
    bucket_arn = _bucket_arn(checkpoints_bucket(args.storage))
    role = aws.iam.Role(f"{name}-apps-role", assume_role_policy=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service":
                                                                                "kinesisanalytics.amazonaws.com"},
                                                "Action": "sts:AssumeRole"}]}),
        tags=foundation.tagged(), opts=foundation.opts(parent))
    logs = foundation.log_group(f"{name}-logs", f"/aws/kinesis-analytics/{foundation.prefix}-{name}", parent)
    policy = aws.iam.RolePolicy(f"{name}-apps-policy", role=role.id, policy=policy_document([
        *job_statements(args),
        {"Sid": "FlinkCode", "Effect": "Allow", "Action": ["s3:GetObject", "s3:GetObjectVersion"],
         "Resource": pulumi.Output.concat(bucket_arn, "/", CODE_KEY)},
        {"Sid": "FlinkLogs", "Effect": "Allow",
         "Action": ["logs:PutLogEvents", "logs:DescribeLogGroups", "logs:DescribeLogStreams"],
         "Resource": [logs.arn, pulumi.Output.concat(logs.arn, ":*")]},
        {"Sid": "FlinkVpc", "Effect": "Allow",
         "Action": ["ec2:DescribeVpcs", "ec2:DescribeSubnets", "ec2:DescribeSecurityGroups",
                    "ec2:DescribeDhcpOptions", "ec2:DescribeNetworkInterfaces", "ec2:CreateNetworkInterface",
                    "ec2:CreateNetworkInterfacePermission", "ec2:DeleteNetworkInterface"],
         "Resource": "*"},
    ]), opts=foundation.opts(parent))
    security_group = aws.ec2.SecurityGroup(
        f"{name}-apps-sg", vpc_id=foundation.vpc_id, description="Managed Flink applications (egress only)",
        egress=[{"protocol": "-1", "from_port": 0, "to_port": 0, "cidr_blocks": ["0.0.0.0/0"],
                 "description": "AWS APIs, S3, MSK"}],
        tags=foundation.tagged(f"{foundation.prefix}-{name}-apps"), opts=foundation.opts(parent))
    parallelism = settings.taskmanagers * settings.task_slots
    for job in packaged_jobs():
        stream = aws.cloudwatch.LogStream(f"{name}-{job.name}", log_group_name=logs.name, name=job.name,
                                          opts=foundation.opts(parent))
        aws.kinesisanalyticsv2.Application(
            f"{name}-{job.name}", name=f"{foundation.prefix}-{job.name}", description=job.description,
            runtime_environment=args.versions.managed["managed_flink_runtime"], service_execution_role=role.arn,
            application_configuration={
                "application_code_configuration": {"code_content_type": "ZIPFILE", "code_content": {
                    "s3_content_location": {"bucket_arn": bucket_arn, "file_key": CODE_KEY}}},
                "application_encryption_configuration": {"key_type": "CUSTOMER_MANAGED_KEY",
                                                         "key_id": foundation.kms_key.arn},
                "application_snapshot_configuration": {"snapshots_enabled": True},
                "environment_properties": {"property_groups": [
                    {"property_group_id": PROPERTY_GROUP, "property_map": _properties(args, job)}]},
                "flink_application_configuration": {
                    "checkpoint_configuration": {
                        "configuration_type": "CUSTOM", "checkpointing_enabled": True,
                        "checkpoint_interval": settings.checkpoint_interval_s * 1000,
                        "min_pause_between_checkpoints": max(1, settings.checkpoint_interval_s // 2) * 1000},
                    "monitoring_configuration": {"configuration_type": "CUSTOM", "log_level": "INFO",
                                                 "metrics_level": "TASK"},
                    "parallelism_configuration": {"configuration_type": "CUSTOM", "parallelism": parallelism,
                                                  "parallelism_per_kpu": settings.task_slots,
                                                  "auto_scaling_enabled": False}},
                "run_configuration": {
                    "application_restore_configuration": {"application_restore_type": "RESTORE_FROM_LATEST_SNAPSHOT"},
                    "flink_run_configuration": {"allow_non_restored_state": False}},
                "vpc_configuration": {"subnet_ids": foundation.private_subnet_ids,
                                      "security_group_ids": [security_group.id,
                                                             foundation.clients_security_group.id]},
            },
            cloudwatch_logging_options={"log_stream_arn": stream.arn}, start_application=True,
            tags=foundation.tagged(f"{foundation.prefix}-{job.name}"),
            opts=foundation.opts(parent, depends_on=[policy]))
    return FlinkEndpoints(mode="managed", rest_url=None, checkpoints=None, savepoints=None,
                          jobs=tuple(job.name for job in JOBS))
