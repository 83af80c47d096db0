"""The three ClusterIP Services Flagger generates: ``<svc>-canary``, ``<svc>-primary`` and the apex ``<svc>``."""

from __future__ import annotations

from typing import Any

from canarylab.engine.context import TickContext
from canarylab.engine.kinds import SERVICE, Obj
from canarylab.engine.spec import ServiceMeta
from canarylab.engine.targets import owner_ref


def _ports(ctx: TickContext) -> list[dict[str, Any]]:
    svc = ctx.canary.spec.service
    target = svc.target_port if svc.target_port not in (None, 0, "0", "") else svc.port
    port: dict[str, Any] = {"name": svc.port_name, "protocol": "TCP", "port": svc.port, "targetPort": target}
    if svc.app_protocol:
        port["appProtocol"] = svc.app_protocol
    return [port]


async def _ensure(ctx: TickContext, name: str, selector: dict[str, str], extra: ServiceMeta | None) -> None:
    c = ctx.canary
    label, _ = next(iter(selector.items()))
    spec: Obj = {"type": "ClusterIP", "selector": selector, "ports": _ports(ctx)}
    if c.spec.service.headless:
        spec["clusterIP"] = "None"
    existing = await ctx.cluster.get(SERVICE, c.namespace, name)
    labels = {**(extra.labels if extra else {}), label: name}
    annotations = dict(extra.annotations) if extra else {}
    if existing is None:
        await ctx.cluster.create(SERVICE.new(c.namespace, name, spec=spec) | {
            "metadata": {"name": name, "namespace": c.namespace, "labels": labels, "annotations": annotations,
                         "ownerReferences": [owner_ref(ctx)]}})  # fmt: skip
        return
    old = existing.get("spec") or {}
    if old.get("selector") != selector or [
        {k: p.get(k) for k in ("name", "port", "targetPort")} for p in old.get("ports") or []
    ] != [{k: p.get(k) for k in ("name", "port", "targetPort")} for p in spec["ports"]]:
        # Adopt an existing Service: selector and ports are ours, the rest (nodePorts, clusterIP) stays.
        await ctx.cluster.patch(SERVICE, c.namespace, name, {"spec": {"selector": selector,
                                                                     "ports": spec["ports"]}})


async def initialize_services(ctx: TickContext, label: str, value: str) -> None:
    """Kubernetes router ``Initialize``: ``<svc>-canary`` selects the target, ``<svc>-primary`` the primary."""
    c = ctx.canary
    svc = c.service_name
    await _ensure(ctx, f"{svc}-canary", {label: value}, c.spec.service.canary)
    await _ensure(ctx, f"{svc}-primary", {label: f"{value}-primary"}, c.spec.service.primary)


async def reconcile_apex(ctx: TickContext, label: str, value: str) -> None:
    """Kubernetes router ``Reconcile``: the apex Service selects the primary's pods."""
    c = ctx.canary
    await _ensure(ctx, c.service_name, {label: f"{value}-primary"}, c.spec.service.apex)
