"""The kubernetes target: every object on the stack's provider in the stack's namespace, default-deny networking,
SeaweedFS + Lakekeeper/PostgreSQL from plain manifests, Kafka through Strimzi, containers that satisfy the
platform's rules, scripts that pass shellcheck, and credentials only in Kubernetes Secrets.

Built-in kinds are validated STRICTLY against the Kubernetes OpenAPI schemas (kubernetes-validate, unknown fields
are errors). Strimzi's custom resources (`kafka.strimzi.io/v1`) cannot be: no CRD schema is available offline
(the operator's chart installs them at deploy time), so they are checked structurally here: apiVersion, kind,
the fields the operator requires, and the values taken from the stack's settings.
"""
import pytest
import yaml

from components.kafka import topic_config
from components.kafka.kubernetes import topic_resource_name, typed
from stacks.config import Secret
from stacks.loader import load_stack_file, parse
from stacks.offline import capture
from stacks.versions import resolve
from tests.infra.checks import is_builtin, kubernetes_manifests, shellcheck, validate_kubernetes

from .test_config import REPO

STRIMZI = "kafka.strimzi.io/v1"
WORKLOADS = {"Deployment": "spec.template.spec", "StatefulSet": "spec.template.spec", "Job": "spec.template.spec",
             "CronJob": "spec.jobTemplate.spec.template.spec"}
LONG_RUNNING = {"Deployment", "StatefulSet"}
EXAMPLE = REPO / "examples" / "stacks" / "Pulumi.k8s.yaml"


@pytest.fixture(scope="module")
def dev():
    return capture(parse({"target": "kubernetes", "services": {"backups": {"enabled": True}}}), "k8s-dev")


@pytest.fixture(scope="module")
def prod():
    return capture(parse({"target": "kubernetes", "environment": "prod", "size": "medium",
                          "services": {"backups": {"enabled": True}}, "kubernetes": {
        "namespace": "analytics", "storage_class": "fast-ssd", "allowed_ingress_cidrs": ["10.20.0.0/16"]}}),
        "k8s-prod")


@pytest.fixture(scope="module")
def example():
    return capture(load_stack_file(EXAMPLE), "k8s-example")


def manifests(graph, kind: str | None = None) -> list[dict]:
    return [m for m in kubernetes_manifests(graph) if kind is None or m["kind"] == kind]


def named(graph, kind: str, name: str) -> dict:
    [found] = [m for m in manifests(graph, kind) if m["metadata"]["name"] == name]
    return found


def dig(value, path: str):
    for part in path.split("."):
        value = value[part]
    return value


def pods(graph) -> list[tuple[dict, dict]]:
    """(workload manifest, its pod spec) for every workload."""
    return [(m, dig(m, WORKLOADS[m["kind"]])) for m in manifests(graph) if m["kind"] in WORKLOADS]


def containers(spec: dict) -> list[dict]:
    return [*spec.get("initContainers", []), *spec["containers"]]


# -- the substrate ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("stack", ["dev", "prod", "example"])
def test_builtin_objects_pass_strict_schema_validation(stack, request):
    graph = request.getfixturevalue(stack)
    builtin = [m for m in manifests(graph) if is_builtin(m)]
    kinds = {m["kind"] for m in builtin}
    assert {"Namespace", "NetworkPolicy", "Secret", "Service", "StatefulSet", "Deployment", "Job",
            "CronJob"} <= kinds
    for manifest in builtin:
        validate_kubernetes(manifest)  # raises on any unknown field or wrong type


def test_strict_validation_is_not_vacuous(dev):
    statefulset = named(dev, "StatefulSet", "catalog-db")
    broken = {**statefulset, "spec": {**statefulset["spec"], "replica": 1}}
    with pytest.raises(Exception, match="replica"):
        validate_kubernetes(broken)


def test_every_kubernetes_object_uses_the_stack_provider_and_namespace(prod):
    [provider] = prod.of_type("pulumi:providers:kubernetes")
    objects = [r for r in prod.resources if r.type.startswith("kubernetes:")]
    assert len(objects) > 30
    for resource in objects:
        assert resource.provider and resource.provider.startswith(provider.urn), resource.name
    for manifest in manifests(prod):
        if manifest["kind"] not in {"Namespace", "StorageClass"} and "metadata" in manifest:
            assert manifest["metadata"]["namespace"] == "analytics", manifest["metadata"]["name"]
    release = prod.named("kafka-operator")
    assert release.inputs["namespace"] == "analytics"


def test_namespace_enforces_the_restricted_pod_security_standard(dev):
    [namespace] = manifests(dev, "Namespace")
    assert namespace["metadata"]["name"] == "dataplatform"
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_network_policies_deny_by_default_and_allow_only_what_the_platform_needs(dev, prod):
    policies = {m["metadata"]["name"]: m["spec"] for m in manifests(dev, "NetworkPolicy")}
    deny = policies["default-deny"]
    assert deny["podSelector"] == {} and set(deny["policyTypes"]) == {"Ingress", "Egress"}
    assert "ingress" not in deny and "egress" not in deny
    assert policies["allow-same-namespace"]["ingress"] == [{"from": [{"podSelector": {}}]}]
    dns = policies["allow-dns"]["egress"][0]
    assert {p["port"] for p in dns["ports"]} == {53} and {p["protocol"] for p in dns["ports"]} == {"UDP", "TCP"}
    api = policies["kafka-operator-allow-kube-api"]
    assert api["podSelector"]["matchLabels"] == {"strimzi.io/kind": "cluster-operator"}
    assert {p["port"] for p in api["egress"][0]["ports"]} == {443, 6443}
    assert not any(name.endswith("allow-clients") for name in policies)  # no client CIDRs configured in dev

    clients = {m["metadata"]["name"]: m["spec"] for m in manifests(prod, "NetworkPolicy")
               if m["metadata"]["name"].endswith("allow-clients")}
    assert set(clients) == {"storage-allow-clients", "catalog-allow-clients"}
    for spec in clients.values():
        assert spec["ingress"][0]["from"] == [{"ipBlock": {"cidr": "10.20.0.0/16"}}]
    listeners = dig(named_cr(prod, "Kafka", "kafka"), "spec.kafka.listeners")
    for listener in listeners:  # Strimzi's generated listener policies get the same peers
        assert listener["networkPolicyPeers"] == [{"podSelector": {}}, {"ipBlock": {"cidr": "10.20.0.0/16"}}]


def test_containers_follow_the_platform_rules(prod):
    images = set(resolve().images.values())
    checked = 0
    for workload, spec in pods(prod):
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert spec["automountServiceAccountToken"] is False
        assert not any("hostPath" in v for v in spec.get("volumes", []))
        for container in containers(spec):
            where = f"{workload['metadata']['name']}/{container['name']}"
            assert container["image"] in images, where  # pinned, from versions.yaml
            resources = container["resources"]
            assert resources["requests"]["cpu"] and resources["requests"]["memory"], where
            assert resources["limits"]["memory"] == resources["requests"]["memory"], where
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True, where
            assert context["allowPrivilegeEscalation"] is False and context["privileged"] is False, where
            assert context["capabilities"] == {"drop": ["ALL"]}, where
            assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"], where
            if workload["kind"] in LONG_RUNNING:
                assert container["readinessProbe"] and container["livenessProbe"], where
            checked += 1
    assert checked >= 10


def test_workload_settings_come_from_the_size(dev, prod):
    def container(graph, kind, name):
        return dig(named(graph, kind, name), WORKLOADS[kind])["containers"][0]

    assert container(dev, "StatefulSet", "storage-volume")["resources"]["requests"] == {"cpu": "250m",
                                                                                         "memory": "512Mi"}
    assert container(prod, "StatefulSet", "storage-volume")["resources"]["requests"] == {"cpu": "1", "memory": "2Gi"}
    assert named(prod, "Deployment", "catalog")["spec"]["replicas"] == 2
    assert named(dev, "Deployment", "catalog")["spec"]["replicas"] == 1
    assert {m["metadata"]["name"] for m in manifests(prod, "PodDisruptionBudget")} == {
        "storage-master", "storage-volume", "catalog"}
    assert not manifests(dev, "PodDisruptionBudget")


# -- object storage ----------------------------------------------------------------------------------------------
def test_seaweedfs_scales_masters_volume_servers_and_replication(dev, prod):
    for graph, masters, volumes, replication in ((dev, 1, 1, "000"), (prod, 3, 3, "001")):
        master = named(graph, "StatefulSet", "storage-master")
        volume = named(graph, "StatefulSet", "storage-volume")
        assert master["spec"]["replicas"] == masters and volume["spec"]["replicas"] == volumes
        script = master["spec"]["template"]["spec"]["containers"][0]["command"][2]
        assert script.count(".storage-master.") == masters + 1  # its own -ip plus every peer
        assert f"-defaultReplication={replication}" in script
        assert named(graph, "StatefulSet", "storage-filer")["spec"]["replicas"] == 1
    claim = named(prod, "StatefulSet", "storage-volume")["spec"]["volumeClaimTemplates"][0]["spec"]
    assert claim["resources"]["requests"]["storage"] == "500Gi" and claim["storageClassName"] == "fast-ssd"
    assert "storageClassName" not in named(dev, "StatefulSet", "storage-volume")["spec"]["volumeClaimTemplates"][0][
        "spec"]  # the cluster's default class


def test_s3_identities_are_a_secret_built_from_pulumi_secrets(dev):
    resource = dev.named("storage-s3-identities")
    assert {"stringData", "stringData.s3.json"} & set(resource.secret_paths)
    assert "mock-password-storage-secret-access-key" in resource.inputs["stringData"]["s3.json"]
    filer = dig(named(dev, "StatefulSet", "storage-filer"), "spec.template.spec")
    assert {"name": "identities", "secret": {"secretName": "storage-s3-identities"}} in filer["volumes"]
    assert "-s3.config=/etc/seaweedfs/s3/s3.json" in filer["containers"][0]["command"][2]


def test_bucket_job_creates_each_bucket_idempotently(dev):
    job = named(dev, "Job", "storage-buckets")
    script = job["spec"]["template"]["spec"]["containers"][0]["command"][2]
    assert "for bucket in warehouse checkpoints backups; do" in script
    assert "grep -qxF" in script  # existing buckets are skipped
    result = shellcheck(script, "sh")
    assert result.returncode == 0, result.stdout


def test_storage_contract(dev):
    storage = dev.outputs["endpoints"]["object_storage"]
    assert storage["endpoint"] == "http://storage.dataplatform.svc:8333"
    assert storage["buckets"] == {"warehouse": "warehouse", "checkpoints": "checkpoints", "backups": "backups"}
    assert named(dev, "Service", "storage")["spec"]["ports"] == [{"name": "s3", "port": 8333, "targetPort": 8333}]


# -- catalog -----------------------------------------------------------------------------------------------------
def test_catalog_runs_migrate_then_serve_then_bootstrap(dev):
    def job(name):
        [found] = [r for r in dev.resources if r.name == name and r.type == "kubernetes:batch/v1:Job"]
        return found

    migrate, server, bootstrap = job("catalog-migrate"), dev.named("catalog-server"), job("catalog-bootstrap")
    assert migrate.inputs["spec"]["template"]["spec"]["containers"][0]["args"] == ["migrate"]
    assert "catalog-db" in migrate.dependencies  # the StatefulSet, awaited until ready
    assert "catalog-migrate" in server.dependencies
    assert "catalog-server" in bootstrap.dependencies
    container = server.inputs["spec"]["template"]["spec"]["containers"][0]
    assert container["args"] == ["serve"] and container["readinessProbe"]["httpGet"]["path"] == "/health"
    script = bootstrap.inputs["spec"]["template"]["spec"]["containers"][0]["command"][2]
    assert "/management/v1/warehouse" in script and "2??|409" in script
    result = shellcheck(script, "sh")
    assert result.returncode == 0, result.stdout


def secret(graph, name: str):
    [found] = [r for r in graph.resources if r.name == name and r.type == "kubernetes:core/v1:Secret"]
    return found


def test_catalog_credentials_reach_pods_only_through_secrets(dev):
    for name in ("catalog-config", "catalog-db-credentials", "catalog-bootstrap"):
        resource = secret(dev, name)
        assert resource.secret_paths and all(p.startswith("stringData") for p in resource.secret_paths), name
    url = secret(dev, "catalog-config").inputs["stringData"]["LAKEKEEPER__PG_DATABASE_URL_WRITE"]
    assert url == ("postgresql://lakekeeper:mock-password-catalog-db-password@catalog-db.dataplatform.svc:5432/"
                   "lakekeeper?sslmode=disable")
    request = secret(dev, "catalog-bootstrap").inputs["stringData"]["warehouse.json"]
    assert '"warehouse-name": "lakehouse"' in request and "mock-password-storage-secret-access-key" in request
    for _, spec in pods(dev):
        for container in containers(spec):
            for env in container.get("env", []):
                assert "mock-password" not in str(env.get("value", "")), container["name"]


def test_catalog_database_is_backed_up_once_by_the_backups_component(dev):
    cronjobs = [r for r in dev.resources if r.type == "kubernetes:batch/v1:CronJob"]
    protecting = [c for c in cronjobs if c.inputs["metadata"]["annotations"].get("dataplatform.io/backup-of") ==
                  "catalog-db"]
    assert [c.name for c in protecting] == ["backups-catalog-db"]


def test_catalog_contract_matches_compose(dev):
    catalog = dev.outputs["endpoints"]["catalog"]
    assert catalog["type"] == "rest" and catalog["uri"] == "http://catalog.dataplatform.svc:8181/catalog"
    assert catalog["properties"]["s3.endpoint"] == "http://storage.dataplatform.svc:8333"
    assert catalog["properties"]["s3.access-key-id"] == "mock-password-storage-access-key-id"
    assert "endpoints" in dev.secret_outputs  # the properties carry S3 keys


# -- Kafka (Strimzi) ---------------------------------------------------------------------------------------------
def crs(graph, kind: str) -> list[dict]:
    return [m for m in manifests(graph, kind) if m["apiVersion"] == STRIMZI]


def named_cr(graph, kind: str, name: str) -> dict:
    [found] = [m for m in crs(graph, kind) if m["metadata"]["name"] == name]
    return found


def test_strimzi_operator_release_is_pinned_and_watches_only_the_namespace(dev):
    chart = resolve().charts["strimzi"]
    release = dev.named("kafka-operator").inputs
    assert release["chart"] == chart.repo and release["version"] == chart.version
    values = release["values"]
    assert values["watchAnyNamespace"] is False and values["watchNamespaces"] == []
    assert {"name": "STRIMZI_POD_SECURITY_PROVIDER_CLASS", "value": "restricted"} in values["extraEnvs"]
    assert values["resources"]["requests"] and values["securityContext"]["readOnlyRootFilesystem"] is True


def test_strimzi_custom_resources_are_structurally_complete(prod):
    """No CRD schema offline: check what the v1 API requires (spec.kafka.listeners, pool roles/replicas/storage,
    topic partitions/replicas) and that every resource names its cluster."""
    kinds = {m["kind"] for m in manifests(prod) if m["apiVersion"].startswith("kafka.strimzi.io")}
    assert kinds == {"Kafka", "KafkaNodePool", "KafkaTopic"}
    assert all(m["apiVersion"] == STRIMZI for m in manifests(prod) if m["kind"] in kinds)
    kafka = named_cr(prod, "Kafka", "kafka")
    assert kafka["spec"]["kafka"]["listeners"] and kafka["spec"]["entityOperator"]["topicOperator"]
    assert "zookeeper" not in kafka["spec"] and "replicas" not in kafka["spec"]["kafka"]  # gone in v1
    for manifest in crs(prod, "KafkaNodePool") + crs(prod, "KafkaTopic"):
        assert manifest["metadata"]["labels"]["strimzi.io/cluster"] == "kafka"
    for pool in crs(prod, "KafkaNodePool"):
        spec = pool["spec"]
        assert spec["replicas"] >= 1 and spec["roles"] and spec["storage"]["type"] == "jbod"
        [volume] = spec["storage"]["volumes"]
        assert volume["type"] == "persistent-claim" and volume["class"] == "fast-ssd" and volume["deleteClaim"] is False


def test_dev_runs_one_dual_role_node_pool(dev):
    [pool] = crs(dev, "KafkaNodePool")
    assert pool["metadata"]["name"] == "dual-role"
    assert pool["spec"]["roles"] == ["controller", "broker"] and pool["spec"]["replicas"] == 1
    assert pool["spec"]["storage"]["volumes"][0]["size"] == "20Gi"
    assert pool["spec"]["resources"] == {"requests": {"cpu": "500m", "memory": "2Gi"}, "limits": {"memory": "2Gi"}}
    config = named_cr(dev, "Kafka", "kafka")["spec"]["kafka"]["config"]
    assert config["default.replication.factor"] == 1 and config["min.insync.replicas"] == 1


def test_medium_runs_three_controllers_and_three_brokers(prod):
    pools = {p["metadata"]["name"]: p["spec"] for p in crs(prod, "KafkaNodePool")}
    assert set(pools) == {"controller", "broker"}
    assert pools["controller"]["roles"] == ["controller"] and pools["controller"]["replicas"] == 3
    assert pools["broker"]["roles"] == ["broker"] and pools["broker"]["replicas"] == 3
    assert pools["broker"]["storage"]["volumes"][0]["size"] == "500Gi"
    assert pools["broker"]["resources"]["requests"] == {"cpu": "2", "memory": "8Gi"}
    kafka = named_cr(prod, "Kafka", "kafka")
    assert kafka["metadata"]["annotations"]["strimzi.io/node-pools"] == "enabled"
    assert kafka["metadata"]["annotations"]["strimzi.io/kraft"] == "enabled"
    assert kafka["spec"]["kafka"]["version"] == resolve().images["kafka"].rsplit(":", 1)[1]
    config = kafka["spec"]["kafka"]["config"]
    assert config["default.replication.factor"] == 3 and config["min.insync.replicas"] == 2
    assert config["auto.create.topics.enable"] is False
    assert prod.outputs["endpoints"]["kafka"]["bootstrap_servers"] == "kafka-kafka-bootstrap.analytics.svc:9092"
    annotations = {p["metadata"]["name"]: p["metadata"]["annotations"] for p in crs(prod, "KafkaNodePool")}
    assert annotations["controller"]["strimzi.io/next-node-ids"] == "[0-99]"  # stable, disjoint pod names
    assert annotations["broker"]["strimzi.io/next-node-ids"] == "[100-199]"


def test_kafka_exports_jmx_metrics_from_a_configmap(prod):
    metrics = named_cr(prod, "Kafka", "kafka")["spec"]["kafka"]["metricsConfig"]
    assert metrics["type"] == "jmxPrometheusExporter"
    reference = metrics["valueFrom"]["configMapKeyRef"]
    rules = yaml.safe_load(named(prod, "ConfigMap", reference["name"])["data"][reference["key"]])
    assert rules["lowercaseOutputName"] is True and len(rules["rules"]) >= 5
    assert all(rule["pattern"].startswith("kafka.") for rule in rules["rules"])


def test_one_kafka_topic_per_configured_topic(prod):
    config = parse({"target": "kubernetes", "environment": "prod", "size": "medium"}).services.kafka
    topics = {t["spec"]["topicName"]: t for t in crs(prod, "KafkaTopic")}
    assert set(topics) == {t.name for t in config.topics}
    for topic in config.topics:
        resource = topics[topic.name]
        assert resource["metadata"]["name"] == topic_resource_name(topic.name)
        assert resource["spec"]["partitions"] == topic.partitions and resource["spec"]["replicas"] == 3
        assert resource["spec"]["config"] == typed(topic_config(topic, 3, 2))
    assert topics["shop.order_lines"]["metadata"]["name"] == "shop.order-lines"  # `_` is not allowed in k8s names
    assert topics["shop.clickstream"]["spec"]["config"]["retention.ms"] == 72 * 3_600_000
    for resource in prod.of_type("kubernetes:kafka.strimzi.io/v1:KafkaTopic"):
        assert "kafka-cluster" in resource.dependencies  # created once the Kafka is Ready
        assert resource.inputs["metadata"]["annotations"]["pulumi.com/waitFor"] == "condition=Ready"


def test_topic_names_that_collide_as_kubernetes_names_are_refused():
    config = parse({"target": "kubernetes", "services": {"kafka": {"topics": [{"name": "a_b"}, {"name": "a-b"}]}}})
    with pytest.raises(ValueError, match="same Kubernetes name 'a-b'"):
        capture(config, "k8s-collide")


# -- configuration ------------------------------------------------------------------------------------------------
def test_kubeconfig_secret_reaches_the_provider_as_a_secret():
    config = parse({"target": "kubernetes", "kubernetes": {"kubeconfig": Secret("apiVersion: v1\nkind: Config\n"),
                                                           "context": "prod-cluster"}})
    graph = capture(config, "k8s-kubeconfig")
    [provider] = graph.of_type("pulumi:providers:kubernetes")
    assert "kubeconfig" in provider.secret_paths and provider.inputs["context"] == "prod-cluster"
    offline = capture(parse({"target": "kubernetes", "kubernetes": {"kubeconfig": Secret(None)}}), "k8s-ambient")
    [ambient] = offline.of_type("pulumi:providers:kubernetes")
    assert "kubeconfig" not in ambient.inputs  # undecryptable offline: the ambient kubeconfig is used


@pytest.mark.parametrize("services, absent", [
    ({"kafka": {"enabled": False}}, ("kafka.strimzi.io", "helm.sh", "dataplatform:kafka")),
    ({"catalog": {"enabled": False}}, ("dataplatform:catalog",)),
    ({"catalog": {"enabled": False}, "object_storage": {"enabled": False}},
     ("dataplatform:catalog", "dataplatform:storage", "apps/v1:StatefulSet", "batch/v1")),
])
def test_switching_a_service_off_removes_all_its_resources(services, absent):
    graph = capture(parse({"target": "kubernetes", "services": services}), "k8s-switches")
    for fragment in absent:
        assert not [r.name for r in graph.resources if fragment in r.type], fragment
    names = {r.name for r in graph.resources}
    for service, prefix in (("kafka", "kafka-"), ("catalog", "catalog-"), ("object_storage", "storage-")):
        if services.get(service, {}).get("enabled") is False:
            assert not {n for n in names if n.startswith(prefix)}, service
            assert service not in graph.outputs["endpoints"]
    assert graph.of_type("kubernetes:core/v1:Namespace")  # the substrate stays


def test_example_stack_file_is_ready_to_use(example):
    config = load_stack_file(EXAMPLE)
    assert config.target == "kubernetes" and config.kubernetes.context == "staging"
    assert config.services.kafka.brokers == 3 and config.services.catalog.replicas == 2
    assert {m["metadata"]["name"] for m in crs(example, "KafkaNodePool")} == {"controller", "broker"}
    assert named_cr(example, "KafkaTopic", "shop.clickstream")["spec"]["partitions"] == 24
    assert example.outputs["endpoints"]["kafka"]["bootstrap_servers"] == "kafka-kafka-bootstrap.dataplatform.svc:9092"


def test_metrics_endpoints_point_at_named_service_ports(prod):
    """What observability scrapes: real `metrics` ports on the Services, targets that pass the scrape generator."""
    from components import targets
    from components.base import ServiceArgs
    from components.catalog import Catalog, CatalogArgs
    from components.kafka import Kafka
    from components.object_storage import ObjectStorage
    from components.observability.scrape import scrape_configs

    config = parse({"target": "kubernetes", "size": "medium", "kubernetes": {"namespace": "analytics"}})
    found = []

    def program(config):
        substrate = targets.build("platform", config)
        common = {"substrate": substrate, "versions": resolve(), "environment": "dev", "tags": config.tags}
        storage = ObjectStorage("storage", ServiceArgs(settings=config.services.object_storage, **common))
        catalog = Catalog("catalog", CatalogArgs(settings=config.services.catalog, storage=storage.endpoints,
                                                 **common))
        kafka = Kafka("kafka", ServiceArgs(settings=config.services.kafka, **common))
        found.extend(storage.endpoints.metrics + catalog.endpoints.metrics + kafka.endpoints.metrics)

    capture(config, "k8s-metrics", program=program)
    jobs = {job["job_name"]: job["static_configs"][0]["targets"] for job in scrape_configs(found)}
    assert jobs["catalog"] == ["catalog.analytics.svc:9000"]
    assert "storage-volume-2.storage-volume.analytics.svc:9327" in jobs["object-storage"]
    assert len(jobs["object-storage"]) == 3 + 3 + 1  # masters, volume servers, filer
    assert jobs["kafka"] == [f"kafka-controller-{i}.kafka-kafka-brokers.analytics.svc:9404" for i in range(3)] + [
        f"kafka-broker-{i}.kafka-kafka-brokers.analytics.svc:9404" for i in (100, 101, 102)]
    ports = {(m["metadata"]["name"], p["name"]) for m in manifests(prod, "Service") for p in m["spec"]["ports"]}
    for endpoint in (e for e in found if e.selector):
        services = [m for m in manifests(prod, "Service")
                    if all(m["metadata"]["labels"].get(k) == v for k, v in endpoint.selector.items())]
        assert services and all((m["metadata"]["name"], endpoint.port) in ports or m["metadata"]["name"] == "storage"
                                for m in services), endpoint.job
