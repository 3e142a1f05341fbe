"""supervisord runs the services (restarts, logs, process groups, daemon mode); we talk to it over XML-RPC on a
unix socket in the state dir. Secrets stay out of supervisord.conf: the platform's environment (which may hold a
catalog password) is given to the supervisord process and inherited by its children."""
from __future__ import annotations

import shlex
import subprocess
import sys
import time
import xmlrpc.client
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from local.errors import LocalError
from local.services import Service
from local.settings import REPO, LocalSettings

START_SECS = 2  # running this long counts as started
STOP_WAIT_SECS = 30  # a job finishes its batch on SIGTERM; after this supervisor kills it


def _value(text: str) -> str:
    """A value for supervisord.conf: it expands `%(name)s`, so a literal % is doubled."""
    return text.replace("%", "%%")


def _environment(name: str, env: Mapping[str, str]) -> str:
    for key, value in env.items():
        if not key.isidentifier() or any(c in value for c in "\"'\n"):
            raise LocalError(f"service {name}: environment {key} cannot be passed through supervisord.conf",
                             "names must be identifiers and values must not contain quotes or newlines")
    return ",".join(f'{key}="{_value(value)}"' for key, value in env.items())


def render_config(settings: LocalSettings, services: Iterable[Service]) -> str:
    """supervisord.conf: every program is started by `up` in order (autostart=false), stopped in reverse."""
    logs = settings.logs
    lines = [
        "; written by `dp local up`: edit local/services.py instead",
        "[unix_http_server]", f"file={_value(str(settings.supervisor_socket))}", "chmod=0700", "",
        "[supervisord]", f"logfile={_value(str(logs / 'supervisord.log'))}", "logfile_maxbytes=10MB",
        f"pidfile={_value(str(settings.supervisor_pidfile))}", f"childlogdir={_value(str(logs))}",
        f"directory={_value(str(REPO))}", "nodaemon=false", "loglevel=info", "",
        "[rpcinterface:supervisor]", "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
        "", "[supervisorctl]", f"serverurl=unix://{_value(str(settings.supervisor_socket))}", "",
    ]
    for priority, service in enumerate(services, start=1):
        lines += [
            f"[program:{service.name}]",
            f"command={_value(shlex.join(service.command))}",
            f"directory={_value(str(REPO))}",
            f"priority={priority * 10}",
            "autostart=false",
            "autorestart=false" if service.exits else "autorestart=unexpected",
            "exitcodes=0",
            f"startsecs={0 if service.exits else START_SECS}",  # else a quick exit 0 counts as a failed start
            "startretries=3",
            "stopsignal=TERM",
            f"stopwaitsecs={STOP_WAIT_SECS}",
            "stopasgroup=true",
            "killasgroup=true",
            "redirect_stderr=true",
            f"stdout_logfile={_value(str(log_file(settings, service.name)))}",
            "stdout_logfile_maxbytes=10MB",
            "stdout_logfile_backups=2",
        ]
        if service.env:
            lines.append(f"environment={_environment(service.name, service.env)}")
        lines.append("")
    return "\n".join(lines)


def log_file(settings: LocalSettings, name: str) -> Path:
    return settings.logs / f"{name}.log"


def log_tail(path: Path, lines: int = 30) -> str:
    if not path.exists():
        return f"(no log at {path})"
    text = path.read_text(errors="replace").splitlines()[-lines:]
    return f"last lines of {path}:\n" + "\n".join(text) if text else f"({path} is empty)"


class _UnixTransport(xmlrpc.client.Transport):
    """XML-RPC over supervisord's unix socket (what supervisorctl does), with a connect timeout."""

    def __init__(self, socket_path: Path, timeout: float | None):
        super().__init__()
        self.socket_path = str(socket_path)
        self.timeout = timeout

    def make_connection(self, host):
        import http.client
        import socket

        path, timeout = self.socket_path, self.timeout

        class Connection(http.client.HTTPConnection):
            def connect(self):
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.sock.settimeout(timeout)
                self.sock.connect(path)

        return Connection("localhost")


class Supervisor:
    """One platform's supervisord: start it, ask it, stop it."""

    def __init__(self, settings: LocalSettings):
        self.settings = settings
        self.rpc: Any = self._proxy(timeout=10)  # queries answer at once; a hung supervisord must not hang us

    def _proxy(self, timeout: float | None) -> Any:
        return xmlrpc.client.ServerProxy("http://localhost/RPC2",
                                         transport=_UnixTransport(self.settings.supervisor_socket, timeout))

    def alive(self) -> bool:
        if not self.settings.supervisor_socket.exists():
            return False
        try:
            return self.rpc.supervisor.getState()["statename"] == "RUNNING"
        except (OSError, xmlrpc.client.Error):
            return False

    def pid(self) -> int | None:
        try:
            return int(self.settings.supervisor_pidfile.read_text().strip())
        except (OSError, ValueError):
            return None

    def start(self, services: list[Service], env: Mapping[str, str]) -> None:
        """Write the config and start supervisord as a daemon; return once it answers."""
        settings = self.settings
        settings.supervisor_conf.write_text(render_config(settings, services))
        startup_log = settings.logs / "supervisord.out"
        with startup_log.open("wb") as out:
            result = subprocess.run([sys.executable, "-m", "supervisor.supervisord", "-c", str(settings.supervisor_conf)],
                                    env=dict(env), stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                    cwd=REPO, timeout=60)
        if result.returncode != 0:
            raise LocalError(f"supervisord did not start (exit {result.returncode})", log_tail(startup_log))
        deadline = time.monotonic() + 20
        while not self.alive():
            if time.monotonic() > deadline:
                raise LocalError("supervisord started but does not answer on its socket",
                                 log_tail(settings.logs / "supervisord.log"))
            time.sleep(0.1)

    def states(self) -> dict[str, dict[str, Any]]:
        """Process info by service name, as supervisor reports it (statename, pid, exitstatus, ...)."""
        return {info["name"]: info for info in self.rpc.supervisor.getAllProcessInfo()}

    def shutdown(self) -> None:
        """Stop every service (reverse start order, each finishing its batch), then supervisord itself."""
        patient = self._proxy(timeout=None)  # each service may take up to STOP_WAIT_SECS
        try:
            patient.supervisor.stopAllProcesses(True)
        except (OSError, xmlrpc.client.Error):
            pass  # e.g. some were already stopped: shutdown below stops the rest
        pid = self.pid()
        try:
            self.rpc.supervisor.shutdown()
        except (OSError, xmlrpc.client.Error):
            pass  # it may close the socket before answering
        if pid is not None:
            _wait_gone(pid, timeout=STOP_WAIT_SECS + 10)


def _wait_gone(pid: int, timeout: float) -> None:
    import psutil

    try:
        psutil.Process(pid).wait(timeout)
    except psutil.NoSuchProcess:
        pass
    except psutil.TimeoutExpired:
        raise LocalError(f"supervisord (pid {pid}) did not exit within {timeout:.0f}s") from None
