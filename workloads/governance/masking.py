"""Masking functions, applied by policy (the Rego decision names one per column: `redact`, `hash`, `partial` or
`null`). The same four exist twice with the same results: in Python for values outside a query engine, and as SQL
expressions (sqlglot, for DuckDB and Trino) so that a query engine masks before the caller's SQL sees the data.

- redact: `***` (NULL stays NULL);
- hash: hex SHA-256 of the value, salted with `DP_MASK_SALT` when set (joins on a hashed key still work, the value
  cannot be looked up in a rainbow table of e-mails without the salt);
- partial: keeps what identifies the value to its owner but not to others: an e-mail keeps its first character
  and its domain (`a***@example.com`), anything else its last four characters (`***1234`), values of four
  characters or fewer are fully redacted;
- null: NULL.
"""
from __future__ import annotations

import hashlib
import os
from typing import Literal

Mask = Literal["redact", "hash", "partial", "null"]
MASKS: tuple[str, ...] = ("redact", "hash", "partial", "null")
REDACTED = "***"
SALT_ENV = "DP_MASK_SALT"


def _salt() -> str:
    return os.environ.get(SALT_ENV, "")


def redact(value: object) -> str | None:
    return None if value is None else REDACTED


def hash_value(value: object) -> str | None:
    return None if value is None else hashlib.sha256((_salt() + str(value)).encode()).hexdigest()


def partial(value: object) -> str | None:
    if value is None:
        return None
    text = str(value)
    local, at, domain = text.partition("@")
    if at and local and domain:
        return f"{local[0]}{REDACTED}@{domain}"
    return REDACTED + text[-4:] if len(text) > 4 else REDACTED


def mask_value(value: object, mask: str) -> object:
    """`value` as a caller under `mask` sees it."""
    if mask == "redact":
        return redact(value)
    if mask == "hash":
        return hash_value(value)
    if mask == "partial":
        return partial(value)
    if mask == "null":
        return None
    raise ValueError(f"unknown mask {mask!r}: one of {', '.join(MASKS)}")


def mask_sql(column: str, mask: str, iceberg_type: str):
    """A sqlglot expression computing `mask` over `column` (aliased to the column's name). Non-string columns
    can only be nulled or hashed (as text); `redact` and `partial` give NULL for them, as the type must stay."""
    from sqlglot import exp

    ident = exp.column(column, quoted=True)
    text = exp.cast(ident, "varchar")
    is_null = exp.Is(this=ident, expression=exp.null())
    if mask == "hash":
        salted = exp.DPipe(this=exp.Literal.string(_salt()), expression=text, safe=True) if _salt() else text
        # SHA2 is hex text in DuckDB and to_hex(sha256(to_utf8(...))) in Trino: sqlglot transpiles both.
        value: exp.Expression = exp.Lower(this=exp.SHA2(this=salted, length=exp.Literal.number(256)))
    elif mask in ("redact", "partial") and iceberg_type == "string":
        if mask == "redact":
            value = exp.Literal.string(REDACTED)
        else:
            at = exp.StrPosition(this=ident, substr=exp.Literal.string("@"))
            email = exp.DPipe(this=exp.DPipe(this=exp.Substring(this=ident, start=exp.Literal.number(1),
                                                                length=exp.Literal.number(1)),
                                             expression=exp.Literal.string(REDACTED + "@"), safe=True),
                              expression=exp.Substring(this=ident, start=exp.Add(this=at, expression=exp.Literal.number(1))),
                              safe=True)
            tail = exp.DPipe(this=exp.Literal.string(REDACTED),
                             expression=exp.Right(this=ident, expression=exp.Literal.number(4)), safe=True)
            length = exp.Length(this=ident)
            value = (exp.case()
                     .when(exp.and_(exp.GT(this=at, expression=exp.Literal.number(1)),
                                    exp.LT(this=at, expression=length)), email)
                     .when(exp.GT(this=length, expression=exp.Literal.number(4)), tail)
                     .else_(exp.Literal.string(REDACTED)))
    elif mask in MASKS:
        return exp.alias_(exp.null(), column, quoted=True)
    else:
        raise ValueError(f"unknown mask {mask!r}: one of {', '.join(MASKS)}")
    return exp.alias_(exp.case().when(is_null, exp.null()).else_(value), column, quoted=True)
