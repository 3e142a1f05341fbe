"""Turn Pulumi configuration into a `PlatformConfig`, or a `ConfigError` that names the key.

Two sources, one result:
- inside `pulumi up`/`preview`: the engine passes the stack's config (secrets decrypted, and the list of keys that
  are secret); structured values arrive as JSON strings;
- offline (`dp plan`, tests): the stack file itself, where `secure:` values stay encrypted and become
  `Secret(None)`.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, get_args

import yaml
from pydantic import BaseModel, ValidationError

from stacks.config import PlatformConfig, Secret, SecretValue

NAMESPACE = "dataplatform"


class ConfigError(ValueError):
    """Bad stack configuration. `key` is the full Pulumi key path, e.g. `dataplatform:services.kafka.brokers`."""

    def __init__(self, key: str, message: str, source: str = "stack configuration"):
        self.key, self.message, self.source = key, message, source
        super().__init__(f"Invalid {source}: {key}: {message}")


_ADAPTER_KEY = re.compile(r"^((?:services|aws|vm|kubernetes|compose|versions)(?:\.[\w\[\]]+)*): (.+)$", re.S)


def from_adapter_error(error: ValueError) -> ConfigError | None:
    """Adapters refuse settings they can't build (too few hosts for the replicas, a CIDR too small for EKS) with
    a ValueError whose message starts with the key path; report those like any other config error."""
    match = _ADAPTER_KEY.match(str(error))
    return ConfigError(f"{NAMESPACE}:{match.group(1)}", match.group(2)) if match else None


def _secret_field_names(model: type[BaseModel], seen: set | None = None) -> set[str]:
    """Names of fields typed as secrets anywhere in the model tree (used to re-wrap decrypted values)."""
    seen = seen if seen is not None else set()
    names: set[str] = set()
    if model in seen:
        return names
    seen.add(model)
    for name, field in model.model_fields.items():
        types = {field.annotation, *get_args(field.annotation)}
        for arg in list(types):
            types.update(get_args(arg))
        if SecretValue in types or Secret in types:
            names.add(name)
        for arg in types:
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                names |= _secret_field_names(arg, seen)
    return names


SECRET_FIELDS = _secret_field_names(PlatformConfig)


def _wrap_secrets(value: Any, inside_secret: bool) -> Any:
    """In a decrypted secret config value, wrap the credential fields as `Secret`."""
    if isinstance(value, dict):
        return {k: (Secret(str(v)) if inside_secret and k in SECRET_FIELDS and not isinstance(v, (dict, list))
                    else _wrap_secrets(v, inside_secret)) for k, v in value.items()}
    if isinstance(value, list):
        return [_wrap_secrets(v, inside_secret) for v in value]
    return value


def _from_stack_file_value(value: Any) -> Any:
    """Stack-file values: `{secure: ciphertext}` becomes `Secret(None)` (it cannot be decrypted offline)."""
    if isinstance(value, dict):
        if set(value) == {"secure"}:
            return Secret(None)
        return {k: _from_stack_file_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_stack_file_value(v) for v in value]
    return value


def _split(raw: dict[str, Any], source: str) -> dict[str, Any]:
    """Keep the `dataplatform:` keys (other providers' keys, e.g. `aws:region`, are theirs)."""
    data = {}
    for key, value in raw.items():
        namespace, _, name = key.partition(":")
        if not name:
            raise ConfigError(key, "config keys must be namespaced, e.g. dataplatform:target", source)
        if namespace == NAMESPACE:
            data[name] = value
    return data


def parse(data: dict[str, Any], source: str = "stack configuration") -> PlatformConfig:
    """Validate the `dataplatform` keys (names without the namespace) into a `PlatformConfig`."""
    try:
        return PlatformConfig.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ConfigError(_key(first["loc"], first.get("ctx")), _message(first, data), source) from None


def load_stack_file(path: str | Path, target: str | None = None) -> PlatformConfig:
    """Parse a stack file in Pulumi's format (`config:` with `dataplatform:` keys); `target` overrides it."""
    path = Path(path)
    source = f"stack file {path}"
    try:
        document = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise ConfigError(f"{NAMESPACE}:target", f"no such stack file: {path}", "stack") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{NAMESPACE}", f"not valid YAML: {exc}", source) from None
    if not isinstance(document.get("config", {}), dict):
        raise ConfigError("config", "expected a mapping of config keys", source)
    data = _from_stack_file_value(_split(document.get("config") or {}, source))
    if target:
        data["target"] = target
    return parse(data, source)


def load_from_engine() -> PlatformConfig:
    """Inside a Pulumi run: read the config the engine passed, secrets decrypted and re-wrapped as `Secret`."""
    from pulumi.runtime import config as runtime_config

    # The language host sets the config in-process (set_all_config); older hosts pass it in PULUMI_CONFIG.
    raw = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    secret_keys = set(runtime_config.get_config_secret_keys_env()) | {
        k for k in raw if runtime_config.is_config_secret(k)}
    data = {}
    for key, value in _split(raw, "stack configuration").items():
        if isinstance(value, str) and value[:1] in "[{":
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                pass
        secret = f"{NAMESPACE}:{key}" in secret_keys
        data[key] = Secret(value) if secret and key in SECRET_FIELDS else _wrap_secrets(value, secret)
    return parse(data)


def _key(loc: tuple, ctx: dict | None) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part.startswith(("function-", "constrained-")) or part in {"Secret"}:
            continue
        else:
            path += f".{part}" if path else str(part)
    if ctx and isinstance(ctx.get("error"), ValueError) and hasattr(ctx["error"], "key"):
        path = ctx["error"].key
    return f"{NAMESPACE}:{path}" if path else NAMESPACE


def _message(error: dict, data: dict) -> str:
    ctx = error.get("ctx") or {}
    if hasattr(ctx.get("error"), "message"):
        return ctx["error"].message
    if error["type"] == "extra_forbidden":
        return "unknown key (check the spelling; see the configuration reference in README.md)"
    if error["type"] == "missing":
        return "required, but not set"
    message = error["msg"].removeprefix("Value error, ")
    value = error.get("input")
    named = [part for part in error["loc"] if isinstance(part, str)]
    if named and named[-1] in SECRET_FIELDS:
        return message  # never echo a credential back
    if error["type"] not in {"model_type", "model_attributes_type"} and not isinstance(value, (dict, Secret)):
        message += f" (got {value!r})"
    return message
