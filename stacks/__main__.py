"""Pulumi entry point (`Pulumi.yaml` -> `main: stacks/`): validate the config first, then build the stack."""
import sys

from stacks.loader import ConfigError, load_from_engine

try:
    config = load_from_engine()
except ConfigError as error:  # before any resource is registered
    print(error, file=sys.stderr)
    sys.exit(2)

from stacks.program import run  # noqa: E402  (import providers only once the config is known to be valid)

run(config)
