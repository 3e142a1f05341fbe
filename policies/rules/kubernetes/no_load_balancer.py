"""Services are not exposed through cloud load balancers unless the stack allows that service by name: a
LoadBalancer service is a public endpoint on most clusters."""
from policies.facts.kubernetes import namespace_of, object_name
from policies.rule import Severity, resource_rule


def check(service, config):
    if service.get("spec.type") != "LoadBalancer":
        return
    name, namespace = object_name(service), namespace_of(service)
    allowed = set(config["allowed"])
    if name in allowed or f"{namespace}/{name}" in allowed:
        return
    yield f"service {namespace + '/' if namespace else ''}{name} is of type LoadBalancer"


policy = resource_rule(
    name="k8s-no-load-balancer", domain="kubernetes", severity=Severity.HIGH, check=check,
    applies={"kubernetes:core/v1:Service"},
    description="Kubernetes services are not of type LoadBalancer unless allowed in the policy config.",
    remediation="Use ClusterIP (reach it through an ingress with TLS and auth, or kubectl port-forward); if a load "
                "balancer is intended, add 'namespace/name' to this policy's `allowed` list and restrict "
                "loadBalancerSourceRanges.",
    config={"allowed": {"type": "array", "items": {"type": "string"}, "default": []}})
