"""Compose policies (and the platform rules on compose) over a project rendered and applied by the real
`ComposeProject` substrate: one `command:local:Command` whose stdin is the compose file."""
import pulumi
import pytest
import yaml

from components.targets.compose import ComposeProject
from stacks.loader import parse

from .conftest import messages, run

TOPICS = ("/opt/kafka/bin/kafka-topics.sh --bootstrap-server kafka:9092 --create --if-not-exists --topic orders "
          "--partitions 3 --replication-factor 3 --config retention.ms=604800000 --config min.insync.replicas=2")


def compose_program(flip: str | None = None):
    def program():
        project = ComposeProject("platform", parse({"target": "compose"}))
        health = {"test": ["CMD-SHELL", "true"], "interval": "10s"}
        replication = "1" if flip == "replication" else "3"
        project.add_service("kafka", {
            "image": "apache/kafka:latest" if flip == "latest" else "apache/kafka:4.1.1", "restart": "unless-stopped",
            "environment": {"KAFKA_PROCESS_ROLES": "broker,controller", "KAFKA_DEFAULT_REPLICATION_FACTOR": replication,
                            "KAFKA_MIN_INSYNC_REPLICAS": "2"},
            "volumes": ["kafka-data:/var/lib/kafka/data"], "healthcheck": health}, volumes=("kafka-data",))
        db = {"image": "postgres:17.6-bookworm", "restart": "unless-stopped", "healthcheck": health,
              "environment": {"POSTGRES_PASSWORD": "hunter2-plain" if flip == "plain-secret" else
                              project.secret("DB_PASSWORD", pulumi.Output.secret("generated"))},
              "volumes": [("./pgdata" if flip == "bind-mount" else "db-data") + ":/var/lib/postgresql/data"]}
        if flip == "no-healthcheck":
            del db["healthcheck"]
        if flip == "no-restart":
            del db["restart"]
        if flip == "privileged":
            db["privileged"] = True
        project.add_service("db", db, volumes=("db-data",))
        project.add_service("db-backup", {
            "image": "postgres:17.6-bookworm", "restart": "unless-stopped", "healthcheck": health,
            "labels": {"dataplatform.io/backup-of": "kafka" if flip == "no-backup" else "db"},
            "command": ["sh", "-c", "while true; do pg_dump -h db > /backup/db.sql; sleep 86400; done"]})
        topics = TOPICS.replace(" --config retention.ms=604800000", "") if flip == "no-retention" else TOPICS
        project.add_service("kafka-init", {"image": "apache/kafka:4.1.1", "restart": "no", "command": [topics]})
        targets = ["kafka:9308", "db:9187", "db-backup:9100", "prometheus:9090"]
        if flip == "unscraped":
            targets.remove("db:9187")
        project.add_config("prometheus", yaml.safe_dump({"scrape_configs": [
            {"job_name": "platform", "static_configs": [{"targets": targets}]}]}))
        project.add_service("prometheus", {
            "image": "prom/prometheus:v3.7.3", "restart": "unless-stopped", "healthcheck": health,
            "configs": [{"source": "prometheus", "target": "/etc/prometheus/prometheus.yml"}]})
        project.finalize()
    return program


def test_compliant_compose_project_passes_every_policy():
    report = run(compose_program())
    assert report.violations == [], [(v.policy, v.message) for v in report.violations]


CASES = [
    ("latest", "compose-pinned-images", "service kafka image 'apache/kafka:latest': floating tag :latest"),
    ("no-healthcheck", "compose-healthchecks", "service db has no healthcheck"),
    ("no-restart", "compose-restart-policy", "service db has no restart policy"),
    ("privileged", "compose-no-privileged", "service db is privileged"),
    ("bind-mount", "compose-named-volumes", "service db keeps /var/lib/postgresql/data in host directory ./pgdata"),
    ("no-backup", "stateful-backups", "compose service db keeps state in db-data and nothing backs it up"),
    ("replication", "kafka-replication", "compose service kafka: default replication factor is 1, below 3"),
    ("no-retention", "kafka-topic-retention", "topic orders sets no retention.ms or retention.bytes"),
    ("plain-secret", "secrets-as-pulumi-secrets", "compose service db sets POSTGRES_PASSWORD in plain text"),
    ("unscraped", "prometheus-scraping", "compose service db is not scraped by Prometheus"),
]


@pytest.mark.parametrize("flip, policy, expected", CASES, ids=[c[0] for c in CASES])
def test_weakening_the_project_violates_its_policy(flip, policy, expected):
    found = messages(run(compose_program(flip)), policy)
    assert any(expected in m for m in found), found


def test_replication_is_a_prod_rule():
    assert run(compose_program("replication"), environment="dev").of("kafka-replication") == []


def test_one_shot_jobs_need_no_healthcheck_and_may_bind_mount():
    def program():
        project = ComposeProject("platform", parse({"target": "compose"}))
        project.add_service("seed", {"image": "curlimages/curl:8.16.0", "restart": "no",
                                     "volumes": ["./seed:/seed:ro"]})
        project.finalize()
    report = run(program)
    assert report.of("compose-healthchecks") == report.of("compose-named-volumes") == []
    assert report.of("prometheus-scraping") == []  # nothing long-running to scrape
