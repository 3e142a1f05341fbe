"""Health and readiness checks a service declares (local/services.py). A check returns None when it passes,
otherwise the reason it does not yet, which `dp local up` shows while waiting and in its error on timeout."""
from __future__ import annotations

import socket
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol


class Check(Protocol):
    def describe(self) -> str: ...

    def __call__(self) -> str | None: ...


@dataclass(frozen=True)
class TcpPort:
    """Something accepts TCP connections on host:port."""
    port: int
    host: str = "127.0.0.1"

    def describe(self) -> str:
        return f"tcp {self.host}:{self.port}"

    def __call__(self) -> str | None:
        try:
            with socket.create_connection((self.host, self.port), timeout=1):
                return None
        except OSError as exc:
            return f"{self.host}:{self.port}: {exc.strerror or exc}"


@dataclass(frozen=True)
class Http:
    """GET url answers 2xx (e.g. a /healthz endpoint)."""
    url: str
    timeout: float = 2.0

    def describe(self) -> str:
        return f"http {self.url}"

    def __call__(self) -> str | None:
        try:
            with urllib.request.urlopen(self.url, timeout=self.timeout) as response:
                return None if 200 <= response.status < 300 else f"HTTP {response.status}"
        except urllib.error.HTTPError as exc:
            return f"HTTP {exc.code}"
        except (urllib.error.URLError, OSError) as exc:
            return str(getattr(exc, "reason", exc))


@dataclass(eq=False)
class TableHasRows:
    """Readiness: `target` is a table (`gold.orders`) that has rows, or a namespace (`gold`) with at least one
    table that has rows. Tables are listed from the catalog, so tables added later count too."""
    target: str
    open_catalog: Callable[[], Any]
    _catalog: Any = field(default=None, repr=False)

    def describe(self) -> str:
        return f"rows in {self.target}" + ("" if "." in self.target else ".*")

    def __call__(self) -> str | None:
        from local.tables import row_counts  # pyiceberg is heavy: only when a check runs

        try:
            if self._catalog is None:
                self._catalog = self.open_catalog()
            counts = row_counts(self._catalog)
        except Exception as exc:  # the catalog may be mid-commit or not created yet: retry on the next poll
            return f"catalog not readable yet: {exc}"
        if "." in self.target:
            if self.target not in counts:
                return f"table {self.target} does not exist yet"
            return None if counts[self.target] > 0 else f"{self.target} is empty"
        layer = {name: rows for name, rows in counts.items() if name.rsplit(".", 1)[0] == self.target}
        if not layer:
            return f"no tables in {self.target} yet"
        return None if any(layer.values()) else f"all tables in {self.target} are empty"
