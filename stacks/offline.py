"""Run the stack program offline under Pulumi's mocks and capture the whole resource graph.

This is what `dp plan`, the unit tests and the offline policy report share: no Pulumi CLI, no credentials, no
cloud. Every registration is recorded (type, name, parent, dependencies, inputs with secrets marked), and the
stack outputs are resolved. Each `capture` call installs fresh mocks and a fresh root stack, so nothing leaks
from one run into the next.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import pulumi
from google.protobuf import json_format
from pulumi.runtime import mocks, settings
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from stacks.config import PlatformConfig

SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
RESOURCE_SIG = "5cf8f73096256a8f31e491e813e4eb8e"
SIG_KEY = "4dabf18193072939515e22adb298388d"
MASK = "[secret]"


@dataclass
class Resource:
    type: str
    name: str
    urn: str
    parent: str | None  # the parent's name, None at the stack root
    parent_urn: str | None
    dependencies: list[str]
    custom: bool
    provider: str | None
    wire: dict = field(repr=False)  # the inputs exactly as the engine sends them (secret markers kept)

    @property
    def inputs(self) -> dict[str, Any]:
        """Inputs as the provider receives them (secrets in clear: for assertions, never for printing)."""
        return _decode(self.wire, mask=False)

    @property
    def masked_inputs(self) -> dict[str, Any]:
        return _decode(self.wire, mask=True)

    @property
    def secret_paths(self) -> list[str]:
        """Input paths whose values are Pulumi secrets, e.g. `environment.S3_SECRET_KEY`."""
        return list(_secret_paths(self.wire, ""))


@dataclass
class Graph:
    stack: str
    target: str
    resources: list[Resource]
    outputs: dict[str, Any]
    secret_outputs: set[str]

    def of_type(self, type_: str) -> list[Resource]:
        return [r for r in self.resources if r.type == type_]

    def named(self, name: str) -> Resource:
        matches = [r for r in self.resources if r.name == name]
        if len(matches) != 1:
            raise KeyError(f"{len(matches)} resources named {name!r}")
        return matches[0]

    def children(self, parent: Resource) -> list[Resource]:
        return [r for r in self.resources if r.parent_urn == parent.urn]

    def descendants(self, parent: Resource) -> list[Resource]:
        found = []
        for child in self.children(parent):
            found += [child, *self.descendants(child)]
        return found

    def to_json(self) -> dict:
        """The `dp plan --json` shape: secrets masked."""
        return {"stack": self.stack, "target": self.target,
                "resources": [{"type": r.type, "name": r.name, "parent": r.parent, "inputs": r.masked_inputs}
                              for r in self.resources]}


class _Mocks(pulumi.runtime.Mocks):
    """Outputs a provider would compute (ARNs, endpoints, generated passwords), deterministic per name."""

    def __init__(self, region: str = "eu-west-1"):
        self.region = region

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        state = dict(args.inputs)
        name = args.name
        extra: dict[str, Any] = {
            "random:index/randomPassword:RandomPassword": {
                "result": f"mock-password-{name}",
                "bcryptHash": f"$2a$10$mockmockmockmockmockmu{name[:31].ljust(31, 'x')}"},
            "tls:index/privateKey:PrivateKey": {
                "privateKeyPem": f"-----BEGIN PRIVATE KEY-----\nmock-{name}\n-----END PRIVATE KEY-----\n",
                "publicKeyPem": f"-----BEGIN PUBLIC KEY-----\nmock-{name}\n-----END PUBLIC KEY-----\n"},
            "tls:index/selfSignedCert:SelfSignedCert": {
                "certPem": f"-----BEGIN CERTIFICATE-----\nmock-{name}\n-----END CERTIFICATE-----\n"},
            "tls:index/locallySignedCert:LocallySignedCert": {
                "certPem": f"-----BEGIN CERTIFICATE-----\nmock-{name}\n-----END CERTIFICATE-----\n"},
            "tls:index/certRequest:CertRequest": {
                "certRequestPem": f"-----BEGIN CERTIFICATE REQUEST-----\nmock-{name}\n-----END CERTIFICATE REQUEST-----\n"},
            "random:index/randomId:RandomId": {"hex": "0123abcd", "b64Url": "ASOrzQ"},
            "aws:eks/cluster:Cluster": {
                "endpoint": f"https://{name}.eks.{self.region}.amazonaws.com",
                "certificateAuthority": {"data": "bW9jay1jYQ=="},
                "identities": [{"oidcs": [{"issuer": f"https://oidc.eks.{self.region}.amazonaws.com/id/MOCK"}]}],
            },
            "aws:msk/cluster:Cluster": {
                "bootstrapBrokersSaslIam": ",".join(f"b-{i}.{name}.kafka.{self.region}.amazonaws.com:9098"
                                                    for i in (1, 2, 3)),
            },
            "aws:rds/instance:Instance": {"address": f"{name}.rds.{self.region}.amazonaws.com", "port": 5432},
            "aws:amp/workspace:Workspace": {
                "prometheusEndpoint": f"https://aps-workspaces.{self.region}.amazonaws.com/workspaces/ws-{name}/"},
            "aws:grafana/workspace:Workspace": {"endpoint": f"g-{name}.grafana-workspace.{self.region}.amazonaws.com"},
            "aws:grafana/workspaceServiceAccount:WorkspaceServiceAccount": {"serviceAccountId": f"sa-{name}"},
            "aws:grafana/workspaceServiceAccountToken:WorkspaceServiceAccountToken": {"key": f"mock-token-{name}"},
        }.get(args.typ, {})
        if args.typ.startswith("aws:"):
            state.setdefault("arn", f"arn:aws:{args.typ.split(':')[1].split('/')[0]}:{self.region}:123456789012:"
                                    f"{name}")
        if args.typ == "aws:s3/bucket:Bucket":
            state.setdefault("bucket", state.get("bucketPrefix", name) + "mock")
        if args.typ == "aws:eks/cluster:Cluster":  # EKS creates the cluster security group the nodes use
            state["vpcConfig"] = {**(state.get("vpcConfig") or {}), "clusterSecurityGroupId": f"sg-{name}-cluster"}
        state.update(extra)
        return f"{name}-id", state

    def call(self, args: pulumi.runtime.MockCallArgs):
        if args.token == "aws:index/getAvailabilityZones:getAvailabilityZones":
            zones = [f"{self.region}{z}" for z in "abc"]
            return {"names": zones, "zoneIds": zones}, []
        if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {"accountId": "123456789012", "arn": "arn:aws:iam::123456789012:user/mock"}, []
        if args.token == "aws:index/getRegion:getRegion":
            return {"name": self.region, "region": self.region}, []
        if args.token == "aws:iam/getPolicyDocument:getPolicyDocument":
            return {"json": json.dumps({"Version": "2012-10-17", "Statement": args.args.get("statements", [])})}, []
        return {}, []


class _CapturingMonitor(mocks.MockMonitor):
    def __init__(self, mocks_: pulumi.runtime.Mocks):
        super().__init__(mocks_)
        self.captured: list[tuple[Any, str]] = []

    def RegisterResource(self, request):
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            self.captured.append((request, response.urn))
        return response


def capture(config: PlatformConfig, stack: str, program: Callable[[PlatformConfig], None] | None = None,
            project: str = "dataplatform") -> Graph:
    """Run `program(config)` (default: the platform's stack program) under mocks; return the captured graph."""
    if program is None:
        from stacks.program import run as program
    region = config.aws.region if config.aws else "eu-west-1"
    monitor = _CapturingMonitor(_Mocks(region))
    settings.ROOT.set(None)
    pulumi.runtime.set_mocks(monitor.mocks, project=project, stack=stack, preview=False, monitor=monitor)
    resolved: dict[str, tuple[Any, bool]] = {}

    def body():
        program(config)
        root = settings.get_root_resource()
        for key, value in getattr(root, "outputs", {}).items():
            output = pulumi.Output.from_input(value)
            resolved[key] = (_sync_await(output.future()), _sync_await(output.is_secret()))

    try:
        _sync_await(run_pulumi_func(body))
    except ValueError as error:
        from stacks.loader import from_adapter_error

        if (config_error := from_adapter_error(error)) is not None:
            raise config_error from None
        raise
    finally:
        settings.ROOT.set(None)
    by_urn = {urn: request.name for request, urn in monitor.captured}
    resources = [
        Resource(type=request.type, name=request.name, urn=urn, parent=by_urn.get(request.parent),
                 parent_urn=request.parent if request.parent in by_urn else None, dependencies=[by_urn.get(d, d) for d in request.dependencies],
                 custom=request.custom, provider=request.provider or None,
                 wire=json_format.MessageToDict(request.object))
        for request, urn in monitor.captured
    ]
    return Graph(stack=stack, target=config.target, resources=resources,
                 outputs={k: v for k, (v, _) in resolved.items()},
                 secret_outputs={k for k, (_, secret) in resolved.items() if secret})


def _decode(value: Any, mask: bool) -> Any:
    if isinstance(value, dict):
        if value.get(SIG_KEY) == SECRET_SIG:
            return MASK if mask else _decode(value.get("value"), mask)
        if value.get(SIG_KEY) == RESOURCE_SIG:
            return value.get("urn")
        return {k: _decode(v, mask) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v, mask) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)  # protobuf Structs carry every number as a double
    return value


def _secret_paths(value: Any, path: str) -> Iterator[str]:
    if isinstance(value, dict):
        if value.get(SIG_KEY) == SECRET_SIG:
            yield path
            return
        for k, v in value.items():
            yield from _secret_paths(v, f"{path}.{k}" if path else k)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _secret_paths(v, f"{path}[{i}]")
