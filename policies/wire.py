"""Resource properties as the engine sends them, and as the rules read them.

The engine marshals analyzer properties with secrets kept (each secret is a `{sig: secret, value}` object), but the
SDK's servicer unwraps them before a policy sees them, so a rule could not tell a Pulumi secret from plain text.
`from_wire` keeps the marker (as `pulumi_policy.Secret`); `keep_secret_markers()` makes the served pack use it (the
pack's entry point calls it; the offline evaluator calls `from_wire` itself), so the rules see the same thing in
both places. `plain` turns what a rule receives into plain Python plus the set of secret paths.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pulumi_policy import Secret

SIG_KEY = "4dabf18193072939515e22adb298388d"
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
RESOURCE_SIG = "5cf8f73096256a8f31e491e813e4eb8e"
ASSET_SIGS = {"c44067f5952c0a294b673a41bacd8c17", "0def7320c3a5731c473e5ecbe6d01bc7"}


def from_wire(props: Mapping[str, Any], proxy_secrets: bool = False) -> dict[str, Any]:
    """A `MessageToDict`-decoded property Struct, with secrets kept as `Secret` (signature of the SDK's
    `deserialize_properties`, whose `proxy_secrets` flag is ignored: markers are always kept)."""
    return {key: _from_wire(value) for key, value in props.items()}


def _from_wire(value: Any) -> Any:
    if isinstance(value, list):
        return [_from_wire(v) for v in value]
    if isinstance(value, dict):
        sig = value.get(SIG_KEY)
        if sig == SECRET_SIG:
            return Secret(_from_wire(value.get("value")))
        if sig == RESOURCE_SIG:  # a resource reference reaches policies as its id (custom) or URN (component)
            return value.get("id") or value.get("urn")
        if sig in ASSET_SIGS:
            from pulumi_policy.deserialize import _deserialize_property
            return _deserialize_property(value)
        return {k: _from_wire(v) for k, v in value.items()}
    if isinstance(value, float) and value.is_integer():
        return int(value)  # protobuf Structs carry every number as a double
    return value


def keep_secret_markers() -> None:
    """Make the SDK's analyzer servicer deserialize with `from_wire` (called once, by the pack's entry point)."""
    import pulumi_policy.policy as sdk

    if not callable(getattr(sdk, "deserialize_properties", None)):
        raise RuntimeError("pulumi_policy.policy.deserialize_properties is gone: this pulumi-policy version "
                           "changed how it decodes properties; update policies/wire.py")
    sdk.deserialize_properties = from_wire


def plain(value: Any) -> tuple[Any, set[str]]:
    """(plain Python value, paths of the values that were Pulumi secrets), e.g. `environment.DB_PASSWORD`."""
    secrets: set[str] = set()
    return _plain(value, "", secrets), secrets


def _plain(value: Any, path: str, secrets: set[str]) -> Any:
    value = _unproxy(value)
    if isinstance(value, Secret):
        secrets.add(path)
        return _plain(value.value, path, set())
    if isinstance(value, Mapping):
        return {k: _plain(v, f"{path}.{k}" if path else str(k), secrets) for k, v in _items(value)}
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        return [_plain(v, f"{path}[{i}]", secrets) for i, v in enumerate(_elements(value))]
    return value


def _unproxy(value: Any) -> Any:
    """The SDK's read-only proxies expose their raw target under the key `__target` (unknowns unchecked)."""
    if type(value).__name__ in {"_DictProxy", "_ListProxy", "_DictSecretsProxy", "_ListSecretsProxy"}:
        return value["__target"]
    return value


def _items(mapping: Mapping) -> list[tuple[str, Any]]:
    return [(k, mapping[k]) for k in mapping]


def _elements(sequence: Sequence) -> list[Any]:
    return [sequence[i] for i in range(len(sequence))]
