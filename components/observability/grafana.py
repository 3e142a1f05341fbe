"""Grafana settings every self-run Grafana shares (compose, VMs; Kubernetes passes the same through Helm values)."""
from __future__ import annotations

import pulumi
import pulumi_random as random

PORT = 3000
ADMIN_USER = "admin"
PROVISIONING_DIR = "/etc/grafana/provisioning"
DASHBOARDS_DIR = "/etc/grafana/dashboards"

# No sign-up, no anonymous access, no phoning home; the admin password arrives as a secret variable.
HARDENING = {
    "GF_SECURITY_ADMIN_USER": ADMIN_USER,
    "GF_USERS_ALLOW_SIGN_UP": "false",
    "GF_AUTH_ANONYMOUS_ENABLED": "false",
    "GF_SECURITY_DISABLE_GRAVATAR": "true",
    "GF_ANALYTICS_REPORTING_ENABLED": "false",
    "GF_ANALYTICS_CHECK_FOR_UPDATES": "false",
    "GF_PATHS_PROVISIONING": PROVISIONING_DIR,
}


def admin_password(name: str, settings, parent: pulumi.Resource) -> pulumi.Output[str]:
    """The configured `grafana_admin_password`, else one generated once per stack; a Pulumi secret either way."""
    configured = settings.grafana_admin_password
    if configured is not None and configured.value:
        return pulumi.Output.secret(configured.value)
    generated = random.RandomPassword(f"{name}-grafana-admin-password", length=32, special=False,
                                      opts=pulumi.ResourceOptions(parent=parent))
    return pulumi.Output.secret(generated.result)
