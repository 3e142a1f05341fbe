"""VM policies over real pulumi-command remote commands, and the platform (stack) policies on Kubernetes and AWS
shapes: Strimzi and MSK topics, secrets in outputs and env, backups of StatefulSets."""
import json

import pulumi
import pulumi_aws as aws
import pulumi_command as command
import pulumi_kubernetes as k8s
import pytest

from .conftest import messages, run

UNIT = ("[Unit]\nDescription=dataplatform catalog-db (postgres:17.6-bookworm)\n[Service]\n"
        "ExecStart=/usr/bin/docker run --rm --name dp-catalog-db --network host "
        "--volume /var/lib/dataplatform/catalog-db:/var/lib/postgresql/data postgres:17.6-bookworm\nRestart=always\n")
BROKER_ENV = ("KAFKA_PROCESS_ROLES=broker,controller\nKAFKA_DEFAULT_REPLICATION_FACTOR={r}\n"
              "KAFKA_MIN_INSYNC_REPLICAS=2\n")


def vm_program(flip: str | None = None):
    def program():
        key = pulumi.Output.secret("-----BEGIN OPENSSH PRIVATE KEY-----\nmock\n-----END OPENSSH PRIVATE KEY-----")
        password = pulumi.Output.secret("generated-db-password")
        connection = ({"host": "10.0.0.5", "user": "ubuntu", "password": "hunter2"} if flip == "password"
                      else {"host": "10.0.0.5", "user": "ubuntu", "private_key": key})
        create = {"secret-in-command": pulumi.Output.concat("PGPASSWORD=", password, " psql -h db -c 'select 1'"),
                  "literal-in-command": "psql 'postgresql://app:hunter2xyz@db:5432/app' -c 'select 1'"}.get(
            flip, "psql -h db -c 'select 1'")
        command.remote.Command("migrate", connection=connection, create=create, environment={"PGPASSWORD": password})
        command.remote.Command("catalog-db-unit", connection=connection, create="sudo dpctl unit-apply x",
                               stdin=UNIT)
        command.remote.Command("kafka-env", connection=connection, create="sudo dpctl put-file /etc/kafka/env",
                               stdin=BROKER_ENV.format(r=1 if flip == "replication" else 3))
        if flip != "no-backup":
            command.remote.Command("catalog-db-backup", connection=connection, create="sudo dpctl unit-apply y",
                                   stdin="# dataplatform.io/backup-of: catalog-db\n[Service]\nExecStart=/bin/true\n")
    return program


def test_key_authenticated_vm_commands_pass():
    report = run(vm_program())
    assert report.mandatory == [], [(v.policy, v.message) for v in report.mandatory]


VM_CASES = [
    ("password", "vm-ssh-key-auth", "the SSH connection authenticates with a password"),
    ("password", "vm-ssh-key-auth", "has no private key"),
    ("secret-in-command", "vm-no-secrets-in-commands", "the create command contains a Pulumi secret"),
    ("literal-in-command", "vm-no-secrets-in-commands", "looks like a literal credential"),
    ("literal-in-command", "secrets-as-pulumi-secrets", "migrate (command:remote:Command): create is plain text"),
    ("no-backup", "stateful-backups", "VM service catalog-db on 10.0.0.5 keeps state in /var/lib/dataplatform/"),
    ("replication", "kafka-replication", "Kafka on host (kafka-env): default replication factor is 1, below 3"),
]


@pytest.mark.parametrize("flip, policy, expected", VM_CASES, ids=[f"{c[0]}-{c[1]}" for c in VM_CASES])
def test_weakening_vm_commands_violates_its_policy(flip, policy, expected):
    found = messages(run(vm_program(flip)), policy)
    assert any(expected in m for m in found), found


def msk_program(flip: str | None = None):
    def program():
        config = aws.msk.Configuration("kafka-config", kafka_versions=["3.9.x"], server_properties=(
            f"default.replication.factor=3\nmin.insync.replicas={1 if flip == 'min-isr' else 2}\n"))
        cluster = aws.msk.Cluster("kafka", kafka_version="3.9.x", number_of_broker_nodes=3,
                                  broker_node_group_info={"instance_type": "kafka.m7g.large",
                                                          "client_subnets": ["a", "b", "c"]},
                                  configuration_info={"arn": config.arn, "revision": 1})
        configs = {"retention.ms": "-1" if flip == "forever" else "86400000", "cleanup.policy": "delete"}
        if flip == "no-retention":
            del configs["retention.ms"]
        aws.msk.Topic("orders", cluster_arn=cluster.arn, name="orders", partition_count=6,
                      replication_factor=2 if flip == "topic-replication" else 3, configs=json.dumps(configs))
        aws.msk.Topic("customers", cluster_arn=cluster.arn, name="customers", partition_count=1,
                      replication_factor=3, configs=json.dumps({"cleanup.policy": "compact"}))
    return program


def strimzi_program(flip: str | None = None):
    def program():
        k8s.apiextensions.CustomResource("kafka", api_version="kafka.strimzi.io/v1", kind="Kafka",
                                         metadata={"name": "kafka", "namespace": "data"},
                                         spec={"kafka": {"config": {"default.replication.factor": 3,
                                                                    "min.insync.replicas": 2}}})
        k8s.apiextensions.CustomResource("orders", api_version="kafka.strimzi.io/v1", kind="KafkaTopic",
                                         metadata={"name": "orders", "namespace": "data"},
                                         spec={"partitions": 12, "replicas": 2 if flip == "topic-replication" else 3,
                                               "config": {} if flip == "no-retention" else {"retention.ms": 86400000}})
    return program


KAFKA_CASES = [
    (msk_program, None, "kafka-replication", None),
    (msk_program, "min-isr", "kafka-replication", "MSK cluster kafka: min.insync.replicas is 1, below 2"),
    (msk_program, "topic-replication", "kafka-replication", "topic orders: replication factor 2 < 3"),
    (msk_program, "forever", "kafka-topic-retention", "topic orders keeps data forever (retention -1)"),
    (msk_program, "no-retention", "kafka-topic-retention", "topic orders sets no retention.ms"),
    (strimzi_program, None, "kafka-replication", None),
    (strimzi_program, "topic-replication", "kafka-replication", "topic orders: replication factor 2 < 3"),
    (strimzi_program, "no-retention", "kafka-topic-retention", "topic orders sets no retention.ms"),
]


@pytest.mark.parametrize("program, flip, policy, expected", KAFKA_CASES,
                         ids=[f"{c[0].__name__}-{c[1]}-{c[2]}" for c in KAFKA_CASES])
def test_kafka_rules_on_msk_and_strimzi(program, flip, policy, expected):
    report = run(program(flip))
    found = messages(report, policy)
    if expected is None:
        assert found == [] and report.of("kafka-topic-retention") == []
    else:
        assert any(expected in m for m in found), found


@pytest.mark.parametrize("secret", [True, False])
def test_credentials_in_stack_outputs_and_container_env(secret):
    def program():
        password = pulumi.Output.secret("generated") if secret else "generated-but-plain"
        pulumi.export("catalog", {"uri": "http://catalog:8181", "db_password": password})
        env = ({"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}} if secret
               else {"name": "DB_PASSWORD", "value": "generated-but-plain"})
        k8s.batch.v1.Job("migrate", spec={"template": {"spec": {"restartPolicy": "Never", "containers": [
            {"name": "migrate", "image": "postgres:17.6-bookworm", "env": [env]}]}}})
        command.local.Command("seed", create="psql -h db -f seed.sql", environment={"PGPASSWORD": password})
    found = messages(run(program), "secrets-as-pulumi-secrets")
    if secret:
        assert found == []
    else:
        assert any("stack output: catalog.db_password is plain text" in m for m in found), found
        assert any("container migrate env DB_PASSWORD is a literal value" in m for m in found), found
        assert any("seed (command:local:Command): environment.PGPASSWORD is plain text" in m for m in found), found


@pytest.mark.parametrize("covered", ["none", "cronjob", "velero"])
def test_statefulset_backups(covered):
    def program():
        k8s.apps.v1.StatefulSet("catalog-db", metadata={"name": "catalog-db", "namespace": "data"}, spec={
            "serviceName": "catalog-db", "selector": {"matchLabels": {"app": "db"}},
            "template": {"metadata": {"labels": {"app": "db"}},
                         "spec": {"containers": [{"name": "db", "image": "postgres:17.6-bookworm"}]}},
            "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {
                "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "20Gi"}}}}]})
        if covered == "cronjob":
            k8s.batch.v1.CronJob("catalog-db-backup", metadata={
                "namespace": "data", "annotations": {"dataplatform.io/backup-of": "catalog-db"}}, spec={
                "schedule": "0 3 * * *", "jobTemplate": {"spec": {"template": {"spec": {
                    "restartPolicy": "OnFailure",
                    "containers": [{"name": "dump", "image": "postgres:17.6-bookworm"}]}}}}})
        if covered == "velero":
            k8s.apiextensions.CustomResource("daily", api_version="velero.io/v1", kind="Schedule",
                                             metadata={"namespace": "velero"},
                                             spec={"schedule": "0 2 * * *",
                                                   "template": {"includedNamespaces": ["data"]}})
    found = messages(run(program), "stateful-backups")
    assert (found == []) == (covered != "none"), found
