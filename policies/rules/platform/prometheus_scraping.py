"""Every long-running service is scraped by Prometheus.

Decision for stacks without any Prometheus (observability is a later part of the platform): the policy does NOT
pass vacuously. It reports one stack-level violation, "no Prometheus in this stack", listing the services nobody
scrapes; policies/config.prod.json keeps this policy advisory until the observability component ships everywhere,
then it becomes mandatory like the rest. When a Prometheus exists, each service it does not scrape is reported.

What counts as scraped: a compose service or VM host named as a static target in a Prometheus scrape config found
in the stack (compose configs, files written to hosts, ConfigMaps: a collector's Prometheus receiver counts), any
compose service when docker service discovery is used, a service an exporter that is itself scraped points at;
Kubernetes workloads selected by a PodMonitor, by a ServiceMonitor through a Service, or annotated
`prometheus.io/scrape: "true"`; Strimzi Kafka with metricsConfig and a PodMonitor; MSK with its JMX and node
exporters on."""
import re

import yaml

from policies.facts import compose
from policies.facts.kubernetes import LONG_RUNNING_TYPES, namespace_of, object_name, pod_annotations, pod_labels, \
    selects
from policies.facts.units import unit_of
from policies.rule import Severity, stack_rule

PROMETHEUS_TYPES = ("kubernetes:monitoring.coreos.com/v1:Prometheus", "aws:amp/workspace:Workspace",
                    "aws:amp/scraper:Scraper")
HELM_TYPES = ("kubernetes:helm.sh/v3:Release", "kubernetes:helm.sh/v4:Chart")
POD_MONITOR = "kubernetes:monitoring.coreos.com/v1:PodMonitor"
SERVICE_MONITOR = "kubernetes:monitoring.coreos.com/v1:ServiceMonitor"
SERVICE = "kubernetes:core/v1:Service"
MSK = "aws:msk/cluster:Cluster"
_HOST_PORT = re.compile(r"([A-Za-z][A-Za-z0-9_.-]*):\d{2,5}")


def _repository(image) -> str:
    return str(image or "").rsplit(":", 1)[0]


def _is_prometheus(image) -> bool:
    """Prometheus itself, or an OpenTelemetry collector (the scraper on AWS, remote-writing to AMP)."""
    repository = _repository(image)
    return repository.endswith(("prometheus/prometheus", "prom/prometheus")) or "opentelemetry-collector" in repository


def _yaml_texts(resource):
    """Strings of a resource that may hold a Prometheus (or collector) config."""
    if (project := compose.project_of(resource)) is not None:
        yield from ((c or {}).get("content") for c in (project.document.get("configs") or {}).values())
    if resource.type.startswith("command:") and isinstance(resource.props.get("stdin"), str):
        yield resource.props["stdin"]
    if resource.type == "kubernetes:core/v1:ConfigMap":
        yield from (resource.get("data") or {}).values()


def _scrape_jobs(value):
    if isinstance(value, dict):
        for key, child in value.items():
            if key == "scrape_configs" and isinstance(child, list):
                yield from (job for job in child if isinstance(job, dict))
            else:
                yield from _scrape_jobs(child)
    elif isinstance(value, list):
        for child in value:
            yield from _scrape_jobs(child)


def _targets(stack) -> tuple[set[str], bool]:
    """Static target hosts of every scrape config in the stack, and whether docker discovery is used."""
    hosts, discovery = set(), False
    for resource in stack.resources:
        for text in _yaml_texts(resource):
            if not isinstance(text, str) or "scrape_configs" not in text:
                continue
            try:
                document = yaml.safe_load(text)
            except yaml.YAMLError:
                continue
            for job in _scrape_jobs(document):
                discovery |= bool(job.get("docker_sd_configs"))
                for static in job.get("static_configs") or []:
                    hosts |= {str(t).rsplit(":", 1)[0].strip("[]") for t in static.get("targets") or []}
    return hosts, discovery


def _services(stack, hosts, discovery):
    """(label, urn, scraped, is_prometheus) per long-running service."""
    for resource in stack.resources:
        if (project := compose.project_of(resource)) is not None:
            running = {n: s for n, s in project.services.items() if not compose.is_one_shot(s)}
            scraped = {n for n, s in running.items() if discovery or n in hosts or s.get("hostname") in hosts}
            for name in list(scraped):  # an exporter that is scraped covers what it points at
                if "exporter" in _repository(running[name].get("image")):
                    scraped |= set(_HOST_PORT.findall(str(running[name].get("command"))
                                                      + str(running[name].get("environment"))))
            for name, spec in running.items():
                yield (f"compose service {name}", resource.urn, name in scraped or spec.get("hostname") in scraped,
                       _is_prometheus(spec.get("image")))
        elif (unit := unit_of(resource)) is not None:
            yield (f"VM service {unit.service} on {unit.host}", resource.urn,
                   unit.host in hosts or unit.service in hosts, _is_prometheus(unit.image))
        elif resource.type in LONG_RUNNING_TYPES:
            images = [c.get("image") for c in resource.get("spec.template.spec.containers") or []]
            yield (resource.label, resource.urn, _kubernetes_scraped(stack, resource, hosts),
                   any(_is_prometheus(i) for i in images))
        elif resource.type.startswith("kubernetes:kafka.strimzi.io/") and resource.type.endswith(":Kafka"):
            scraped = bool(resource.get("spec.kafka.metricsConfig")) and bool(stack.of_type(POD_MONITOR))
            yield f"Strimzi Kafka {resource.name}", resource.urn, scraped, False
        elif resource.type == MSK:
            exporters = [resource.get(f"openMonitoring.prometheus.{e}.enabledInBroker") for e in
                         ("jmxExporter", "nodeExporter")]
            yield resource.label, resource.urn, all(e is True for e in exporters), False


def _kubernetes_scraped(stack, workload, hosts) -> bool:
    labels, namespace = pod_labels(workload), namespace_of(workload)
    if str(pod_annotations(workload).get("prometheus.io/scrape", "")).lower() == "true":
        return True

    def watches(monitor) -> bool:
        selector = monitor.get("spec.namespaceSelector") or {}
        return (selector.get("any") is True or namespace in (selector.get("matchNames") or [])
                or namespace_of(monitor) == namespace)

    if any(watches(m) and selects(m.get("spec.selector"), labels) for m in stack.of_type(POD_MONITOR)):
        return True
    services = [s for s in stack.of_type(SERVICE) if namespace_of(s) == namespace and s.get("spec.selector")
                and selects({"matchLabels": s.get("spec.selector")}, labels)]
    if any(object_name(s) in {h.split(".")[0] for h in hosts} for s in services):
        return True
    return any(watches(m) and any(selects(m.get("spec.selector"), s.get("metadata.labels") or {}) for s in services)
               for m in stack.of_type(SERVICE_MONITOR))


def _has_prometheus(stack, services, hosts) -> bool:
    charts = any("prometheus" in str(r.props.get("chart", "")) for r in stack.of_type(*HELM_TYPES))
    return bool(stack.of_type(*PROMETHEUS_TYPES)) or charts or bool(hosts) or any(p for *_, p in services)


def check(stack, config):
    hosts, discovery = _targets(stack)
    services = list(_services(stack, hosts, discovery))
    if not services:
        return
    if not _has_prometheus(stack, services, hosts):
        names = ", ".join(label for label, *_ in services)
        count = f"{len(services)} service{'s' if len(services) != 1 else ''}"
        yield f"no Prometheus in this stack: {count} not scraped ({names})", None
        return
    for label, urn, scraped, is_prometheus in services:
        if not scraped and not is_prometheus:
            yield f"{label} is not scraped by Prometheus", urn


policy = stack_rule(
    name="prometheus-scraping", domain="platform", severity=Severity.MEDIUM, check=check,
    description="Every long-running service is scraped by Prometheus (a stack without Prometheus is reported).",
    remediation="Enable the observability service, and give the service a MetricsEndpoint (components/base.py) so "
                "the generated scrape config, ServiceMonitor or collector job covers it; on MSK turn on open "
                "monitoring (JMX and node exporters).")
