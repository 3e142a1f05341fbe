"""Kafka on AWS: Amazon MSK (provisioned) with IAM authentication only (SASL/IAM over TLS, port 9098), TLS between
clients and brokers and between brokers, storage encrypted with the platform's KMS key, broker logs to CloudWatch,
Prometheus exporters on, and a broker configuration with the platform's replication rules and no topic
auto-creation. Topics are `aws.msk.Topic` resources (MSK's topic API), with the same configs as on every target.

MSK places brokers evenly over 2 or 3 client subnets (one per AZ), so the broker count must be a multiple of the
subnets used: 3 AZs when `brokers` divides by 3, else 2 AZs when it divides by 2; anything else is refused.
Clients use `security.protocol=SASL_SSL` with `sasl.mechanism=OAUTHBEARER` and the MSK IAM token provider.
"""
from __future__ import annotations

import json

import pulumi
import pulumi_aws as aws

from components.kafka import KafkaArgs, KafkaEndpoints, topic_config

IAM_PORT = 9098


def client_subnet_count(brokers: int, available: int) -> int:
    """How many subnets (AZs) MSK spreads the brokers over: 3 or 2, dividing the broker count."""
    for count in (3, 2):
        if count <= available and brokers % count == 0:
            return count
    raise ValueError(
        f"services.kafka.brokers: MSK spreads brokers evenly over 2 or 3 availability zones, so the broker count "
        f"must be a multiple of 2 or 3 (with {available} private subnets); got {brokers}. Use e.g. 2 for dev "
        f"(with default_replication <= 2) or 3 for prod")


def server_properties(kafka) -> str:
    return "\n".join([
        "auto.create.topics.enable=false",
        f"default.replication.factor={kafka.replication}",
        f"min.insync.replicas={kafka.min_isr}",
        f"offsets.topic.replication.factor={kafka.replication}",
        f"transaction.state.log.replication.factor={kafka.replication}",
        f"transaction.state.log.min.isr={kafka.min_isr}",
        "unclean.leader.election.enable=false",
    ]) + "\n"


def deploy(name: str, args: KafkaArgs, parent: pulumi.Resource) -> KafkaEndpoints:
    foundation = args.substrate
    kafka = args.settings
    subnets = foundation.private_subnet_ids[:client_subnet_count(kafka.brokers, len(foundation.private_subnet_ids))]
    version = args.versions.managed["msk_kafka_version"]
    cluster_name = f"{foundation.prefix}-{name}"
    configuration = aws.msk.Configuration(f"{name}-configuration", kafka_versions=[version],
                                          server_properties=server_properties(kafka),
                                          description="Data platform broker defaults", opts=foundation.opts(parent))
    security_group = foundation.data_security_group(name, IAM_PORT, "Kafka (SASL/IAM over TLS)", parent)
    foundation.allow_from_pods(name, IAM_PORT, {}, parent)  # any workload of the namespace may produce/consume
    logs = foundation.log_group(f"{name}-broker-logs", f"/aws/msk/{cluster_name}", parent)
    cluster = aws.msk.Cluster(
        f"{name}-cluster", cluster_name=cluster_name, kafka_version=version, number_of_broker_nodes=kafka.brokers,
        broker_node_group_info={
            "instance_type": kafka.aws_instance_type, "client_subnets": subnets,
            "security_groups": [security_group.id],
            "storage_info": {"ebs_storage_info": {"volume_size": kafka.storage_gb}}},
        client_authentication={"sasl": {"iam": True}, "unauthenticated": False},
        encryption_info={"encryption_at_rest_kms_key_arn": foundation.kms_key.arn,
                         "encryption_in_transit": {"client_broker": "TLS", "in_cluster": True}},
        configuration_info={"arn": configuration.arn, "revision": configuration.latest_revision},
        logging_info={"broker_logs": {"cloudwatch_logs": {"enabled": True, "log_group": logs.name}}},
        open_monitoring={"prometheus": {"jmx_exporter": {"enabled_in_broker": True},
                                        "node_exporter": {"enabled_in_broker": True}}},
        enhanced_monitoring="PER_BROKER", tags=foundation.tagged(cluster_name), opts=foundation.opts(parent))

    for topic in kafka.topics:
        aws.msk.Topic(f"{name}-topic-{topic.name}", cluster_arn=cluster.arn, name=topic.name,
                      partition_count=topic.partitions, replication_factor=topic.replication or kafka.replication,
                      configs=json.dumps(topic_config(topic, kafka.replication, kafka.min_isr)),
                      opts=foundation.opts(parent))

    # kafka-cluster:* actions are scoped by ARN: cluster/<name>/<uuid>, topic/<name>/<uuid>/*, group/<name>/<uuid>/*
    def scoped(kind: str) -> pulumi.Output[str]:
        return cluster.arn.apply(lambda arn: arn.replace(":cluster/", f":{kind}/", 1) + "/*")

    foundation.grant([
        {"Sid": "KafkaConnect", "Effect": "Allow",
         "Action": ["kafka-cluster:Connect", "kafka-cluster:DescribeCluster"], "Resource": cluster.arn},
        {"Sid": "KafkaTopics", "Effect": "Allow",
         "Action": ["kafka-cluster:DescribeTopic", "kafka-cluster:ReadData", "kafka-cluster:WriteData",
                    "kafka-cluster:DescribeTopicDynamicConfiguration"], "Resource": scoped("topic")},
        {"Sid": "KafkaGroups", "Effect": "Allow",
         "Action": ["kafka-cluster:AlterGroup", "kafka-cluster:DescribeGroup"], "Resource": scoped("group")},
        {"Sid": "KafkaTransactions", "Effect": "Allow",
         "Action": ["kafka-cluster:DescribeTransactionalId", "kafka-cluster:AlterTransactionalId"],
         "Resource": scoped("transactional-id")},
    ])
    return KafkaEndpoints(bootstrap_servers=cluster.bootstrap_brokers_sasl_iam, security_protocol="SASL_SSL",
                          sasl_mechanism="OAUTHBEARER", aws_region=foundation.region,
                          topics=tuple(t.name for t in kafka.topics))
