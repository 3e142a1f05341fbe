"""The configuration reference, generated from the config model so README.md can't drift from the code.

`python -m stacks.reference` prints the Markdown table that README.md embeds between the
`<!-- config-reference -->` markers; `make docs` rewrites it there, and a test fails when it is stale.
"""
from __future__ import annotations

import re
import types
import typing
from pathlib import Path

from pydantic import BaseModel

from stacks.config import PlatformConfig, Secret

README = Path(__file__).resolve().parent.parent / "README.md"
START, END = "<!-- config-reference -->", "<!-- /config-reference -->"


def _type_name(annotation) -> str:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation is Secret:
        return "secret"
    if origin is typing.Annotated:
        return _type_name(args[0])
    if origin is typing.Literal:
        return "one of " + ", ".join(str(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in args if a is not type(None)) + " (optional)"
    if origin is tuple:
        return "list of " + _type_name(args[0])
    if origin is dict:
        return "map"
    return getattr(annotation, "__name__", str(annotation))


def _models(annotation) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found = []
    for arg in typing.get_args(annotation):
        found += _models(arg)
    return found


def rows(model: type[BaseModel] = PlatformConfig, prefix: str = "") -> list[tuple[str, str, str, str]]:
    out = []
    for name, field in model.model_fields.items():
        key = f"{prefix}{name}"
        nested = _models(field.annotation)
        if nested and not field.description:
            for sub in nested:
                out += rows(sub, f"{key}[]." if "tuple" in str(field.annotation) else f"{key}.")
            continue
        default = "required" if field.is_required() else repr(field.default)
        if isinstance(field.default, tuple) and field.default and isinstance(field.default[0], BaseModel):
            default = f"{len(field.default)} defaults"
        out.append((f"dataplatform:{key}", _type_name(field.annotation), default,
                    field.description or ""))
    return out


def markdown() -> str:
    lines = ["| key | type | default | notes |", "| --- | --- | --- | --- |"]
    for key, type_, default, notes in rows():
        lines.append(f"| `{key}` | {type_} | `{default}` | {notes} |")
    return "\n".join(lines)


def rewrite_readme() -> bool:
    text = README.read_text()
    block = f"{START}\n{markdown()}\n{END}"
    new = re.sub(re.escape(START) + ".*?" + re.escape(END), lambda _: block, text, flags=re.S)
    README.write_text(new)
    return new != text


if __name__ == "__main__":
    print(markdown())
