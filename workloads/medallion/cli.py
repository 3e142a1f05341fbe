"""`python -m workloads.medallion <command>`: the medallion jobs as the embedded platform (and a person) runs them.

Every command reads the platform from the environment (`workloads.common.platform`): the catalog from pyiceberg's
`PYICEBERG_CATALOG__<NAME>__*` variables (name in `DP_CATALOG`), Kafka from `DP_KAFKA_BOOTSTRAP_SERVERS`.
`--follow` jobs stop on SIGTERM/SIGINT after finishing the batch in hand and exit 0.
"""
from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import typer

from workloads.medallion.runner import Stop, configure_logging, follow

app = typer.Typer(help="Medallion jobs: Kafka -> bronze -> silver -> gold Iceberg tables.", no_args_is_help=True,
                  add_completion=False)


def _log():
    import structlog

    configure_logging()
    return structlog.get_logger()


def _clear_errors(command: Callable[..., None]) -> Callable[..., None]:
    """Expected failures (no tables yet, Kafka or the catalog unreachable or misconfigured) end with one log
    line and exit status 2 instead of a traceback."""
    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        from confluent_kafka import KafkaException
        from pyiceberg.exceptions import NoSuchNamespaceError, NoSuchTableError

        try:
            command(*args, **kwargs)
        except (RuntimeError, KafkaException, NoSuchTableError, NoSuchNamespaceError, ValueError, OSError) as exc:
            _log().error(f"{command.__name__} failed", error=str(exc))
            raise typer.Exit(2) from None
    return wrapper


@app.command()
@_clear_errors
def init() -> None:
    """Create the namespaces and tables (idempotent)."""
    from workloads.medallion.catalog import ensure_tables

    created = ensure_tables()
    _log().info("init done", created=created or None, existing_kept=not created or None)


@app.command()
@_clear_errors
def produce(events: int = typer.Option(..., "--events", min=1, help="how many events to send"),
            rate: float = typer.Option(0.0, "--rate", min=0.0, help="events per second; 0 = as fast as possible"),
            seed: int = typer.Option(7, "--seed", help="same seed, same events"),
            schema_version: int = typer.Option(1, "--schema-version", min=1, max=2,
                                               help="2 adds optional fields (schema evolution)")) -> None:
    """Generate shop events to Kafka with an idempotent producer."""
    import time

    from workloads.medallion.generator import produce as send

    log = _log()
    started = time.perf_counter()
    counts = send(events, rate=rate or None, seed=seed, schema_version=schema_version,
                  progress=lambda n: log.info("produced", events=n) if n % 100_000 == 0 else None)
    log.info("produce done", events=events, per_topic=counts, seconds=round(time.perf_counter() - started, 3))


@app.command()
@_clear_errors
def ingest(follow_: bool = typer.Option(False, "--follow", help="keep consuming until SIGTERM/SIGINT"),
           interval: float = typer.Option(1.0, "--interval", min=0.05, help="seconds per micro-batch")) -> None:
    """Kafka -> bronze, exactly once (offsets are committed with the data)."""
    from workloads.medallion.bronze import ingest as run

    _log()
    run(stop=Stop().install(), follow=follow_, interval=interval)


@app.command()
@_clear_errors
def refine(follow_: bool = typer.Option(False, "--follow", help="keep refining until SIGTERM/SIGINT"),
           interval: float = typer.Option(1.0, "--interval", min=0.05, help="seconds between rounds")) -> None:
    """bronze -> silver -> gold, incrementally from the last processed snapshots."""
    from workloads.medallion.refine import refine_once

    log = _log()
    stop = Stop().install()
    if follow_:
        follow(lambda: refine_once(log=log), interval, stop)
    else:
        refine_once(log=log)


@app.command()
@_clear_errors
def maintain(retain_hours: float = typer.Option(1.0, "--retain-hours", min=0.0,
                                                help="keep snapshots younger than this (time travel window)")) -> None:
    """Expire old snapshots and compact small files (progress watermarks are preserved)."""
    from workloads.medallion.maintenance import maintain as run

    run(retain_hours=retain_hours, log=_log())
