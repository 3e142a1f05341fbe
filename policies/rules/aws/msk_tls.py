"""MSK encrypts traffic: clients and brokers talk TLS only, and broker-to-broker traffic is encrypted."""
from policies.rule import Severity, resource_rule


def check(cluster, config):
    client_broker = cluster.get("encryptionInfo.encryptionInTransit.clientBroker", "TLS")  # AWS default: TLS
    if client_broker != "TLS":
        yield f"client-broker encryption is {client_broker}, not TLS"
    if cluster.get("encryptionInfo.encryptionInTransit.inCluster", True) is not True:
        yield "in-cluster (broker-to-broker) encryption is off"


policy = resource_rule(
    name="aws-msk-tls", domain="aws", severity=Severity.HIGH, check=check, applies={"aws:msk/cluster:Cluster"},
    description="MSK clusters accept TLS connections only and encrypt broker-to-broker traffic.",
    remediation="Set encryption_info.encryption_in_transit = {client_broker: 'TLS', in_cluster: True} on the "
                "aws.msk.Cluster.")
