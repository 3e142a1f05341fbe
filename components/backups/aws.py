"""Backups on AWS: AWS Backup. A vault encrypted with the platform key, a plan with one rule on
`services.backups.schedule` (as an AWS cron expression) that keeps each recovery point `retention_days`, and a
selection covering the warehouse bucket (S3 backups: the bucket is versioned) and, with `catalog.aws_flavor: rest`,
the catalog's RDS instance (matched by the stack's name prefix; RDS also keeps its own automated backups). AWS
Backup assumes its own role with the AWS-managed backup and restore policies. The Kafka topic definitions are
written to `s3://<backups>/kafka/topics.json`. `services.backups.offsite` is refused: the buckets already are versioned
and in AWS Backup (copy its recovery points to another account or region with a vault copy rule instead)."""
from __future__ import annotations

import json

import pulumi
import pulumi_aws as aws

from components.backups import (TOPICS_KEY, BackupArgs, BackupEndpoints, backups_bucket, kafka_topics,
                                topics_document)
from components.backups.schedule import aws_cron
from components.targets.aws import MANAGED

SERVICE_POLICIES = ("service-role/AWSBackupServiceRolePolicyForBackup",
                    "service-role/AWSBackupServiceRolePolicyForRestores",
                    "AWSBackupServiceRolePolicyForS3Backup", "AWSBackupServiceRolePolicyForS3Restore")


def deploy(name: str, args: BackupArgs, parent: pulumi.Resource) -> BackupEndpoints:
    foundation = args.substrate
    settings = args.settings
    if settings.offsite is not None:
        raise ValueError("services.backups.offsite: the aws target backs its buckets up with AWS Backup (and S3 "
                         "versioning); an rclone off-site copy is for compose, vm and kubernetes: remove `offsite`")
    bucket = backups_bucket(args)
    schedule = aws_cron(settings.schedule)
    topics = kafka_topics(args.kafka)
    if topics:
        aws.s3.BucketObjectv2(f"{name}-kafka-topics", bucket=bucket, key=TOPICS_KEY, content=topics_document(topics),
                              content_type="application/json", tags=foundation.tagged(),
                              opts=foundation.opts(parent))
    resources, stores = [], []
    if "warehouse" in args.storage.buckets:
        resources.append(pulumi.Output.concat("arn:aws:s3:::", args.storage.buckets["warehouse"]))
        stores.append("warehouse")
    if args.catalog is not None and args.catalog.type == "rest":  # Lakekeeper on RDS
        resources.append(pulumi.Output.concat("arn:aws:rds:", foundation.region, ":", foundation.account_id,
                                              f":db:{foundation.prefix}-{args.catalog_name}"))
        stores.append(f"{args.catalog_name}-db")
    vault = aws.backup.Vault(f"{name}-vault", name=f"{foundation.prefix}-backups", kms_key_arn=foundation.kms_key.arn,
                             force_destroy=not foundation.prod, tags=foundation.tagged(), opts=foundation.opts(parent))
    if resources:
        plan = aws.backup.Plan(f"{name}-plan", name=f"{foundation.prefix}-backups", rules=[{
            "rule_name": "scheduled", "target_vault_name": vault.name, "schedule": schedule,
            "schedule_expression_timezone": "Etc/UTC", "start_window": 60, "completion_window": 8 * 60,
            "lifecycle": {"delete_after": settings.retention_days},
            "recovery_point_tags": foundation.tagged()}], tags=foundation.tagged(), opts=foundation.opts(parent))
        role = aws.iam.Role(f"{name}-role", assume_role_policy=json.dumps({
            "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service":
                                                                                    "backup.amazonaws.com"},
                                                    "Action": "sts:AssumeRole"}]}),
            tags=foundation.tagged(), opts=foundation.opts(parent))
        attachments = [aws.iam.RolePolicyAttachment(f"{name}-{policy.rsplit('/', 1)[-1]}", role=role.name,
                                                    policy_arn=MANAGED + policy, opts=foundation.opts(parent))
                       for policy in SERVICE_POLICIES]
        aws.iam.RolePolicy(f"{name}-key", role=role.id, policy=foundation.kms_key.arn.apply(lambda arn: json.dumps({
            "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Resource": arn, "Action": [
                "kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey", "kms:CreateGrant"]}]})),
            opts=foundation.opts(parent))
        aws.backup.Selection(f"{name}-selection", name=f"{foundation.prefix}-backups", plan_id=plan.id,
                             iam_role_arn=role.arn, resources=resources,
                             opts=foundation.opts(parent, depends_on=attachments))
    return BackupEndpoints(bucket=bucket, schedule=settings.schedule, retention_days=settings.retention_days,
                           stores=tuple(stores), kafka_topics=topics, vault=vault.name)
