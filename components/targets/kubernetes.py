"""Kubernetes substrate: a provider from the kubeconfig, one namespace, and the network rules every service lives by.

Every child is created with this substrate's provider (never the ambient default), so a stack can never land in the
wrong cluster by accident. The namespace enforces the `restricted` Pod Security Standard, and network policies deny
all traffic except what the platform needs: pod to pod inside the namespace, DNS, the Kubernetes API for the pods
that are operators, and client CIDRs from `kubernetes.allowed_ingress_cidrs` to the service ports.

The same class serves the aws target: `AwsFoundation` builds it from the EKS kubeconfig (`kubeconfig=`) and a
KMS-encrypted gp3 storage class (`storage_class=`), so the Kubernetes adapters run unchanged on EKS.
"""
from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from stacks.config import Kubernetes, PlatformConfig, Resources
from stacks.versions import Chart

PART_OF = "dataplatform"
KUBE_API_PORTS = (443, 6443)  # managed clusters serve the API on 443, kubeadm-style clusters on 6443


class KubernetesCluster(pulumi.ComponentResource):
    """The namespace and provider the Kubernetes adapters build on, plus the manifest helpers they share."""

    kind = "kubernetes"

    def __init__(self, name: str, config: PlatformConfig, opts: pulumi.ResourceOptions | None = None, *,
                 kubeconfig: pulumi.Input[str] | None = None, storage_class: dict[str, Any] | None = None):
        """`kubeconfig` (EKS) replaces the stack's `kubernetes.kubeconfig`/`context`; `storage_class` is a
        StorageClass body (name, provisioner, parameters) this substrate creates and uses for every volume."""
        super().__init__("dataplatform:target:Kubernetes", name, None, opts)
        self.name = name
        self.settings: Kubernetes = config.kubernetes or Kubernetes()
        self.namespace = self.settings.namespace
        self.prod = config.prod
        context = None
        if kubeconfig is None:
            secret = self.settings.kubeconfig
            kubeconfig = pulumi.Output.secret(secret.value) if secret and secret.value else None
            context = self.settings.context
        self.provider = k8s.Provider(f"{name}-provider", kubeconfig=kubeconfig, context=context,
                                     opts=pulumi.ResourceOptions(parent=self))
        own = pulumi.ResourceOptions(parent=self, provider=self.provider)
        self.storage_class_name = self.settings.storage_class
        self.storage_class = None
        if storage_class is not None:
            self.storage_class = k8s.storage.v1.StorageClass(
                f"{name}-storage-class",
                metadata={"name": storage_class["name"], "labels": self.labels("storage", "storage-class")},
                provisioner=storage_class["provisioner"], parameters=storage_class.get("parameters"),
                reclaim_policy="Retain" if self.prod else "Delete", volume_binding_mode="WaitForFirstConsumer",
                allow_volume_expansion=True, opts=own)
            self.storage_class_name = storage_class["name"]
        self.namespace_resource = k8s.core.v1.Namespace(f"{name}-namespace", metadata={
            "name": self.namespace,
            "labels": {**self.labels(PART_OF, "namespace"),
                       "pod-security.kubernetes.io/enforce": "restricted",
                       "pod-security.kubernetes.io/enforce-version": "latest",
                       "pod-security.kubernetes.io/warn": "restricted"}}, opts=own)
        self._base_policies()
        self.register_outputs({"namespace": self.namespace})

    # -- options and metadata -------------------------------------------------------------------------------------
    def opts(self, parent: pulumi.Resource, **kwargs) -> pulumi.ResourceOptions:
        """Options for a child: parented to the component, created with this cluster's provider, after the namespace
        (and the storage class, when this substrate made one)."""
        depends_on = [self.namespace_resource, *([self.storage_class] if self.storage_class else []),
                      *kwargs.pop("depends_on", [])]
        return pulumi.ResourceOptions(parent=parent, provider=self.provider, depends_on=depends_on, **kwargs)

    @staticmethod
    def labels(app: str, component: str) -> dict[str, str]:
        return {"app.kubernetes.io/name": app, "app.kubernetes.io/component": component,
                "app.kubernetes.io/part-of": PART_OF, "app.kubernetes.io/managed-by": "pulumi"}

    @staticmethod
    def selector(app: str, component: str) -> dict[str, str]:
        return {"app.kubernetes.io/name": app, "app.kubernetes.io/component": component}

    def metadata(self, name: str, app: str, component: str, annotations: dict | None = None) -> dict[str, Any]:
        meta = {"name": name, "namespace": self.namespace, "labels": self.labels(app, component)}
        if annotations:
            meta["annotations"] = annotations
        return meta

    def host(self, service: str) -> str:
        """The in-cluster DNS name of a Service in the namespace."""
        return f"{service}.{self.namespace}.svc"

    # -- pod building blocks (the policy pack checks exactly these) ---------------------------------------------
    @staticmethod
    def resources(resources: Resources) -> dict[str, dict[str, str]]:
        """Requests from the settings; memory limited to its request (no CPU limit: throttling hurts JVMs)."""
        return {"requests": {"cpu": resources.cpu, "memory": resources.memory},
                "limits": {"memory": resources.memory}}

    @staticmethod
    def pod_security(uid: int, gid: int | None = None) -> dict[str, Any]:
        gid = uid if gid is None else gid
        return {"runAsNonRoot": True, "runAsUser": uid, "runAsGroup": gid, "fsGroup": gid,
                "fsGroupChangePolicy": "OnRootMismatch", "seccompProfile": {"type": "RuntimeDefault"}}

    @staticmethod
    def container_security(read_only_root: bool = True) -> dict[str, Any]:
        return {"allowPrivilegeEscalation": False, "privileged": False, "readOnlyRootFilesystem": read_only_root,
                "runAsNonRoot": True, "capabilities": {"drop": ["ALL"]}}

    def container(self, name: str, image: str, resources: Resources, *, mounts: list[dict] | tuple = (),
                  read_only_root: bool = True, **fields: Any) -> dict[str, Any]:
        """A container that satisfies the platform's rules: pinned image, resources, non-root, no escalation, a
        read-only root filesystem with a writable /tmp (emptyDir). `fields` are further container fields
        (args, command, env, ports, probes ...); None values are dropped."""
        return {"name": name, "image": image, "imagePullPolicy": "IfNotPresent",
                "resources": self.resources(resources), "securityContext": self.container_security(read_only_root),
                "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}, *mounts],
                **{key: value for key, value in fields.items() if value is not None}}

    def pod_spec(self, containers: list[dict], uid: int, *, volumes: list[dict] | tuple = (),
                 service_account: str | None = None, **fields: Any) -> dict[str, Any]:
        """A pod spec around `container()`s: the /tmp emptyDir, the pod security context and no Kubernetes API token
        (no platform pod calls the API; IRSA injects its own web-identity token)."""
        spec = {"securityContext": self.pod_security(uid), "enableServiceLinks": False,
                "automountServiceAccountToken": False,
                "containers": containers,
                "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}}, *volumes],
                **{key: value for key, value in fields.items() if value is not None}}
        if service_account:
            spec["serviceAccountName"] = service_account
        return spec

    @staticmethod
    def http_probe(path: str, port: int | str, period: int = 10, failures: int = 3,
                   initial_delay: int = 5) -> dict[str, Any]:
        return {"httpGet": {"path": path, "port": port}, "periodSeconds": period, "failureThreshold": failures,
                "initialDelaySeconds": initial_delay, "timeoutSeconds": 5}

    @staticmethod
    def exec_probe(command: list[str], period: int = 10, failures: int = 3, initial_delay: int = 5) -> dict[str, Any]:
        return {"exec": {"command": command}, "periodSeconds": period, "failureThreshold": failures,
                "initialDelaySeconds": initial_delay, "timeoutSeconds": 5}

    def volume_claim(self, name: str, size_gb: int) -> dict[str, Any]:
        spec: dict[str, Any] = {"accessModes": ["ReadWriteOnce"],
                                "resources": {"requests": {"storage": f"{size_gb}Gi"}}}
        if self.storage_class_name:
            spec["storageClassName"] = self.storage_class_name
        return {"metadata": {"name": name}, "spec": spec}

    @staticmethod
    def spread(selector: dict[str, str]) -> list[dict[str, Any]]:
        """Spread replicas over nodes and zones when the cluster has them (soft: a one-node cluster still works)."""
        return [{"maxSkew": 1, "topologyKey": key, "whenUnsatisfiable": "ScheduleAnyway",
                 "labelSelector": {"matchLabels": selector}}
                for key in ("kubernetes.io/hostname", "topology.kubernetes.io/zone")]

    def disruption_budget(self, name: str, app: str, component: str, parent: pulumi.Resource) -> None:
        """At most one replica down at a time during voluntary disruptions (node drains, upgrades)."""
        k8s.policy.v1.PodDisruptionBudget(
            f"{name}-pdb", metadata=self.metadata(name, app, component),
            spec={"maxUnavailable": 1, "selector": {"matchLabels": self.selector(app, component)}},
            opts=self.opts(parent))

    # -- network policies -------------------------------------------------------------------------------------
    def _policy(self, resource_name: str, name: str, spec: dict[str, Any],
                parent: pulumi.Resource) -> k8s.networking.v1.NetworkPolicy:
        return k8s.networking.v1.NetworkPolicy(resource_name, metadata=self.metadata(name, PART_OF, "network-policy"),
                                               spec=spec, opts=self.opts(parent))

    def _base_policies(self) -> None:
        everything: dict[str, Any] = {}
        both = ["Ingress", "Egress"]
        self._policy(f"{self.name}-default-deny", "default-deny", {"podSelector": everything, "policyTypes": both},
                     self)
        same_namespace = [{"podSelector": {}}]
        self._policy(f"{self.name}-allow-same-namespace", "allow-same-namespace", {
            "podSelector": everything, "policyTypes": both,
            "ingress": [{"from": same_namespace}], "egress": [{"to": same_namespace}]}, self)
        self._policy(f"{self.name}-allow-dns", "allow-dns", {
            "podSelector": everything, "policyTypes": ["Egress"],
            "egress": [{"to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                                "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
                        "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]}]}, self)

    def allow_kube_api(self, name: str, pod_labels: dict[str, str], parent: pulumi.Resource) -> None:
        """Operators (Strimzi) talk to the API server. Its address differs per cluster and policies see it before
        the service VIP is translated on some CNIs, so the rule opens only the API ports, only for these pods."""
        self._policy(f"{name}-allow-kube-api", f"{name}-allow-kube-api", {
            "podSelector": {"matchLabels": pod_labels}, "policyTypes": ["Egress"],
            "egress": [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}],
                        "ports": [{"protocol": "TCP", "port": port} for port in KUBE_API_PORTS]}]}, parent)

    def allow_egress(self, name: str, pod_labels: dict[str, str], cidrs: list[str] | tuple[str, ...],
                     ports: tuple[int, ...], parent: pulumi.Resource) -> None:
        """Let pods (`{}`: all of the namespace) reach `ports` outside the cluster, e.g. managed AWS services."""
        self._policy(f"{name}-egress", f"{name}-egress", {
            "podSelector": {"matchLabels": pod_labels} if pod_labels else {}, "policyTypes": ["Egress"],
            "egress": [{"to": [{"ipBlock": {"cidr": cidr}} for cidr in cidrs],
                        "ports": [{"protocol": "TCP", "port": port} for port in ports]}]}, parent)

    def expose(self, name: str, pod_labels: dict[str, str], ports: tuple[int, ...], parent: pulumi.Resource) -> None:
        """Let clients outside the namespace (`kubernetes.allowed_ingress_cidrs`) reach a service's ports."""
        if not self.settings.allowed_ingress_cidrs:
            return
        self._policy(f"{name}-allow-clients", f"{name}-allow-clients", {
            "podSelector": {"matchLabels": pod_labels}, "policyTypes": ["Ingress"],
            "ingress": [{"from": [{"ipBlock": {"cidr": cidr}} for cidr in self.settings.allowed_ingress_cidrs],
                         "ports": [{"protocol": "TCP", "port": port} for port in ports]}]}, parent)

    # -- Helm ---------------------------------------------------------------------------------------------------
    def helm_release(self, name: str, chart: Chart, values: dict[str, Any], parent: pulumi.Resource,
                     **kwargs) -> k8s.helm.v3.Release:
        """A Helm release in the namespace (Release rather than v4.Chart: it runs chart hooks and installs CRDs)."""
        oci = chart.repo.startswith("oci://")
        return k8s.helm.v3.Release(
            name, name=name, namespace=self.namespace,
            chart=chart.repo if oci else chart.chart, version=chart.version,
            repository_opts=None if oci else k8s.helm.v3.RepositoryOptsArgs(repo=chart.repo),
            values=values, atomic=True, cleanup_on_fail=True, timeout=900,
            opts=self.opts(parent, **kwargs))

    def finalize(self) -> None:
        """Nothing is collected across services on Kubernetes: each adapter applies its own objects."""
