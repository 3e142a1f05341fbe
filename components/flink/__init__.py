"""Flink 2: stream processing with exactly-once checkpoints on the platform's object storage.

- compose, VMs: a session cluster (one jobmanager, `taskmanagers` taskmanagers) from the official `flink` image,
  configured by a rendered Flink 2 `config.yaml` (Flink 2 no longer reads `flink-conf.yaml`); jobs are submitted
  to it (`sql-client.sh`, the REST API at `rest_url`).
- Kubernetes: the Flink Kubernetes Operator (Helm, pinned) and one `FlinkDeployment` per packaged job in
  application mode, with Kubernetes HA and savepoint upgrades.
- AWS (`services.flink.aws_mode`): `eks` (default) runs the Kubernetes adapter on EKS with an IAM role (IRSA) for
  S3, Glue and MSK; `managed` creates one Managed Service for Apache Flink application per job (code in S3).

Checkpoints, savepoints and HA metadata go to the `checkpoints` bucket (`s3://<bucket>/flink/...`) through Flink's
S3 file system plugin (`flink-s3-fs-presto`). S3 credentials never enter a config file: they reach the processes
as the standard AWS environment variables (from Pulumi secrets), or as an IAM role on AWS.

The packaged jobs (`JOBS`) are the medallion silver and gold transforms in Flink SQL, one INSERT per file under
`workloads/medallion/sql/flink/` (checked by PyFlink's planner there): `medallion-silver` runs every `silver_*`
statement and `medallion-gold` every `gold_*` one, each as one statement set. Each job runs as
`sql-runner.jar /opt/flink/usrlib/sql/<job>.sql` (the operator's SQL runner pattern) from the job image that
components/workloads builds (`job_image`: the pinned `flink` image plus the runner, each job's statements rendered
into `<job>.sql` as one statement set, and the Kafka and Iceberg connectors; docker/flink-jobs). Without it
(`services.workloads` off) the deployments reference the plain `flink` image and the operator reports the missing
jar in each FlinkDeployment's status.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pulumi

from components.base import MetricsEndpoint, Service, ServiceArgs

SQL_DIR = Path(__file__).resolve().parents[2] / "workloads" / "medallion" / "sql" / "flink"


@dataclass(frozen=True)
class FlinkJob:
    name: str  # Kubernetes/AWS name of the deployment (DNS label)
    prefix: str  # the statements it runs: `<prefix>*.sql` in SQL_DIR
    description: str

    @property
    def statements(self) -> tuple[str, ...]:
        """The SQL files (stems) the job runs, as the repository holds them now."""
        return tuple(sorted(path.stem for path in SQL_DIR.glob(f"{self.prefix}*.sql")))

    @property
    def script(self) -> str:
        return f"{self.name}.sql"


JOBS = (
    FlinkJob("medallion-silver", "silver_", "bronze -> silver: typed, validated, deduplicated events"),
    FlinkJob("medallion-gold", "gold_", "silver -> gold: revenue, customer lifetime value, funnel"),
)
JOB_IMAGE = "flink"  # versions.yaml image key of the Flink the job image is built on (its version picks the operator's)
USRLIB = "/opt/flink/usrlib"
SQL_RUNNER_JAR = f"{USRLIB}/sql-runner.jar"


def packaged_jobs() -> tuple[FlinkJob, ...]:
    """The jobs to deploy; one whose statements are gone from the repository is refused, not deployed empty."""
    for job in JOBS:
        if not job.statements:
            raise ValueError(f"{SQL_DIR}: no {job.prefix}*.sql statements, so the Flink job {job.name} has nothing "
                             "to run")
    return JOBS


def job_args(job: FlinkJob) -> list[str]:
    """The SQL runner's arguments: the script's path inside the job image."""
    return [f"{USRLIB}/sql/{job.script}"]


@dataclass(frozen=True)
class FlinkEndpoints:
    mode: str  # "session" (compose, VMs), "application" (operator), "managed" (AWS Managed Service for Apache Flink)
    rest_url: pulumi.Input[str] | None  # the session cluster's REST API and UI; None when each job has its own
    checkpoints: pulumi.Input[str] | None  # s3:// URI; `{job}` stands for the job's name where each job has its own;
    savepoints: pulumi.Input[str] | None  # None with Managed Service for Apache Flink (application snapshots)
    jobs: tuple[str, ...] = ()  # the packaged jobs deployed (empty on a session cluster: jobs are submitted)
    metrics: tuple[MetricsEndpoint, ...] = ()

    def outputs(self) -> dict:
        return {"mode": self.mode, "rest_url": self.rest_url, "checkpoints": self.checkpoints,
                "savepoints": self.savepoints, "jobs": list(self.jobs)}


@dataclass(frozen=True)
class FlinkArgs(ServiceArgs):
    storage: object = None  # StorageEndpoints: the `checkpoints` bucket
    kafka: object = None  # KafkaEndpoints (None when Kafka is off): what the jobs read
    catalog: object = None  # CatalogEndpoints (None when the catalog is off): where the jobs write
    job_image: object = None  # the built job image's reference (components/workloads), else the plain `flink` image


class Flink(Service):
    type_token = "dataplatform:flink:Flink"
    endpoints: FlinkEndpoints
