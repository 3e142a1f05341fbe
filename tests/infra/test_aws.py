"""The aws target: a private VPC, one KMS key with rotation, EKS with a private endpoint and full control-plane
logging, S3 buckets locked down (KMS, versioning, public-access block, lifecycle, TLS only), MSK with IAM auth and
TLS, the Glue catalog (or Lakekeeper on EKS with RDS), IAM roles instead of keys, tags on everything taggable,
and the Kubernetes objects that land on EKS validated strictly like on the kubernetes target."""
import importlib
import inspect
import json
from functools import lru_cache

import pytest

from components.kafka import topic_config
from components.kafka.aws import client_subnet_count
from components.targets.aws import ami_type, subnet_cidrs
from stacks.loader import load_stack_file, parse
from stacks.offline import capture
from stacks.versions import resolve
from tests.infra.checks import is_builtin, kubernetes_manifests, validate_kubernetes

from .test_config import REPO

REGION = "eu-central-1"
KEY_ARN = f"arn:aws:kms:{REGION}:123456789012:platform-key"  # the mocks' ARN for the platform key
BASE = {"target": "aws", "aws": {"region": REGION}, "services": {"kafka": {"brokers": 3}}}
EKS_LOGS = {"api", "audit", "authenticator", "controllerManager", "scheduler"}


def config(**overrides):
    data = json.loads(json.dumps(BASE))
    for key, value in overrides.items():
        section = data
        *path, last = key.split("__")
        for part in path:
            section = section.setdefault(part, {})
        section[last] = value
    return parse(data)


@pytest.fixture(scope="module")
def dev():
    return capture(config(), "aws-dev")


@pytest.fixture(scope="module")
def rest():
    return capture(config(environment="prod", size="medium", services__catalog={"aws_flavor": "rest"}), "aws-rest")



def of(graph, type_: str) -> list:
    return graph.of_type(type_)


def one(graph, type_: str, name: str | None = None):
    found = [r for r in graph.of_type(type_) if name is None or r.name == name]
    assert len(found) == 1, [r.name for r in found]
    return found[0]


def by_bucket(graph, type_: str) -> dict:
    """Bucket sub-resources keyed by the bucket resource they configure."""
    buckets = {r.inputs["bucketPrefix"]: r.name for r in of(graph, "aws:s3/bucket:Bucket")}
    found = {}
    for resource in of(graph, type_):
        bucket_id = resource.inputs["bucket"]
        found[bucket_id.removesuffix("-id")] = resource
    assert set(found) == set(buckets.values()), (found, buckets)
    return found


# -- object storage --------------------------------------------------------------------------------------------------
def test_one_locked_down_bucket_per_logical_bucket(dev):
    buckets = of(dev, "aws:s3/bucket:Bucket")
    assert sorted(b.name for b in buckets) == ["storage-backups", "storage-checkpoints", "storage-warehouse"]
    for bucket in buckets:
        assert len(bucket.inputs["bucketPrefix"]) <= 37 and bucket.inputs["forceDestroy"] is True  # not prod
    for name, versioning in by_bucket(dev, "aws:s3/bucketVersioning:BucketVersioning").items():
        assert versioning.inputs["versioningConfiguration"]["status"] == "Enabled", name
    for name, encryption in by_bucket(dev, "aws:s3/bucketServerSideEncryptionConfiguration:"
                                           "BucketServerSideEncryptionConfiguration").items():
        [rule] = encryption.inputs["rules"]
        assert rule["applyServerSideEncryptionByDefault"] == {"sseAlgorithm": "aws:kms", "kmsMasterKeyId": KEY_ARN}
        assert rule["bucketKeyEnabled"] is True, name
    for name, block in by_bucket(dev, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock").items():
        assert all(block.inputs[k] is True for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls",
                                                      "restrictPublicBuckets")), name
    for name, lifecycle in by_bucket(dev, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration").items():
        [rule] = lifecycle.inputs["rules"]
        assert rule["status"] == "Enabled"
        assert rule["noncurrentVersionExpiration"] == {"noncurrentDays": 30}
        assert rule["abortIncompleteMultipartUpload"] == {"daysAfterInitiation": 7}
    for name, policy in by_bucket(dev, "aws:s3/bucketPolicy:BucketPolicy").items():
        [statement] = json.loads(policy.inputs["policy"])["Statement"]
        assert statement["Effect"] == "Deny" and statement["Principal"] == "*" and statement["Action"] == "s3:*"
        assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        assert statement["Resource"][1] == statement["Resource"][0] + "/*"


def test_lifecycle_follows_the_settings():
    graph = capture(config(services__object_storage={"noncurrent_version_days": 90, "abort_multipart_days": 2,
                                                     "buckets": ["warehouse"]},
                           services__backups={"enabled": False}), "aws-lifecycle")
    [lifecycle] = of(graph, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration")
    rule = lifecycle.inputs["rules"][0]
    assert rule["noncurrentVersionExpiration"] == {"noncurrentDays": 90}
    assert rule["abortIncompleteMultipartUpload"] == {"daysAfterInitiation": 2}


def test_storage_contract_has_no_keys(dev):
    storage = dev.outputs["endpoints"]["object_storage"]
    assert storage["endpoint"] is None and storage["region"] == REGION and storage["path_style"] is False
    assert storage["access_key_id"] is None and storage["secret_access_key"] is None
    assert storage["buckets"]["warehouse"].startswith("dataplatform-aws-dev-warehouse-")


# -- Kafka (MSK) ----------------------------------------------------------------------------------------------------
def test_msk_uses_iam_auth_tls_and_the_platform_key(dev):
    cluster = one(dev, "aws:msk/cluster:Cluster").inputs
    assert cluster["clientAuthentication"] == {"sasl": {"iam": True}, "unauthenticated": False}
    encryption = cluster["encryptionInfo"]
    assert encryption["encryptionInTransit"] == {"clientBroker": "TLS", "inCluster": True}
    assert encryption["encryptionAtRestKmsKeyArn"].endswith(":platform-key")
    assert cluster["numberOfBrokerNodes"] == 3 and cluster["kafkaVersion"] == resolve().managed["msk_kafka_version"]
    nodes = cluster["brokerNodeGroupInfo"]
    assert nodes["instanceType"] == "kafka.t3.small" and len(nodes["clientSubnets"]) == 3
    assert nodes["storageInfo"] == {"ebsStorageInfo": {"volumeSize": 20}}
    assert cluster["loggingInfo"]["brokerLogs"]["cloudwatchLogs"]["enabled"] is True
    properties = one(dev, "aws:msk/configuration:Configuration").inputs["serverProperties"].splitlines()
    assert {"auto.create.topics.enable=false", "default.replication.factor=3", "min.insync.replicas=2"} <= set(
        properties)
    assert cluster["configurationInfo"]["arn"].endswith(":kafka-configuration")


def test_msk_security_group_admits_only_eks_and_clients_on_the_iam_port(dev):
    rules = [r for r in of(dev, "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
             if r.name.startswith("kafka-")]
    assert {r.name for r in rules} == {"kafka-from-eks", "kafka-from-clients"}
    for rule in rules:
        assert rule.inputs["fromPort"] == rule.inputs["toPort"] == 9098
        assert "cidrIpv4" not in rule.inputs and rule.inputs["referencedSecurityGroupId"]
    assert one(dev, "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule", "kafka-from-eks").inputs[
        "referencedSecurityGroupId"] == "sg-platform-eks-cluster"


def test_msk_topics_match_the_configured_topics(dev):
    settings = config().services.kafka
    topics = {t.inputs["name"]: t.inputs for t in of(dev, "aws:msk/topic:Topic")}
    assert set(topics) == {t.name for t in settings.topics}
    for topic in settings.topics:
        assert topics[topic.name]["partitionCount"] == topic.partitions
        assert topics[topic.name]["replicationFactor"] == 3
        assert json.loads(topics[topic.name]["configs"]) == topic_config(topic, 3, 2)


def test_kafka_contract_is_sasl_iam(dev):
    kafka = dev.outputs["endpoints"]["kafka"]
    assert kafka["security_protocol"] == "SASL_SSL" and kafka["sasl_mechanism"] == "OAUTHBEARER"
    assert kafka["bootstrap_servers"].count(":9098") == 3


@pytest.mark.parametrize("brokers, subnets, expected", [(3, 3, 3), (6, 3, 3), (2, 3, 2), (4, 3, 2), (4, 2, 2),
                                                        (3, 2, None), (1, 3, None), (5, 3, None)])
def test_broker_count_must_spread_evenly_over_the_azs(brokers, subnets, expected):
    if expected is None:
        with pytest.raises(ValueError, match="multiple of 2 or 3"):
            client_subnet_count(brokers, subnets)
    else:
        assert client_subnet_count(brokers, subnets) == expected


def test_msk_with_four_brokers_uses_two_azs_and_one_broker_is_refused():
    graph = capture(config(services__kafka={"brokers": 4}), "aws-four")
    nodes = one(graph, "aws:msk/cluster:Cluster").inputs["brokerNodeGroupInfo"]
    assert len(nodes["clientSubnets"]) == 2
    with pytest.raises(ValueError, match="services.kafka.brokers: MSK spreads brokers"):
        capture(config(services__kafka={"brokers": 1}), "aws-one")


# -- catalog ----------------------------------------------------------------------------------------------------------
def test_glue_databases_per_namespace_under_the_warehouse_bucket(dev):
    databases = {d.inputs["name"]: d.inputs for d in of(dev, "aws:glue/catalogDatabase:CatalogDatabase")}
    assert set(databases) == {"bronze", "silver", "gold"}
    bucket = dev.outputs["endpoints"]["object_storage"]["buckets"]["warehouse"]
    for namespace, database in databases.items():
        assert database["locationUri"] == f"s3://{bucket}/lakehouse/{namespace}.db"
    catalog = dev.outputs["endpoints"]["catalog"]
    assert catalog["type"] == "glue" and catalog["uri"] == f"https://glue.{REGION}.amazonaws.com/iceberg"
    assert catalog["warehouse"] == "123456789012"
    assert catalog["properties"] == {
        "type": "rest", "uri": f"https://glue.{REGION}.amazonaws.com/iceberg", "warehouse": "123456789012",
        "rest.sigv4-enabled": "true", "rest.signing-name": "glue", "rest.signing-region": REGION,
        "s3.region": REGION}
    assert not of(dev, "aws:rds/instance:Instance") and not of(dev, "kubernetes:apps/v1:Deployment")


def test_rest_flavor_runs_lakekeeper_on_eks_with_a_private_encrypted_rds(rest):
    db = one(rest, "aws:rds/instance:Instance").inputs
    assert db["engine"] == "postgres" and db["engineVersion"] == resolve().managed["rds_postgres_version"]
    assert db["storageEncrypted"] is True and db["kmsKeyId"].endswith(":platform-key")
    assert db["publiclyAccessible"] is False and db["backupRetentionPeriod"] >= 7
    assert db["multiAz"] is True and db["deletionProtection"] is True  # prod
    assert db["dbSubnetGroupName"] == "dataplatform-aws-rest-catalog-subnets"
    subnets = one(rest, "aws:rds/subnetGroup:SubnetGroup").inputs["subnetIds"]
    assert subnets == [f"platform-private-{i}-id" for i in range(3)]
    assert "password" in one(rest, "aws:rds/instance:Instance").secret_paths
    assert not of(rest, "aws:glue/catalogDatabase:CatalogDatabase")

    [eks_provider] = rest.of_type("pulumi:providers:kubernetes")
    deployment = rest.named("catalog-server")
    assert deployment.provider.startswith(eks_provider.urn)
    pod = deployment.inputs["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "catalog" and pod["containers"][0]["image"] == resolve().images["lakekeeper"]
    account = rest.named("catalog-service-account").inputs["metadata"]
    assert account["annotations"]["eks.amazonaws.com/role-arn"].endswith(":catalog-server-role")
    url = [r for r in rest.resources if r.name == "catalog-config"][0].inputs["stringData"][
        "LAKEKEEPER__PG_DATABASE_URL_WRITE"]
    assert url.endswith("@catalog-db.rds.eu-central-1.amazonaws.com:5432/lakekeeper?sslmode=require")
    assert not rest.of_type("kubernetes:apps/v1:StatefulSet")  # no in-cluster PostgreSQL
    catalog = rest.outputs["endpoints"]["catalog"]
    assert catalog["type"] == "rest" and catalog["uri"] == "http://catalog.dataplatform.svc:8181/catalog"
    assert "s3.access-key-id" not in catalog["properties"]


def test_lakekeeper_uses_its_iam_role_for_the_warehouse(rest):
    request = json.loads([r for r in rest.resources if r.name == "catalog-bootstrap" and
                          r.type == "kubernetes:core/v1:Secret"][0].inputs["stringData"]["warehouse.json"])
    assert request["storage-credential"] == {"type": "s3", "credential-type": "aws-system-identity"}
    assert request["storage-profile"]["flavor"] == "aws" and request["storage-profile"]["region"] == REGION
    trust = json.loads(rest.named("catalog-server-role").inputs["assumeRolePolicy"])["Statement"][0]
    conditions = trust["Condition"]["StringEquals"]
    assert "system:serviceaccount:dataplatform:catalog" in conditions.values()
    policy = json.loads(rest.named("catalog-server-policy").inputs["policy"])["Statement"]
    assert any(s["Resource"].endswith("/lakehouse/*") for s in policy if isinstance(s["Resource"], str))


def test_kubernetes_objects_on_eks_pass_strict_validation(rest):
    builtin = [m for m in kubernetes_manifests(rest) if is_builtin(m)]
    assert {"Namespace", "StorageClass", "NetworkPolicy", "Deployment", "Job", "Secret", "ServiceAccount"} <= {
        m["kind"] for m in builtin}
    for manifest in builtin:
        validate_kubernetes(manifest)
    [storage_class] = [m for m in builtin if m["kind"] == "StorageClass"]
    assert storage_class["provisioner"] == "ebs.csi.aws.com"
    assert storage_class["parameters"] == {"type": "gp3", "encrypted": "true",
                                           "kmsKeyId": KEY_ARN}
    assert storage_class["reclaimPolicy"] == "Retain"  # prod


def test_namespace_egress_opens_only_aws_apis_and_the_data_services(rest):
    policies = {m["metadata"]["name"]: m["spec"] for m in kubernetes_manifests(rest) if m["kind"] == "NetworkPolicy"}
    assert "default-deny" in policies
    apis = policies["platform-aws-apis-egress"]
    assert apis["podSelector"] == {} and apis["egress"] == [
        {"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}], "ports": [{"protocol": "TCP", "port": 443}]}]
    database = policies["catalog-db-egress"]
    assert database["podSelector"] == {"matchLabels": {"app.kubernetes.io/name": "catalog"}}
    assert database["egress"] == [{"to": [{"ipBlock": {"cidr": "10.40.0.0/16"}}],
                                   "ports": [{"protocol": "TCP", "port": 5432}]}]
    kafka = policies["kafka-egress"]
    assert kafka["egress"][0]["ports"] == [{"protocol": "TCP", "port": 9098}]


# -- substrate ----------------------------------------------------------------------------------------------------
def test_network_private_subnets_across_azs_and_nat(dev, rest):
    vpc = one(dev, "aws:ec2/vpc:Vpc").inputs
    assert vpc["cidrBlock"] == "10.40.0.0/16" and vpc["enableDnsHostnames"] is True
    subnets = sorted(of(dev, "aws:ec2/subnet:Subnet"), key=lambda s: s.name)  # registration order varies
    private = [s.inputs for s in subnets if "private" in s.name]
    public = [s.inputs for s in subnets if "public" in s.name]
    assert [s["cidrBlock"] for s in private] == ["10.40.0.0/19", "10.40.32.0/19", "10.40.64.0/19"]
    assert [s["availabilityZone"] for s in private] == [f"{REGION}{z}" for z in "abc"]
    assert all(s["tags"]["kubernetes.io/role/internal-elb"] == "1" for s in private)
    assert all(s["mapPublicIpOnLaunch"] is False for s in public)
    assert len(of(dev, "aws:ec2/natGateway:NatGateway")) == 1 and len(of(rest, "aws:ec2/natGateway:NatGateway")) == 3
    endpoint = one(dev, "aws:ec2/vpcEndpoint:VpcEndpoint").inputs
    assert endpoint["serviceName"] == f"com.amazonaws.{REGION}.s3" and len(endpoint["routeTableIds"]) == 3


def test_subnet_plan():
    assert subnet_cidrs("10.0.0.0/16", 2) == (["10.0.0.0/19", "10.0.32.0/19"], ["10.0.224.0/22", "10.0.228.0/22"])
    private, public = subnet_cidrs("10.0.0.0/16", 6)
    assert len(private) == len(public) == 6 and "10.0.252.0/22" not in public + private
    with pytest.raises(ValueError, match="too small"):
        subnet_cidrs("10.0.0.0/24", 3)


def test_existing_vpc_is_used_as_is():
    graph = capture(config(aws={"region": REGION, "existing_vpc_id": "vpc-0123456789abcdef0",
                                "existing_private_subnet_ids": ["subnet-a", "subnet-b", "subnet-c"]}), "aws-byo")
    assert not of(graph, "aws:ec2/vpc:Vpc") and not of(graph, "aws:ec2/subnet:Subnet")
    assert not of(graph, "aws:ec2/natGateway:NatGateway")
    cluster = one(graph, "aws:eks/cluster:Cluster").inputs
    assert cluster["vpcConfig"]["subnetIds"] == ["subnet-a", "subnet-b", "subnet-c"]
    assert one(graph, "aws:msk/cluster:Cluster").inputs["brokerNodeGroupInfo"]["clientSubnets"] == [
        "subnet-a", "subnet-b", "subnet-c"]
    for group in of(graph, "aws:ec2/securityGroup:SecurityGroup"):
        assert group.inputs["vpcId"] == "vpc-0123456789abcdef0"


def test_no_security_group_is_open_to_the_internet(dev, rest):
    for graph in (dev, rest):
        for rule in of(graph, "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"):
            assert rule.inputs.get("cidrIpv4") not in {"0.0.0.0/0"} and rule.inputs.get("cidrIpv6") != "::/0"
            assert rule.inputs["referencedSecurityGroupId"]
        for group in of(graph, "aws:ec2/securityGroup:SecurityGroup"):
            assert not group.inputs.get("ingress"), group.name
    db_rules = [r for r in of(rest, "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
                if r.name.startswith("catalog-db")]
    assert len(db_rules) == 2 and all(r.inputs["fromPort"] == 5432 for r in db_rules)


def test_kms_key_rotates(dev):
    key = one(dev, "aws:kms/key:Key").inputs
    assert key["enableKeyRotation"] is True and key["deletionWindowInDays"] == 30
    statements = json.loads(key["policy"])["Statement"]
    assert statements[0]["Principal"] == {"AWS": "arn:aws:iam::123456789012:root"}
    assert statements[1]["Principal"] == {"Service": f"logs.{REGION}.amazonaws.com"}


def test_eks_is_private_logged_encrypted_and_sized_from_config(dev):
    cluster = one(dev, "aws:eks/cluster:Cluster").inputs
    assert cluster["version"] == resolve().managed["eks_version"]
    assert cluster["vpcConfig"]["endpointPrivateAccess"] is True
    assert cluster["vpcConfig"]["endpointPublicAccess"] is False
    assert set(cluster["enabledClusterLogTypes"]) == EKS_LOGS
    assert cluster["encryptionConfig"] == {"provider": {"keyArn": KEY_ARN}, "resources": ["secrets"]}
    assert cluster["accessConfig"]["authenticationMode"] == "API"
    logs = one(dev, "aws:cloudwatch/logGroup:LogGroup", "platform-eks-logs").inputs
    assert logs["name"] == f"/aws/eks/{cluster['name']}/cluster" and logs["kmsKeyId"].endswith(":platform-key")
    nodes = one(dev, "aws:eks/nodeGroup:NodeGroup").inputs
    assert nodes["scalingConfig"] == {"minSize": 2, "desiredSize": 3, "maxSize": 6}
    assert nodes["instanceTypes"] == ["m7i.xlarge"] and nodes["amiType"] == "AL2023_x86_64_STANDARD"
    assert one(dev, "aws:iam/openIdConnectProvider:OpenIdConnectProvider").inputs["clientIdLists"] == [
        "sts.amazonaws.com"]
    cni = one(dev, "aws:eks/addon:Addon", "platform-vpc-cni").inputs
    assert json.loads(cni["configurationValues"]) == {"enableNetworkPolicy": "true"}  # policies must be enforced
    assert one(dev, "aws:eks/addon:Addon", "platform-ebs-csi").inputs["serviceAccountRoleArn"].endswith(
        ":platform-ebs-csi-role")


def test_graviton_nodes_get_the_arm_image():
    assert ami_type(("m7g.xlarge", "c7gn.2xlarge")) == "AL2023_ARM_64_STANDARD"
    assert ami_type(("m7i.xlarge",)) == "AL2023_x86_64_STANDARD"
    with pytest.raises(ValueError, match="mixes"):
        ami_type(("m7g.xlarge", "m7i.xlarge"))


def test_public_endpoint_needs_admin_cidrs_and_never_the_internet():
    with pytest.raises(ValueError, match="needs kubernetes.allowed_ingress_cidrs"):
        capture(config(aws={"region": REGION, "eks": {"public_endpoint": True}}), "aws-public")
    graph = capture(config(aws={"region": REGION, "eks": {"public_endpoint": True}},
                           kubernetes={"allowed_ingress_cidrs": ["203.0.113.0/24"]}), "aws-public-ok")
    vpc = one(graph, "aws:eks/cluster:Cluster").inputs["vpcConfig"]
    assert vpc["endpointPublicAccess"] is True and vpc["publicAccessCidrs"] == ["203.0.113.0/24"]


def test_workloads_get_an_iam_role_not_keys(dev):
    role = dev.named("platform-workloads-role").inputs
    condition = json.loads(role["assumeRolePolicy"])["Statement"][0]["Condition"]["StringEquals"]
    assert "system:serviceaccount:dataplatform:dataplatform-workloads" in condition.values()
    statements = {s["Sid"]: s for s in json.loads(dev.named("platform-workloads-policy").inputs["policy"])[
        "Statement"]}
    assert {"PlatformBuckets", "PlatformObjects", "PlatformKey", "KafkaConnect", "KafkaTopics", "KafkaGroups",
            "GlueCatalog"} <= set(statements)
    assert "kafka-cluster:WriteData" in statements["KafkaTopics"]["Action"]
    assert any(r.endswith(":database/bronze") for r in statements["GlueCatalog"]["Resource"])
    account = dev.named("platform-workloads").inputs
    assert account["kind"] == "ServiceAccount"
    assert account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"].endswith(":platform-workloads-role")


@lru_cache(maxsize=None)
def taggable(type_: str) -> bool:
    """Whether the pulumi-aws resource class behind a type token accepts `tags`."""
    module, name = type_.split(":")[1].split("/")[0], type_.split(":")[2]
    cls = getattr(importlib.import_module(f"pulumi_aws.{module}"), name)
    return "tags" in inspect.signature(cls._internal_init).parameters


@pytest.mark.parametrize("stack", ["dev", "rest"])
def test_every_taggable_resource_carries_the_platform_tags(stack, request):
    graph = request.getfixturevalue(stack)
    tags = (config(environment="prod", size="medium") if stack == "rest" else config()).tags
    aws_resources = [r for r in graph.resources if r.type.startswith("aws:")]
    tagged = [r for r in aws_resources if taggable(r.type)]
    assert len(tagged) > 30
    for resource in tagged:
        assert tags.items() <= resource.inputs.get("tags", {}).items(), resource.name
    assert {"owner", "environment", "cost-center"} <= set(tags)


def test_every_aws_resource_uses_the_stack_region_provider(dev):
    [provider] = dev.of_type("pulumi:providers:aws")
    assert provider.inputs["region"] == REGION
    for resource in dev.resources:
        if resource.type.startswith("aws:"):
            assert resource.provider.startswith(provider.urn), resource.name


def test_repository_prod_stack_captures_cleanly():
    stack = load_stack_file(REPO / "Pulumi.prod.yaml")
    graph = capture(stack, "prod")
    assert graph.target == "aws" and one(graph, "aws:msk/cluster:Cluster").inputs["numberOfBrokerNodes"] == 3
    assert graph.outputs["endpoints"]["catalog"]["type"] == stack.services.catalog.aws_flavor
