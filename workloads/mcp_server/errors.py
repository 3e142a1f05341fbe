"""Errors the service layer raises. Each carries a message meant for the caller, an outcome for the audit log
and metrics, and an HTTP status; MCP turns them into `ToolError`s, REST into JSON error bodies."""
from __future__ import annotations

from typing import Any


class ConfigError(Exception):
    """The server's own configuration (environment, policy file) is wrong: it refuses to start."""


class ServiceError(Exception):
    outcome = "error"
    status = 500

    def __init__(self, message: str, *, decision: dict[str, Any] | None = None):
        super().__init__(message)
        self.message = message
        self.decision = decision


class Unauthenticated(ServiceError):
    outcome = "unauthenticated"
    status = 401


class Denied(ServiceError):
    """The policy refused: `decision` says which rule."""
    outcome = "denied"
    status = 403


class RateLimited(ServiceError):
    outcome = "rate_limited"
    status = 429

    def __init__(self, message: str, *, retry_after: float):
        super().__init__(message)
        self.retry_after = retry_after


class NotFound(ServiceError):
    outcome = "not_found"
    status = 404


class Refused(ServiceError):
    """A request the server will not run as asked (not read-only SQL, several statements, table functions ...)."""
    outcome = "refused"
    status = 400


class QueryFailed(ServiceError):
    """The engine rejected or aborted an accepted query (bad column, type error, time limit)."""
    outcome = "query_failed"
    status = 422


class Unavailable(ServiceError):
    """A part the call needs is not there (the vector layer not installed, the catalog unreachable)."""
    outcome = "unavailable"
    status = 503
