"""Observability on every target: the alert rules and generated Prometheus configs pass promtool (and its rule unit
tests), dashboards load and use only the provisioned datasource, their queries parse, metric names match what the
workloads expose, and each target gets a valid Prometheus + Grafana + collector (+ Kafka exporter) stack."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from components.base import MetricsEndpoint
from components.observability import assets, collector
from components.observability.kafka_exporter import exporter_args
from components.observability.scrape import platform_facts, scrape_configs
from stacks.config import Secret
from stacks.loader import ConfigError, load_stack_file, parse
from stacks.offline import capture
from stacks.versions import resolve
from tests.infra.checks import (compose_file, docker_compose_config, is_builtin, kubernetes_manifests,
                                referenced_variables, validate_kubernetes)

from .test_config import REPO

ON = {"observability": {"enabled": True}}
COMPONENT = "dataplatform:observability:Observability"
DASHBOARDS = {"platform-overview", "kafka", "medallion-freshness", "mcp"}
README = REPO / "components" / "observability" / "README.md"


# -- tools ----------------------------------------------------------------------------------------------------------
def promtool(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    binary = shutil.which("promtool")
    if binary is None:
        raise RuntimeError("promtool is not installed (Debian package `prometheus`; .ci/run installs it)")
    return subprocess.run([binary, *args], capture_output=True, text=True, cwd=cwd)


def check_rules_text(tmp_path: Path, name: str, text: str) -> subprocess.CompletedProcess:
    path = tmp_path / name
    path.write_text(text)
    return promtool("check", "rules", str(path))


def observability(graph):
    [component] = graph.of_type(COMPONENT)
    return graph.descendants(component)


def compose_services(graph) -> dict:
    return yaml.safe_load(compose_file(graph))["services"]


def vm_host(name: str, address: str, roles: list[str]) -> dict:
    return {"name": name, "address": address, "roles": roles, "private_key": Secret(f"key-of-{name}")}


# -- stacks ---------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def compose():
    return capture(parse({"target": "compose", "services": ON}), "obs-compose")


@pytest.fixture(scope="module")
def vm():
    hosts = [vm_host("data", "10.0.0.10", ["kafka", "object-storage", "catalog"]),
             vm_host("monitor", "10.0.0.20", ["observability"])]
    return capture(parse({"target": "vm", "services": ON, "vm": {"hosts": hosts}}), "obs-vm")


@pytest.fixture(scope="module")
def kubernetes():
    return capture(parse({"target": "kubernetes", "services": {
        "observability": {"enabled": True, "tracing_endpoint": "http://tempo.tracing.svc:4317"}}}), "obs-k8s")


@pytest.fixture(scope="module")
def aws_managed():
    return capture(parse({"target": "aws", "environment": "prod", "size": "medium", "aws": {"region": "eu-west-1"},
                          "services": ON}), "obs-aws")


@pytest.fixture(scope="module")
def aws_eks():
    return capture(parse({"target": "aws", "aws": {"region": "eu-west-1"}, "services": {
        "kafka": {"brokers": 2}, "observability": {"enabled": True, "aws_mode": "eks"}}}), "obs-eks")


# -- rules ----------------------------------------------------------------------------------------------------------
def test_alert_rules_pass_promtool_and_cover_the_platform(tmp_path):
    result = promtool("check", "rules", str(assets.RULES_FILE))
    assert result.returncode == 0, result.stdout + result.stderr
    alerts = {r["alert"] for g in assets.alert_rules()["groups"] for r in g["rules"] if "alert" in r}
    assert {"KafkaBrokerDown", "KafkaUnderReplicatedPartitions", "KafkaConsumerLagHigh", "FlinkJobRestarting",
            "CatalogServerErrors", "GoldTableStale"} <= alerts
    facts = check_rules_text(tmp_path, "facts.yaml", yaml.safe_dump(platform_facts(3)))
    assert facts.returncode == 0, facts.stdout + facts.stderr
    broken = check_rules_text(tmp_path, "broken.yaml", assets.alert_rules_text().replace("up == 0", "up == = 0"))
    assert broken.returncode != 0  # the check is not vacuous


def rule_unit_tests(tmp_path: Path, rules_text: str) -> subprocess.CompletedProcess:
    (tmp_path / "platform-alerts.yaml").write_text(rules_text)
    (tmp_path / "platform-facts.yaml").write_text(yaml.safe_dump(platform_facts(3)))
    shutil.copy(assets.RULES_TEST_FILE, tmp_path / "platform-alerts.test.yaml")
    return promtool("test", "rules", "platform-alerts.test.yaml", cwd=tmp_path)


def test_rule_unit_tests_fire_and_stay_quiet(tmp_path):
    tests = yaml.safe_load(assets.RULES_TEST_FILE.read_text())["tests"]
    cases = [(case["alertname"], bool(case["exp_alerts"])) for test in tests for case in test["alert_rule_test"]]
    for alert in ("KafkaBrokerDown", "GoldTableStale"):
        assert (alert, True) in cases and (alert, False) in cases, alert
    result = rule_unit_tests(tmp_path, assets.alert_rules_text())
    assert result.returncode == 0, result.stdout + result.stderr


def test_rule_unit_tests_catch_a_wrong_threshold(tmp_path):
    looser = assets.alert_rules_text().replace("> 7200", "> 72000")
    assert looser != assets.alert_rules_text()
    result = rule_unit_tests(tmp_path, looser)
    assert result.returncode != 0 and "GoldTableStale" in result.stdout + result.stderr


# -- dashboards -----------------------------------------------------------------------------------------------------
def datasource_refs(node) -> list:
    if isinstance(node, dict):
        found = [node["datasource"]] if "datasource" in node else []
        return found + [ref for key, value in node.items() if key != "datasource" for ref in datasource_refs(value)]
    if isinstance(node, list):
        return [ref for item in node for ref in datasource_refs(item)]
    return []


def expressions(dashboard: dict) -> list[str]:
    exprs = []
    for panel in dashboard["panels"]:
        exprs += [target["expr"] for target in panel.get("targets", [])]
    return exprs


def test_dashboards_load_and_use_only_the_provisioned_datasource():
    provisioned = {d["uid"] for d in yaml.safe_load(assets.datasource_provisioning("http://p:9090"))["datasources"]}
    assert provisioned == {assets.DATASOURCE_UID}
    files = sorted(assets.DASHBOARDS_DIR.glob("*.json"))
    assert {f.stem for f in files} == DASHBOARDS
    uids = set()
    for path in files:
        dashboard = json.loads(path.read_text())
        uids.add(dashboard["uid"])
        assert dashboard["title"].startswith("Data platform") and dashboard["panels"], path.name
        ids = [p["id"] for p in dashboard["panels"]]
        assert len(ids) == len(set(ids)), f"{path.name}: duplicate panel ids"
        refs = datasource_refs(dashboard)
        assert refs, path.name
        assert {(r["type"], r["uid"]) for r in refs} == {("prometheus", assets.DATASOURCE_UID)}, path.name
        assert expressions(dashboard), path.name
    assert len(uids) == len(files)


def grafana_free(expr: str) -> str:
    """Grafana's variables replaced the way Grafana does before the query reaches Prometheus."""
    expr = expr.replace("$__rate_interval", "5m").replace("$__interval", "1m")
    return re.sub(r"\$\{?[a-z_]+\}?", ".*", expr)


def test_every_dashboard_query_parses(tmp_path):
    rules = [{"record": f"dashboard:query:{i}", "expr": grafana_free(expr)}
             for i, expr in enumerate(e for path in sorted(assets.DASHBOARDS_DIR.glob("*.json"))
                                      for e in expressions(json.loads(path.read_text())))]
    assert len(rules) > 30
    result = check_rules_text(tmp_path, "queries.yaml", yaml.safe_dump({"groups": [{"name": "q", "rules": rules}]}))
    assert result.returncode == 0, result.stdout + result.stderr


_NOT_METRICS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool",
                "offset", "le", "inf"}


def metric_names(expr: str) -> set[str]:
    """Metric names in a PromQL expression: identifiers that are not functions, keywords or label names."""
    expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # ranges
    expr = re.sub(r'"[^"]*"', "", expr)
    names = set()
    for match in re.finditer(r"[a-zA-Z_:][a-zA-Z0-9_:]*", expr):
        rest = expr[match.end():].lstrip()
        if not rest.startswith("(") and match.group() not in _NOT_METRICS and not match.group().startswith(
                "dashboard:"):
            names.add(match.group())
    return names


def all_metric_names() -> set[str]:
    exprs = [r["expr"] for g in assets.alert_rules()["groups"] for r in g["rules"]]
    exprs += [e for path in assets.DASHBOARDS_DIR.glob("*.json") for e in expressions(json.loads(path.read_text()))]
    return {name for expr in exprs for name in metric_names(grafana_free(expr))}


def test_metric_names_are_documented_for_the_services_that_expose_them():
    names = all_metric_names()
    assert {"dp_table_last_commit_timestamp_seconds", "kafka_consumergroup_lag", "dp_mcp_calls_total"} <= names
    documented = README.read_text()
    generic = {"up", "ALERTS", "dp_kafka_expected_brokers"}  # Prometheus's own, and the generated platform facts
    missing = {n for n in names if n not in generic and not n.startswith(("prometheus_", "otelcol_"))
               and f"`{n}`" not in documented
               and f"`{re.sub(r'_(bucket|sum|count)$', '', n)}`" not in documented}
    assert not missing, f"document these metric names in {README.name}: {sorted(missing)}"


def test_mcp_metric_names_match_what_the_server_exposes():
    from workloads.mcp_server.metrics import Metrics

    metrics = Metrics()
    metrics.calls.labels("query", "http", "ok").inc()
    metrics.latency.labels("query", "http").observe(0.01)
    metrics.errors.labels("query", "error").inc()
    metrics.denials.labels("query", "denied").inc()
    exposed = {sample.name for family in metrics.registry.collect() for sample in family.samples}
    used = {n for n in all_metric_names() if n.startswith("dp_mcp_")}
    assert used and used <= exposed, used - exposed


# -- generators -----------------------------------------------------------------------------------------------------
def test_scrape_config_generator_refuses_bad_endpoints():
    merged = scrape_configs([MetricsEndpoint("catalog", ("a:9000",)), MetricsEndpoint("catalog", ("b:9000", "a:9000"))])
    assert merged[0]["static_configs"] == [{"targets": ["a:9000", "b:9000"]}]
    with pytest.raises(ValueError, match="not host:port"):
        scrape_configs([MetricsEndpoint("catalog", ("catalog",))])
    with pytest.raises(ValueError, match="both /metrics and /other"):
        scrape_configs([MetricsEndpoint("x", ("a:1",)), MetricsEndpoint("x", ("b:1",), path="/other")])
    with pytest.raises(ValueError, match="lowercase"):
        scrape_configs([MetricsEndpoint("Bad Job", ("a:1",))])


def test_tracing_endpoint_picks_the_protocol_and_bad_ones_are_refused():
    assert collector.tracing_exporter("tempo:4317") == ("otlp/tracing", {"endpoint": "tempo:4317",
                                                                         "tls": {"insecure": True}})
    assert collector.tracing_exporter("https://otlp.example.com/")[0] == "otlphttp/tracing"
    assert collector.tracing_port("https://otlp.example.com") == 443
    plain = collector.collector_config(tracing_endpoint=None, memory="1Gi")
    assert "traces" not in plain["service"]["pipelines"]
    traced = collector.collector_config(tracing_endpoint="http://jaeger:4318", memory="1Gi")
    assert traced["service"]["pipelines"]["traces"]["exporters"] == ["otlphttp/tracing"]
    with pytest.raises(ValueError, match="tracing_endpoint"):
        collector.tracing_exporter("ftp://tempo")


def test_collector_pipelines_only_use_defined_components():
    config = collector.collector_config(tracing_endpoint="tempo:4317", memory="512Mi",
                                        remote_write={"endpoint": "https://aps/api/v1/remote_write", "region": "x"},
                                        scrape_configs=scrape_configs([MetricsEndpoint("a", ("a:1",))]))
    used = {kind: set() for kind in ("receivers", "processors", "exporters")}
    for pipeline in config["service"]["pipelines"].values():
        for kind in used:
            used[kind] |= set(pipeline[kind])
    for kind, names in used.items():
        assert names == set(config[kind]), kind
    assert set(config["service"]["extensions"]) == set(config["extensions"])
    assert config["processors"]["memory_limiter"]["limit_mib"] < 512


def test_kafka_exporter_speaks_each_targets_security():
    assert exporter_args("k1:9092,k2:9092")[:2] == ["--kafka.server=k1:9092", "--kafka.server=k2:9092"]
    msk = exporter_args("b-1:9098", "SASL_SSL", "OAUTHBEARER", "eu-west-1")
    assert {"--tls.enabled", "--sasl.enabled", "--sasl.mechanism=awsiam", "--sasl.aws-region=eu-west-1"} <= set(msk)
    with pytest.raises(ValueError, match="cannot authenticate"):
        exporter_args("k:9093", "SASL_SSL", "SCRAM-SHA-512")


# -- compose --------------------------------------------------------------------------------------------------------
def run_compose_config(content: str, tmp_path: Path) -> dict:
    from tests.infra.checks import COMPOSE_BIN

    path = tmp_path / "compose.yaml"
    path.write_text(content)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), **{n: "dummy" for n in referenced_variables(content)}}
    result = subprocess.run([str(COMPOSE_BIN), "-f", str(path), "config"], capture_output=True, text=True, env=env,
                            cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def test_compose_project_is_valid_and_configs_survive_interpolation(compose, tmp_path):
    content = compose_file(compose)
    result = docker_compose_config(content, referenced_variables(content))
    assert result.returncode == 0, result.stderr
    rendered = run_compose_config(content, tmp_path)["configs"]
    # compose prints a literal `$` as `$$`; after un-escaping, each file is exactly what Prometheus/Grafana read
    assert rendered["observability-alert-rules"]["content"].replace("$$", "$") == assets.alert_rules_text()
    for name, dashboard in assets.dashboards().items():
        assert rendered[f"observability-dashboard-{name}"]["content"].replace("$$", "$") == dashboard
    unescaped = content.replace("$$labels", "$labels")
    assert run_compose_config(unescaped, tmp_path)["configs"]["observability-alert-rules"]["content"] != \
        rendered["observability-alert-rules"]["content"]  # without the escaping compose would mangle the rules


def test_compose_runs_the_pinned_stack_wired_together(compose):
    services = compose_services(compose)
    images = resolve().images
    expected = {"observability-prometheus": "prometheus", "observability-grafana": "grafana",
                "observability-collector": "otel-collector", "observability-kafka-exporter": "kafka-exporter"}
    for service, image in expected.items():
        assert services[service]["image"] == images[image]
        assert services[service]["restart"] == "unless-stopped" and "healthcheck" in services[service]
    assert services["observability-grafana"]["depends_on"] == {
        "observability-prometheus": {"condition": "service_healthy"}}
    exporter = services["observability-kafka-exporter"]
    assert "--kafka.server=kafka:9092" in exporter["command"]
    assert exporter["depends_on"] == {"kafka": {"condition": "service_healthy"}}
    assert "--storage.tsdb.retention.time=15d" in services["observability-prometheus"]["command"]
    assert "127.0.0.1:3000:3000" in services["observability-grafana"]["ports"]


def promtool_check_config(config_text: str, tmp_path: Path, rules: dict[str, str]) -> subprocess.CompletedProcess:
    """`promtool check config` on a generated prometheus.yml, its rule files moved next to it."""
    config = yaml.safe_load(config_text)
    config["rule_files"] = [str(tmp_path / Path(f).name) for f in config["rule_files"]]
    for name, text in rules.items():
        (tmp_path / name).write_text(text)
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    return promtool("check", "config", str(tmp_path / "prometheus.yml"))


def test_compose_prometheus_config_passes_promtool_and_scrapes_every_service(compose, tmp_path):
    configs = yaml.safe_load(compose_file(compose))["configs"]
    text = configs["observability-prometheus-config"]["content"]
    facts = configs["observability-platform-facts"]["content"]
    result = promtool_check_config(text, tmp_path, {"platform-alerts.yaml": assets.alert_rules_text(),
                                                    "platform-facts.yaml": facts})
    assert result.returncode == 0, result.stdout + result.stderr
    jobs = {job["job_name"]: job for job in yaml.safe_load(text)["scrape_configs"]}
    assert {"catalog", "object-storage", "kafka-exporter", "prometheus", "grafana", "otel-collector",
            "workloads-otlp"} <= set(jobs)
    assert jobs["catalog"]["static_configs"][0]["targets"] == ["catalog:9000"]
    assert jobs["workloads-otlp"].get("honor_labels") is True
    assert yaml.safe_load(facts)["groups"][0]["rules"] == [{"record": "dp_kafka_expected_brokers",
                                                           "expr": "vector(1)"}]
    broken = text.replace("scrape_interval: 30s", "scrape_interval: 30 seconds", 1)
    assert promtool_check_config(broken, tmp_path, {}).returncode != 0


def test_grafana_password_is_a_pulumi_secret_and_never_in_the_file(compose):
    apply = compose.named("platform-up")
    content = apply.inputs["stdin"]
    assert "mock-password-observability-grafana-admin-password" not in content
    grafana = compose_services(compose)["observability-grafana"]
    assert grafana["environment"]["GF_SECURITY_ADMIN_PASSWORD"] == "${GRAFANA_ADMIN_PASSWORD:?set by pulumi}"
    assert "environment.GRAFANA_ADMIN_PASSWORD" in apply.secret_paths
    assert "endpoints" in compose.secret_outputs
    out = compose.outputs["endpoints"]["observability"]
    assert out["grafana_url"] == "http://127.0.0.1:3000"
    assert out["otlp_endpoint"] == "http://observability-collector:4318"


def test_a_configured_grafana_password_is_used_instead_of_a_generated_one():
    graph = capture(parse({"target": "compose", "services": {"observability": {
        "enabled": True, "grafana_admin_password": Secret("chosen-password")}}}), "obs-password")
    assert not [r for r in observability(graph) if r.type == "random:index/randomPassword:RandomPassword"]
    assert graph.named("platform-up").inputs["environment"]["GRAFANA_ADMIN_PASSWORD"] == "chosen-password"
    with pytest.raises(ConfigError, match="grafana_admin_password"):
        parse({"target": "compose", "services": {"observability": {"grafana_admin_password": "plain"}}})


def test_switch_off_removes_everything_and_no_kafka_means_no_exporter():
    off = capture(parse({"target": "compose"}), "obs-off")
    assert not off.of_type(COMPONENT) and "observability" not in off.outputs["endpoints"]
    assert not [s for s in compose_services(off) if s.startswith("observability")]
    no_kafka = capture(parse({"target": "compose", "services": {**ON, "kafka": {"enabled": False}}}), "obs-nokafka")
    services = compose_services(no_kafka)
    assert "observability-prometheus" in services and "observability-kafka-exporter" not in services
    facts = yaml.safe_load(yaml.safe_load(compose_file(no_kafka))["configs"]["observability-platform-facts"]["content"])
    assert facts == {"groups": []}


def test_dp_plan_lists_the_observability_resources(tmp_path):
    stack = tmp_path / "Pulumi.obs.yaml"
    stack.write_text(yaml.safe_dump({"config": {"dataplatform:target": "compose",
                                                "dataplatform:services": {"observability": {"enabled": True}}}}))
    result = subprocess.run([sys.executable, "-m", "dp.cli", "plan", "--file", str(stack), "--json"],
                            capture_output=True, text=True, cwd=REPO, timeout=300)
    assert result.returncode in (0, 1), result.stderr
    plan = json.loads(result.stdout)
    names = {r["name"] for r in plan["resources"]}
    assert {"observability", "observability-grafana-admin-password"} <= names
    up = next(r for r in plan["resources"] if r["name"] == "platform-up")
    assert "observability-prometheus:" in up["inputs"]["stdin"]
    assert "mock-password" not in result.stdout


def test_stack_files_switch_observability_on():
    for stack in ("dev", "prod"):
        config = load_stack_file(REPO / f"Pulumi.{stack}.yaml")
        assert config.services.observability.enabled, stack


# -- vm -------------------------------------------------------------------------------------------------------------
def test_vm_runs_everything_on_the_observability_host(vm, tmp_path):
    commands = [r for r in observability(vm) if r.type == "command:remote:Command"]
    assert commands and {r.inputs["connection"]["host"] for r in commands} == {"10.0.0.20"}
    units = {r.name.removesuffix("-monitor-unit") for r in commands if r.name.endswith("-unit")}
    assert units == {"observability-prometheus", "observability-grafana", "observability-collector",
                     "observability-kafka-exporter"}
    files = {r.name: r.inputs["stdin"] for r in commands if "-file-" in r.name}
    config = files["observability-prometheus-monitor-file-prometheus.yml"]
    result = promtool_check_config(config, tmp_path, {
        "platform-alerts.yaml": files["observability-prometheus-monitor-file-platform-alerts.yaml"],
        "platform-facts.yaml": files["observability-prometheus-monitor-file-platform-facts.yaml"]})
    assert result.returncode == 0, result.stdout + result.stderr
    jobs = {j["job_name"]: j["static_configs"][0]["targets"] for j in yaml.safe_load(config)["scrape_configs"]}
    assert jobs["kafka-exporter"] == ["10.0.0.20:9308"] and jobs["prometheus"] == ["10.0.0.20:9090"]
    datasource = yaml.safe_load(files["observability-grafana-monitor-file-datasources.yaml"])["datasources"][0]
    assert (datasource["uid"], datasource["url"]) == (assets.DATASOURCE_UID, "http://127.0.0.1:9090")
    assert {n for n in files if "-file-dashboard-" in n} == {
        f"observability-grafana-monitor-file-dashboard-{d}.json" for d in DASHBOARDS}


def test_vm_grafana_password_only_in_the_root_only_secret_env(vm):
    commands = {r.name: r for r in observability(vm) if r.type == "command:remote:Command"}
    secret_env = commands["observability-grafana-monitor-secret-env"]
    assert "stdin" in secret_env.secret_paths and " 0600 " in secret_env.inputs["create"]
    assert "GF_SECURITY_ADMIN_PASSWORD=mock-password" in secret_env.inputs["stdin"]
    for name, command in commands.items():
        if name != "observability-grafana-monitor-secret-env":
            assert "mock-password" not in json.dumps(command.inputs), name


def test_vm_needs_a_host_with_the_observability_role():
    with pytest.raises(ConfigError, match="observability"):
        parse({"target": "vm", "services": ON, "vm": {"hosts": [vm_host("a", "10.0.0.1", ["kafka", "catalog",
                                                                                            "object-storage"])]}})


# -- kubernetes -----------------------------------------------------------------------------------------------------
def test_kubernetes_objects_pass_strict_schema_validation(kubernetes):
    manifests = [m for m in kubernetes_manifests(kubernetes) if is_builtin(m)]
    own = [r.inputs for r in observability(kubernetes) if r.type.startswith("kubernetes:")
           and "apiVersion" in r.inputs and is_builtin(r.inputs)]
    assert len(own) >= 15 and all(m in manifests for m in own)
    for manifest in manifests:
        validate_kubernetes(manifest)


def test_kubernetes_installs_the_pinned_chart_shaped_for_the_namespace(kubernetes):
    [release] = [r for r in observability(kubernetes) if r.type == "kubernetes:helm.sh/v3:Release"]
    chart = resolve().charts["kube-prometheus-stack"]
    assert (release.inputs["chart"], release.inputs["version"]) == (chart.chart, chart.version)
    assert release.inputs["repositoryOpts"]["repo"] == chart.repo
    values = release.inputs["values"]
    assert values["nodeExporter"] == {"enabled": False}  # host namespaces break the restricted namespace
    assert values["prometheusOperator"]["admissionWebhooks"] == {"enabled": False}
    spec = values["prometheus"]["prometheusSpec"]
    assert spec["retention"] == "15d" and spec["serviceMonitorSelectorNilUsesHelmValues"] is False
    assert values["grafana"]["sidecar"]["datasources"]["uid"] == assets.DATASOURCE_UID
    assert values["grafana"]["admin"]["existingSecret"] == "observability-grafana-admin"
    assert "mock-password" not in json.dumps(values)


def test_kubernetes_monitors_rules_and_dashboards(kubernetes):
    resources = observability(kubernetes)
    monitors = {r.inputs["metadata"]["name"]: r.inputs for r in resources if r.type.endswith(":ServiceMonitor")}
    assert {"observability-catalog", "observability-object-storage", "observability-kafka-exporter",
            "observability-otel-collector", "observability-workloads-otlp"} <= set(monitors)
    catalog = monitors["observability-catalog"]["spec"]
    assert catalog["endpoints"][0]["port"] == "metrics"
    assert catalog["endpoints"][0]["relabelings"] == [{"action": "replace", "targetLabel": "job",
                                                        "replacement": "catalog"}]
    assert monitors["observability-workloads-otlp"]["spec"]["endpoints"][0]["honorLabels"] is True
    [rule] = [r.inputs for r in resources if r.type.endswith(":PrometheusRule")]
    assert rule["spec"]["groups"] == assets.alert_rules()["groups"] + platform_facts(1)["groups"]
    dashboards = [r.inputs for r in resources if r.type == "kubernetes:core/v1:ConfigMap"
                  and r.inputs["metadata"]["labels"].get("grafana_dashboard") == "1"]
    assert {next(iter(d["data"])) for d in dashboards} == {f"{d}.json" for d in DASHBOARDS}
    [secret] = [r for r in resources if r.type == "kubernetes:core/v1:Secret"]
    assert "stringData.admin-password" in secret.secret_paths or "stringData" in secret.secret_paths


def test_kubernetes_collector_forwards_traces_and_may_reach_the_backend(kubernetes):
    resources = observability(kubernetes)
    [config] = [r.inputs for r in resources if r.name == "observability-collector-config"]
    parsed = yaml.safe_load(config["data"]["config.yaml"])
    assert parsed["exporters"]["otlp/tracing"]["endpoint"] == "tempo.tracing.svc:4317"
    policies = {r.name: r.inputs["spec"] for r in resources if r.type.endswith(":NetworkPolicy")}
    assert policies["observability-tracing"]["egress"][0]["ports"] == [{"protocol": "TCP", "port": 4317}]
    assert policies["observability-kubelets"]["podSelector"] == {"matchLabels": {"app.kubernetes.io/name": "prometheus"}}


# -- aws ------------------------------------------------------------------------------------------------------------
def test_aws_managed_prometheus_holds_the_rules_and_alerts_to_sns(aws_managed, tmp_path):
    resources = {r.type: r for r in observability(aws_managed)}
    workspace = resources["aws:amp/workspace:Workspace"].inputs
    assert workspace["kmsKeyArn"].startswith("arn:aws:kms:") and workspace["loggingConfiguration"]["logGroupArn"]
    data = resources["aws:amp/ruleGroupNamespace:RuleGroupNamespace"].inputs["data"]
    result = check_rules_text(tmp_path, "amp.yaml", data)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "vector(3)" in data  # prod: three brokers expected
    definition = yaml.safe_load(resources["aws:amp/alertManagerDefinition:AlertManagerDefinition"].inputs["definition"])
    receiver = yaml.safe_load(definition["alertmanager_config"])["receivers"][0]["sns_configs"][0]
    assert receiver["topic_arn"].startswith("arn:aws:sns:") and receiver["sigv4"] == {"region": "eu-west-1"}
    assert resources["aws:sns/topic:Topic"].inputs["kmsMasterKeyId"].startswith("arn:aws:kms:")


def test_aws_managed_grafana_gets_the_datasource_and_dashboards(aws_managed):
    resources = observability(aws_managed)
    [workspace] = [r.inputs for r in resources if r.type == "aws:grafana/workspace:Workspace"]
    assert workspace["authenticationProviders"] == ["AWS_SSO"] and workspace["permissionType"] == "CUSTOMER_MANAGED"
    [datasource] = [r.inputs for r in resources if r.type == "grafana:oss/dataSource:DataSource"]
    assert datasource["uid"] == assets.DATASOURCE_UID and datasource["type"] == "prometheus"
    assert json.loads(datasource["jsonDataEncoded"])["sigV4Auth"] is True
    dashboards = [r for r in resources if r.type == "grafana:oss/dashboard:Dashboard"]
    assert {json.loads(d.inputs["configJson"])["uid"] for d in dashboards} == {
        json.loads(text)["uid"] for text in assets.dashboards().values()}
    [token] = [r for r in resources if r.type.endswith("WorkspaceServiceAccountToken")]
    [provider] = [r for r in resources if r.type == "pulumi:providers:grafana"]
    assert "auth" in provider.secret_paths and token.inputs["secondsToLive"] == 30 * 24 * 3600
    out = aws_managed.outputs["endpoints"]["observability"]
    assert out["grafana_admin_password"] is None and out["grafana_url"].startswith("https://")


def test_aws_collector_remote_writes_with_its_own_narrow_role(aws_managed):
    resources = observability(aws_managed)
    [config] = [r.inputs for r in resources if r.name == "observability-collector-config"]
    parsed = yaml.safe_load(config["data"]["config.yaml"])
    assert parsed["exporters"]["prometheusremotewrite"]["endpoint"].endswith("/api/v1/remote_write")
    assert parsed["extensions"]["sigv4auth"] == {"region": "eu-west-1", "service": "aps"}
    jobs = {j["job_name"] for j in parsed["receivers"]["prometheus"]["config"]["scrape_configs"]}
    assert {"kafka-exporter", "otel-collector"} <= jobs
    policies = {r.name: json.loads(r.inputs["policy"]) for r in resources if r.type == "aws:iam/rolePolicy:RolePolicy"}
    remote = policies["observability-collector-policy"]["Statement"]
    assert remote[0]["Action"] == ["aps:RemoteWrite"] and remote[0]["Resource"].endswith(":observability-amp")
    exporter = policies["observability-kafka-exporter-policy"]["Statement"]
    assert all(a.startswith("kafka-cluster:Describe") or a == "kafka-cluster:Connect"
               for s in exporter for a in s["Action"])
    accounts = {r.inputs["metadata"]["name"]: r.inputs for r in resources if r.type.endswith(":ServiceAccount")}
    assert set(accounts) == {"observability-collector", "observability-kafka-exporter"}
    for manifest in kubernetes_manifests(aws_managed):
        if is_builtin(manifest):
            validate_kubernetes(manifest)


def test_aws_eks_mode_runs_the_kubernetes_stack_with_an_msk_reader(aws_eks):
    resources = observability(aws_eks)
    types = {r.type for r in resources}
    assert "kubernetes:helm.sh/v3:Release" in types and "aws:amp/workspace:Workspace" not in types
    [exporter] = [r.inputs for r in resources if r.name == "observability-kafka-exporter"
                  and r.type == "kubernetes:apps/v1:Deployment"]
    spec = exporter["spec"]["template"]["spec"]
    assert spec["serviceAccountName"] == "observability-kafka-exporter"
    assert "--sasl.mechanism=awsiam" in spec["containers"][0]["args"]
    for manifest in kubernetes_manifests(aws_eks):
        if is_builtin(manifest):
            validate_kubernetes(manifest)
