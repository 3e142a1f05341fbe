"""Pulumi entry point (`Pulumi.yaml` -> `main: stacks/`): validate the config first, then build the stack."""
import sys

from stacks.loader import ConfigError, from_adapter_error, load_from_engine

try:
    config = load_from_engine()
except ConfigError as error:  # before any resource is registered
    print(error, file=sys.stderr)
    sys.exit(2)

from stacks.program import run  # noqa: E402  (import providers only once the config is known to be valid)

try:
    run(config)
except ValueError as error:  # an adapter refused a setting: name the key, no traceback
    if (config_error := from_adapter_error(error)) is None:
        raise
    print(config_error, file=sys.stderr)
    sys.exit(2)
