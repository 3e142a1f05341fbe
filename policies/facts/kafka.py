"""Kafka settings wherever the platform runs Kafka: compose/VM broker environments, Strimzi `Kafka` and
`KafkaTopic` resources, MSK configurations, and topic-creation scripts (`kafka-topics.sh --create ...`) in
commands, compose services and Kubernetes jobs."""
from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from typing import Any, Iterator

from policies.facts import compose
from policies.facts.kubernetes import containers
from policies.rule import ResourceView, StackView

MSK_CLUSTER = "aws:msk/cluster:Cluster"
MSK_SERVERLESS = "aws:msk/serverlessCluster:ServerlessCluster"
MSK_CONFIGURATION = "aws:msk/configuration:Configuration"
MSK_TOPIC = "aws:msk/topic:Topic"
MSK_DEFAULTS = {"default.replication.factor": 3, "min.insync.replicas": 2}  # MSK's defaults on 3-AZ clusters
_TEXT_SETTING = re.compile(r"^\s*(default\.replication\.factor|min\.insync\.replicas|KAFKA_DEFAULT_REPLICATION_FACTOR|"
                           r"KAFKA_MIN_INSYNC_REPLICAS)\s*[=:]\s*['\"]?(\d+)", re.MULTILINE)
_BROKER_ROLE = re.compile(r"^\s*(process\.roles|KAFKA_PROCESS_ROLES)\s*[=:]\s*['\"]?[a-z,]*broker", re.MULTILINE)


@dataclass
class KafkaCluster:
    resource: ResourceView
    label: str
    replication: int | None
    min_isr: int | None


@dataclass
class KafkaTopic:
    resource: ResourceView
    name: str
    replication: int | None = None
    config: dict[str, str] = field(default_factory=dict)


def _int(value: Any) -> int | None:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


def _env(spec: dict[str, Any]) -> dict[str, str]:
    env = spec.get("environment") or {}
    if isinstance(env, list):
        env = dict(str(e).split("=", 1) for e in env if "=" in str(e))
    return {str(k): str(v) for k, v in env.items()} if isinstance(env, dict) else {}


def _is_strimzi(resource: ResourceView, kind: str) -> bool:
    return resource.type.startswith("kubernetes:kafka.strimzi.io/") and resource.type.endswith(f":{kind}")


def clusters(stack: StackView) -> list[KafkaCluster]:
    found: list[KafkaCluster] = []
    for resource in stack.resources:
        if (project := compose.project_of(resource)) is not None:
            for name, spec in project.services.items():
                env = _env(spec)
                if "broker" in env.get("KAFKA_PROCESS_ROLES", ""):
                    found.append(KafkaCluster(resource, f"compose service {name}",
                                              _int(env.get("KAFKA_DEFAULT_REPLICATION_FACTOR")),
                                              _int(env.get("KAFKA_MIN_INSYNC_REPLICAS"))))
        elif _is_strimzi(resource, "Kafka"):
            config = resource.get("spec.kafka.config") or {}
            found.append(KafkaCluster(resource, f"Strimzi Kafka {resource.name}",
                                      _int(config.get("default.replication.factor")),
                                      _int(config.get("min.insync.replicas"))))
        elif resource.type == MSK_CLUSTER:
            settings = {**MSK_DEFAULTS, **_msk_properties(stack, resource)}
            found.append(KafkaCluster(resource, f"MSK cluster {resource.name}",
                                      _int(settings["default.replication.factor"]),
                                      _int(settings["min.insync.replicas"])))
        elif resource.type.startswith("command:remote:") and (settings := _text_settings(resource)):
            found.append(KafkaCluster(resource, f"Kafka on host ({resource.name})",
                                      settings.get("replication"), settings.get("min_isr")))
    return found


def _msk_properties(stack: StackView, cluster: ResourceView) -> dict[str, str]:
    arn = cluster.get("configurationInfo.arn")
    for configuration in stack.of_type(MSK_CONFIGURATION):
        if configuration.urn in cluster.dependencies or arn in {configuration.props.get("arn"),
                                                                  configuration.props.get("id")}:
            return parse_properties(configuration.props.get("serverProperties") or "")
    return {}


def _text_settings(resource: ResourceView) -> dict[str, int]:
    """Broker settings a host command writes (an env file or server.properties on stdin, one setting a line);
    empty unless the text configures a broker (topic scripts also mention min.insync.replicas)."""
    text = "\n".join(v for v in resource.props.values() if isinstance(v, str))
    settings: dict[str, int] = {}
    if not _BROKER_ROLE.search(text):
        return settings
    for key, value in _TEXT_SETTING.findall(text):
        settings["replication" if "REPLICATION" in key.upper() else "min_isr"] = int(value)
    return settings


def parse_properties(text: str) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in text.splitlines() if "=" in line and not line.lstrip().startswith("#"))
    return {k.strip(): v.strip() for k, v in pairs}


def topics(stack: StackView) -> list[KafkaTopic]:
    found: dict[tuple[str, str], KafkaTopic] = {}
    for resource in stack.resources:
        if _is_strimzi(resource, "KafkaTopic"):
            name = resource.get("spec.topicName") or resource.get("metadata.name") or resource.name
            config = {k: str(v) for k, v in (resource.get("spec.config") or {}).items()}
            found[(resource.urn, name)] = KafkaTopic(resource, name, _int(resource.get("spec.replicas")), config)
            continue
        if resource.type == MSK_TOPIC:
            configs = resource.props.get("configs")
            try:
                config = json.loads(configs) if isinstance(configs, str) else (configs or {})
            except json.JSONDecodeError:
                config = {}
            name = resource.props.get("name") or resource.name
            found[(resource.urn, name)] = KafkaTopic(resource, name, _int(resource.props.get("replicationFactor")),
                                                     {k: str(v) for k, v in config.items()})
            continue
        for script in _scripts(resource):
            for topic in topics_in_script(resource, script):
                key = (resource.urn, topic.name)
                if key in found:
                    found[key].config.update(topic.config)
                    found[key].replication = found[key].replication or topic.replication
                else:
                    found[key] = topic
    return list(found.values())


def _scripts(resource: ResourceView) -> Iterator[str]:
    """Shell text that may create topics: command strings, compose service commands, job container args."""
    if resource.type.startswith("command:"):
        yield from (v for k, v in resource.props.items() if k in ("create", "update") and isinstance(v, str))
    if (project := compose.project_of(resource)) is not None:
        for spec in project.services.values():
            for key in ("command", "entrypoint"):
                value = spec.get(key)
                yield from ([value] if isinstance(value, str) else [str(v) for v in value or []])
    if resource.type in ("kubernetes:batch/v1:Job", "kubernetes:batch/v1:CronJob"):
        for _, container in containers(resource):
            yield from (str(v) for key in ("command", "args") for v in container.get(key) or [])


def topics_in_script(resource: ResourceView, script: str) -> list[KafkaTopic]:
    found: dict[str, KafkaTopic] = {}
    for line in script.replace("\\\n", " ").splitlines():
        if "kafka-topics" not in line and "kafka-configs" not in line:
            continue
        try:
            tokens = shlex.split(line)
        except ValueError:
            continue
        options = _options(tokens)
        if "kafka-topics" in line and "--create" in tokens and options.get("--topic"):
            name = options["--topic"][0]
            topic = found.setdefault(name, KafkaTopic(resource, name))
            topic.replication = _int((options.get("--replication-factor") or [None])[0])
            topic.config.update(dict(c.split("=", 1) for c in options.get("--config", []) if "=" in c))
        elif "kafka-configs" in line and "topics" in options.get("--entity-type", []) and options.get("--entity-name"):
            name = options["--entity-name"][0]
            topic = found.setdefault(name, KafkaTopic(resource, name))
            for added in options.get("--add-config", []):
                topic.config.update(dict(c.split("=", 1) for c in added.split(",") if "=" in c))
    return list(found.values())


def _options(tokens: list[str]) -> dict[str, list[str]]:
    options: dict[str, list[str]] = {}
    for flag, value in zip(tokens, tokens[1:] + [""]):
        if flag.startswith("--"):
            if "=" in flag:
                flag, value = flag.split("=", 1)
            options.setdefault(flag, []).append(value)
    return options
