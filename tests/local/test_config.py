"""Settings, supervisord.conf and what `dp local` prints about where things are: no secret leaks out."""
from __future__ import annotations

import configparser
import json
import shlex

import pytest

from local import lifecycle
from local.errors import LocalError
from local.services import Service, declare
from local.settings import LocalSettings, mask_password, shell_exports
from local.supervisor import render_config
from tests.local.conftest import dp_local

SECRET = "s3cr%t-pw"
PG = f"postgresql+psycopg2://platform:{SECRET}@db.internal:5432/catalog"


def test_defaults_point_workloads_at_the_state_dir(tmp_path):
    settings = LocalSettings.from_env({"DP_HOME": str(tmp_path)})
    env = settings.platform_env()
    assert env["DP_KAFKA_BOOTSTRAP_SERVERS"] == "127.0.0.1:9092"
    assert env["DP_CATALOG"] == "platform"
    assert env["PYICEBERG_CATALOG__PLATFORM__URI"] == f"sqlite:///{tmp_path}/catalog.db"
    assert env["PYICEBERG_CATALOG__PLATFORM__WAREHOUSE"] == (tmp_path / "warehouse").as_uri()
    assert [s.name for s in declare(settings)][:2] == ["broker", "init"]


def test_external_kafka_replaces_the_broker(tmp_path):
    settings = LocalSettings.from_env({"DP_HOME": str(tmp_path), "DP_KAFKA_BOOTSTRAP_SERVERS": "kafka:9093",
                                       "DP_KAFKA_SECURITY_PROTOCOL": "SASL_SSL"})
    assert "broker" not in [s.name for s in declare(settings)]
    assert dict(settings.exports({"DP_KAFKA_SECURITY_PROTOCOL": "SASL_SSL"}))["DP_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert settings.platform_env()["DP_KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9093"


def test_catalog_password_never_printed(tmp_path):
    settings = LocalSettings.from_env({"DP_HOME": str(tmp_path), "DP_LOCAL_CATALOG_URI": PG})
    assert settings.catalog_properties()["uri"] == PG  # the workloads get it ...
    assert settings.process_env({})["PYICEBERG_CATALOG__PLATFORM__URI"] == PG
    shown = shell_exports(settings.exports({}))  # ... people see a reference to the variable instead
    assert SECRET not in shown and "PYICEBERG_CATALOG__PLATFORM__URI=$DP_LOCAL_CATALOG_URI" in shown
    assert settings.catalog_display() == "postgresql+psycopg2://platform:***@db.internal:5432/catalog"
    assert SECRET not in repr(settings)
    conf = render_config(settings, declare(settings))
    assert SECRET.replace("%", "%%") not in conf and SECRET not in conf


def test_record_written_by_up_holds_no_secret(tmp_path):
    settings = LocalSettings.from_env({"DP_HOME": str(tmp_path), "DP_LOCAL_CATALOG_URI": PG})
    lifecycle._write_record(settings, declare(settings))
    text = settings.record.read_text()
    assert SECRET not in text
    assert json.loads(text)["catalog"] == settings.catalog_display()


def test_mask_password_keeps_uris_without_one():
    assert mask_password("sqlite:////tmp/x/catalog.db") == "sqlite:////tmp/x/catalog.db"
    assert mask_password("postgresql://me@host/db") == "postgresql://me@host/db"


def test_stray_catalog_settings_do_not_reach_the_services(tmp_path):
    settings = LocalSettings.from_env({"DP_HOME": str(tmp_path)})
    env = settings.process_env({"PYICEBERG_CATALOG__PLATFORM__CREDENTIAL": "cloud-token", "PATH": "/usr/bin"})
    assert "PYICEBERG_CATALOG__PLATFORM__CREDENTIAL" not in env
    assert env["PATH"] == "/usr/bin" and env["DP_LOCAL_INSTANCE"] == str(tmp_path)


def test_config_escapes_percent_and_parses_back(tmp_path):
    home = tmp_path / "100%"
    settings = LocalSettings.from_env({"DP_HOME": str(home)})
    service = Service(name="job", command=("python", "-c", "print('50% done')"), env={"GREETING": "a, b = c%"})
    parser = configparser.ConfigParser()  # same interpolation syntax as supervisord
    parser.read_string(render_config(settings, [service]))
    program = parser["program:job"]
    assert shlex.split(program["command"]) == ["python", "-c", "print('50% done')"]
    assert program["environment"] == 'GREETING="a, b = c%"'
    assert program["stdout_logfile"] == str(home / "logs" / "job.log")
    assert program["autostart"] == "false"


def test_service_env_that_cannot_pass_through_the_config_is_refused(tmp_path):
    settings = LocalSettings.from_env({"DP_HOME": str(tmp_path)})
    with pytest.raises(LocalError, match="environment TOKEN"):
        render_config(settings, [Service(name="job", command=("true",), env={"TOKEN": 'say "hi"'})])


def test_long_state_dir_gets_a_short_socket(tmp_path):
    settings = LocalSettings.from_env({"DP_HOME": str(tmp_path / ("x" * 120))})
    assert len(str(settings.supervisor_socket)) < 100
    assert settings.supervisor_socket == LocalSettings.from_env({"DP_HOME": str(tmp_path / ("x" * 120))}).supervisor_socket


def test_status_of_a_platform_never_started(local_env):
    result = dp_local("status", "--json", env=local_env, timeout=60)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"services": {}, "tables": {}}


def test_purge_deletes_a_state_dir_it_created(tmp_path):
    from local.preflight import prepare_home

    settings = LocalSettings.from_env({"DP_HOME": str(tmp_path / "new")})
    prepare_home(settings)
    (settings.home / "audit").mkdir()  # written by a service
    lifecycle.purge_data(settings)
    assert not settings.home.exists()


def test_purge_keeps_what_others_put_in_the_state_dir(tmp_path):
    from local.preflight import prepare_home

    (tmp_path / "notes.txt").write_text("mine")
    settings = LocalSettings.from_env({"DP_HOME": str(tmp_path)})
    prepare_home(settings)
    settings.catalog_db.write_bytes(b"")
    (settings.logs / "ingest.log").write_text("...")
    lifecycle.purge_data(settings)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_mcp_keys_are_generated_once_private_and_reused(tmp_path):
    from local.settings import LocalSettings

    settings = LocalSettings.from_env({"DP_HOME": str(tmp_path)})
    assert settings.mcp_keys(environ={}) == {}  # nothing generated unless asked
    first = settings.mcp_keys(environ={}, create=True)
    assert set(first) >= {"DP_MCP_ADMIN_KEY", "DP_MCP_AGENT_KEY"} and all(len(v) >= 32 for v in first.values())
    assert (settings.mcp_keys_file.stat().st_mode & 0o777) == 0o600
    assert settings.mcp_keys(environ={}, create=True) == first  # the next `up` keeps them
    own = settings.mcp_keys(environ={"DP_MCP_AGENT_KEY": "mine-0123456789abcdef"}, create=True)
    assert own["DP_MCP_AGENT_KEY"] == "mine-0123456789abcdef" and own["DP_MCP_ADMIN_KEY"] == first["DP_MCP_ADMIN_KEY"]
