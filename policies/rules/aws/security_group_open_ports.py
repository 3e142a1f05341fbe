"""Security groups never open admin or data ports to the internet (0.0.0.0/0 or ::/0)."""
from policies.rule import Severity, resource_rule

ANYWHERE = {"0.0.0.0/0", "::/0"}
# SSH, RDP; Postgres, MySQL; Kafka (plain, TLS, SASL/SCRAM, IAM), ZooKeeper; S3 gateway, Iceberg REST, Trino/Flink
# UIs; Qdrant, Milvus; Prometheus, Grafana; the Kubernetes API and kubelet.
DEFAULT_PORTS = [22, 3389, 5432, 3306, 9092, 9094, 9096, 9098, 2181, 8333, 8181, 8080, 8081, 6333, 6334, 19530,
                 9090, 3000, 6443, 10250]


def _open_rules(resource):
    """(from_port, to_port, protocol, cidrs) for each ingress rule, whatever resource shape carries it."""
    if resource.type == "aws:ec2/securityGroup:SecurityGroup":
        for rule in resource.props.get("ingress") or []:
            yield (rule.get("fromPort"), rule.get("toPort"), rule.get("protocol"),
                   set(rule.get("cidrBlocks") or []) | set(rule.get("ipv6CidrBlocks") or []))
    elif resource.type == "aws:ec2/securityGroupRule:SecurityGroupRule":
        if resource.props.get("type") == "ingress":
            yield (resource.props.get("fromPort"), resource.props.get("toPort"), resource.props.get("protocol"),
                   set(resource.props.get("cidrBlocks") or []) | set(resource.props.get("ipv6CidrBlocks") or []))
    else:  # aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule
        yield (resource.props.get("fromPort"), resource.props.get("toPort"), resource.props.get("ipProtocol"),
               {resource.props.get("cidrIpv4"), resource.props.get("cidrIpv6")} - {None})


def check(resource, config):
    for from_port, to_port, protocol, cidrs in _open_rules(resource):
        if not cidrs & ANYWHERE:
            continue
        if str(protocol) in ("-1", "all"):
            yield f"all ports and protocols are open to {', '.join(sorted(cidrs & ANYWHERE))}"
            continue
        low, high = from_port or 0, to_port if to_port is not None else from_port or 65535
        exposed = sorted(p for p in config["ports"] if low <= p <= high)
        if exposed:
            yield f"ports {exposed} are open to {', '.join(sorted(cidrs & ANYWHERE))}"


policy = resource_rule(
    name="aws-security-group-open-ports", domain="aws", severity=Severity.CRITICAL, check=check,
    applies={"aws:ec2/securityGroup:SecurityGroup", "aws:ec2/securityGroupRule:SecurityGroupRule",
             "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"},
    description="Security groups do not open admin (SSH, RDP) or data ports (databases, Kafka, S3, catalog, "
                "vector stores, UIs) to 0.0.0.0/0 or ::/0.",
    remediation="Allow the port from the security group of the clients (referenced_security_group_id / "
                "source_security_group_id) or from the VPC CIDR; reach admin ports through SSM Session Manager.",
    config={"ports": {"type": "array", "items": {"type": "integer"}, "default": DEFAULT_PORTS}})
