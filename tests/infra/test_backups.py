"""Backups on every target: the cron schedule as each target runs it (checked against croniter and systemd's own
calendar parser), pg_dump of the catalog database to the `backups` bucket with retention on compose, VMs and
Kubernetes, AWS Backup on AWS, and the Kafka topic definitions exported. The catalog conventions the dumps rely on
are checked against the catalog's actual resources on each target."""
import json
import random
import re
import subprocess
from datetime import datetime, timedelta, timezone

import pytest
import yaml
from croniter import croniter

from components.backups import CatalogDatabase, kafka_topics, topics_document
from components.backups.schedule import SHELL_MATCHER, aws_cron, on_calendar, parse
from components.kafka import topic_config
from policies.evaluate import evaluate
from stacks.config import Secret
from stacks.loader import parse as parse_config
from stacks.offline import capture
from stacks.versions import resolve
from tests.infra.checks import (compose_file, docker_compose_config, kubernetes_manifests, referenced_variables,
                                shellcheck, validate_kubernetes)

ON = {"backups": {"enabled": True, "schedule": "15 2 * * *", "retention_days": 9}}
DATABASE = CatalogDatabase(service="catalog-db")
EXPRESSIONS = ["0 3 * * *", "*/15 * * * *", "30 2 1,15 * 1-5", "0 */6 * * 0", "5 4 * 1-6/2 7", "0 0 1-31/2 * *",
               "10-20/5 8-18 * * 1,3,5", "0 12 13 * 5", "45 23 * 12 *"]


@pytest.fixture(scope="module")
def compose():
    return capture(parse_config({"target": "compose", "services": ON}), "backups-compose")


@pytest.fixture(scope="module")
def vm():
    hosts = [{"name": "vm1", "address": "10.0.0.10", "private_key": Secret("key"),
              "roles": ["kafka", "object-storage", "catalog"]}]
    return capture(parse_config({"target": "vm", "vm": {"hosts": hosts}, "services": ON}), "backups-vm")


@pytest.fixture(scope="module")
def k8s():
    return capture(parse_config({"target": "kubernetes", "services": ON}), "backups-k8s")


def aws_config(flavor: str, schedule: str = "15 2 * * *"):
    return parse_config({"target": "aws", "aws": {"region": "eu-west-1"}, "services": {
        "kafka": {"brokers": 2}, "catalog": {"aws_flavor": flavor},
        "backups": {"enabled": True, "schedule": schedule, "retention_days": 9}}})


@pytest.fixture(scope="module")
def aws_rest():
    return capture(aws_config("rest"), "backups-aws-rest")


# -- the schedule ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("expression, fragment", [
    ("0 3 * *", "has 4 fields"), ("0 24 * * *", "'24' in its hour field, outside 0-23"),
    ("0 3 * * MON", "no names"), ("@daily", "has 1 fields"), ("0 3 L * *", "'L' in its day of month field"),
    ("5/10 * * * *", "'5/10' in its minute field"), ("0 3 */2 * 1", "cron implementations disagree"),
])
def test_bad_schedules_are_refused_naming_the_key(expression, fragment):
    with pytest.raises(ValueError) as caught:
        parse(expression)
    assert str(caught.value).startswith("services.backups.schedule: ") and fragment in str(caught.value)


def _croniter_runs(expression: str, start: datetime, count: int) -> list[datetime]:
    runs = croniter(expression, start)
    return [runs.get_next(datetime) for _ in range(count)]


@pytest.mark.parametrize("expression", EXPRESSIONS)
def test_systemd_calendar_fires_exactly_when_cron_does(expression):
    """systemd's own parser (systemd-analyze) iterates each OnCalendar line; their union must be cron's runs."""
    start, count = datetime(2026, 1, 1, tzinfo=timezone.utc), 40
    elapses = set()
    for line in on_calendar(expression):
        result = subprocess.run(["systemd-analyze", "calendar", f"--iterations={count}",
                                 "--base-time=2026-01-01 00:00:00 UTC", line], capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        for stamp in re.findall(r"(?:Next elapse|Iter\. #\d+): \w{3} (\S+ \S+) UTC", result.stdout):
            elapses.add(datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S").replace(tzinfo=timezone.utc))
    expected = _croniter_runs(expression, start, count)
    assert sorted(elapses)[:count] == expected


def test_shell_matcher_agrees_with_croniter():
    """The compose scheduler's matcher (POSIX sh, run by dash) on random minutes of 2026, against croniter."""
    rng = random.Random(11)
    cases = []
    for expression in EXPRESSIONS:
        for _ in range(300):
            moment = datetime(2026, 1, 1, tzinfo=timezone.utc) + timedelta(minutes=rng.randrange(525_600))
            cases.append((expression, moment))
        cases += [(expression, run) for run in _croniter_runs(expression, datetime(2026, 3, 1,
                                                                                     tzinfo=timezone.utc), 20)]
    lines = "".join(f"{e}|{m.minute} {m.hour} {m.day} {m.month} {int(m.strftime('%w'))}\n" for e, m in cases)
    script = "set -euf\n" + SHELL_MATCHER + """
while IFS='|' read -r expression moment; do
  # shellcheck disable=SC2086
  if cron_matches "$expression" $moment; then echo 1; else echo 0; fi
done
"""
    assert shellcheck("#!/bin/sh\n" + script, "sh").returncode == 0
    result = subprocess.run(["dash", "-c", script], input=lines, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    answers = result.stdout.split()
    expected = ["1" if croniter.match(e, m) else "0" for e, m in cases]
    assert answers == expected
    assert answers.count("1") >= 20 * len(EXPRESSIONS)  # not vacuous: the scheduled minutes do match


@pytest.mark.parametrize("expression, expected", [
    ("0 3 * * *", "cron(0 3 * * ? *)"), ("30 1 * * 1-5", "cron(30 1 ? * MON,TUE,WED,THU,FRI *)"),
    ("0 */6 1 * *", "cron(0 0,6,12,18 1 * ? *)"), ("5 4 * 1-6/2 7", "cron(5 4 ? 1,3,5 SUN *)"),
])
def test_aws_backup_cron(expression, expected):
    assert aws_cron(expression) == expected


@pytest.mark.parametrize("expression, fragment", [("*/30 * * * *", "at most hourly"),
                                                  ("0 3 1 * 1", "restricts both the day of month")])
def test_what_aws_backup_cannot_run_is_refused(expression, fragment):
    with pytest.raises(ValueError, match=fragment):
        capture(aws_config("glue", expression), "backups-aws-bad")


# -- Kafka topics as code ----------------------------------------------------------------------------------------
def test_kafka_topic_definitions_recreate_the_configured_topics():
    kafka = parse_config({"target": "compose", "size": "medium"}).services.kafka
    topics = {t["name"]: t for t in kafka_topics(kafka)}
    assert set(topics) == {t.name for t in kafka.topics}
    for topic in kafka.topics:
        exported = topics[topic.name]
        assert exported["partitions"] == topic.partitions and exported["replication"] == 3
        assert exported["config"] == topic_config(topic, kafka.replication, kafka.min_isr)
        command = exported["create"]
        assert command.startswith('kafka-topics.sh --bootstrap-server "$BOOTSTRAP_SERVERS" --create --if-not-exists')
        assert f"--topic {topic.name} --partitions {topic.partitions} --replication-factor 3" in command
        assert shellcheck(f"#!/bin/sh\n{command}\n", "sh").returncode == 0
    assert json.loads(topics_document(tuple(topics.values())))["topics"][0]["name"] == kafka.topics[0].name


# -- compose -----------------------------------------------------------------------------------------------------
def services(graph) -> dict:
    return yaml.safe_load(compose_file(graph))["services"]


def test_real_docker_compose_accepts_the_backup_services(compose):
    content = compose_file(compose)
    result = docker_compose_config(content, referenced_variables(content))
    assert result.returncode == 0, result.stderr


def test_compose_catalog_conventions_hold(compose):
    db = services(compose)[DATABASE.service]
    assert db["environment"]["POSTGRES_USER"] == DATABASE.user and db["environment"]["POSTGRES_DB"] == DATABASE.database
    assert db["environment"]["POSTGRES_PASSWORD"] == "${" + DATABASE.password_variable + ":?set by pulumi}"


def test_compose_scheduler_dumps_into_the_spool_and_the_uploader_ships_it(compose):
    svc = services(compose)
    scheduler, uploader = svc["backups-catalog-db"], svc["backups-upload"]
    assert scheduler["image"] == resolve().image("postgres") and uploader["image"] == resolve().image("rclone")
    assert scheduler["labels"] == {"dataplatform.io/backup-of": "catalog-db"}
    assert scheduler["environment"]["SCHEDULE"] == "15 2 * * *"
    assert scheduler["environment"]["PGPASSWORD"] == "${CATALOG_DB_PASSWORD:?set by pulumi}"
    assert scheduler["depends_on"] == {"catalog-db": {"condition": "service_healthy"}}
    assert scheduler["volumes"] == uploader["volumes"] == ["backups-spool:/spool"]
    dump = scheduler["command"][0].replace("$$", "$")
    assert "pg_dump -h catalog-db -U lakekeeper -d lakekeeper -Fc" in dump and "set -euf" in dump
    assert 'mv "/spool/.partial/catalog-db-$stamp.dump" "/spool/catalog-db/$stamp.dump"' in dump
    upload = uploader["command"][0].replace("$$", "$")
    assert "rclone move /spool backups:backups --exclude '.partial/**'" in upload
    assert "rclone delete backups:backups/catalog-db --min-age 9d" in upload
    assert "rclone copyto /etc/backups/kafka-topics.json backups:backups/kafka/topics.json" in upload
    for script in (dump, upload):
        result = shellcheck(f"#!/bin/sh\n{script}", "sh")
        assert result.returncode == 0, result.stdout
    env = uploader["environment"]
    assert env["RCLONE_CONFIG_BACKUPS_ENDPOINT"] == "http://storage:8333"
    assert env["RCLONE_CONFIG_BACKUPS_SECRET_ACCESS_KEY"] == "${S3_SECRET_ACCESS_KEY:?set by pulumi}"
    for service in (scheduler, uploader):
        assert service["restart"] == "unless-stopped" and "find /tmp/heartbeat" in service["healthcheck"]["test"][1]
    document = yaml.safe_load(compose_file(compose))
    topics = json.loads(document["configs"]["backups-kafka-topics"]["content"].replace("$$", "$"))
    assert [t["name"] for t in topics["topics"]] == [t["name"] for t in compose.outputs["endpoints"]["backups"][
        "kafka_topics"]]


def test_compose_policy_sees_the_catalog_database_covered(compose):
    uncovered = [v.message for v in evaluate(compose, "dev").of("stateful-backups")]
    assert not [m for m in uncovered if "catalog-db" in m or "backups-" in m], uncovered
    without = capture(parse_config({"target": "compose"}), "backups-compose-off")
    assert [v for v in evaluate(without, "dev").of("stateful-backups") if "catalog-db" in v.message]


# -- VMs ---------------------------------------------------------------------------------------------------------
def test_vm_catalog_conventions_hold(vm):
    [unit] = [r for r in vm.of_type("command:remote:Command")
              if r.name.endswith("-unit") and f"unit-apply dataplatform-{DATABASE.service} " in r.inputs["create"]]
    assert f"--name dp-{DATABASE.service} " in unit.inputs["stdin"]
    env = vm.named(f"{DATABASE.service}-vm1-env").inputs["stdin"]
    assert f"POSTGRES_USER={DATABASE.user}\n" in env and f"POSTGRES_DB={DATABASE.database}\n" in env


def test_vm_timer_runs_the_backup_script_on_the_database_host(vm):
    timer = vm.named("backups-vm1-timer")
    assert timer.inputs["connection"]["host"] == "10.0.0.10" and timer.inputs["create"] == "sudo -n bash -s"
    install = timer.inputs["stdin"]
    assert "OnCalendar=*-*-* 02:15:00 UTC\n" in install and "Persistent=true" in install
    assert "ExecStart=/bin/bash /etc/dataplatform/backups/backup.sh" in install
    assert "systemctl enable --quiet dataplatform-backup.timer" in install
    assert "disable --now dataplatform-backup.timer" in timer.inputs["delete"]
    assert {"platform-vm1-provision", "backups-vm1-script", "backups-vm1-rclone-env"} <= set(timer.dependencies)
    script = vm.named("backups-vm1-script").inputs["stdin"]
    assert "# dataplatform.io/backup-of: catalog-db" in script
    assert 'docker exec dp-catalog-db pg_dump -U lakekeeper -d lakekeeper -Fc > "$file"' in script
    assert "--env-file /etc/dataplatform/backups/rclone.env " in script and resolve().image("rclone") in script
    assert 'rclone copyto "/spool/catalog-db-$stamp.dump" "backups:backups/catalog-db/$stamp.dump"' in script
    assert "rclone delete backups:backups/catalog-db --min-age 9d" in script
    for text in (script, install):
        result = shellcheck(text if text.startswith("#!") else f"#!/bin/bash\n{text}")
        assert result.returncode == 0, result.stdout


def test_vm_s3_keys_stay_in_a_root_only_file(vm):
    credentials = vm.named("backups-vm1-rclone-env")
    assert "stdin" in credentials.secret_paths and " 0600 root:root" in credentials.inputs["create"]
    assert "RCLONE_CONFIG_BACKUPS_SECRET_ACCESS_KEY=mock-password-storage-secret-access-key" in \
        credentials.inputs["stdin"]
    for r in vm.resources:
        if r.name.startswith("backups-") and r.name != "backups-vm1-rclone-env":
            assert "mock-password" not in json.dumps(r.inputs), r.name


def test_vm_policy_sees_the_catalog_database_covered(vm):
    assert not [v for v in evaluate(vm, "dev").of("stateful-backups") if "catalog-db" in v.message]


# -- Kubernetes --------------------------------------------------------------------------------------------------
def test_k8s_catalog_conventions_hold(k8s):
    manifests = {(m["kind"], m["metadata"]["name"]): m for m in kubernetes_manifests(k8s)}
    assert ("Service", DATABASE.service) in manifests
    assert DATABASE.password_key in k8s.named(DATABASE.credentials_secret).inputs["stringData"]


def test_k8s_cronjob_dumps_and_uploads_with_retention(k8s):
    manifests = {(m["kind"], m["metadata"]["name"]): m for m in kubernetes_manifests(k8s)
                 if m["metadata"]["name"].startswith("backups")}
    assert set(manifests) == {("CronJob", "backups-catalog-db"), ("Secret", "backups-rclone"),
                              ("ConfigMap", "backups-kafka-topics")}
    for manifest in manifests.values():
        validate_kubernetes(manifest)
    cronjob = manifests[("CronJob", "backups-catalog-db")]
    assert cronjob["metadata"]["annotations"]["dataplatform.io/backup-of"] == "catalog-db"
    assert (cronjob["spec"]["schedule"], cronjob["spec"]["timeZone"]) == ("15 2 * * *", "Etc/UTC")
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"
    pod = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    [dump], [upload] = pod["initContainers"], pod["containers"]
    assert dump["command"][:3] == ["pg_dump", "-h", "catalog-db.dataplatform.svc"]
    assert dump["env"] == [{"name": "PGPASSWORD", "valueFrom": {"secretKeyRef": {
        "name": "catalog-db-credentials", "key": "POSTGRES_PASSWORD"}}}]
    assert upload["image"] == resolve().image("rclone")
    assert upload["envFrom"] == [{"secretRef": {"name": "backups-rclone"}}]
    script = upload["command"][2]
    assert "rclone delete backups:backups/catalog-db --min-age 9d" in script
    assert shellcheck(f"#!/bin/sh\n{script}", "sh").returncode == 0
    secret = k8s.named("backups-rclone")
    assert "stringData" in secret.secret_paths


# -- AWS ---------------------------------------------------------------------------------------------------------
def test_aws_backup_plan_covers_the_warehouse_and_the_rds_catalog(aws_rest):
    [vault] = aws_rest.of_type("aws:backup/vault:Vault")
    assert vault.inputs["kmsKeyArn"].endswith(":platform-key")
    [plan] = aws_rest.of_type("aws:backup/plan:Plan")
    [rule] = plan.inputs["rules"]
    assert rule["schedule"] == "cron(15 2 * * ? *)" and rule["lifecycle"] == {"deleteAfter": 9}
    assert rule["targetVaultName"] == vault.inputs["name"]
    [selection] = aws_rest.of_type("aws:backup/selection:Selection")
    warehouse = aws_rest.outputs["endpoints"]["object_storage"]["buckets"]["warehouse"]
    [rds] = aws_rest.of_type("aws:rds/instance:Instance")
    assert selection.inputs["resources"] == [f"arn:aws:s3:::{warehouse}",
                                             f"arn:aws:rds:eu-west-1:123456789012:db:{rds.inputs['identifier']}"]
    policies = {r.inputs["policyArn"] for r in aws_rest.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
                if r.name.startswith("backups-")}
    assert "arn:aws:iam::aws:policy/AWSBackupServiceRolePolicyForS3Backup" in policies
    [topics] = aws_rest.of_type("aws:s3/bucketObjectv2:BucketObjectv2")
    assert topics.inputs["key"] == "kafka/topics.json"
    assert {t["name"] for t in json.loads(topics.inputs["content"])["topics"]} == {
        "shop.orders", "shop.order_lines", "shop.customers", "shop.clickstream"}
    backups = aws_rest.outputs["endpoints"]["backups"]
    assert backups["stores"] == ["warehouse", "catalog-db"] and backups["vault"] == vault.inputs["name"]


def test_aws_glue_catalog_has_no_database_to_back_up():
    graph = capture(aws_config("glue"), "backups-aws-glue")
    [selection] = graph.of_type("aws:backup/selection:Selection")
    assert len(selection.inputs["resources"]) == 1 and ":rds:" not in selection.inputs["resources"][0]
    assert graph.outputs["endpoints"]["backups"]["stores"] == ["warehouse"]


# -- switches and bad input --------------------------------------------------------------------------------------
@pytest.mark.parametrize("target", ["compose", "kubernetes"])
def test_backups_off_creates_nothing(target):
    graph = capture(parse_config({"target": target}), f"backups-off-{target}")
    assert not [r for r in graph.resources if r.name.startswith("backups")]
    assert "backups" not in graph.outputs["endpoints"]


def test_backups_need_the_backups_bucket():
    config = parse_config({"target": "compose", "services": {**ON, "object_storage": {"buckets": ["warehouse",
                                                                                                "checkpoints"]}}})
    with pytest.raises(ValueError, match="services.object_storage.buckets: backups need a 'backups' bucket"):
        capture(config, "backups-no-bucket")


def test_bad_schedule_fails_the_plan_naming_the_key():
    config = parse_config({"target": "kubernetes", "services": {"backups": {"enabled": True, "schedule": "daily"}}})
    with pytest.raises(ValueError, match="services.backups.schedule: 'daily' has 1 fields"):
        capture(config, "backups-bad-schedule")
