"""AWS substrate: network, encryption key and an EKS cluster, built once; the AWS adapters add managed services on it.

- Network: a VPC with private subnets across `aws.availability_zones` AZs, public subnets only for NAT gateways
  (one per AZ in prod, one shared otherwise) and an S3 gateway endpoint; or an existing VPC and private subnets
  (`existing_vpc_id`), whose egress is then the owner's business.
- One customer-managed KMS key (rotation on) encrypts everything at rest: EKS secrets, S3, MSK, RDS, logs.
- EKS: private API endpoint (public only with `aws.eks.public_endpoint`, restricted to
  `kubernetes.allowed_ingress_cidrs`), all control-plane logs, a managed node group, the OIDC provider for IRSA,
  the VPC CNI with network policy enforcement (the namespace's policies must bite) and the EBS CSI driver.
- `kubernetes`: a `KubernetesCluster` on the EKS cluster (kubeconfig authenticating with `aws eks get-token`, so the
  machine running Pulumi needs the AWS CLI and, with a private endpoint, a route into the VPC), with a
  KMS-encrypted gp3 storage class; services AWS does not manage run there with the Kubernetes adapters.
- Data services get security groups that admit only the EKS cluster security group and the `clients` group (attach
  it to anything else in the VPC that needs the platform); nothing is open to 0.0.0.0/0. The namespace's
  default-deny egress is opened for HTTPS (AWS APIs have no fixed addresses) and per data service port.
- Workloads reach S3, MSK and Glue with an IAM role, never keys: adapters `grant()` what their service needs, and
  `finalize()` creates the role and the `dataplatform-workloads` service account that assumes it (IRSA).
Every taggable resource carries `config.tags` (owner, environment, cost-center, ...).
"""
from __future__ import annotations

import ipaddress
import json
import re

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.targets.kubernetes import KubernetesCluster
from stacks.config import Aws, Kubernetes, PlatformConfig
from stacks.versions import resolve

EKS_LOG_TYPES = ["api", "audit", "authenticator", "controllerManager", "scheduler"]
WORKLOAD_SERVICE_ACCOUNT = "dataplatform-workloads"
STORAGE_CLASS = "dataplatform-gp3"
MANAGED = "arn:aws:iam::aws:policy/"


def resource_prefix(project: str, stack: str) -> str:
    """A short, lowercase name stem for resources whose names must be unique per account and region."""
    return re.sub(r"[^a-z0-9-]+", "-", f"{project}-{stack}".lower()).strip("-")[:32].rstrip("-")


def subnet_cidrs(vpc_cidr: str, zones: int) -> tuple[list[str], list[str]]:
    """Private subnets get 1/8 of the VPC each (pods take VPC addresses); public ones share the last eighth."""
    network = ipaddress.ip_network(vpc_cidr)
    if network.prefixlen > 20:
        raise ValueError(f"aws.vpc_cidr: {vpc_cidr} is too small for EKS; use a /20 or larger (e.g. 10.40.0.0/16)")
    eighths = list(network.subnets(prefixlen_diff=3))
    public = list(eighths[-1].subnets(prefixlen_diff=3))
    return [str(n) for n in eighths[:zones]], [str(n) for n in public[:zones]]


def ami_type(instance_types: tuple[str, ...]) -> str:
    """EKS-optimised Amazon Linux 2023 for the instances' architecture (Graviton families end in `g`)."""
    arm = {bool(re.match(r"^[a-z]+\d+g", t.split(".")[0])) for t in instance_types}
    if len(arm) != 1:
        raise ValueError("aws.eks.node_instance_types: mixes Graviton (arm64) and x86 instance types; one node "
                         "group runs one architecture")
    return "AL2023_ARM_64_STANDARD" if arm.pop() else "AL2023_x86_64_STANDARD"


def policy_document(statements: pulumi.Input[list]) -> pulumi.Output[str]:
    """An IAM policy JSON from statements that may hold Outputs (ARNs)."""
    return pulumi.Output.from_input(statements).apply(
        lambda resolved: json.dumps({"Version": "2012-10-17", "Statement": resolved}))


class AwsFoundation(pulumi.ComponentResource):
    """Network, key and EKS for one stack, plus the helpers the AWS adapters use (`opts`, `tagged`, `grant`,
    `data_security_group`, `allow_from_pods`, `log_group`, `irsa_role`) and the `kubernetes` substrate on EKS."""

    kind = "aws"

    def __init__(self, name: str, config: PlatformConfig, opts: pulumi.ResourceOptions | None = None):
        super().__init__("dataplatform:target:Aws", name, None, opts)
        self.name = name
        self.settings: Aws = config.aws
        self.region = self.settings.region
        self.tags = config.tags
        self.prod = config.prod
        self.log_retention_days = 90 if config.prod else 30
        self.prefix = resource_prefix(pulumi.get_project(), pulumi.get_stack())
        self.provider = aws.Provider(f"{name}-aws", region=self.region, opts=pulumi.ResourceOptions(parent=self))
        invoke = pulumi.InvokeOptions(parent=self, provider=self.provider)
        self.account_id = aws.get_caller_identity_output(opts=invoke).account_id
        self._grants: list[dict] = []
        self.workload_role_arn: pulumi.Output[str] | None = None
        kubernetes_settings = config.kubernetes or Kubernetes()

        self.kms_key = self._kms_key()
        self._network(invoke)
        self.clients_security_group = aws.ec2.SecurityGroup(
            f"{name}-clients", vpc_id=self.vpc_id, description="Clients of the platform's data services",
            tags=self.tagged(f"{self.prefix}-clients"), opts=self.opts(self))
        self._eks(versions=resolve(config.versions), public_cidrs=kubernetes_settings.allowed_ingress_cidrs)
        self.kubernetes = KubernetesCluster(
            f"{name}-k8s", config, kubeconfig=self.kubeconfig,
            storage_class={"name": STORAGE_CLASS, "provisioner": "ebs.csi.aws.com",
                           "parameters": {"type": "gp3", "encrypted": "true", "kmsKeyId": self.kms_key.arn}},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.node_group, self.ebs_csi]))
        # AWS APIs (S3 through the gateway endpoint, STS for IRSA, Glue, MSK's control plane) have no fixed addresses
        self.kubernetes.allow_egress(f"{name}-aws-apis", {}, ["0.0.0.0/0"], (443,), self.kubernetes)

    # -- helpers adapters use --------------------------------------------------------------------------------
    def opts(self, parent: pulumi.Resource, **kwargs) -> pulumi.ResourceOptions:
        """Options for an AWS child: parented to the component, created with this stack's region provider."""
        return pulumi.ResourceOptions(parent=parent, provider=self.provider, **kwargs)

    def tagged(self, name: str | None = None) -> dict[str, str]:
        return {**self.tags, **({"Name": name} if name else {})}

    def grant(self, statements: list[dict]) -> None:
        """IAM statements the workloads' role gets (created in `finalize()`)."""
        self._grants += statements

    def data_security_group(self, name: str, port: int, description: str,
                            parent: pulumi.Resource) -> aws.ec2.SecurityGroup:
        """A security group for a data service: `port` from the EKS nodes and the clients group, nothing else."""
        group = aws.ec2.SecurityGroup(f"{name}-sg", vpc_id=self.vpc_id, description=description,
                                      tags=self.tagged(f"{self.prefix}-{name}"), opts=self.opts(parent))
        sources = {"eks": self.cluster.vpc_config.cluster_security_group_id, "clients": self.clients_security_group.id}
        for source, group_id in sources.items():
            aws.vpc.SecurityGroupIngressRule(
                f"{name}-from-{source}", security_group_id=group.id, referenced_security_group_id=group_id,
                ip_protocol="tcp", from_port=port, to_port=port, description=f"{description} from {source}",
                tags=self.tagged(), opts=self.opts(parent))
        return group

    def allow_from_pods(self, name: str, port: int, pod_labels: dict[str, str], parent: pulumi.Resource) -> None:
        """Open the namespace's default-deny egress towards a data service in the VPC (its security group decides
        the rest); an existing VPC's range is not known here, so there the port is opened towards any address."""
        cidr = self.settings.vpc_cidr if not self.settings.existing_vpc_id else "0.0.0.0/0"
        self.kubernetes.allow_egress(name, pod_labels, [cidr], (port,), parent)

    def log_group(self, name: str, log_name: str, parent: pulumi.Resource, **kwargs) -> aws.cloudwatch.LogGroup:
        return aws.cloudwatch.LogGroup(name, name=log_name, retention_in_days=self.log_retention_days,
                                       kms_key_id=self.kms_key.arn, tags=self.tagged(),
                                       opts=self.opts(parent, **kwargs))

    def irsa_role(self, name: str, namespace: str, service_account: str, statements: pulumi.Input[list],
                  parent: pulumi.Resource) -> aws.iam.Role:
        """An IAM role only `namespace/service_account` can assume through the cluster's OIDC provider."""
        issuer = self.oidc_provider.url.apply(lambda url: url.removeprefix("https://"))
        trust = pulumi.Output.all(self.oidc_provider.arn, issuer).apply(lambda v: json.dumps({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"Federated": v[0]},
                           "Action": "sts:AssumeRoleWithWebIdentity",
                           "Condition": {"StringEquals": {
                               f"{v[1]}:sub": f"system:serviceaccount:{namespace}:{service_account}",
                               f"{v[1]}:aud": "sts.amazonaws.com"}}}]}))
        role = aws.iam.Role(f"{name}-role", assume_role_policy=trust, tags=self.tagged(), opts=self.opts(parent))
        aws.iam.RolePolicy(f"{name}-policy", role=role.id, policy=policy_document(statements),
                           opts=self.opts(parent))
        return role

    # -- building blocks ---------------------------------------------------------------------------------------
    def _kms_key(self) -> aws.kms.Key:
        """The platform key; CloudWatch Logs may use it for this account's log groups (the rest go through IAM)."""
        logs = f"logs.{self.region}.amazonaws.com"
        key_policy = self.account_id.apply(lambda account: json.dumps({"Version": "2012-10-17", "Statement": [
            {"Sid": "AccountAdministers", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
             "Action": "kms:*", "Resource": "*"},
            {"Sid": "CloudWatchLogs", "Effect": "Allow", "Principal": {"Service": logs},
             "Action": ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
             "Resource": "*",
             "Condition": {"ArnLike": {"kms:EncryptionContext:aws:logs:arn":
                                       f"arn:aws:logs:{self.region}:{account}:*"}}}]}))
        key = aws.kms.Key(f"{self.name}-key", description=f"{self.prefix}: data platform encryption at rest",
                          enable_key_rotation=True, deletion_window_in_days=30, policy=key_policy,
                          tags=self.tagged(f"{self.prefix}-key"), opts=self.opts(self))
        aws.kms.Alias(f"{self.name}-key-alias", name=f"alias/{self.prefix}", target_key_id=key.key_id,
                      opts=self.opts(self))
        return key

    def _network(self, invoke: pulumi.InvokeOptions) -> None:
        settings = self.settings
        if settings.existing_vpc_id:
            self.vpc_id: pulumi.Input[str] = settings.existing_vpc_id
            self.private_subnet_ids: list[pulumi.Input[str]] = list(settings.existing_private_subnet_ids)
            return
        zones = aws.get_availability_zones_output(state="available", opts=invoke).names

        def zone(index: int) -> pulumi.Output[str]:
            def pick(names: list[str]) -> str:
                if index >= len(names):
                    raise ValueError(f"aws.availability_zones: {self.region} has {len(names)} available zones, "
                                     f"fewer than {settings.availability_zones}")
                return names[index]
            return zones.apply(pick)

        private_cidrs, public_cidrs = subnet_cidrs(settings.vpc_cidr, settings.availability_zones)
        vpc = aws.ec2.Vpc(f"{self.name}-vpc", cidr_block=settings.vpc_cidr, enable_dns_hostnames=True,
                          enable_dns_support=True, tags=self.tagged(f"{self.prefix}-vpc"), opts=self.opts(self))
        self.vpc_id = vpc.id
        gateway = aws.ec2.InternetGateway(f"{self.name}-igw", vpc_id=vpc.id, tags=self.tagged(f"{self.prefix}-igw"),
                                          opts=self.opts(self))
        public_routes = aws.ec2.RouteTable(f"{self.name}-public", vpc_id=vpc.id,
                                           routes=[{"cidr_block": "0.0.0.0/0", "gateway_id": gateway.id}],
                                           tags=self.tagged(f"{self.prefix}-public"), opts=self.opts(self))
        nat_count = settings.availability_zones if self.prod else 1
        self.private_subnet_ids = []
        private_route_tables = []
        nats = []
        for index in range(settings.availability_zones):
            public = aws.ec2.Subnet(f"{self.name}-public-{index}", vpc_id=vpc.id, cidr_block=public_cidrs[index],
                                    availability_zone=zone(index), map_public_ip_on_launch=False,
                                    tags={**self.tagged(f"{self.prefix}-public-{index}"),
                                          "kubernetes.io/role/elb": "1"},
                                    opts=self.opts(self))
            aws.ec2.RouteTableAssociation(f"{self.name}-public-{index}", subnet_id=public.id,
                                          route_table_id=public_routes.id, opts=self.opts(self))
            if index < nat_count:
                address = aws.ec2.Eip(f"{self.name}-nat-{index}", domain="vpc",
                                      tags=self.tagged(f"{self.prefix}-nat-{index}"), opts=self.opts(self))
                nats.append(aws.ec2.NatGateway(f"{self.name}-nat-{index}", allocation_id=address.id,
                                               subnet_id=public.id, tags=self.tagged(f"{self.prefix}-nat-{index}"),
                                               opts=self.opts(self, depends_on=[gateway])))
            private = aws.ec2.Subnet(f"{self.name}-private-{index}", vpc_id=vpc.id, cidr_block=private_cidrs[index],
                                     availability_zone=zone(index),
                                     tags={**self.tagged(f"{self.prefix}-private-{index}"),
                                           "kubernetes.io/role/internal-elb": "1"}, opts=self.opts(self))
            routes = aws.ec2.RouteTable(f"{self.name}-private-{index}", vpc_id=vpc.id, routes=[
                {"cidr_block": "0.0.0.0/0", "nat_gateway_id": nats[min(index, nat_count - 1)].id}],
                tags=self.tagged(f"{self.prefix}-private-{index}"), opts=self.opts(self))
            aws.ec2.RouteTableAssociation(f"{self.name}-private-{index}", subnet_id=private.id,
                                          route_table_id=routes.id, opts=self.opts(self))
            self.private_subnet_ids.append(private.id)
            private_route_tables.append(routes.id)
        aws.ec2.VpcEndpoint(f"{self.name}-s3-endpoint", vpc_id=vpc.id, service_name=f"com.amazonaws.{self.region}.s3",
                            vpc_endpoint_type="Gateway", route_table_ids=private_route_tables,
                            tags=self.tagged(f"{self.prefix}-s3"), opts=self.opts(self))

    def _role(self, name: str, service: str, managed: list[str]) -> aws.iam.Role:
        role = aws.iam.Role(f"{self.name}-{name}-role", assume_role_policy=json.dumps({
            "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": service},
                                                    "Action": ["sts:AssumeRole", "sts:TagSession"]}]}),
            tags=self.tagged(), opts=self.opts(self))
        for policy in managed:
            aws.iam.RolePolicyAttachment(f"{self.name}-{name}-{policy.split('/')[-1]}", role=role.name,
                                         policy_arn=MANAGED + policy, opts=self.opts(self))
        return role

    def _eks(self, versions, public_cidrs: tuple[str, ...]) -> None:
        eks = self.settings.eks
        if eks.public_endpoint:
            if not public_cidrs:
                raise ValueError("aws.eks.public_endpoint: a public API endpoint needs "
                                 "kubernetes.allowed_ingress_cidrs (the admin networks allowed to reach it); it is "
                                 "never opened to the internet")
            if any(ipaddress.ip_network(c).prefixlen == 0 for c in public_cidrs):
                raise ValueError("kubernetes.allowed_ingress_cidrs: 0.0.0.0/0 would open the Kubernetes API to the "
                                 "internet; list your admin networks instead")
        cluster_name = f"{self.prefix}-eks"
        cluster_role = self._role("cluster", "eks.amazonaws.com", ["AmazonEKSClusterPolicy"])
        aws.iam.RolePolicy(f"{self.name}-cluster-kms", role=cluster_role.id, policy=policy_document([
            {"Effect": "Allow", "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ListGrants", "kms:DescribeKey"],
             "Resource": self.kms_key.arn}]), opts=self.opts(self))
        logs = self.log_group(f"{self.name}-eks-logs", f"/aws/eks/{cluster_name}/cluster", self)
        self.cluster = aws.eks.Cluster(
            f"{self.name}-eks", name=cluster_name, version=versions.managed["eks_version"], role_arn=cluster_role.arn,
            vpc_config={"subnet_ids": self.private_subnet_ids, "endpoint_private_access": True,
                        "endpoint_public_access": eks.public_endpoint,
                        **({"public_access_cidrs": list(public_cidrs)} if eks.public_endpoint else {})},
            enabled_cluster_log_types=EKS_LOG_TYPES,
            encryption_config={"provider": {"key_arn": self.kms_key.arn}, "resources": ["secrets"]},
            access_config={"authentication_mode": "API", "bootstrap_cluster_creator_admin_permissions": True},
            upgrade_policy={"support_type": "STANDARD"},
            tags=self.tagged(cluster_name), opts=self.opts(self, depends_on=[logs]))
        self.oidc_provider = aws.iam.OpenIdConnectProvider(
            f"{self.name}-oidc", url=self.cluster.identities[0].oidcs[0].issuer, client_id_lists=["sts.amazonaws.com"],
            tags=self.tagged(), opts=self.opts(self))
        vpc_cni = aws.eks.Addon(f"{self.name}-vpc-cni", cluster_name=self.cluster.name, addon_name="vpc-cni",
                                configuration_values=json.dumps({"enableNetworkPolicy": "true"}),
                                resolve_conflicts_on_create="OVERWRITE", resolve_conflicts_on_update="OVERWRITE",
                                tags=self.tagged(), opts=self.opts(self))
        node_role = self._role("nodes", "ec2.amazonaws.com", [
            "AmazonEKSWorkerNodePolicy", "AmazonEKS_CNI_Policy", "AmazonEC2ContainerRegistryReadOnly"])
        self.node_group = aws.eks.NodeGroup(
            f"{self.name}-nodes", cluster_name=self.cluster.name, node_role_arn=node_role.arn,
            subnet_ids=self.private_subnet_ids, instance_types=list(eks.node_instance_types),
            ami_type=ami_type(eks.node_instance_types), disk_size=50,
            scaling_config={"min_size": eks.nodes_min, "desired_size": eks.nodes_desired, "max_size": eks.nodes_max},
            update_config={"max_unavailable": 1}, tags=self.tagged(f"{cluster_name}-nodes"),
            opts=self.opts(self, depends_on=[vpc_cni]))
        ebs_role = self.irsa_role(f"{self.name}-ebs-csi", "kube-system", "ebs-csi-controller-sa", [
            {"Effect": "Allow", "Action": ["kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant"],
             "Resource": self.kms_key.arn, "Condition": {"Bool": {"kms:GrantIsForAWSResource": "true"}}},
            {"Effect": "Allow", "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*",
                                           "kms:DescribeKey"], "Resource": self.kms_key.arn}], self)
        aws.iam.RolePolicyAttachment(f"{self.name}-ebs-csi-driver", role=ebs_role.name,
                                     policy_arn=MANAGED + "service-role/AmazonEBSCSIDriverPolicy",
                                     opts=self.opts(self))
        self.ebs_csi = aws.eks.Addon(f"{self.name}-ebs-csi", cluster_name=self.cluster.name,
                                     addon_name="aws-ebs-csi-driver", service_account_role_arn=ebs_role.arn,
                                     resolve_conflicts_on_create="OVERWRITE", resolve_conflicts_on_update="OVERWRITE",
                                     tags=self.tagged(), opts=self.opts(self, depends_on=[self.node_group]))
        region = self.region
        self.kubeconfig = pulumi.Output.secret(pulumi.Output.all(
            self.cluster.endpoint, self.cluster.certificate_authority.data, self.cluster.name).apply(
            lambda v: json.dumps({
                "apiVersion": "v1", "kind": "Config", "current-context": "eks",
                "clusters": [{"name": "eks", "cluster": {"server": v[0], "certificate-authority-data": v[1]}}],
                "contexts": [{"name": "eks", "context": {"cluster": "eks", "user": "pulumi"}}],
                "users": [{"name": "pulumi", "user": {"exec": {
                    "apiVersion": "client.authentication.k8s.io/v1beta1", "command": "aws",
                    "args": ["eks", "get-token", "--cluster-name", v[2], "--region", region, "--output", "json"]}}}],
            })))

    def finalize(self) -> None:
        """The workloads' IAM role (what the adapters granted) and the service account that assumes it."""
        cluster = self.kubernetes
        if self._grants:
            role = self.irsa_role(f"{self.name}-workloads", cluster.namespace, WORKLOAD_SERVICE_ACCOUNT,
                                  self._grants, self)
            self.workload_role_arn = role.arn
            k8s.core.v1.ServiceAccount(f"{self.name}-workloads", metadata=cluster.metadata(
                WORKLOAD_SERVICE_ACCOUNT, "workloads", "identity", {"eks.amazonaws.com/role-arn": role.arn}),
                automount_service_account_token=False, opts=cluster.opts(cluster))
        cluster.finalize()
        self.register_outputs({"cluster_name": self.cluster.name, "kms_key_arn": self.kms_key.arn})
