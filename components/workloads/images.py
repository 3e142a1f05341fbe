"""The workload images, built by the stack (pulumi-docker-build, BuildKit) from this repository and pushed where
the target pulls from:

| target | registry | pushed as |
| --- | --- | --- |
| compose | none: loaded into the local Docker engine that runs the project | `dataplatform/<image>:<tag>` |
| vm, kubernetes | `services.workloads.registry` (credentials a Pulumi secret) | `<server>/dataplatform-<image>:<tag>` |
| aws | one ECR repository per image: scan on push, immutable tags, KMS, lifecycle | `<account>.dkr.ecr...:<tag>` |

Images: `workloads` (docker/workloads: the Python package with its pinned dependencies, the MCP server by default)
and, when Flink runs packaged jobs (Kubernetes and EKS), `flink-jobs` (docker/flink-jobs: images.flink plus the
connector jars of versions.yaml `builds.flink_jars`, the SQL runner and the medallion job scripts).

The tag is `services.workloads.image_tag`, else `<package version>-<12 hex>` of everything that goes into the
images (the files they copy and their build arguments): a change to the code, a pin or a SQL file is a new tag,
so ECR's immutable tags never collide and nodes never run a stale image under an old name. Deployments use the
pushed reference with its digest (`ref`) when the registry reports one.
"""
from __future__ import annotations

import base64
import hashlib
import json
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import pulumi
import pulumi_docker_build as docker_build
import yaml

from stacks.versions import VERSIONS_FILE, Versions

REPO = Path(__file__).resolve().parents[2]
DOCKERFILES = {"workloads": "docker/workloads/Dockerfile", "flink-jobs": "docker/flink-jobs/Dockerfile"}
# what the images copy (the Dockerfiles' COPY sources; .dockerignore admits exactly these)
SOURCES = ("pyproject.toml", ".dockerignore", "docker", "workloads", "components/workloads/probe.py",
           "components/workloads/fetch_jars.py", "components/workloads/flink_scripts.py")
LOCAL_PREFIX = "dataplatform"
ECR_KEEP = 30  # newest images kept per ECR repository
ECR_UNTAGGED_DAYS = 7


@lru_cache(maxsize=1)
def builds() -> dict:
    """versions.yaml `builds`: the base images and the Flink connector jars."""
    return yaml.safe_load(VERSIONS_FILE.read_text())["builds"]


def build_args(image: str, versions: Versions) -> dict[str, str]:
    pinned = builds()
    if image == "workloads":
        return {"PYTHON_IMAGE": pinned["python"]}
    from components.flink import JOBS

    return {"PYTHON_IMAGE": pinned["python"], "JDK_IMAGE": pinned["jdk"], "FLINK_IMAGE": versions.image("flink"),
            "FLINK_JARS": " ".join(pinned["flink_jars"]),
            "FLINK_JOBS": " ".join(f"{job.name}={job.prefix}" for job in JOBS)}


def _files(root: Path) -> list[Path]:
    if root.is_file():
        return [root]
    return sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts
                  and p.suffix not in (".pyc", ".pyo"))


def source_digest(extra: dict | None = None) -> str:
    """SHA-256 over the images' inputs: every file they copy (path and content) and `extra` (build arguments)."""
    digest = hashlib.sha256()
    for source in SOURCES:
        for path in _files(REPO / source):
            digest.update(str(path.relative_to(REPO)).encode() + b"\0" + path.read_bytes() + b"\0")
    digest.update(json.dumps(extra or {}, sort_keys=True).encode())
    return digest.hexdigest()


def package_version() -> str:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]


def image_tag(settings, versions: Versions) -> str:
    if settings.image_tag:
        return settings.image_tag
    args = {image: build_args(image, versions) for image in DOCKERFILES}
    return f"{package_version()}-{source_digest(args)[:12]}"


@dataclass(frozen=True)
class Pushed:
    """One built image: the resource and the reference deployments use."""
    resource: docker_build.Image
    name: pulumi.Input[str]  # repository:tag as built (an Output on ECR: the repository's address)
    ref: pulumi.Output[str]  # with the digest once pushed (`name` when the builder reports none)


def registry_host(server: str) -> str:
    return server.split("/", 1)[0]


def docker_config_json(server: str, username: pulumi.Input[str], password: pulumi.Input[str]) -> pulumi.Output[str]:
    """A `kubernetes.io/dockerconfigjson` body for one registry (secret)."""
    def body(values: list[str]) -> str:
        user, secret = values
        auth = base64.b64encode(f"{user}:{secret}".encode()).decode()
        return json.dumps({"auths": {registry_host(server): {"username": user, "password": secret, "auth": auth}}})
    return pulumi.Output.secret(pulumi.Output.all(username, password).apply(body))


class WorkloadImages(pulumi.ComponentResource):
    """Builds (and pushes) the workload images for the stack's target; `refs` are what deployments run."""

    def __init__(self, name: str, config, substrate, versions: Versions, *, flink_jobs: bool,
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__("dataplatform:workloads:Images", name, None, opts)
        self.name = name
        self.kind = substrate.kind
        settings = config.services.workloads
        self.tag = image_tag(settings, versions)
        self.registry = settings.registry
        wanted = ["workloads", *(["flink-jobs"] if flink_jobs else [])]
        self.images: dict[str, Pushed] = {}
        for image in wanted:
            self.images[image] = self._build(image, substrate, settings, versions)
        self.register_outputs({"images": {k: v.ref for k, v in self.images.items()}})

    def ref(self, image: str) -> pulumi.Output[str] | None:
        pushed = self.images.get(image)
        return pushed.ref if pushed else None

    @property
    def resources(self) -> list[pulumi.Resource]:
        return [pushed.resource for pushed in self.images.values()]

    def _build(self, image: str, substrate, settings, versions: Versions) -> Pushed:
        common = dict(context={"location": str(REPO)}, dockerfile={"location": str(REPO / DOCKERFILES[image])},
                      build_args=build_args(image, versions), build_on_preview=False,
                      labels={"org.opencontainers.image.version": self.tag,
                              "org.opencontainers.image.source": "dataplatform"})
        options = pulumi.ResourceOptions(parent=self)
        if self.kind == "compose":
            name = f"{LOCAL_PREFIX}/{image}:{self.tag}"
            built = docker_build.Image(f"{self.name}-{image}", push=False, load=True, tags=[name], **common,
                                       opts=options)
            return Pushed(built, name, built.ref.apply(lambda ref, n=name: ref or n))
        if self.kind == "aws":
            return self._ecr(image, substrate, settings, common)
        if self.registry is None:
            raise ValueError(f"services.workloads.registry: the {self.kind} target pulls the workload images from a "
                             "registry; set registry.server (e.g. ghcr.io/acme) and, unless it is open to the "
                             "nodes, its username and password (a Pulumi secret)")
        name = f"{self.registry.server}/{LOCAL_PREFIX}-{image}:{self.tag}"
        registries = None
        if self.registry.username is not None:
            registries = [{"address": registry_host(self.registry.server), "username": self.registry.username,
                           "password": pulumi.Output.secret(self.registry.password.value or "offline-plan")}]
        built = docker_build.Image(f"{self.name}-{image}", push=True, tags=[name], registries=registries,
                                   platforms=[settings.platform or "linux/amd64"], **common, opts=options)
        return Pushed(built, name, built.ref.apply(lambda ref, n=name: ref or n))

    def _ecr(self, image: str, foundation, settings, common: dict) -> Pushed:
        import pulumi_aws as aws

        from components.targets.aws import ami_type

        repository = aws.ecr.Repository(
            f"{self.name}-{image}", name=f"{foundation.prefix}/{image}", image_tag_mutability="IMMUTABLE",
            image_scanning_configuration={"scan_on_push": True},
            encryption_configurations=[{"encryption_type": "KMS", "kms_key": foundation.kms_key.arn}],
            force_delete=not foundation.prod, tags=foundation.tagged(f"{foundation.prefix}/{image}"),
            opts=foundation.opts(self))
        aws.ecr.LifecyclePolicy(f"{self.name}-{image}-lifecycle", repository=repository.name, policy=json.dumps(
            {"rules": [
                {"rulePriority": 1, "description": f"expire untagged images after {ECR_UNTAGGED_DAYS} days",
                 "selection": {"tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "days",
                               "countNumber": ECR_UNTAGGED_DAYS}, "action": {"type": "expire"}},
                {"rulePriority": 2, "description": f"keep the newest {ECR_KEEP} images",
                 "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": ECR_KEEP},
                 "action": {"type": "expire"}}]}), opts=foundation.opts(self))
        token = aws.ecr.get_authorization_token_output(
            registry_id=repository.registry_id, opts=pulumi.InvokeOptions(parent=self, provider=foundation.provider))
        address = pulumi.Output.concat(foundation.account_id, ".dkr.ecr.", foundation.region, ".amazonaws.com")
        name = pulumi.Output.concat(address, "/", repository.name, ":", self.tag)
        arm = ami_type(foundation.settings.eks.node_instance_types).startswith("AL2023_ARM")
        built = docker_build.Image(
            f"{self.name}-{image}", push=True, tags=[name],
            registries=[{"address": address, "username": token.user_name,
                         "password": pulumi.Output.secret(token.password)}],
            platforms=[settings.platform or ("linux/arm64" if arm else "linux/amd64")], **common,
            opts=pulumi.ResourceOptions(parent=self))
        return Pushed(built, name, pulumi.Output.all(built.ref, name).apply(lambda v: v[0] or v[1]))
