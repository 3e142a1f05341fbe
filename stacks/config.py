"""The typed stack configuration: everything a stack file may say, validated before any resource exists.

A stack file (`Pulumi.<stack>.yaml`) sets keys in the `dataplatform` namespace; each top-level key below is one
Pulumi config key (`dataplatform:target`, `dataplatform:services`, ...). Unknown keys are errors, so a typo
never silently falls back to a default. Credentials are `Secret`s: they must be Pulumi secrets
(`pulumi config set --secret ...`), never plain text in the stack file.
"""
from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, model_validator

from stacks.sizes import SIZES

Target = Literal["compose", "vm", "kubernetes", "aws"]
Environment = Literal["dev", "test", "staging", "prod"]
Size = Literal["small", "medium", "large"]

_QUANTITY = re.compile(r"^\d+(\.\d+)?(m|Ki|Mi|Gi|Ti)?$")
_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$")
_TOPIC = re.compile(r"^[a-zA-Z0-9._-]{1,249}$")


class Secret:
    """A credential that arrived as a Pulumi secret. `value` is None when planning offline from a stack file
    (the ciphertext cannot be decrypted without the stack's secrets provider)."""

    __slots__ = ("value",)

    def __init__(self, value: str | None):
        self.value = value

    def __repr__(self) -> str:
        return "Secret([secret])"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other.value == self.value

    def __hash__(self) -> int:
        return hash(self.value)


def _require_secret(value: Any) -> Secret:
    if isinstance(value, Secret):
        return value
    raise ValueError("must be a Pulumi secret (set it with `pulumi config set --secret` or `secure:` in the "
                     "stack file), not plain text")


SecretValue = Annotated[Secret, BeforeValidator(_require_secret), PlainSerializer(lambda s: "[secret]")]


def _quantity(value: str) -> str:
    if not isinstance(value, str) or not _QUANTITY.match(value):
        raise ValueError("expected a Kubernetes quantity such as '500m', '2' or '4Gi'")
    return value


Quantity = Annotated[str, BeforeValidator(_quantity)]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)


class Resources(Model):
    """CPU and memory per replica (requests = limits for memory; CPU request, no CPU limit)."""
    cpu: Quantity = "500m"
    memory: Quantity = "1Gi"


class Topic(Model):
    name: Annotated[str, Field(pattern=_TOPIC.pattern)]
    partitions: int = Field(6, ge=1, le=10_000)
    replication: int | None = Field(None, ge=1, description="defaults to the cluster's default replication")
    retention_hours: int = Field(168, ge=1, description="retention.ms in hours; -1 is not allowed: set a bound")
    cleanup_policy: Literal["delete", "compact"] = "delete"


DEFAULT_TOPICS = (
    Topic(name="shop.orders"), Topic(name="shop.order_lines"), Topic(name="shop.customers", cleanup_policy="compact"),
    Topic(name="shop.clickstream", partitions=12, retention_hours=72),
)


class ObjectStorage(Model):
    enabled: bool = True
    replicas: int = Field(1, ge=1, description="S3 server replicas (compose/vm/kubernetes)")
    storage_gb: int = Field(50, ge=1)
    resources: Resources = Resources()
    buckets: tuple[Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")], ...] = (
        "warehouse", "checkpoints", "backups")
    noncurrent_version_days: int = Field(30, ge=1, description="AWS: expire old object versions after N days")
    abort_multipart_days: int = Field(7, ge=1)


class Catalog(Model):
    enabled: bool = True
    warehouse: Annotated[str, Field(pattern=_NAME.pattern)] = "lakehouse"
    namespaces: tuple[str, ...] = ("bronze", "silver", "gold")
    aws_flavor: Literal["glue", "rest"] = Field(
        "glue", description="AWS only: Glue Data Catalog (managed) or the REST catalog on EKS with RDS")
    replicas: int = Field(1, ge=1)
    resources: Resources = Resources()
    db_storage_gb: int = Field(20, ge=1)
    db_password: SecretValue | None = Field(None, description="generated with pulumi-random when not set")


class Kafka(Model):
    enabled: bool = True
    brokers: int = Field(1, ge=1, le=100)
    controllers: int = Field(1, ge=1, le=9, description="KRaft controllers (1 combined with the broker in dev)")
    storage_gb: int = Field(20, ge=1)
    resources: Resources = Resources()
    default_replication: int | None = Field(None, ge=1, description="defaults to min(3, brokers)")
    min_insync_replicas: int | None = Field(None, ge=1, description="defaults to min(2, brokers)")
    topics: tuple[Topic, ...] = DEFAULT_TOPICS
    aws_instance_type: str = "kafka.m7g.large"

    @property
    def replication(self) -> int:
        return self.default_replication or min(3, self.brokers)

    @property
    def min_isr(self) -> int:
        return self.min_insync_replicas or min(2, self.brokers)

    @model_validator(mode="after")
    def _consistent(self) -> "Kafka":
        if self.replication > self.brokers:
            raise ValueError(f"default_replication {self.replication} exceeds brokers {self.brokers}")
        if self.min_isr > self.replication:
            raise ValueError(f"min_insync_replicas {self.min_isr} exceeds the replication {self.replication}")
        for topic in self.topics:
            if (topic.replication or 0) > self.brokers:
                raise ValueError(f"topic {topic.name}: replication {topic.replication} exceeds brokers {self.brokers}")
        if len({t.name for t in self.topics}) != len(self.topics):
            raise ValueError("topic names must be unique")
        return self


class Flink(Model):
    enabled: bool = False  # switched on per stack until every target implements it
    taskmanagers: int = Field(1, ge=1)
    task_slots: int = Field(2, ge=1, description="slots per taskmanager")
    resources: Resources = Resources(cpu="500m", memory="2Gi")
    taskmanager_resources: Resources = Resources(cpu="1", memory="4Gi")
    checkpoint_interval_s: int = Field(60, ge=1)
    aws_mode: Literal["eks", "managed"] = Field(
        "eks", description="AWS only: the Flink Kubernetes Operator on EKS, or Managed Service for Apache Flink")


class Trino(Model):
    enabled: bool = False  # switched on per stack until every target implements it
    workers: int = Field(1, ge=0)
    resources: Resources = Resources(cpu="1", memory="4Gi")
    worker_resources: Resources = Resources(cpu="1", memory="4Gi")
    athena_workgroup: bool = Field(False, description="AWS only: also create an Athena workgroup on Glue")


class Qdrant(Model):
    enabled: bool = False  # switched on per stack until every target implements it
    replicas: int = Field(1, ge=1)
    storage_gb: int = Field(20, ge=1)
    resources: Resources = Resources(cpu="500m", memory="2Gi")
    api_key: SecretValue | None = Field(None, description="generated with pulumi-random when not set")
    snapshot_schedule: str = Field("0 2 * * *", description="cron schedule of snapshots to object storage")


class Milvus(Model):
    enabled: bool = False
    storage_gb: int = Field(20, ge=1)
    resources: Resources = Resources(cpu="1", memory="4Gi")


class SchemaRegistry(Model):
    enabled: bool = False  # switched on per stack until every target implements it
    replicas: int = Field(1, ge=1)
    resources: Resources = Resources(cpu="250m", memory="512Mi")


class Observability(Model):
    enabled: bool = False  # switched on per stack until every target implements it
    retention_days: int = Field(15, ge=1)
    storage_gb: int = Field(20, ge=1)
    resources: Resources = Resources(cpu="500m", memory="2Gi")
    grafana_admin_password: SecretValue | None = Field(None, description="generated with pulumi-random when not set")
    tracing_endpoint: str | None = Field(None, description="OTLP endpoint of a tracing backend (Tempo, Jaeger...)")
    aws_mode: Literal["managed", "eks"] = Field(
        "managed", description="AWS only: Amazon Managed Prometheus + Managed Grafana, or the Kubernetes stack on EKS")


def _https_url(value: str | None) -> str | None:
    if value is not None and not re.match(r"^https://[A-Za-z0-9.-]+(:\d{1,5})?/?$", value):
        raise ValueError(f"{value!r} must be an https:// URL without a path, e.g. https://s3.eu-central-1."
                         "wasabisys.com (the copy leaves the platform's network: plain http is refused)")
    return value.rstrip("/") if value else value


class Offsite(Model):
    """An S3 bucket outside the platform (another provider, account or site) that receives a copy of every
    platform bucket (compose, VMs, Kubernetes; on AWS, AWS Backup covers the buckets)."""
    endpoint: Annotated[str | None, AfterValidator(_https_url)] = Field(
        None, description="S3 API of an S3-compatible service (https://...); not set: AWS S3")
    region: str = Field("us-east-1", min_length=1)
    bucket: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")] = Field(
        description="an existing bucket, not on the platform's own storage (docs/restore.md)")
    prefix: Annotated[str, Field(pattern=r"^([A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*)?$")] = Field(
        "dataplatform", description="key prefix: `<prefix>/current/<bucket>/` mirrors, `<prefix>/history/<UTC "
                                    "stamp>/` keeps what each run replaced or deleted")
    path_style: bool | None = Field(None, description="path-style requests; default: on with an endpoint, off on "
                                                      "AWS S3")
    access_key_id: SecretValue
    secret_access_key: SecretValue


class Backups(Model):
    enabled: bool = False  # switched on per stack (every shipped stack does)
    schedule: str = Field("0 3 * * *", description="cron schedule of PostgreSQL dumps (RDS: automated backups) "
                                                   "and of the off-site copy")
    retention_days: int = Field(14, ge=1, description="days dumps (and the off-site copy's history) are kept")
    offsite: Offsite | None = None


class Registry(Model):
    """The container registry the kubernetes and vm targets push the workload images to and pull them from (compose
    builds into the local Docker engine; aws pushes to ECR)."""
    server: Annotated[str, Field(pattern=r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:\d{1,5})?(/[a-z0-9._-]+)*$")] = Field(
        description="registry host, optional port and path the images are named under, e.g. ghcr.io/acme")
    username: str | None = None
    password: SecretValue | None = Field(None, description="with `username`; a token is fine")

    @model_validator(mode="after")
    def _both(self) -> "Registry":
        if (self.username is None) != (self.password is None):
            raise ValueError("set both username and password (a Pulumi secret), or neither for a registry the hosts "
                             "and nodes may pull from without credentials")
        return self


class Workload(Model):
    enabled: bool = True
    replicas: int = Field(1, ge=1, description="mcp_server only: the jobs run one replica each (one writer)")
    resources: Resources | None = Field(None, description="default: components/workloads/processes.py RESOURCES")


class Workloads(Model):
    """The platform's own workloads (components/workloads): medallion jobs, MCP server, vector indexer, governance."""
    enabled: bool = False  # switched on per stack
    registry: Registry | None = None
    image_tag: Annotated[str | None, Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")] = Field(
        None, description="tag of the built images; default: the package version and a hash of what goes into them")
    platform: Literal["linux/amd64", "linux/arm64"] | None = Field(
        None, description="image architecture; default: the EKS nodes' on aws, else linux/amd64")
    ingest: Workload = Workload()
    refine: Workload = Workload()
    maintain: Workload = Workload()
    vector_index: Workload = Workload()
    mcp_server: Workload = Workload()
    governance: Workload = Workload()
    interval_s: float = Field(5.0, gt=0, le=3600, description="seconds per micro-batch of ingest and refine")
    maintenance_schedule: str = Field("15 * * * *", description="cron (UTC) of `medallion maintain`")
    retain_hours: float = Field(24.0, ge=0, description="snapshots younger than this are kept (time travel)")
    demo_events: int = Field(0, ge=0, description="shop events a one-shot producer sends once deployed; 0: none")

    @model_validator(mode="after")
    def _one_writer(self) -> "Workloads":
        for job in ("ingest", "refine", "maintain", "vector_index", "governance"):
            if getattr(self, job).replicas != 1:
                raise ValueError(f"{job}.replicas: the jobs run one replica each (each table has one writer); only "
                                 "mcp_server scales out")
        return self


class Services(Model):
    object_storage: ObjectStorage = ObjectStorage()
    catalog: Catalog = Catalog()
    kafka: Kafka = Kafka()
    flink: Flink = Flink()
    trino: Trino = Trino()
    qdrant: Qdrant = Qdrant()
    milvus: Milvus = Milvus()
    schema_registry: SchemaRegistry = SchemaRegistry()
    observability: Observability = Observability()
    backups: Backups = Backups()
    workloads: Workloads = Workloads()


class ComposePorts(Model):
    """Host ports the compose project publishes (on 127.0.0.1 unless `bind_address` says otherwise)."""
    kafka: int = Field(19092, ge=1, le=65535)
    s3: int = Field(8333, ge=1, le=65535)
    catalog: int = Field(8181, ge=1, le=65535)
    prometheus: int = Field(9090, ge=1, le=65535)
    grafana: int = Field(3000, ge=1, le=65535)
    otlp_grpc: int = Field(4317, ge=1, le=65535)
    otlp_http: int = Field(4318, ge=1, le=65535)
    mcp: int = Field(8765, ge=1, le=65535)


class Compose(Model):
    project_name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")] = "dataplatform"
    data_dir: str = "./.data/compose"
    bind_address: str = "127.0.0.1"
    ports: ComposePorts = ComposePorts()


VmRole = Literal["kafka", "kafka-controller", "object-storage", "catalog", "flink", "trino", "qdrant", "milvus",
                 "schema-registry", "observability", "workloads"]
# The VM role that runs each service (a service that is switched on needs at least one host with its role).
SERVICE_ROLES = {"object_storage": "object-storage", "catalog": "catalog", "kafka": "kafka", "flink": "flink",
                 "trino": "trino", "qdrant": "qdrant", "milvus": "milvus", "schema_registry": "schema-registry",
                 "observability": "observability", "workloads": "workloads"}


class VmHost(Model):
    name: Annotated[str, Field(pattern=_NAME.pattern)]
    address: str
    user: str = "ubuntu"
    port: int = Field(22, ge=1, le=65535)
    private_key: SecretValue
    roles: tuple[VmRole, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _address(self) -> "VmHost":
        if not re.match(r"^[A-Za-z0-9.:-]+$", self.address):
            raise ValueError(f"address {self.address!r} is not an IP address or host name")
        return self


class Vm(Model):
    hosts: tuple[VmHost, ...] = Field(min_length=1)
    data_dir: Annotated[str, Field(pattern=r"^/[^\s]*$", description="absolute path on every host")] = \
        "/var/lib/dataplatform"

    def with_role(self, role: str) -> tuple[VmHost, ...]:
        return tuple(h for h in self.hosts if role in h.roles)

    @model_validator(mode="after")
    def _unique(self) -> "Vm":
        names = [h.name for h in self.hosts]
        if len(set(names)) != len(names):
            raise ValueError("host names must be unique")
        return self


class Kubernetes(Model):
    kubeconfig: SecretValue | None = Field(None, description="kubeconfig contents; default: the ambient one")
    context: str | None = None
    namespace: Annotated[str, Field(pattern=_NAME.pattern)] = "dataplatform"
    storage_class: str | None = None
    allowed_ingress_cidrs: tuple[str, ...] = ()


class Eks(Model):
    node_instance_types: tuple[str, ...] = ("m7i.xlarge",)
    nodes_min: int = Field(2, ge=1)
    nodes_desired: int = Field(3, ge=1)
    nodes_max: int = Field(6, ge=1)
    public_endpoint: bool = False

    @model_validator(mode="after")
    def _bounds(self) -> "Eks":
        if not self.nodes_min <= self.nodes_desired <= self.nodes_max:
            raise ValueError("expected nodes_min <= nodes_desired <= nodes_max")
        return self


def _cidr(value: str) -> str:
    ipaddress.ip_network(value)  # raises a ValueError that names the bad CIDR
    return value


class Aws(Model):
    region: Annotated[str, Field(pattern=r"^[a-z]{2}(-gov)?-[a-z]+-\d$")]
    vpc_cidr: Annotated[str, BeforeValidator(_cidr)] = "10.40.0.0/16"
    existing_vpc_id: str | None = Field(None, pattern=r"^vpc-[0-9a-f]{8,17}$")
    existing_private_subnet_ids: tuple[str, ...] = ()
    availability_zones: int = Field(3, ge=2, le=6)
    eks: Eks = Eks()
    rds_instance_class: str = "db.t4g.medium"

    @model_validator(mode="after")
    def _network(self) -> "Aws":
        if self.existing_vpc_id and len(self.existing_private_subnet_ids) < 2:
            raise ValueError("existing_vpc_id needs existing_private_subnet_ids (at least two, in different AZs)")
        return self


def _pinned_images(images: dict[str, str]) -> dict[str, str]:
    from stacks.versions import unpinned

    for name in unpinned(images):
        raise _KeyError(f"versions.images.{name}", f"{images[name]!r} must be pinned to a version tag or digest, "
                                                    "not latest or untagged")
    return images


class Versions(Model):
    """Overrides of versions.yaml entries, e.g. `images: {kafka: apache/kafka:4.1.2}`."""
    images: Annotated[dict[str, str], AfterValidator(_pinned_images)] = {}
    charts: dict[str, dict[str, str]] = {}
    managed: dict[str, str] = {}


class PlatformConfig(Model):
    target: Target
    environment: Environment = "dev"
    size: Size = "small"
    owner: str = Field("platform-team", min_length=1)
    cost_center: str = Field("data-platform", min_length=1)
    services: Services = Services()
    versions: Versions = Versions()
    compose: Compose | None = None
    vm: Vm | None = None
    kubernetes: Kubernetes | None = None
    aws: Aws | None = None

    @model_validator(mode="before")
    @classmethod
    def _apply_size(cls, data: Any) -> Any:
        """Fill service settings from the size preset; anything the stack file says wins."""
        if not isinstance(data, dict) or data.get("size", "small") not in SIZES:
            return data
        services = _deep_merge(SIZES[data.get("size", "small")], data.get("services") or {})
        return {**data, "services": services}

    @model_validator(mode="after")
    def _target_and_environment(self) -> "PlatformConfig":
        if self.target == "vm" and self.vm is None:
            raise _KeyError("vm.hosts", "the vm target needs at least one host")
        if self.target == "aws" and self.aws is None:
            raise _KeyError("aws.region", "the aws target needs an aws section with a region")
        if self.target == "vm":
            for service, role in SERVICE_ROLES.items():
                if getattr(self.services, service).enabled and not self.vm.with_role(role):
                    raise _KeyError("vm.hosts", f"no host has the role {role!r} (services.{service} is enabled)")
            _check_vm_capacity(self.vm, self.services)
        kafka = self.services.kafka
        if self.environment == "prod" and kafka.enabled:
            if kafka.brokers < 3:
                raise _KeyError("services.kafka.brokers", f"prod needs at least 3 brokers, got {kafka.brokers}")
            if kafka.controllers < 3:
                raise _KeyError("services.kafka.controllers",
                                f"prod needs a quorum of at least 3 KRaft controllers, got {kafka.controllers}")
            if kafka.replication < 3 or kafka.min_isr < 2:
                raise _KeyError("services.kafka.default_replication",
                                "prod needs replication >= 3 and min_insync_replicas >= 2")
        if self.services.catalog.enabled and not self.services.object_storage.enabled:
            raise _KeyError("services.object_storage.enabled", "the catalog keeps its warehouse on object storage")
        return self

    @property
    def prod(self) -> bool:
        return self.environment == "prod"

    @property
    def tags(self) -> dict[str, str]:
        return {"owner": self.owner, "environment": self.environment, "cost-center": self.cost_center,
                "managed-by": "pulumi", "platform": "dataplatform"}


def _check_vm_capacity(vm: Vm, services: Services) -> None:
    """On VMs each replica needs its own host (services use the host's network, so two would share ports)."""
    kafka = services.kafka
    wanted = []
    if kafka.enabled:
        wanted.append(("services.kafka.brokers", kafka.brokers, "kafka", "brokers"))
        if vm.with_role("kafka-controller"):
            wanted.append(("services.kafka.controllers", kafka.controllers, "kafka-controller", "controllers"))
        elif kafka.controllers > kafka.brokers:
            raise _KeyError("services.kafka.controllers", f"{kafka.controllers} controllers, but no host has the role "
                            f"'kafka-controller' and only the {kafka.brokers} broker(s) can double as controllers")
    if services.object_storage.enabled:
        wanted.append(("services.object_storage.replicas", services.object_storage.replicas, "object-storage",
                       "replicas"))
    if services.catalog.enabled:
        wanted.append(("services.catalog.replicas", services.catalog.replicas, "catalog", "replicas"))
    for key, count, role, what in wanted:
        hosts = vm.with_role(role)
        if count > len(hosts):
            raise _KeyError(key, f"{count} {what} need {count} hosts with the role {role!r}, but vm.hosts has "
                                 f"{len(hosts)} ({', '.join(h.name for h in hosts)})")


class _KeyError(ValueError):
    """A cross-field rule broken at a known key path (reported as that key, not as the whole model)."""

    def __init__(self, key: str, message: str):
        super().__init__(f"{key}: {message}")
        self.key = key
        self.message = message


def _deep_merge(base: dict, override: dict) -> dict:
    merged = dict(base)
    for key, value in override.items():
        merged[key] = _deep_merge(base[key], value) if isinstance(value, dict) and isinstance(
            base.get(key), dict) else value
    return merged
