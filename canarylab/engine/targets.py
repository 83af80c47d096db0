"""The Deployment target: primary copy, readiness (flagger-spec 2.8), scaling, HPA copy and promotion."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from canarylab.engine.configs import Config, copy_to_primary, rewrite_to_primary
from canarylab.engine.context import TickContext
from canarylab.engine.documents import copy_json
from canarylab.engine.kinds import DEPLOYMENT, HPA, Obj
from canarylab.engine.spec import Canary

SELECTOR_LABELS = ("app", "name", "app.kubernetes.io/name")


class TargetError(Exception):
    """The target cannot be used as is; the message is Flagger's Warning event text."""


@dataclass(frozen=True)
class Readiness:
    """A readiness verdict: ``error`` is empty when ready; ``retriable`` False means roll back."""

    error: str = ""
    retriable: bool = True

    @property
    def ready(self) -> bool:
        return not self.error


def owner_ref(ctx: TickContext) -> dict[str, Any]:
    """An ownerReference to the Canary (generated objects go with it)."""
    meta = ctx.obj.get("metadata", {})
    return {"apiVersion": "flagger.app/v1beta1", "kind": "Canary", "name": meta.get("name", ""),
            "uid": meta.get("uid", ""), "controller": True, "blockOwnerDeletion": True}  # fmt: skip


def selector_label(canary: Canary, deployment: Obj) -> tuple[str, str]:
    """The first of ``app``, ``name``, ``app.kubernetes.io/name`` in the selector, and its value."""
    match = ((deployment.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    for label in SELECTOR_LABELS:
        if label in match:
            return label, str(match[label])
    raise TargetError(f"deployment {canary.target_key} spec.selector.matchLabels must contain one of "
                      f"[{' '.join(SELECTOR_LABELS)}]")


def _primary_template(canary: Canary, deployment: Obj, label: str, value: str, cfgs: list[Config]) -> Obj:
    template = rewrite_to_primary(copy_json((deployment.get("spec") or {}).get("template") or {}), cfgs)
    meta = template.setdefault("metadata", {})
    meta["labels"] = {**(meta.get("labels") or {}), label: f"{value}-primary"}
    # A fresh flagger-id forces the primary to roll, as Flagger does on every promotion.
    meta["annotations"] = {**(meta.get("annotations") or {}), "flagger-id": str(uuid.uuid4())}
    return template


def build_primary(ctx: TickContext, deployment: Obj, label: str, value: str, cfgs: list[Config]) -> Obj:
    """``<target>-primary`` as Flagger creates it (flagger-spec 3.1)."""
    canary = ctx.canary
    src = deployment.get("spec") or {}
    meta = deployment.get("metadata") or {}
    labels = {k: v for k, v in (meta.get("labels") or {}).items() if "toolkit.fluxcd.io" not in k}
    labels[label] = f"{value}-primary"
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items()
                   if "toolkit.fluxcd.io" not in k and k != "kubectl.kubernetes.io/last-applied-configuration"}
    replicas = int(src.get("replicas", 1) or 0)
    spec: Obj = {
        "replicas": replicas if replicas > 0 else 1,
        "selector": {"matchLabels": {label: f"{value}-primary"}},
        "template": _primary_template(canary, deployment, label, value, cfgs),
    }
    for key in ("progressDeadlineSeconds", "minReadySeconds", "revisionHistoryLimit", "strategy"):
        if key in src:
            spec[key] = copy_json(src[key])
    return DEPLOYMENT.new(canary.namespace, f"{canary.target}-primary", spec=spec) | {
        "metadata": {"name": f"{canary.target}-primary", "namespace": canary.namespace, "labels": labels,
                     "annotations": annotations, "ownerReferences": [owner_ref(ctx)]},
    }  # fmt: skip


async def ensure_primary(ctx: TickContext, deployment: Obj, label: str, value: str, cfgs: list[Config]) -> Obj:
    """The primary Deployment (and its ``-primary`` configs), created when absent."""
    c = ctx.canary
    primary = await ctx.cluster.get(DEPLOYMENT, c.namespace, f"{c.target}-primary")
    if primary is None:
        await copy_to_primary(ctx, cfgs, owner_ref(ctx))
        primary = await ctx.cluster.create(build_primary(ctx, deployment, label, value, cfgs))
    return primary


def _parse_time(text: str | None) -> float | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def deployment_readiness(deployment: Obj, deadline: int, threshold: int, now: float) -> Readiness:
    """Flagger's ``isDeploymentReady``: rollout finished and enough updated replicas available."""
    meta = deployment.get("metadata") or {}
    spec = deployment.get("spec") or {}
    status = deployment.get("status") or {}
    if int(meta.get("generation", 1)) > int(status.get("observedGeneration", 0)):
        return Readiness("waiting for rollout to finish: observed deployment generation less than desired "
                         "generation")
    conditions = {c.get("type"): c for c in status.get("conditions") or []}
    retriable = True
    progressing = conditions.get("Progressing")
    available = conditions.get("Available")
    if progressing is not None and available is not None and available.get("status") == "False" \
            and available.get("reason") == "MinimumReplicasUnavailable":
        since = _parse_time(available.get("lastUpdateTime") or available.get("lastTransitionTime"))
        if since is not None and since + deadline < now:
            retriable = False
    if progressing is not None and progressing.get("reason") == "ProgressDeadlineExceeded":
        return Readiness(f'deployment "{meta.get("name", "")}" exceeded its progress deadline', False)
    replicas = int(spec.get("replicas", 1))
    updated = int(status.get("updatedReplicas", 0))
    total = int(status.get("replicas", 0))
    available_n = int(status.get("availableReplicas", 0))
    needed = int(updated * threshold / 100)
    if updated < replicas:
        return Readiness(f"waiting for rollout to finish: {updated} out of {replicas} new replicas have been "
                         "updated", retriable)
    if total > updated:
        return Readiness(f"waiting for rollout to finish: {total - updated} old replicas are pending "
                         "termination", retriable)
    if available_n < needed:
        return Readiness(f"waiting for rollout to finish: {available_n} of {needed} (readyThreshold "
                         f"{threshold}%) updated replicas are available", retriable)
    return Readiness()


async def primary_readiness(ctx: TickContext) -> Readiness:
    """``IsPrimaryReady``, with Flagger's message prefix."""
    c = ctx.canary
    primary = await ctx.cluster.get(DEPLOYMENT, c.namespace, f"{c.target}-primary")
    if primary is None:
        return Readiness(f"{c.target}-primary.{c.namespace} not ready: deployment {c.target}-primary not found")
    r = deployment_readiness(primary, c.progress_deadline_seconds, c.primary_ready_threshold, ctx.now())
    return r if r.ready else Readiness(f"{c.target}-primary.{c.namespace} not ready: {r.error}", r.retriable)


async def canary_readiness(ctx: TickContext, deployment: Obj) -> Readiness:
    """``IsCanaryReady``, with Flagger's message prefix."""
    c = ctx.canary
    r = deployment_readiness(deployment, c.progress_deadline_seconds, c.canary_ready_threshold, ctx.now())
    return r if r.ready else Readiness(f"canary deployment {c.target_key} not ready: {r.error}", r.retriable)


async def scale(ctx: TickContext, name: str, replicas: int) -> None:
    """Set ``spec.replicas`` of a Deployment in the Canary's namespace."""
    await ctx.cluster.patch(DEPLOYMENT, ctx.canary.namespace, name, {"spec": {"replicas": replicas}})


async def scale_from_zero(ctx: TickContext, deployment: Obj) -> None:
    """``ScaleFromZero``: target replicas if > 0; else the HPA's minReplicas if > 1, or the primary's, or 1."""
    c = ctx.canary
    replicas = int((deployment.get("spec") or {}).get("replicas", 0) or 0)
    if replicas <= 0:
        replicas = 1
        if c.spec.autoscaler_ref is not None:
            hpa = await ctx.cluster.get(HPA, c.namespace, c.spec.autoscaler_ref.name)
            min_replicas = int(((hpa or {}).get("spec") or {}).get("minReplicas", 1) or 1)
            replicas = min_replicas if min_replicas > 1 else 1
        else:
            primary = await ctx.cluster.get(DEPLOYMENT, c.namespace, f"{c.target}-primary")
            replicas = int(((primary or {}).get("spec") or {}).get("replicas", 1) or 1)
    await scale(ctx, c.target, replicas)


def _primary_hpa_spec(ctx: TickContext, source: Obj) -> Obj:
    c = ctx.canary
    src = source.get("spec") or {}
    spec: Obj = {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": f"{c.target}-primary"},
        "minReplicas": src.get("minReplicas", 1),
        "maxReplicas": src.get("maxReplicas", 1),
    }
    for key in ("metrics", "behavior"):
        if key in src:
            spec[key] = copy_json(src[key])
    override = (c.spec.autoscaler_ref.primary_scaler_replicas if c.spec.autoscaler_ref else None) or {}
    for key in ("minReplicas", "maxReplicas"):
        if override.get(key):
            spec[key] = override[key]
    return spec


async def reconcile_primary_hpa(ctx: TickContext, *, init: bool) -> None:
    """Create ``<hpa>-primary`` during initialization; update it on promotion (flagger-spec 3.3)."""
    c = ctx.canary
    ref = c.spec.autoscaler_ref
    if ref is None:
        return
    source = await ctx.cluster.get(HPA, c.namespace, ref.name)
    if source is None:
        raise TargetError(f"HorizontalPodAutoscaler {ref.name}.{c.namespace} get query error: "
                          f'horizontalpodautoscalers "{ref.name}" not found')
    name = f"{ref.name}-primary"
    spec = _primary_hpa_spec(ctx, source)
    existing = await ctx.cluster.get(HPA, c.namespace, name)
    if existing is None:
        labels = (source.get("metadata") or {}).get("labels") or {}
        await ctx.cluster.create(HPA.new(c.namespace, name, spec=spec) | {
            "metadata": {"name": name, "namespace": c.namespace, "labels": dict(labels),
                         "ownerReferences": [owner_ref(ctx)]}})  # fmt: skip
    elif not init and existing.get("spec") != spec:
        await ctx.cluster.patch(HPA, c.namespace, name, {"spec": spec})


async def promote(ctx: TickContext, deployment: Obj, label: str, value: str, cfgs: list[Config]) -> None:
    """``Promote()``: copy the canary's configs, pod template and rollout settings to the primary."""
    c = ctx.canary
    src = deployment.get("spec") or {}
    await copy_to_primary(ctx, cfgs, owner_ref(ctx))
    spec: Obj = {"template": _primary_template(c, deployment, label, value, cfgs)}
    for key in ("progressDeadlineSeconds", "minReadySeconds", "revisionHistoryLimit", "strategy"):
        if key in src:
            spec[key] = copy_json(src[key])
    if c.spec.autoscaler_ref is None:
        replicas = int(src.get("replicas", 1) or 0)
        if replicas > 0:
            spec["replicas"] = replicas
    primary = await ctx.cluster.get(DEPLOYMENT, c.namespace, f"{c.target}-primary")
    if primary is None:
        raise TargetError(f"{c.target}-primary.{c.namespace} not found")
    primary["spec"] = {**(primary.get("spec") or {}), **spec}
    primary["metadata"].pop("resourceVersion", None)
    await ctx.cluster.replace(primary)
