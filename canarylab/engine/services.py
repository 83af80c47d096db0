"""The three ClusterIP Services Flagger generates: ``<svc>-canary``, ``<svc>-primary`` and the apex ``<svc>``."""

from __future__ import annotations

import json
from typing import Any

from canarylab.engine.context import TickContext
from canarylab.engine.kinds import SERVICE, Obj
from canarylab.engine.spec import ServiceMeta
from canarylab.engine.targets import owner_ref

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def discovered_ports(ctx: TickContext, deployment: Obj) -> dict[str, int]:
    """``portDiscovery``: every container port except the service's own (Flagger's ``getPorts``)."""
    svc = ctx.canary.spec.service
    pod = ((deployment.get("spec") or {}).get("template") or {}).get("spec") or {}
    ports: dict[str, int] = {}
    for container in pod.get("containers") or []:
        if container.get("name") in ("istio-proxy", "envoy"):
            continue  # mesh proxies
        for i, p in enumerate(container.get("ports") or []):
            number = int(p.get("containerPort", 0))
            target = svc.target_port
            if target in (None, 0, "0", ""):
                if number == svc.port:
                    continue
            elif isinstance(target, int) or str(target).isdigit():
                if number == int(target):
                    continue
            elif p.get("name") == target:
                continue
            ports[p.get("name") or f"tcp-{container.get('name', '')}-{i}"] = number
    return ports


def _ports(ctx: TickContext, extra: dict[str, int]) -> list[dict[str, Any]]:
    svc = ctx.canary.spec.service
    target = svc.target_port if svc.target_port not in (None, 0, "0", "") else svc.port
    port: dict[str, Any] = {"name": svc.port_name, "protocol": "TCP", "port": svc.port, "targetPort": target}
    if svc.app_protocol:
        port["appProtocol"] = svc.app_protocol
    more = [{"name": name, "protocol": "TCP", "port": number, "targetPort": number}
            for name, number in sorted(extra.items())]
    return [port, *more]


async def _ensure(ctx: TickContext, name: str, selector: dict[str, str], extra: ServiceMeta | None,
                  ports: dict[str, int]) -> None:
    c = ctx.canary
    label, _ = next(iter(selector.items()))
    spec: Obj = {"type": "ClusterIP", "selector": selector, "ports": _ports(ctx, ports)}
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


async def initialize_services(ctx: TickContext, label: str, value: str, ports: dict[str, int]) -> None:
    """Kubernetes router ``Initialize``: ``<svc>-canary`` selects the target, ``<svc>-primary`` the primary."""
    c = ctx.canary
    svc = c.service_name
    await _ensure(ctx, f"{svc}-canary", {label: value}, c.spec.service.canary, ports)
    await _ensure(ctx, f"{svc}-primary", {label: f"{value}-primary"}, c.spec.service.primary, ports)


async def reconcile_apex(ctx: TickContext, label: str, value: str, ports: dict[str, int]) -> None:
    """Kubernetes router ``Reconcile``: the apex Service selects the primary's pods."""
    c = ctx.canary
    await _ensure(ctx, c.service_name, {label: f"{value}-primary"}, c.spec.service.apex, ports)


def _controlled_by_a_canary(svc: Obj) -> bool:
    refs = (svc.get("metadata") or {}).get("ownerReferences") or []
    return any(r.get("kind") == "Canary" and r.get("controller") for r in refs)


def _applied_selector(svc: Obj) -> dict[str, str] | None:
    """The selector in ``kubectl.kubernetes.io/last-applied-configuration``, if the user applied one."""
    text = ((svc.get("metadata") or {}).get("annotations") or {}).get(LAST_APPLIED)
    if not text:
        return None
    try:
        applied = json.loads(text)
    except ValueError:
        return None
    selector = (applied.get("spec") or {}).get("selector") if isinstance(applied, dict) else None
    return {str(k): str(v) for k, v in selector.items()} if isinstance(selector, dict) and selector else None


async def revert_apex(ctx: TickContext, label: str, value: str) -> None:
    """Kubernetes router ``Finalize``: a user's apex Service selects the target's pods again.

    A Service Flagger created (controlled by a Canary) is left alone: it goes with the Canary. A Service the
    user created gets back the selector of its ``last-applied-configuration``, else ``<label>: <value>``.
    A missing apex Service leaves nothing to revert.
    """
    c = ctx.canary
    svc = await ctx.cluster.get(SERVICE, c.namespace, c.service_name)
    if svc is None or _controlled_by_a_canary(svc):
        return
    selector = _applied_selector(svc) or {label: value}
    old = (svc.get("spec") or {}).get("selector") or {}
    if old == selector:
        return
    # a merge patch merges maps: keys of the old selector that are not wanted are written as null
    patch = {**{k: None for k in old if k not in selector}, **selector}
    await ctx.cluster.patch(SERVICE, c.namespace, c.service_name, {"spec": {"selector": patch}})
