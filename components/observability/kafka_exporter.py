"""danielqsj/kafka-exporter: live brokers, under-replicated partitions, leaders and consumer-group lag, read through
the Kafka protocol with the same endpoints and security settings the workloads use (on MSK: IAM over TLS)."""
from __future__ import annotations

PORT = 9308
JOB = "kafka-exporter"


def exporter_args(bootstrap_servers: str, security_protocol: str = "PLAINTEXT", sasl_mechanism: str | None = None,
                  region: str | None = None) -> list[str]:
    servers = [s.strip() for s in bootstrap_servers.split(",") if s.strip()]
    if not servers:
        raise ValueError("the Kafka exporter needs at least one bootstrap server")
    args = [f"--kafka.server={server}" for server in servers]
    args += [f"--web.listen-address=:{PORT}", "--topic.filter=.*", "--group.filter=.*", "--log.level=info"]
    if security_protocol in ("SSL", "SASL_SSL"):
        args.append("--tls.enabled")
    if security_protocol.startswith("SASL"):
        if sasl_mechanism in ("OAUTHBEARER", "AWS_MSK_IAM") and region:  # MSK IAM: signed with the pod's role
            args += ["--sasl.enabled", "--sasl.mechanism=awsiam", f"--sasl.aws-region={region}"]
        else:
            raise ValueError(f"the Kafka exporter cannot authenticate with {security_protocol}/{sasl_mechanism}")
    return args
