"""OpenLineage run events for the medallion jobs: START, then COMPLETE or FAIL, with the output's schema, column
lineage (`column_lineage`), row count and data quality assertions.

Transport: whatever OpenLineage's own configuration says (`OPENLINEAGE_URL` -> HTTP, e.g. Marquez); with none, a
JSON-lines file (`DP_LINEAGE_FILE`) on the embedded platform, which `lineage_graph` reads. A lineage outage never
fails the data job: an event that cannot be delivered is counted (`dp_lineage_events_total{outcome="failed"}`),
logged once per job, and kept in `undelivered.jsonl` beside the lineage file for `lineage replay`.
"""
from __future__ import annotations

import json
import os
import threading
import time
import traceback
from datetime import UTC, datetime
from typing import Any

import structlog

from workloads.governance import settings

PRODUCER = "https://github.com/dataplatform/dataplatform/tree/main/workloads/governance"
JOB_NAMESPACE = "dataplatform"
log = structlog.get_logger()
_lock = threading.Lock()
_client: Any = None
_down_until = 0.0  # monotonic time before which the receiver is taken as down


def _now() -> str:
    return datetime.now(UTC).isoformat()


def client() -> Any:
    """The process's OpenLineage client (created on first use: importing this module stays cheap)."""
    global _client
    with _lock:
        if _client is None:
            from openlineage.client import OpenLineageClient

            if settings.lineage_over_transport():
                _client = OpenLineageClient()
            else:
                path = settings.lineage_file()
                path.parent.mkdir(parents=True, exist_ok=True)
                _client = OpenLineageClient(config={"transport": {"type": "file", "log_file_path": str(path),
                                                                  "append": True}})
        return _client


def reset_client() -> None:
    """Forget the client, so that the next event follows the current environment (tests, `lineage replay`)."""
    global _client, _down_until
    with _lock:
        _client, _down_until = None, 0.0


def _counter():
    from workloads.governance.metrics import LINEAGE_EVENTS

    return LINEAGE_EVENTS


def emit(event: Any) -> bool:
    """Send one event (a RunEvent, or one already serialised, when replayed); False when the transport failed:
    the event is then counted and spooled. After a failure, events go straight to the spool for
    `DP_LINEAGE_RETRY_SECONDS` (default 60): a receiver that is down costs the jobs one attempt, not one per
    event (the HTTP transport retries with back-off for seconds)."""
    global _down_until
    from openlineage.client.serde import Serde

    raw = event if isinstance(event, dict) else None
    job = raw["job"]["name"] if raw else event.job.name
    state = raw["eventType"] if raw else event.eventType.value
    try:
        if time.monotonic() < _down_until:
            raise ConnectionError("lineage receiver marked down after a failure; retrying later")
        if raw is None:
            client().emit(event)
        else:
            client().transport.emit(raw)
    except Exception as exc:  # noqa: BLE001 - any transport error: the data job must go on
        if time.monotonic() >= _down_until:
            log.warning("lineage event not delivered", job=job, event_type=state,
                        error=f"{type(exc).__name__}: {exc}")
            _down_until = time.monotonic() + float(os.environ.get("DP_LINEAGE_RETRY_SECONDS", "60"))
        _counter().labels(job, state, "failed").inc()
        try:
            spool = settings.lineage_spool()
            spool.parent.mkdir(parents=True, exist_ok=True)
            with open(spool, "a", encoding="utf-8") as out:
                out.write(Serde.to_json(event) + "\n")
        except OSError as spool_error:
            log.warning("lineage event lost", job=job, error=str(spool_error))
        return False
    _counter().labels(job, state, "ok").inc()
    return True


def replay() -> tuple[int, int]:
    """Send the undelivered events again, oldest first; returns (sent, still undelivered: spooled again)."""
    spool = settings.lineage_spool()
    if not spool.exists():
        return 0, 0
    pending = spool.with_name(spool.name + ".replaying")
    spool.replace(pending)
    lines = pending.read_text().splitlines()
    sent = sum(emit(json.loads(line)) for line in lines if line.strip())
    pending.unlink()
    return sent, len(lines) - sent


def dataset(name: str, *, schema: Any = None, columns: dict[str, Any] | None = None, output: bool = False,
            rows: int | None = None, assertions: list[dict[str, Any]] | None = None,
            description: str | None = None) -> Any:
    """An input or output dataset of a run event, with its facets."""
    from openlineage.client.event_v2 import InputDataset, OutputDataset
    from openlineage.client.facet_v2 import (
        column_lineage_dataset,
        data_quality_assertions_dataset,
        documentation_dataset,
        output_statistics_output_dataset,
        schema_dataset,
    )

    facets: dict[str, Any] = {}
    if schema is not None:
        facets["schema"] = schema_dataset.SchemaDatasetFacet(fields=[
            schema_dataset.SchemaDatasetFacetFields(name=f.name, type=str(f.field_type), description=f.doc)
            for f in schema.fields])
    if columns:
        facets["columnLineage"] = column_lineage_dataset.ColumnLineageDatasetFacet(
            fields={column: column_lineage_dataset.Fields(inputFields=[
                column_lineage_dataset.InputField(
                    namespace=settings.lineage_namespace(), name=source.table, field=source.column,
                    transformations=[column_lineage_dataset.Transformation(type=source.type, subtype=source.subtype)])
                for source in sources]) for column, sources in columns.items() if sources and column != "*filter*"},
            dataset=[column_lineage_dataset.InputField(
                namespace=settings.lineage_namespace(), name=source.table, field=source.column,
                transformations=[column_lineage_dataset.Transformation(type=source.type, subtype=source.subtype)])
                for source in columns.get("*filter*", ())])
    if description:
        facets["documentation"] = documentation_dataset.DocumentationDatasetFacet(description=description)
    quality = None
    if assertions:
        quality = data_quality_assertions_dataset.DataQualityAssertionsDatasetFacet(assertions=[
            data_quality_assertions_dataset.Assertion(**a) for a in assertions])
    namespace = settings.lineage_namespace()
    if output:
        output_facets = {}
        if rows is not None:
            output_facets["outputStatistics"] = output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(
                rowCount=rows)
        if quality is not None:  # assertions are an input facet in the spec; outputs carry them as a dataset facet
            facets["dataQualityAssertions"] = quality
        return OutputDataset(namespace=namespace, name=name, facets=facets, outputFacets=output_facets)
    return InputDataset(namespace=namespace, name=name, facets=facets,
                        inputFacets={"dataQualityAssertions": quality} if quality is not None else {})


class JobRun:
    """One run of one job. The run starts when created; `finish` or `fail` emit its START (with that time) and
    its end together, so a round that turns out to have nothing to do emits nothing."""

    def __init__(self, job: str, sql: str | None = None):
        from openlineage.client.uuid import generate_new_uuid

        self.job = job
        self.run_id = str(generate_new_uuid())
        self.started = _now()
        self.sql = sql

    def _event(self, state: str, when: str, inputs: list[Any], outputs: list[Any],
               run_facets: dict[str, Any] | None = None) -> Any:
        from openlineage.client.event_v2 import Job, Run, RunEvent, RunState
        from openlineage.client.facet_v2 import job_type_job, sql_job

        job_facets: dict[str, Any] = {"jobType": job_type_job.JobTypeJobFacet(
            processingType="BATCH", integration="DATAPLATFORM", jobType="QUERY")}
        if self.sql:
            job_facets["sql"] = sql_job.SQLJobFacet(query=self.sql)
        return RunEvent(eventType=RunState[state], eventTime=when, producer=PRODUCER,
                        run=Run(runId=self.run_id, facets=run_facets or {}),
                        job=Job(namespace=JOB_NAMESPACE, name=self.job, facets=job_facets),
                        inputs=inputs, outputs=outputs)

    def finish(self, inputs: list[Any], outputs: list[Any], failure: str | None = None) -> bool:
        """START + COMPLETE, or START + FAIL with `failure` as the error message (e.g. a quality gate)."""
        started = emit(self._event("START", self.started, inputs, []))
        if failure is None:
            return emit(self._event("COMPLETE", _now(), inputs, outputs)) and started
        return emit(self._event("FAIL", _now(), inputs, outputs, self._error(failure, None))) and started

    def fail(self, error: BaseException, inputs: list[Any] = ()) -> bool:
        """START + FAIL for a job that raised."""
        started = emit(self._event("START", self.started, list(inputs), []))
        message = f"{type(error).__name__}: {error}"
        return emit(self._event("FAIL", _now(), list(inputs), [], self._error(message, error))) and started

    @staticmethod
    def _error(message: str, error: BaseException | None) -> dict[str, Any]:
        from openlineage.client.facet_v2 import error_message_run

        trace = "".join(traceback.format_exception(error)) if error is not None else None
        return {"errorMessage": error_message_run.ErrorMessageRunFacet(message=message, programmingLanguage="PYTHON",
                                                                       stackTrace=trace)}
