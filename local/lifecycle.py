"""Bring the embedded platform up in order, report on it, and take it down leaving nothing running."""
from __future__ import annotations

import json
import shutil
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any

from rich.console import Console
from rich.live import Live

from local.errors import LocalError
from local.preflight import check_all
from local.services import Service, declare
from local.settings import INSTANCE_ENV, LocalSettings
from local.supervisor import START_SECS, STOP_WAIT_SECS, Supervisor, log_file, log_tail
from local.tables import open_catalog, row_counts

NOT_RUNNING = "not running"  # service state reported when supervisord itself is not running
POLL = 0.5


# --- up ------------------------------------------------------------------------------------------------------
def up(settings: LocalSettings, console: Console, services: list[Service] | None = None) -> None:
    """Start (or complete) the platform and return once every service is healthy and data reached each layer.
    If this call started supervisord and something fails, everything is stopped again (logs stay)."""
    services = declare(settings) if services is None else services
    supervisor = Supervisor(settings)
    started_here = False
    if supervisor.alive():
        unknown = sorted({s.name for s in services} - set(supervisor.states()))
        if unknown:
            raise LocalError(f"a platform with other services is already running in {settings.home}",
                             f"not in it: {', '.join(unknown)}; run `dp local down` first")
        console.print(f"Platform already running in {settings.home}: checking every service.")
    else:
        check_all(settings, services)
        with console.status("starting supervisord"):
            supervisor.start(services, {**settings.process_env(), **settings.mcp_keys(create=True)})
        started_here = True
        _write_record(settings, services)
        console.print(f"[green]✓[/] supervisord      state dir {settings.home}")
    try:
        for service in services:
            _bring_up(supervisor, settings, service, console)
    except BaseException:
        if started_here:
            with console.status("stopping what was started"):
                stop_all(settings)
        raise


def _failure(service: Service, info: dict[str, Any]) -> str | None:
    state, status = info["statename"], info.get("exitstatus")
    if state == "FATAL":
        return "could not be started (FATAL: it kept exiting right after start)"
    if state == "STOPPED":
        return "was stopped"
    if state == "EXITED" and (status != 0 or not service.exits):
        return f"exited with status {status}" + ("" if service.exits else " although it should keep running")
    return None


def _settled(service: Service, info: dict[str, Any]) -> bool:
    """Started for good: supervisor's startsecs covers services that keep running; one that may exit runs with
    startsecs=0 (a quick exit 0 is success), so it gets the same grace here before counting as started."""
    state = info["statename"]
    if service.exits and state == "EXITED":
        return True
    if service.blocking or state != "RUNNING":
        return False
    return not service.exits or info["now"] - info["start"] >= START_SECS


def _bring_up(supervisor: Supervisor, settings: LocalSettings, service: Service, console: Console) -> None:
    start = time.monotonic()
    info = supervisor.states()[service.name]
    done_before = service.exits and info["statename"] == "EXITED" and info["exitstatus"] == 0
    if not done_before and info["statename"] not in ("RUNNING", "STARTING", "BACKOFF"):
        supervisor.rpc.supervisor.startProcess(service.name, False)
    waiting = "starting"
    with console.status(f"{service.name}: starting") as spinner:
        while True:
            info = supervisor.states()[service.name]
            if (reason := _failure(service, info)) and not done_before:
                raise LocalError(f"service {service.name} {reason}", log_tail(log_file(settings, service.name)))
            if _settled(service, info):
                pending = next(((c, r) for c in service.checks if (r := c()) is not None), None)
                if pending is None:
                    break
                waiting = f"waiting for {pending[0].describe()}: {pending[1]}"
            else:
                waiting = f"{info['statename'].lower()}"
            elapsed = time.monotonic() - start
            if elapsed > settings.timeout:
                raise LocalError(f"service {service.name} not healthy after {settings.timeout:.0f}s: {waiting}",
                                 log_tail(log_file(settings, service.name)))
            spinner.update(f"{service.name}: {waiting} ({elapsed:.0f}s)")
            time.sleep(POLL)
    what = ", ".join(c.describe() for c in service.checks) or ("finished" if info["statename"] == "EXITED"
                                                                 else info["statename"].lower())
    console.print(f"[green]✓[/] {service.name:<16} {what} ({time.monotonic() - start:.1f}s)")


def _write_record(settings: LocalSettings, services: list[Service]) -> None:
    record = {
        "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "home": str(settings.home),
        "kafka": settings.bootstrap_servers,
        "broker": "tansu (embedded, in memory)" if settings.runs_broker else "external",
        "catalog": settings.catalog_display(),
        "warehouse": str(settings.warehouse),
        "supervisor_conf": str(settings.supervisor_conf),
        "exports": settings.exports(),
        "services": [{"name": s.name, "endpoint": s.endpoint, "log": str(log_file(settings, s.name))}
                     for s in services],
    }
    settings.record.write_text(json.dumps(record, indent=2))


def read_record(settings: LocalSettings) -> dict[str, Any] | None:
    try:
        return json.loads(settings.record.read_text())
    except (OSError, ValueError):
        return None


# --- status --------------------------------------------------------------------------------------------------
def status(settings: LocalSettings, catalog: Any | None = None) -> dict[str, dict[str, Any]]:
    """`{"services": {name: state}, "tables": {"bronze.orders": rows}}`; states are supervisor's
    (RUNNING, EXITED, FATAL, ...) or "not running" when supervisord is not running. Services are those of the
    last `up` in this state dir; tables are read from the catalog, which stays readable while the platform is down."""
    supervisor = Supervisor(settings)
    record = read_record(settings) or {"services": []}
    names = [s["name"] for s in record["services"]]
    if supervisor.alive():
        infos = supervisor.states()
        services = {name: infos[name]["statename"] for name in names if name in infos}
        services.update({name: info["statename"] for name, info in infos.items() if name not in services})
    else:
        services = {name: NOT_RUNNING for name in names}
    try:
        tables = row_counts(catalog if catalog is not None else open_catalog(settings))
    except Exception as exc:
        raise LocalError(f"catalog {settings.catalog_display()} is not readable: {exc}") from None
    return {"services": services, "tables": tables}


def attach(settings: LocalSettings, console: Console, render, every: float = 2.0) -> None:
    """Stay in the foreground showing live status until Ctrl-C or SIGTERM (then the caller shuts down)."""
    catalog = open_catalog(settings)
    previous = status(settings, catalog)
    with _sigterm_as_interrupt(), Live(render(previous), console=console, auto_refresh=False) as live:
        while True:
            time.sleep(every)
            try:
                current = status(settings, catalog)
            except LocalError as exc:  # e.g. the catalog busy for a moment: say so and keep watching
                live.console.print(f"[yellow]![/] {exc.message}")
                continue
            for name, state in current["services"].items():
                if state != previous["services"].get(name) and state not in ("RUNNING", "EXITED"):
                    live.console.print(f"[yellow]![/] {name} is {state}: see {log_file(settings, name)}")
            live.update(render(current), refresh=True)
            previous = current


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    def interrupt(signum, frame):
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


# --- down ----------------------------------------------------------------------------------------------------
def down(settings: LocalSettings, console: Console, purge: bool = False) -> None:
    """Stop everything of this state dir (idempotent); with `purge`, also delete its data."""
    with console.status("stopping services (each finishes its current batch)"):
        stopped, strays = stop_all(settings)
    if stopped:
        console.print(f"[green]✓[/] stopped the platform in {settings.home}")
    if strays:
        console.print(f"[yellow]![/] ended {strays} stray process(es) of this platform")
    if not stopped and not strays:
        console.print(f"Nothing running in {settings.home}.")
    if purge:
        purge_data(settings)
        console.print(f"[green]✓[/] deleted the platform's data in {settings.home}")
    elif settings.home.exists():
        console.print(f"Data kept in {settings.home} (`dp local down --purge` deletes it).")


def stop_all(settings: LocalSettings) -> tuple[bool, int]:
    """(whether supervisord was running, how many stray processes had to be ended)."""
    supervisor = Supervisor(settings)
    stopped = supervisor.alive()
    if stopped:
        supervisor.shutdown()
    return stopped, _end_strays(settings)


def platform_processes(settings: LocalSettings) -> list:
    """Processes started for this state dir (they carry its marker variable), whoever their parent is now."""
    import psutil

    found = []
    for process in psutil.process_iter():
        try:
            if process.pid != psutil.Process().pid and process.environ().get(INSTANCE_ENV) == str(settings.home):
                found.append(process)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess, OSError):
            continue
    return found


def _end_strays(settings: LocalSettings) -> int:
    """Processes left behind (supervisord killed hard, a child that outlived it): TERM, then KILL."""
    import psutil

    strays = platform_processes(settings)
    for process in strays:
        try:
            process.terminate()
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(strays, timeout=STOP_WAIT_SECS)
    for process in alive:
        try:
            process.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=5)
    return len(strays)


def purge_data(settings: LocalSettings) -> None:
    """Delete the platform's data: the whole state dir if `up` created it, else only what the platform wrote
    (DP_HOME may be a directory with other content)."""
    if not settings.uses_sqlite:  # the catalog lives elsewhere: drop our tables from it
        catalog = open_catalog(settings)
        for namespace in catalog.list_namespaces():
            for identifier in catalog.list_tables(namespace):
                catalog.drop_table(identifier)
            catalog.drop_namespace(namespace)
    settings.supervisor_socket.unlink(missing_ok=True)  # may live outside the state dir
    if settings.owned_marker.exists():
        shutil.rmtree(settings.home)
        return
    for path in (settings.warehouse, settings.logs):
        shutil.rmtree(path, ignore_errors=True)
    sqlite_files = settings.home.glob(f"{settings.catalog_db.name}*") if settings.uses_sqlite else []
    for path in (*sqlite_files, settings.supervisor_conf, settings.supervisor_pidfile, settings.record):
        path.unlink(missing_ok=True)
    try:
        settings.home.rmdir()
    except OSError:
        pass  # other content stays
