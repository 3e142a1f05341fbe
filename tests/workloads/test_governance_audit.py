"""The hash-chained audit log: `audit verify` passes on an intact log and fails on every kind of tampering
(edited, removed, reordered, inserted entries, a cut tail, a consistently rewritten chain), also when several
processes append at once."""
from __future__ import annotations

import json
import multiprocessing
import subprocess
import sys
from pathlib import Path

import pytest

from workloads.governance.audit import AuditLog, entry_hash, head_path, verify
from workloads.governance.results import anchors, publish_anchor


def write_log(path: Path, n: int = 6) -> list[dict]:
    log = AuditLog(path)
    entries = [log.append(principal="analyst", tool="query", outcome="denied" if i % 3 == 0 else "ok", n=i)
               for i in range(n)]
    log.close()
    return entries


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines(keepends=True)


def rewrite(path: Path, new_lines: list[str]) -> None:
    path.write_text("".join(new_lines))


def cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "workloads.governance", "audit", *args], capture_output=True,
                          text=True, timeout=120, env=env)


def test_intact_log_verifies(tmp_path):
    path = tmp_path / "audit.jsonl"
    entries = write_log(path)
    assert [e["seq"] for e in entries] == [1, 2, 3, 4, 5, 6]
    assert entries[1]["prev"] == entries[0]["hash"] and entries[0]["hash"] == entry_hash(entries[0])
    result = verify(path)
    assert result.ok and result.entries == 6 and result.head == {"seq": 6, "hash": entries[-1]["hash"]}
    AuditLog(path).append(tool="later")  # a new writer continues the chain from the file
    assert verify(path).ok and verify(path).entries == 7


def _edit(ls):
    entry = json.loads(ls[3])
    assert entry["outcome"] == "denied"
    entry["outcome"] = "ok"
    ls[3] = json.dumps(entry, separators=(",", ":")) + "\n"


def _edit_and_rehash(ls):
    entry = json.loads(ls[2])
    entry["principal"] = "admin"
    entry["hash"] = entry_hash(entry)
    ls[2] = json.dumps(entry, separators=(",", ":")) + "\n"


def _insert(ls):
    forged = json.loads(ls[2])
    forged["tool"] = "forged"
    forged["hash"] = entry_hash(forged)
    ls.insert(3, json.dumps(forged, separators=(",", ":")) + "\n")


TAMPERING = {
    "edited": (_edit, "content does not match its hash"),
    "edited and re-hashed": (_edit_and_rehash, "does not chain"),
    "removed": (lambda ls: ls.pop(2), "1 entry removed"),
    "reordered": (lambda ls: ls.insert(1, ls.pop(3)), "reordered"),
    "inserted": (_insert, "inserted or duplicated"),
    "garbled": (lambda ls: ls.__setitem__(1, ls[1][:20] + "\n"), "not a readable audit entry"),
    "tail truncated": (lambda ls: ls.pop(), "tail was truncated"),
}


@pytest.mark.parametrize("kind", TAMPERING)
def test_each_kind_of_tampering_is_detected(tmp_path, kind):
    path = tmp_path / "audit.jsonl"
    write_log(path)
    change, message = TAMPERING[kind]
    tampered = lines(path)
    change(tampered)
    rewrite(path, tampered)
    result = verify(path)
    assert not result.ok
    assert any(message in p for p in result.problems), result.problems


def test_a_consistently_rewritten_chain_is_caught_by_its_published_anchor(tmp_path, catalog_env):
    """Whoever rewrites every hash and the head file still cannot change the anchor in the catalog."""
    from workloads.common.platform import load_catalog

    path = tmp_path / "audit.jsonl"
    entries = write_log(path, 4)
    catalog = load_catalog()
    publish_anchor(catalog, path.name, entries[-1]["seq"], entries[-1]["hash"])
    assert verify(path, anchors(catalog, path.name)).ok
    forged, prev = [], "0" * 64
    for line in lines(path):
        entry = json.loads(line)
        entry["outcome"] = "ok"
        entry["prev"] = prev
        entry["hash"] = prev = entry_hash(entry)
        forged.append(json.dumps(entry) + "\n")
    rewrite(path, forged)
    head_path(path).write_text(json.dumps({"seq": 4, "hash": prev}))
    assert verify(path).ok  # the chain and head alone cannot tell
    result = verify(path, anchors(catalog, path.name))
    assert not result.ok and "published anchor seq 4 hash does not match" in result.problems[0]


def _append_many(path: str, writer: int) -> None:
    log = AuditLog(Path(path))
    for i in range(50):
        log.append(writer=writer, i=i)


def test_concurrent_writers_keep_one_chain(tmp_path):
    path = tmp_path / "audit.jsonl"
    processes = [multiprocessing.get_context("spawn").Process(target=_append_many, args=(str(path), w))
                 for w in range(3)]
    for p in processes:
        p.start()
    for p in processes:
        p.join(60)
    result = verify(path)
    assert result.ok, result.problems
    assert result.entries == 150


def test_verify_command_exit_codes(tmp_path):
    path = tmp_path / "audit.jsonl"
    write_log(path)
    intact = cli("verify", "--no-anchors", str(path))
    assert intact.returncode == 0 and "intact, 6 entries" in intact.stdout
    tampered = lines(path)
    tampered.pop(1)
    rewrite(path, tampered)
    failed = cli("verify", "--no-anchors", "--json", str(path))
    assert failed.returncode == 1
    report = json.loads(failed.stdout)
    assert report["ok"] is False and "removed" in report["logs"][0]["problems"][0]


def test_mcp_server_audit_log_is_chained(tmp_path):
    from workloads.mcp_server.audit import AuditLog as McpAuditLog

    log = McpAuditLog(tmp_path / "mcp.jsonl")
    log.record(principal="agent", tool="list_tables", outcome="ok")
    log.record(principal=None, tool=None, outcome="unauthenticated")
    log.close()
    assert verify(tmp_path / "mcp.jsonl").ok
