"""Reads what the detail screen shows about pods: per revision ready/total, image and HPA replicas.

Only through the Cluster port (the same for the simulated lab and a real cluster); pure otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from canarylab.engine.kinds import DAEMON_SET, DEPLOYMENT, HPA, Obj
from canarylab.engine.ports import Cluster, ClusterError


@dataclass(frozen=True)
class Revision:
    """One side of the canary: ``primary`` (``<target>-primary``) or ``canary`` (``<target>``)."""

    role: str
    deployment: str
    image: str = ""
    ready: int = 0
    desired: int = 0
    hpa: str = "-"
    found: bool = False


@dataclass(frozen=True)
class Workloads:
    """Both revisions of one Canary's target."""

    primary: Revision
    canary: Revision


def first_image(deployment: Obj | None) -> str:
    """The first container's image in a Deployment's pod template (``""`` when absent)."""
    if not deployment:
        return ""
    containers: list[dict[str, Any]] = deployment.get("spec", {}).get("template", {}).get("spec", {}).get(
        "containers", []
    )
    return str(containers[0].get("image", "")) if containers else ""


def container_name(deployment: Obj | None) -> str:
    """The first container's name (what ``kubectl set image`` needs)."""
    if not deployment:
        return ""
    containers = deployment.get("spec", {}).get("template", {}).get("spec", {}).get("containers", [])
    return str(containers[0].get("name", "")) if containers else ""


def hpa_text(hpa: Obj | None) -> str:
    """``2-4 (2)``: the HPA's bounds and current replicas; ``-`` without an HPA."""
    if not hpa:
        return "-"
    spec, status = hpa.get("spec", {}), hpa.get("status", {}) or {}
    bounds = f"{spec.get('minReplicas', 1)}-{spec.get('maxReplicas', '?')}"
    current = status.get("currentReplicas")
    return f"{bounds} ({current})" if current is not None else bounds


def revision(role: str, name: str, deployment: Obj | None, hpa: Obj | None) -> Revision:
    """A :class:`Revision` from the Deployment and HPA objects."""
    if deployment is None:
        return Revision(role, name)
    spec, status = deployment.get("spec", {}), deployment.get("status", {}) or {}
    if deployment.get("kind") == "DaemonSet":  # one pod per admitted node
        ready, desired = int(status.get("numberReady") or 0), int(status.get("desiredNumberScheduled") or 0)
    else:
        ready, desired = int(status.get("readyReplicas") or 0), int(spec.get("replicas", 1) or 0)
    return Revision(
        role=role, deployment=name, image=first_image(deployment), ready=ready, desired=desired,
        hpa=hpa_text(hpa), found=True,
    )  # fmt: skip


async def _get(cluster: Cluster, kind: Any, namespace: str, name: str) -> Obj | None:
    try:
        return await cluster.get(kind, namespace, name)
    except ClusterError:
        return None  # a transient API error must not break the screen; the next poll tries again


async def read_workloads(cluster: Cluster, namespace: str, target: str) -> Workloads:
    """Both revisions of ``target`` in ``namespace``."""
    primary_name = f"{target}-primary"
    return Workloads(
        primary=revision("primary", primary_name, await _workload(cluster, namespace, primary_name),
                         await _get(cluster, HPA, namespace, primary_name)),
        canary=revision("canary", target, await _workload(cluster, namespace, target),
                        await _get(cluster, HPA, namespace, target)),
    )


async def _workload(cluster: Cluster, namespace: str, name: str) -> Obj | None:
    """The Deployment of that name, else the DaemonSet (a Canary targets one or the other)."""
    return await _get(cluster, DEPLOYMENT, namespace, name) or await _get(cluster, DAEMON_SET, namespace, name)
