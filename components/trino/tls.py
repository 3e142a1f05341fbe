"""The coordinator's HTTPS certificate, from a CA of the stack's own (pulumi-tls).

Why a private CA rather than a self-signed server certificate: clients trust one CA certificate (`ca_certificate` in
the outputs; `REQUESTS_CA_BUNDLE` for the Python client) and the server certificate can be renewed (`pulumi up`
re-issues it in its last 30 days) without anyone re-trusting anything. Trino reads a PEM file holding the private
key and the certificate chain.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass

import pulumi
import pulumi_tls as tls

CA_HOURS = 10 * 365 * 24
CERT_HOURS = 365 * 24
RENEW_HOURS = 30 * 24


@dataclass(frozen=True)
class ServerTls:
    pem: pulumi.Output[str]  # secret: key + certificate + CA certificate, what Trino's keystore path points at
    ca_certificate: pulumi.Output[str]


def server_tls(name: str, names: list[str], parent: pulumi.Resource) -> ServerTls:
    """A CA and a server certificate for `names` (DNS names and IP addresses, as clients address the coordinator)."""
    opts = pulumi.ResourceOptions(parent=parent)
    ca_key = tls.PrivateKey(f"{name}-ca-key", algorithm="ECDSA", ecdsa_curve="P256", opts=opts)
    ca = tls.SelfSignedCert(f"{name}-ca", private_key_pem=ca_key.private_key_pem, is_ca_certificate=True,
                            validity_period_hours=CA_HOURS, allowed_uses=["cert_signing", "crl_signing"],
                            subject={"common_name": f"{name} CA", "organization": "dataplatform"}, opts=opts)
    key = tls.PrivateKey(f"{name}-server-key", algorithm="ECDSA", ecdsa_curve="P256", opts=opts)
    addresses = [n for n in names if _is_ip(n)]
    request = tls.CertRequest(f"{name}-server-csr", private_key_pem=key.private_key_pem,
                              subject={"common_name": names[0], "organization": "dataplatform"},
                              dns_names=[n for n in names if not _is_ip(n)], ip_addresses=addresses, opts=opts)
    cert = tls.LocallySignedCert(f"{name}-server-cert", cert_request_pem=request.cert_request_pem,
                                 ca_private_key_pem=ca_key.private_key_pem, ca_cert_pem=ca.cert_pem,
                                 validity_period_hours=CERT_HOURS, early_renewal_hours=RENEW_HOURS,
                                 allowed_uses=["digital_signature", "key_encipherment", "server_auth"], opts=opts)
    pem = pulumi.Output.all(key.private_key_pem, cert.cert_pem, ca.cert_pem).apply(
        lambda parts: "".join(part if part.endswith("\n") else part + "\n" for part in parts if part))
    return ServerTls(pem=pulumi.Output.secret(pem), ca_certificate=ca.cert_pem)


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True
