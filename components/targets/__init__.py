"""Target substrates: what a target is made of before any service lands on it.

- compose: one compose project (`ComposeProject`), rendered to a file and applied with `docker compose up --wait`;
- vm: hosts reached over SSH (`VmFleet`): Docker Engine, a data dir and one systemd unit per service container;
- kubernetes: a provider from the kubeconfig, a namespace, network policies (`KubernetesCluster`);
- aws: VPC, private subnets, security groups, a KMS key and an EKS cluster whose `kubernetes` substrate runs
  what AWS does not manage (`AwsFoundation`).
Each substrate has `kind` (the target name, used to pick adapters) and `finalize()` (after all services).
"""
from __future__ import annotations

import importlib

from stacks.config import PlatformConfig

_SUBSTRATES = {"compose": ("compose", "ComposeProject"), "vm": ("vm", "VmFleet"),
               "kubernetes": ("kubernetes", "KubernetesCluster"), "aws": ("aws", "AwsFoundation")}


def build(name: str, config: PlatformConfig):
    """The substrate for the stack's target, built from that target's config section."""
    module, cls = _SUBSTRATES[config.target]
    substrate_cls = getattr(importlib.import_module(f"components.targets.{module}"), cls)
    return substrate_cls(name, config)
