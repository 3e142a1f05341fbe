"""The policy decision point: who may read which table, column and vector collection, and which columns are
masked. Every answer is a `Decision` naming the rule that decided it, so refusals are explainable and the
audit log says why. The rules live in a YAML file (`access.yaml`); this module is the only place that reads
them, so it can later be swapped for a Rego/OPA client with the same interface.

Model: a caller has one role. A role grants table globs (`namespace.table`), may deny tables or columns
(`namespace.table.column` globs, deny wins), grants vector collection globs, and says whether it may read
PII in clear. A column is PII when a `pii_columns` glob of the policy matches it or its table lists it in the
`dp.pii.columns` table property; PII columns are masked for roles without `pii: true` (attribute-based:
column attribute x caller attribute).
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PositiveInt, ValidationError, model_validator

from workloads.mcp_server.errors import ConfigError

PII_PROPERTY = "dp.pii.columns"


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
    masking: Literal["redact", "null"] = "redact"
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


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _match(name: str, globs: list[str]) -> str | None:
    return next((g for g in globs if fnmatchcase(name.lower(), g.lower())), None)


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
        role = self.spec.roles.get(role_name)
        if role is None:
            return Decision(False, "roles", f"role {role_name!r} is not defined in the policy")
        if glob := _match(table, role.deny_tables):
            return Decision(False, f"roles.{role_name}.deny_tables '{glob}'", f"role {role_name} may not read {table}")
        if glob := _match(table, role.tables):
            return Decision(True, f"roles.{role_name}.tables '{glob}'", f"role {role_name} may read {table}")
        return Decision(False, f"roles.{role_name}.tables", f"no table rule of role {role_name} grants {table}")

    def collection(self, role_name: str, collection: str) -> Decision:
        role = self.spec.roles.get(role_name)
        if role is None:
            return Decision(False, "roles", f"role {role_name!r} is not defined in the policy")
        if glob := _match(collection, role.collections):
            return Decision(True, f"roles.{role_name}.collections '{glob}'",
                            f"role {role_name} may search {collection}")
        return Decision(False, f"roles.{role_name}.collections",
                        f"no collection rule of role {role_name} grants {collection}")

    def columns(self, role_name: str, table: str, columns: list[str],
                properties: dict[str, str] | None = None) -> list[ColumnAccess]:
        """Per column: denied (a deny_columns glob), masked (PII and the role may not read PII) or clear."""
        role = self.spec.roles[role_name]
        tagged = {c.strip().lower() for c in (properties or {}).get(PII_PROPERTY, "").split(",") if c.strip()}
        result = []
        for column in columns:
            qualified = f"{table}.{column}"
            pii_rule = (f"table property {PII_PROPERTY}" if column.lower() in tagged
                        else (f"pii_columns '{g}'" if (g := _match(qualified, self.spec.pii_columns)) else None))
            if glob := _match(qualified, role.deny_columns):
                result.append(ColumnAccess(column, "denied", f"roles.{role_name}.deny_columns '{glob}'",
                                           pii_rule is not None))
            elif pii_rule and not role.pii:
                result.append(ColumnAccess(column, "masked", f"{pii_rule}; roles.{role_name}.pii is false", True))
            elif pii_rule:
                result.append(ColumnAccess(column, "clear", f"{pii_rule}; roles.{role_name}.pii is true", True))
            else:
                result.append(ColumnAccess(column, "clear", f"roles.{role_name}", False))
        return result
