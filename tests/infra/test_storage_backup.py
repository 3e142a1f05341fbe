"""The off-site copy of the object storage (`services.backups.offsite`): the copy itself run for real (rclone on
local remotes, under busybox sh as in the rclone image), then per target the scheduled job, its credentials (Pulumi
secrets only), the real validators (shellcheck, `docker compose config`, strict Kubernetes schemas) and the
stateful-backups policy: covered with an off-site target, still flagged without one."""
import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from components.backups.offsite import OffsiteCopy, copy_script
from policies.evaluate import evaluate
from stacks.config import Secret
from stacks.loader import ConfigError
from stacks.loader import parse as parse_config
from stacks.offline import capture
from stacks.versions import resolve
from tests.infra.checks import (compose_file, docker_compose_config, kubernetes_manifests, referenced_variables,
                                shellcheck, validate_kubernetes)

KEY_ID, SECRET_KEY = "AKIAOFFSITEKEYID0001", "offsite-secret-access-key-value"
OFFSITE = {"region": "eu-west-1", "bucket": "acme-dp-offsite", "prefix": "staging",
           "access_key_id": Secret(KEY_ID), "secret_access_key": Secret(SECRET_KEY)}
WASABI = {**OFFSITE, "endpoint": "https://s3.eu-central-1.wasabisys.com:8443", "region": "eu-central-1"}
SCHEDULE = "30 1 * * *"
HOSTS = [{"name": "vm1", "address": "10.0.0.10", "private_key": Secret("key"), "roles": ["kafka", "catalog"]},
         {"name": "vm2", "address": "10.0.0.11", "private_key": Secret("key"), "roles": ["object-storage"]}]


def config(target: str, offsite: dict | None = OFFSITE, services: dict | None = None, **extra):
    backups = {"enabled": True, "schedule": SCHEDULE, "retention_days": 9,
               **({"offsite": offsite} if offsite else {})}
    return parse_config({"target": target, "services": {**(services or {}), "backups": backups}, **extra})


@pytest.fixture(scope="module")
def compose():
    return capture(config("compose"), "offsite-compose")


@pytest.fixture(scope="module")
def vm():
    return capture(config("vm", WASABI, vm={"hosts": HOSTS}), "offsite-vm")


@pytest.fixture(scope="module")
def k8s():
    return capture(config("kubernetes"), "offsite-k8s")


def storage_violations(graph, environment: str = "prod") -> list[str]:
    return [v.message for v in evaluate(graph, environment).of("stateful-backups") if "storage" in v.message]


def leaked(graph, skip: set[str]) -> list[str]:
    """Resources (other than `skip`) whose inputs hold an off-site key in any form."""
    return [r.name for r in graph.resources if r.name not in skip
            and (KEY_ID in json.dumps(r.inputs) or SECRET_KEY in json.dumps(r.inputs))]


# -- the settings ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("change, fragment", [
    ({"endpoint": "http://minio.example:9000"}, "services.backups.offsite.endpoint: 'http://minio.example:9000' "
                                                "must be an https:// URL"),
    ({"endpoint": "https://s3.example.com/bucket"}, "without a path"),
    ({"access_key_id": KEY_ID}, "services.backups.offsite.access_key_id: must be a Pulumi secret"),
    ({"bucket": "Not_A_Bucket"}, "services.backups.offsite.bucket"),
    ({"prefix": "/leading/slash"}, "services.backups.offsite.prefix"),
])
def test_bad_offsite_settings_are_refused_naming_the_key(change, fragment):
    with pytest.raises(ConfigError) as caught:
        config("compose", {**OFFSITE, **change})
    assert fragment in str(caught.value)


def test_the_platforms_own_storage_is_not_off_site():
    own = {**OFFSITE, "endpoint": "https://10.0.0.11"}
    with pytest.raises(ValueError, match="services.backups.offsite.endpoint: https://10.0.0.11 is the platform's own"):
        capture(config("vm", own, vm={"hosts": HOSTS}), "offsite-own")


def test_aws_refuses_an_rclone_offsite_copy():
    aws = config("aws", services={"kafka": {"brokers": 2}}, aws={"region": "eu-west-1"})
    with pytest.raises(ValueError, match="services.backups.offsite: the aws target backs its buckets up with AWS"):
        capture(aws, "offsite-aws")


# -- the copy itself ---------------------------------------------------------------------------------------------
COPY = OffsiteCopy(buckets=("warehouse", "backups"), base="offsite-bucket/dp", endpoint=None, retention_days=7,
                   covers=("storage",), plain={}, secret={})


def test_copy_script_passes_shellcheck():
    result = shellcheck("#!/bin/sh\n" + copy_script(COPY), "sh")
    assert result.returncode == 0, result.stdout


def _run_copy(script: str, platform: Path, remote: Path) -> subprocess.CompletedProcess:
    """The script under busybox (the rclone image is Alpine: its sh, date and awk are busybox applets) with both
    remotes aliased to local directories."""
    tools = {tool: shutil.which(tool) for tool in ("rclone", "busybox")}
    for tool, path in tools.items():
        if path is None:
            raise RuntimeError(f"{tool} is not installed (Debian package `{tool}`; .ci/run installs it)")
    bin_dir = remote.parent / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name, target in {"rclone": tools["rclone"], "date": tools["busybox"], "awk": tools["busybox"]}.items():
        if not (bin_dir / name).exists():
            (bin_dir / name).symlink_to(target)
    env = {"PATH": str(bin_dir), "HOME": str(remote.parent), "RCLONE_CONFIG_BACKUPS_TYPE": "alias",
           "RCLONE_CONFIG_BACKUPS_REMOTE": str(platform), "RCLONE_CONFIG_OFFSITE_TYPE": "alias",
           "RCLONE_CONFIG_OFFSITE_REMOTE": str(remote)}
    return subprocess.run([tools["busybox"], "sh", "-eu", "-c", script], env=env, capture_output=True, text=True,
                          timeout=120)


def _tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): p.read_text() for p in sorted(root.rglob("*")) if p.is_file()}


def test_copy_mirrors_every_bucket_keeps_what_it_replaces_and_expires_old_runs(tmp_path):
    platform, remote = tmp_path / "platform", tmp_path / "remote"
    for path, text in {"warehouse/t/data/a.parquet": "a", "warehouse/t/metadata/v1.json": "v1",
                       "backups/catalog-db/1.dump": "dump-1"}.items():
        (platform / path).parent.mkdir(parents=True, exist_ok=True)
        (platform / path).write_text(text)
    first = _run_copy(copy_script(COPY), platform, remote)  # no history yet: its listing is "directory not found"
    assert first.returncode == 0, first.stderr
    assert "copied warehouse to s3://offsite-bucket/dp/current/warehouse" in first.stdout
    base = remote / "offsite-bucket/dp"
    assert _tree(base / "current") == {"warehouse/t/data/a.parquet": "a", "warehouse/t/metadata/v1.json": "v1",
                                       "backups/catalog-db/1.dump": "dump-1"}
    assert not (base / "history").exists()

    (platform / "warehouse/t/metadata/v1.json").write_text("overwritten, longer")
    (platform / "backups/catalog-db/1.dump").unlink()
    stale = base / "history/20000101T000000Z/warehouse/old.parquet"
    stale.parent.mkdir(parents=True)
    stale.write_text("older than the retention")
    time.sleep(1.1)  # a new run stamp
    second = _run_copy(copy_script(COPY), platform, remote)
    assert second.returncode == 0, second.stderr
    assert _tree(base / "current") == {"warehouse/t/data/a.parquet": "a",
                                       "warehouse/t/metadata/v1.json": "overwritten, longer"}
    [run] = [p.name for p in (base / "history").iterdir()]
    assert run != "20000101T000000Z" and "expired s3://offsite-bucket/dp/history/20000101T000000Z" in second.stdout
    assert _tree(base / "history" / run) == {"warehouse/t/metadata/v1.json": "v1",
                                             "backups/catalog-db/1.dump": "dump-1"}


def test_a_failed_bucket_fails_the_run_but_not_the_others(tmp_path):
    platform, remote = tmp_path / "platform", tmp_path / "remote"
    (platform / "backups").mkdir(parents=True)
    (platform / "backups/x").write_text("x")  # no `warehouse` directory: its sync fails
    result = _run_copy(copy_script(COPY), platform, remote)
    assert result.returncode == 1
    assert "off-site copy of warehouse failed" in result.stderr
    assert _tree(remote / "offsite-bucket/dp/current") == {"backups/x": "x"}


# -- compose -----------------------------------------------------------------------------------------------------
def test_compose_scheduler_runs_the_copy_with_secrets_from_the_project(compose):
    content = compose_file(compose)
    document = yaml.safe_load(content)
    service = document["services"]["backups-object-storage"]
    assert service["image"] == resolve().image("rclone") and service["restart"] == "unless-stopped"
    assert service["labels"] == {"dataplatform.io/backup-of": "storage"}
    env = service["environment"]
    assert env["SCHEDULE"] == SCHEDULE and env["RCLONE_CONFIG_OFFSITE_PROVIDER"] == "AWS"
    assert env["RCLONE_CONFIG_OFFSITE_REGION"] == "eu-west-1" and "RCLONE_CONFIG_OFFSITE_ENDPOINT" not in env
    assert env["RCLONE_CONFIG_OFFSITE_FORCE_PATH_STYLE"] == "false"
    assert env["RCLONE_CONFIG_OFFSITE_ACCESS_KEY_ID"] == "${OFFSITE_ACCESS_KEY_ID:?set by pulumi}"
    assert env["RCLONE_CONFIG_OFFSITE_SECRET_ACCESS_KEY"] == "${OFFSITE_SECRET_ACCESS_KEY:?set by pulumi}"
    assert env["RCLONE_CONFIG_BACKUPS_ENDPOINT"] == "http://storage:8333"
    assert service["configs"] == [{"source": "backups-offsite-copy", "target": "/etc/backups/offsite-copy.sh"}]
    assert "find /tmp/heartbeat" in service["healthcheck"]["test"][1]
    loop = service["command"][0].replace("$$", "$")
    assert "sh -eu /etc/backups/offsite-copy.sh &" in loop
    script = document["configs"]["backups-offsite-copy"]["content"].replace("$$", "$")
    assert 'rclone sync "backups:$bucket" "offsite:acme-dp-offsite/staging/current/$bucket" --backup-dir ' \
           '"offsite:acme-dp-offsite/staging/history/$stamp/$bucket"' in script
    assert "for bucket in warehouse checkpoints backups; do" in script and "- 9 * 86400" in script
    for text in (loop, script):
        result = shellcheck(f"#!/bin/sh\n{text}", "sh")
        assert result.returncode == 0, result.stdout
    apply = compose.named("platform-up")
    assert apply.inputs["environment"]["OFFSITE_SECRET_ACCESS_KEY"] == SECRET_KEY
    assert {"environment.OFFSITE_ACCESS_KEY_ID", "environment.OFFSITE_SECRET_ACCESS_KEY"} <= set(apply.secret_paths)
    assert KEY_ID not in content and SECRET_KEY not in content
    assert leaked(compose, {"platform-up"}) == []


def test_real_docker_compose_accepts_the_copy_service(compose):
    content = compose_file(compose)
    result = docker_compose_config(content, referenced_variables(content))
    assert result.returncode == 0, result.stderr


def test_endpoints_say_where_the_copy_goes(compose):
    backups = compose.outputs["endpoints"]["backups"]
    assert backups["stores"] == ["catalog-db", "object-storage"]
    assert backups["offsite"] == {"endpoint": None, "bucket": "acme-dp-offsite",
                                  "mirror": "s3://acme-dp-offsite/staging/current/",
                                  "history": "s3://acme-dp-offsite/staging/history/",
                                  "buckets": ["warehouse", "checkpoints", "backups"]}


# -- VMs ---------------------------------------------------------------------------------------------------------
def test_vm_timer_runs_the_copy_on_the_object_storage_host(vm):
    timer = vm.named("backups-vm2-offsite-timer")
    assert timer.inputs["connection"]["host"] == "10.0.0.11" and timer.inputs["create"] == "sudo -n bash -s"
    install = timer.inputs["stdin"]
    assert "OnCalendar=*-*-* 01:30:00 UTC\n" in install and "Persistent=true" in install
    assert "ExecStart=/bin/bash /etc/dataplatform/backups/offsite.sh" in install and "TimeoutStartSec=20h" in install
    assert "systemctl enable --quiet dataplatform-offsite.timer" in install
    assert "disable --now dataplatform-offsite.timer" in timer.inputs["delete"]
    assert {"platform-vm2-provision", "backups-vm2-offsite-env", "backups-vm2-offsite-copy",
            "backups-vm2-offsite-script"} <= set(timer.dependencies)
    wrapper = vm.named("backups-vm2-offsite-script").inputs["stdin"]
    assert "--env-file /etc/dataplatform/backups/offsite.env " in wrapper and resolve().image("rclone") in wrapper
    assert "--volume /etc/dataplatform/backups/offsite-copy.sh:/offsite-copy.sh:ro" in wrapper
    copy = vm.named("backups-vm2-offsite-copy").inputs["stdin"]
    assert copy.startswith("# dataplatform.io/backup-of: storage\n")
    for text, shell in ((wrapper, "bash"), (f"#!/bin/bash\n{install}", "bash"), (f"#!/bin/sh\n{copy}", "sh")):
        result = shellcheck(text, shell)
        assert result.returncode == 0, result.stdout


def test_vm_keys_stay_in_a_root_only_secret_file(vm):
    env = vm.named("backups-vm2-offsite-env")
    assert "stdin" in env.secret_paths and " 0600 root:root" in env.inputs["create"]
    lines = env.inputs["stdin"].splitlines()
    assert f"RCLONE_CONFIG_OFFSITE_SECRET_ACCESS_KEY={SECRET_KEY}" in lines
    assert "RCLONE_CONFIG_OFFSITE_ENDPOINT=https://s3.eu-central-1.wasabisys.com:8443" in lines
    assert "RCLONE_CONFIG_OFFSITE_FORCE_PATH_STYLE=true" in lines  # an endpoint: path style by default
    assert "RCLONE_CONFIG_BACKUPS_SECRET_ACCESS_KEY=mock-password-storage-secret-access-key" in lines
    assert leaked(vm, {"backups-vm2-offsite-env"}) == []


# -- Kubernetes --------------------------------------------------------------------------------------------------
def _manifests(graph) -> dict:
    return {(m["kind"], m["metadata"]["name"]): m for m in kubernetes_manifests(graph)
            if m["metadata"]["name"].startswith("backups")}


def test_k8s_cronjob_copies_off_site_on_the_schedule(k8s):
    manifests = _manifests(k8s)
    assert {("CronJob", "backups-object-storage"), ("Secret", "backups-offsite"),
            ("NetworkPolicy", "backups-offsite-egress")} <= set(manifests)
    for manifest in manifests.values():
        validate_kubernetes(manifest)
    cronjob = manifests[("CronJob", "backups-object-storage")]
    assert cronjob["metadata"]["annotations"]["dataplatform.io/backup-of"] == \
        "storage-master,storage-volume,storage-filer"
    assert (cronjob["spec"]["schedule"], cronjob["spec"]["timeZone"]) == (SCHEDULE, "Etc/UTC")
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"
    [container] = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    assert container["image"] == resolve().image("rclone")
    assert container["envFrom"] == [{"secretRef": {"name": "backups-rclone"}},
                                    {"secretRef": {"name": "backups-offsite"}}]
    assert not [e for e in container["env"] if "KEY" in e["name"]]
    script = container["command"][2]
    assert "offsite:acme-dp-offsite/staging/current/$bucket" in script
    assert shellcheck(f"#!/bin/sh\n{script}", "sh").returncode == 0
    secret = k8s.named("backups-offsite")
    assert "stringData" in secret.secret_paths
    assert secret.inputs["stringData"] == {"RCLONE_CONFIG_OFFSITE_ACCESS_KEY_ID": KEY_ID,
                                           "RCLONE_CONFIG_OFFSITE_SECRET_ACCESS_KEY": SECRET_KEY}
    assert leaked(k8s, {"backups-offsite"}) == []


def test_k8s_only_the_copy_pods_leave_the_cluster_on_the_endpoints_port(k8s):
    egress = _manifests(k8s)[("NetworkPolicy", "backups-offsite-egress")]["spec"]
    labels = _manifests(k8s)[("CronJob", "backups-object-storage")]["spec"]["jobTemplate"]["spec"]["template"][
        "metadata"]["labels"]
    assert egress["podSelector"]["matchLabels"].items() <= labels.items()
    assert egress["egress"][0]["ports"] == [{"protocol": "TCP", "port": 443}]
    custom = capture(config("kubernetes", WASABI), "offsite-k8s-port")
    assert _manifests(custom)[("NetworkPolicy", "backups-offsite-egress")]["spec"]["egress"][0]["ports"] == [
        {"protocol": "TCP", "port": 8443}]


# -- the policy: covered with an off-site target, flagged without one ---------------------------------------------
def test_the_policy_sees_the_object_storage_covered(compose, vm, k8s):
    for graph in (compose, vm, k8s):
        assert storage_violations(graph) == [], graph.target


@pytest.mark.parametrize("target, extra, flagged", [
    ("compose", {}, 1), ("vm", {"vm": {"hosts": HOSTS}}, 1), ("kubernetes", {}, 3)])
def test_without_an_offsite_target_nothing_copies_and_the_storage_stays_flagged(target, extra, flagged):
    graph = capture(config(target, None, **extra), f"offsite-none-{target}")
    assert not [r for r in graph.resources if "offsite" in r.name or r.name == "backups-object-storage"]
    assert graph.outputs["endpoints"]["backups"]["offsite"] is None
    assert "object-storage" not in graph.outputs["endpoints"]["backups"]["stores"]
    assert len(storage_violations(graph)) == flagged
