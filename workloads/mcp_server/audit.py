"""The audit trail: one entry per call (who, what, outcome, which rule decided, how long), appended to a
hash-chained, tamper-evident log (`workloads.governance.audit`: `python -m workloads.governance audit verify`
detects edited, removed, reordered, inserted or truncated entries). Everything that writes the trail goes
through `AuditLog.record`; a call that cannot be audited fails."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from workloads.governance.audit import AuditLog as ChainedLog
from workloads.governance.audit import AuditWriteError
from workloads.mcp_server.errors import Unavailable


class AuditLog:
    def __init__(self, path: Path):
        self.path = Path(path)
        self._log = ChainedLog(self.path)  # opens the file on the first call: starting the server writes nothing

    def record(self, **event: Any) -> None:
        try:
            self._log.append(**event)
        except AuditWriteError as exc:  # fail closed: a call that cannot be audited does not succeed
            raise Unavailable(str(exc)) from None

    def close(self) -> None:
        self._log.close()
