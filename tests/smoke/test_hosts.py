"""On each host, through its testinfra backend (local://, ssh://, docker://, kubectl://): the ports listen and
the platform's processes run (supervisord programs, systemd units, containers, pods)."""
from __future__ import annotations

import json
import shlex

from dp.inventory import Host, Unit
from tests.smoke.conftest import infra_host


def listening_ports(host: Host) -> set[int]:
    sockets = infra_host(host.uri).socket.get_listening_sockets()
    return {int(s.rsplit(":", 1)[1]) for s in sockets if s.startswith("tcp://")}


def test_port_listening(listening: tuple[Host, int]) -> None:
    host, port = listening
    assert port in listening_ports(host), f"nothing listens on TCP port {port} on {host.name}"


def test_unit_running(unit: tuple[Host, Unit]) -> None:
    host, spec = unit
    problem = {"supervisor": supervisor_problem, "systemd": systemd_problem, "container": container_problem,
               "pods": pods_problem}[spec.kind](infra_host(host.uri), spec)
    assert problem is None, f"{spec.kind} {spec.name} on {host.name}: {problem}"


def test_discovered_units_running(discovering: Host) -> None:
    """Every systemd unit matching the glob runs (a timer-started job: its last run succeeded); at least one."""
    host = infra_host(discovering.uri)
    listed = host.run("systemctl list-units --all --plain --no-legend --type=service %s", discovering.discover)
    assert listed.rc == 0, listed.stderr
    units = [next(word for word in line.split() if word.endswith(".service"))  # skips a leading failure mark
             for line in listed.stdout.splitlines() if ".service" in line]
    assert units, f"no systemd unit matches {discovering.discover} on {discovering.name}"
    problems = {name: p for name in units if (p := systemd_problem(host, Unit(kind="systemd", name=name)))}
    assert not problems, f"on {discovering.name}: " + "; ".join(f"{k}: {v}" for k, v in problems.items())


def supervisor_problem(host, unit: Unit) -> str | None:
    """RUNNING, or for a one-shot program EXITED as expected (supervisorctl says `not expected` otherwise)."""
    result = host.run(f"{shlex.quote(unit.ctl or 'supervisorctl')} -c {shlex.quote(unit.config or '')} status "
                      f"{shlex.quote(unit.name)}")
    fields = result.stdout.split(None, 2)
    if result.rc not in (0, 3) or len(fields) < 2:
        return f"supervisorctl failed: {(result.stdout + result.stderr).strip()}"
    state, detail = fields[1], (fields[2].strip() if len(fields) > 2 else "")
    if state == "RUNNING" or (unit.one_shot and state == "EXITED" and "not expected" not in detail):
        return None
    return f"{state} {detail}".strip()


def systemd_problem(host, unit: Unit) -> str | None:
    result = host.run("systemctl show %s -p ActiveState -p SubState -p Result -p TriggeredBy", unit.name)
    props = dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)
    if props.get("ActiveState") == "active" and props.get("SubState") in ("running", "exited"):
        return None
    if props.get("TriggeredBy") and props.get("Result") == "success" and props.get("ActiveState") != "failed":
        return None  # a job its timer starts: idle between runs, last run fine
    return f"{props.get('ActiveState', '?')}/{props.get('SubState', '?')} (result {props.get('Result', '?')})"


def container_problem(host, unit: Unit) -> str | None:
    result = host.run("docker inspect %s", unit.name)
    if result.rc != 0:
        return f"no such container ({result.stderr.strip()})"
    state = json.loads(result.stdout)[0]["State"]
    if unit.one_shot:
        return None if state["Status"] == "exited" and state["ExitCode"] == 0 else \
            f"{state['Status']} (exit code {state['ExitCode']})"
    if not state["Running"]:
        return f"{state['Status']} (exit code {state['ExitCode']})"
    health = (state.get("Health") or {}).get("Status")
    return None if health in (None, "healthy") else f"running but {health}"


def pods_problem(host, unit: Unit) -> str | None:
    """At least one pod matches; each has finished successfully (a job) or runs with every container ready."""
    context = f"--context {shlex.quote(unit.ctl)} " if unit.ctl else ""
    result = host.run(f"kubectl {context}get pods -n {shlex.quote(unit.config or 'default')} "
                      f"-l {shlex.quote(unit.name)} -o json")
    if result.rc != 0:
        return f"kubectl failed: {result.stderr.strip()}"
    pods = json.loads(result.stdout)["items"]
    if not pods:
        return "no pods match"
    bad = []
    for pod in pods:
        phase = pod["status"].get("phase")
        ready = all(c.get("ready") for c in pod["status"].get("containerStatuses", []))
        if not (phase == "Succeeded" or (phase == "Running" and ready)):
            bad.append(f"{pod['metadata']['name']} {phase}{'' if ready else ' (not ready)'}")
    return "; ".join(bad) or None

