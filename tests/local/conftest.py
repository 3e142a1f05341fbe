"""Fixtures for the embedded platform's tests: a private state dir and free ports for every declared service."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from local import lifecycle
from local.services import declare
from local.settings import LocalSettings

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def local_env(tmp_path) -> Iterator[dict[str, str]]:
    """The process environment for `dp local ...`: DP_HOME in tmp_path, every service port moved to a free one,
    and nothing inherited that would point the platform elsewhere. Whatever the test started is stopped after it."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DP_", "PYICEBERG_CATALOG__"))}
    env["DP_HOME"] = str(tmp_path / "home")
    env["COLUMNS"] = "200"  # rich wraps at 80 columns without a terminal: keep messages on one line
    port_names = {name for service in declare(LocalSettings.from_env(env)) for name in service.ports}
    env.update({f"DP_LOCAL_{name.upper()}_PORT": str(free_port()) for name in port_names})
    settings = LocalSettings.from_env(env)
    yield env
    lifecycle.stop_all(settings)


def dp_local(*args: str, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess:
    """Run `dp local ARGS` as a user would (a separate process), capturing its output."""
    return subprocess.run([sys.executable, "-m", "dp.cli", "local", *args], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)
