"""Who may read which table, column and vector collection, and which columns are masked. Every answer is a
`Decision` naming the rule that decided it, so refusals are explainable and the audit log says why. The policy
data live in a YAML file (`access.yaml`: roles, PII globs, masks, keys), validated here; the decisions are made
by the Rego policy of the governance workload (`workloads/governance/policies/access.rego`), embedded or by an
OPA server (`DP_OPA_URL`), which gets this file's content as its data.

Model: a caller has one role. A role grants table globs (`namespace.table`), may deny tables or columns
(`namespace.table.column` globs, deny wins), grants vector collection globs, and says whether it may read
PII in clear. A column is PII when a `pii_columns` glob of the policy matches it or its table lists it in the
`dp.pii.columns` table property; PII columns are masked for roles without `pii: true` (attribute-based:
column attribute x caller attribute). A column's classification (`dp.classifications` table property, from
catalog metadata) picks its mask (`masks`: redact, hash, partial or null; else `masking`).
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PositiveInt, ValidationError, model_validator

from workloads.governance.policy import DecisionPoint, PolicyUnavailable
from workloads.mcp_server.errors import ConfigError, Unavailable

MaskName = Literal["redact", "hash", "partial", "null"]


class Role(BaseModel):
    model_config = ConfigDict(extra="forbid")

    description: str = ""
    tables: list[str] = Field(default_factory=list)
    deny_tables: list[str] = Field(default_factory=list)
    deny_columns: list[str] = Field(default_factory=list)
    collections: list[str] = Field(default_factory=list)
    pii: bool = False
    rate_limit_per_minute: PositiveInt | None = None


class KeyEntry(BaseModel):
    """An API key: its sha256 (hex) is stored, or the name of the environment variable holding it."""
    model_config = ConfigDict(extra="forbid")

    name: str
    role: str
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    env: str | None = None
    rate_limit_per_minute: PositiveInt | None = None

    @model_validator(mode="after")
    def _one_source(self) -> KeyEntry:
        if (self.sha256 is None) == (self.env is None):
            raise ValueError(f"key {self.name!r}: give exactly one of sha256 or env")
        return self


class PolicyFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: Literal[1] = 1
    masking: MaskName = "redact"
    masks: dict[str, MaskName] = Field(default_factory=dict)  # classification (pii.email ...) -> mask
    pii_columns: list[str] = Field(default_factory=list)
    roles: dict[str, Role]
    keys: list[KeyEntry] = Field(default_factory=list)

    @model_validator(mode="after")
    def _known_roles(self) -> PolicyFile:
        for key in self.keys:
            if key.role not in self.roles:
                raise ValueError(f"key {key.name!r} names unknown role {key.role!r}")
        return self


@dataclass(frozen=True)
class Decision:
    allowed: bool
    rule: str
    reason: str

    def as_dict(self) -> dict[str, object]:
        return {"allowed": self.allowed, "rule": self.rule, "reason": self.reason}


@dataclass(frozen=True)
class ColumnAccess:
    """How one caller sees one column: `clear`, `masked` or `denied`, and the rule that decided it."""
    name: str
    access: Literal["clear", "masked", "denied"]
    rule: str
    pii: bool
    mask: str | None = None  # for masked columns: redact | hash | partial | null


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class Policy:
    def __init__(self, spec: PolicyFile, source: str, environ: dict[str, str] | None = None):
        self.spec = spec
        self.source = source
        environ = dict(os.environ) if environ is None else environ
        self._keys: dict[str, KeyEntry] = {}
        for key in spec.keys:
            digest = key.sha256 or (hash_key(environ[key.env]) if environ.get(key.env or "") else None)
            if digest:  # a key whose variable is unset simply does not exist
                self._keys[digest] = key
        self._pdp = DecisionPoint(spec.model_dump(mode="json", exclude={"keys"}))

    def _decide(self, ask, *args):
        try:
            return ask(*args)
        except PolicyUnavailable as exc:  # fail closed, and say so
            raise Unavailable(str(exc)) from None

    @classmethod
    def load(cls, path: Path, environ: dict[str, str] | None = None) -> Policy:
        try:
            raw = yaml.safe_load(Path(path).read_text())
        except OSError as exc:
            raise ConfigError(f"policy file {path}: {exc.strerror or exc}") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"policy file {path} is not valid YAML: {exc}") from None
        try:
            spec = PolicyFile.model_validate(raw)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'top level'}: {e['msg']}" for e in exc.errors())
            raise ConfigError(f"policy file {path}: {problems}") from None
        return cls(spec, str(path), environ)

    def role(self, name: str) -> Role | None:
        return self.spec.roles.get(name)

    def key(self, presented: str) -> KeyEntry | None:
        return self._keys.get(hash_key(presented))

    def rate_limit(self, role: str, key: KeyEntry | None, default: int) -> int:
        return (key and key.rate_limit_per_minute) or self.spec.roles[role].rate_limit_per_minute or default

    def table(self, role_name: str, table: str) -> Decision:
        return Decision(**self._decide(self._pdp.table, role_name, table))

    def collection(self, role_name: str, collection: str) -> Decision:
        return Decision(**self._decide(self._pdp.collection, role_name, collection))

    def columns(self, role_name: str, table: str, columns: list[str],
                properties: dict[str, str] | None = None) -> list[ColumnAccess]:
        """Per column: denied (a deny_columns glob), masked (PII and the role may not read PII) or clear."""
        decided = self._decide(self._pdp.columns, role_name, table, columns, properties)
        return [ColumnAccess(d["name"], d["access"], d["rule"], d["pii"], d.get("mask")) for d in decided]
