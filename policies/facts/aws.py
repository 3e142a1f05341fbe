"""AWS resources configured by separate resources (pulumi-aws 7: a bucket's encryption, versioning, public access
block and policy are their own resources), and which AWS types take tags."""
from __future__ import annotations

import functools
import importlib
import inspect
import json
import warnings
from typing import Any

from policies.rule import ResourceView, StackView

BUCKET = "aws:s3/bucket:Bucket"


def identifiers(resource: ResourceView) -> set[str]:
    """Values another resource may use to point at this one (name, ARN, id)."""
    keys = ("bucket", "id", "arn", "name")
    return {v for k in keys if isinstance(v := resource.props.get(k), str)} | {resource.urn}


def attached(stack: StackView, target: ResourceView, type_: str, prop: str) -> list[ResourceView]:
    """Resources of `type_` whose `prop` points at `target`: through the property's dependencies, or by value.
    Dependencies work in preview too, where the target's id is not known yet."""
    found = []
    ids = identifiers(target)
    for resource in stack.of_type(type_):
        deps = resource.property_dependencies.get(prop) or resource.dependencies
        if target.urn in deps or resource.props.get(prop) in ids:
            found.append(resource)
    return found


def policy_document(value: Any) -> dict[str, Any]:
    """An IAM/bucket policy given as a JSON string (or already as a dict)."""
    if isinstance(value, dict):
        return value
    try:
        document = json.loads(value) if isinstance(value, str) else {}
    except json.JSONDecodeError:
        return {}
    return document if isinstance(document, dict) else {}


def statements(document: dict[str, Any]) -> list[dict[str, Any]]:
    found = document.get("Statement") or []
    return [found] if isinstance(found, dict) else [s for s in found if isinstance(s, dict)]


@functools.lru_cache(maxsize=None)
def taggable(type_: str) -> bool | None:
    """Whether the pulumi-aws resource class for this type token takes `tags`; None if the class is not found.
    (The stack program has already imported the module, so this costs nothing under `dp plan`.)"""
    try:
        _, module, cls = type_.split(":")
        with warnings.catch_warnings():  # importing a service module warns about its deprecated resources
            warnings.simplefilter("ignore", DeprecationWarning)
            module = importlib.import_module(f"pulumi_aws.{module.split('/')[0].replace('-', '_')}")
            resource_cls = getattr(module, cls)
        return "tags" in inspect.signature(resource_cls._internal_init).parameters
    except (ValueError, ImportError, AttributeError):
        return None


def tags_of(resource: ResourceView) -> dict[str, Any]:
    """The resource's effective tags: the provider's `defaultTags`, then `tagsAll` (outputs), then `tags`."""
    tags: dict[str, Any] = {}
    default = resource.provider_props.get("defaultTags")
    if isinstance(default, str):  # provider inputs arrive JSON-encoded
        try:
            default = json.loads(default)
        except json.JSONDecodeError:
            default = {}
    if isinstance(default, dict) and isinstance(default.get("tags"), dict):
        tags.update(default["tags"])
    for key in ("tagsAll", "tags"):
        if isinstance(resource.props.get(key), dict):
            tags.update(resource.props[key])
    return tags
