"""Checks before anything starts, so a failure says what to fix instead of surfacing as a crashed service."""
from __future__ import annotations

import socket
import uuid

from local.errors import LocalError
from local.health import TcpPort
from local.services import Service
from local.settings import LocalSettings


def prepare_home(settings: LocalSettings) -> None:
    """Create the state dir layout and prove it is writable."""
    home = settings.home
    try:
        if not home.exists():
            home.mkdir(parents=True)
            settings.owned_marker.touch()
        for directory in (settings.logs, settings.warehouse):
            directory.mkdir(parents=True, exist_ok=True)
        probe = home / f".write-test-{uuid.uuid4().hex}"
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as exc:
        raise LocalError(f"state dir {home} is not writable: {exc.strerror or exc}",
                         "set DP_HOME to a writable directory (default: <repo>/.dp)") from None


def _owner(port: int) -> str:
    """`pid 123 (tansu)` listening on port, when the OS tells us."""
    import psutil

    try:
        for conn in psutil.net_connections(kind="tcp"):
            if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port and conn.pid:
                return f" by pid {conn.pid} ({psutil.Process(conn.pid).name()})"
    except (psutil.Error, OSError):
        pass
    return ""


def port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def check_ports(services: list[Service]) -> None:
    for service in services:
        for name, port in service.ports.items():
            if not port_free(port):
                raise LocalError(
                    f"port {port} ({service.name}) is already in use{_owner(port)}",
                    f"stop what uses it (`dp local down` if it is an earlier platform) or choose another port: "
                    f"DP_LOCAL_{name.upper()}_PORT=<port>")


def check_external_kafka(settings: LocalSettings) -> None:
    """With DP_KAFKA_BOOTSTRAP_SERVERS set no broker is started: at least one bootstrap server must answer."""
    if settings.runs_broker:
        return
    reasons = []
    for server in settings.bootstrap_servers.split(","):
        host, _, port = server.strip().rpartition(":")
        if not port.isdigit():
            raise LocalError(f"DP_KAFKA_BOOTSTRAP_SERVERS: {server!r} is not host:port")
        reason = TcpPort(int(port), host.strip("[]") or "127.0.0.1")()
        if reason is None:
            return
        reasons.append(reason)
    raise LocalError(f"Kafka at DP_KAFKA_BOOTSTRAP_SERVERS={settings.bootstrap_servers} does not answer",
                     "; ".join(reasons) + "\nunset it to run the embedded broker (Tansu)")


def check_all(settings: LocalSettings, services: list[Service]) -> None:
    prepare_home(settings)
    check_ports(services)
    check_external_kafka(settings)
