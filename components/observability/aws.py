"""Observability on AWS, per `services.observability.aws_mode`:

- `managed` (default): an Amazon Managed Prometheus workspace (KMS-encrypted, logging to CloudWatch) holding the
  platform's alert rules, its Alertmanager sending to an SNS topic; an Amazon Managed Grafana workspace (IAM
  Identity Center logins, a role that may query AMP) whose datasource (uid `prometheus`, SigV4) and dashboards are
  created through its API with a service-account token; on EKS, the OpenTelemetry collector receives OTLP,
  scrapes the Kafka exporter and the services' metrics endpoints, and remote-writes to AMP with its own IAM role.
- `eks`: the Kubernetes stack (kube-prometheus-stack ...) on the EKS cluster.

Either way the Kafka exporter reads MSK with IAM (read-only `kafka-cluster:Describe*` on this stack's clusters,
through its own service account), since MSK accepts nothing else.
Managed Grafana needs IAM Identity Center enabled in the account; its API token lives 30 days (replace the
`...-grafana-token` resource to rotate it before a later `pulumi up` needs it).
"""
from __future__ import annotations

import json
from dataclasses import replace

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s
import pulumiverse_grafana as grafana_provider
import yaml

from components.base import MetricsEndpoint
from components.observability import ObservabilityArgs, ObservabilityEndpoints, assets, collector
from components.observability import kubernetes as on_kubernetes
from components.observability.kafka_exporter import JOB as EXPORTER_JOB, PORT as EXPORTER_PORT, exporter_args
from components.observability.scrape import platform_facts, scrape_configs
from components.targets.aws import AwsFoundation
from components.targets.kubernetes import KubernetesCluster

TOKEN_SECONDS = 30 * 24 * 3600  # the longest Managed Grafana allows
MSK_IAM_PORT = 9098


def service_account(name: str, account: str, cluster: KubernetesCluster, role: aws.iam.Role,
                    parent: pulumi.Resource) -> str:
    k8s.core.v1.ServiceAccount(f"{name}-{account}-service-account", metadata=cluster.metadata(
        f"{name}-{account}", name, account, {"eks.amazonaws.com/role-arn": role.arn}),
        automount_service_account_token=False, opts=cluster.opts(parent))
    return f"{name}-{account}"


def egress(name: str, component: str, ports: tuple[int, ...], cluster: KubernetesCluster,
           parent: pulumi.Resource) -> None:
    """AWS APIs (AMP, STS for IRSA) and MSK live outside the namespace's default-deny."""
    k8s.networking.v1.NetworkPolicy(
        f"{name}-{component}-egress", metadata=cluster.metadata(f"{name}-{component}-egress", name, "network-policy"),
        spec={"podSelector": {"matchLabels": cluster.selector(name, component)}, "policyTypes": ["Egress"],
              "egress": [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}],
                          "ports": [{"protocol": "TCP", "port": port} for port in ports]}]},
        opts=cluster.opts(parent))


def kafka_exporter_identity(name: str, foundation: AwsFoundation, cluster: KubernetesCluster,
                            parent: pulumi.Resource) -> str:
    """A service account whose IAM role may describe this stack's MSK clusters, topics and groups (lag)."""
    arn = foundation.account_id.apply(
        lambda account: f"arn:aws:kafka:{foundation.region}:{account}")
    scoped = {kind: arn.apply(lambda a, k=kind: f"{a}:{k}/{foundation.prefix}-*/*") for kind in ("topic", "group")}
    role = foundation.irsa_role(f"{name}-kafka-exporter", cluster.namespace, f"{name}-kafka-exporter", [
        {"Sid": "Describe", "Effect": "Allow", "Action": ["kafka-cluster:Connect", "kafka-cluster:DescribeCluster"],
         "Resource": arn.apply(lambda a: f"{a}:cluster/{foundation.prefix}-*/*")},
        {"Sid": "Topics", "Effect": "Allow", "Action": ["kafka-cluster:DescribeTopic"], "Resource": scoped["topic"]},
        {"Sid": "Groups", "Effect": "Allow", "Action": ["kafka-cluster:DescribeGroup"], "Resource": scoped["group"]},
    ], parent)
    egress(name, "kafka-exporter", (MSK_IAM_PORT, 443), cluster, parent)
    return service_account(name, "kafka-exporter", cluster, role, parent)


def exporter_command(args: ObservabilityArgs, region: str) -> pulumi.Output:
    kafka = args.kafka
    return pulumi.Output.from_input(kafka.bootstrap_servers).apply(
        lambda servers: exporter_args(servers, kafka.security_protocol, kafka.sasl_mechanism, region))


def alertmanager_definition(topic_arn: str, region: str) -> str:
    return yaml.safe_dump({"alertmanager_config": yaml.safe_dump({
        "route": {"receiver": "sns", "group_by": ["alertname", "severity"], "group_wait": "30s",
                  "group_interval": "5m", "repeat_interval": "4h"},
        "receivers": [{"name": "sns", "sns_configs": [{
            "topic_arn": topic_arn, "sigv4": {"region": region},
            "subject": "[{{ .Status | toUpper }}] {{ .CommonLabels.alertname }}",
            "attributes": {"severity": "{{ .CommonLabels.severity }}"}}]}],
    }, sort_keys=False)}, sort_keys=False)


def alerts_topic(name: str, foundation: AwsFoundation, parent: pulumi.Resource) -> aws.sns.Topic:
    """The SNS topic AMP's Alertmanager publishes to (subscribe e-mail, chat or paging to it), encrypted with a key
    whose policy lets AMP use it (the platform key's policy admits only this account and CloudWatch Logs)."""
    key_policy = foundation.account_id.apply(lambda account: json.dumps({"Version": "2012-10-17", "Statement": [
        {"Sid": "AccountAdministers", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
         "Action": "kms:*", "Resource": "*"},
        {"Sid": "ManagedPrometheusPublishes", "Effect": "Allow", "Principal": {"Service": "aps.amazonaws.com"},
         "Action": ["kms:GenerateDataKey*", "kms:Decrypt"], "Resource": "*",
         "Condition": {"StringEquals": {"aws:SourceAccount": account}}}]}))
    key = aws.kms.Key(f"{name}-alerts-key", description=f"{foundation.prefix}: alert notifications",
                      enable_key_rotation=True, deletion_window_in_days=30, policy=key_policy,
                      tags=foundation.tagged(f"{foundation.prefix}-alerts"), opts=foundation.opts(parent))
    topic = aws.sns.Topic(f"{name}-alerts", name=f"{foundation.prefix}-alerts", kms_master_key_id=key.arn,
                          tags=foundation.tagged(f"{foundation.prefix}-alerts"), opts=foundation.opts(parent))
    aws.sns.TopicPolicy(f"{name}-alerts-policy", arn=topic.arn, policy=pulumi.Output.all(
        topic.arn, foundation.account_id).apply(lambda v: json.dumps({"Version": "2012-10-17", "Statement": [{
            "Sid": "ManagedPrometheusPublishes", "Effect": "Allow", "Principal": {"Service": "aps.amazonaws.com"},
            "Action": ["sns:Publish", "sns:GetTopicAttributes"], "Resource": v[0],
            "Condition": {"StringEquals": {"aws:SourceAccount": v[1]}}}]})), opts=foundation.opts(parent))
    return topic


def managed_grafana(name: str, foundation: AwsFoundation, workspace: aws.amp.Workspace,
                    parent: pulumi.Resource) -> aws.grafana.Workspace:
    """Managed Grafana with a role that may query AMP, and the datasource and dashboards created in it."""
    trust = foundation.account_id.apply(lambda account: json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": "grafana.amazonaws.com"}, "Action": "sts:AssumeRole",
        "Condition": {"StringEquals": {"aws:SourceAccount": account}}}]}))
    role = aws.iam.Role(f"{name}-grafana-role", assume_role_policy=trust, tags=foundation.tagged(),
                        opts=foundation.opts(parent))
    aws.iam.RolePolicy(f"{name}-grafana-query", role=role.id, policy=workspace.arn.apply(lambda arn: json.dumps({
        "Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Resource": arn,
            "Action": ["aps:QueryMetrics", "aps:GetSeries", "aps:GetLabels", "aps:GetMetricMetadata"]}]})),
        opts=foundation.opts(parent))
    workspace_grafana = aws.grafana.Workspace(
        f"{name}-grafana", name=f"{foundation.prefix}-grafana", account_access_type="CURRENT_ACCOUNT",
        authentication_providers=["AWS_SSO"], permission_type="CUSTOMER_MANAGED", role_arn=role.arn,
        tags=foundation.tagged(),
        opts=foundation.opts(parent))
    account = aws.grafana.WorkspaceServiceAccount(
        f"{name}-grafana-provisioner", name="pulumi-provisioner", grafana_role="ADMIN",
        workspace_id=workspace_grafana.id, opts=foundation.opts(parent))
    token = aws.grafana.WorkspaceServiceAccountToken(
        f"{name}-grafana-token", name="pulumi-provisioner", seconds_to_live=TOKEN_SECONDS,
        service_account_id=account.service_account_id, workspace_id=workspace_grafana.id,
        opts=foundation.opts(parent, additional_secret_outputs=["key"]))
    provider = grafana_provider.Provider(
        f"{name}-grafana-api", url=workspace_grafana.endpoint.apply(lambda host: f"https://{host}"),
        auth=pulumi.Output.secret(token.key), opts=pulumi.ResourceOptions(parent=parent))
    api = pulumi.ResourceOptions(parent=parent, provider=provider)
    datasource = grafana_provider.oss.DataSource(
        f"{name}-grafana-datasource", name="Prometheus", type="prometheus", uid=assets.DATASOURCE_UID,
        url=workspace.prometheus_endpoint.apply(lambda url: url.rstrip("/")), is_default=True,
        json_data_encoded=json.dumps({"httpMethod": "POST", "sigV4Auth": True, "sigV4AuthType": "ec2_iam_role",
                                      "sigV4Region": foundation.region}), opts=api)
    folder = grafana_provider.oss.Folder(f"{name}-grafana-folder", title=assets.DASHBOARDS_FOLDER,
                                         uid="dataplatform", opts=api)
    for dashboard, content in assets.dashboards().items():
        grafana_provider.oss.Dashboard(f"{name}-dashboard-{dashboard}", config_json=content, folder=folder.uid,
                                       overwrite=True, opts=pulumi.ResourceOptions.merge(
                                           api, pulumi.ResourceOptions(depends_on=[datasource])))
    return workspace_grafana


def managed(name: str, args: ObservabilityArgs, parent: pulumi.Resource) -> ObservabilityEndpoints:
    foundation: AwsFoundation = args.substrate
    cluster = foundation.kubernetes
    settings = args.settings
    logs = foundation.log_group(f"{name}-amp-logs", f"/aws/prometheus/{foundation.prefix}", parent)
    workspace = aws.amp.Workspace(
        f"{name}-amp", alias=f"{foundation.prefix}-metrics", kms_key_arn=foundation.kms_key.arn,
        logging_configuration={"log_group_arn": logs.arn.apply(lambda arn: f"{arn}:*")},
        tags=foundation.tagged(f"{foundation.prefix}-metrics"), opts=foundation.opts(parent))
    rules = {"groups": assets.alert_rules()["groups"] + platform_facts(args.kafka_brokers)["groups"]}
    aws.amp.RuleGroupNamespace(f"{name}-rules", name="dataplatform", workspace_id=workspace.id,
                               data=yaml.safe_dump(rules, sort_keys=False), tags=foundation.tagged(),
                               opts=foundation.opts(parent))
    topic = alerts_topic(name, foundation, parent)
    aws.amp.AlertManagerDefinition(f"{name}-alertmanager", workspace_id=workspace.id,
                                   definition=topic.arn.apply(lambda arn: alertmanager_definition(arn, foundation.region)),
                                   opts=foundation.opts(parent))
    grafana_workspace = managed_grafana(name, foundation, workspace, parent)

    endpoints = list(args.targets)
    exporter_account = None
    if args.kafka is not None:
        exporter_account = kafka_exporter_identity(name, foundation, cluster, parent)
        exporter = on_kubernetes.deploy_exporter(name, args, cluster, parent,
                                                 exporter_command=exporter_command(args, foundation.region),
                                                 service_account=exporter_account)
        endpoints.append(MetricsEndpoint(EXPORTER_JOB, (f"{cluster.host(exporter)}:{EXPORTER_PORT}",)))
    endpoints.append(MetricsEndpoint("otel-collector", (f"127.0.0.1:{collector.TELEMETRY_PORT}",)))
    jobs = scrape_configs(endpoints)

    role = foundation.irsa_role(f"{name}-collector", cluster.namespace, f"{name}-collector", [
        {"Sid": "RemoteWrite", "Effect": "Allow", "Action": ["aps:RemoteWrite"], "Resource": workspace.arn}], parent)
    account = service_account(name, "collector", cluster, role, parent)
    config = workspace.prometheus_endpoint.apply(lambda url: collector.collector_config(
        tracing_endpoint=settings.tracing_endpoint, memory=collector.RESOURCES.memory, scrape_configs=jobs,
        remote_write={"endpoint": url.rstrip("/") + "/api/v1/remote_write", "region": foundation.region}))
    service = on_kubernetes.deploy_collector(name, args, cluster, parent, config=config, service_account=account)
    ports = {443} | ({collector.tracing_port(settings.tracing_endpoint)} if settings.tracing_endpoint else set())
    egress(name, "collector", tuple(sorted(ports)), cluster, parent)

    return ObservabilityEndpoints(prometheus_url=workspace.prometheus_endpoint,
                                  grafana_url=grafana_workspace.endpoint.apply(lambda host: f"https://{host}"),
                                  otlp_endpoint=f"http://{cluster.host(service)}:{collector.OTLP_HTTP_PORT}")


def deploy(name: str, args: ObservabilityArgs, parent: pulumi.Resource) -> ObservabilityEndpoints:
    if args.settings.aws_mode == "managed":
        return managed(name, args, parent)
    foundation: AwsFoundation = args.substrate
    cluster = foundation.kubernetes
    command = account = None
    if args.kafka is not None:
        account = kafka_exporter_identity(name, foundation, cluster, parent)
        command = exporter_command(args, foundation.region)
    return on_kubernetes.install(name, replace(args, substrate=cluster), cluster, parent,
                                 exporter_command=command, exporter_account=account)
