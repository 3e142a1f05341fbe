"""The audit trail: one JSON line per call (who, what, outcome, which rule decided, how long), appended to a
file opened in append mode and flushed per line. The governance work will chain the lines by hash; everything
that writes the trail goes through `AuditLog.record`."""
from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from workloads.mcp_server.errors import Unavailable


class AuditLog:
    def __init__(self, path: Path):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._file: TextIO | None = None  # opened on the first call: starting the server writes nothing

    def record(self, **event: Any) -> None:
        line = json.dumps({"ts": datetime.now(UTC).isoformat(timespec="microseconds"), **event},
                          default=str, separators=(",", ":"))
        with self._lock:
            try:
                if self._file is None:
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                    self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - kept open while serving
                self._file.write(line + "\n")
                self._file.flush()
            except OSError as exc:  # fail closed: a call that cannot be audited does not succeed
                raise Unavailable(f"audit log {self.path} cannot be written: {exc.strerror or exc}") from None

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None
