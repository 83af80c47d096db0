"""The target workload: primary copy, readiness (flagger-spec 2.8), scaling, HPA copy and promotion.

A Deployment or a DaemonSet, as Flagger's two canary controllers. A DaemonSet cannot be scaled: Flagger
"scales it to zero" with a node selector no node carries (``flagger.app/scale-to-zero: "true"``) and back
by removing it; its readiness counts scheduled, updated and available daemon pods.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from canarylab.engine.configs import Config, copy_to_primary, rewrite_to_primary
from canarylab.engine.context import SCALE_TO_ZERO_LABEL, TickContext
from canarylab.engine.documents import copy_json
from canarylab.engine.kinds import DAEMON_SET, DEPLOYMENT, HPA, Kind, Obj
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


def workload_kind(canary: Canary) -> Kind:
    """The target's kind: ``DaemonSet`` or (the default) ``Deployment``."""
    return DAEMON_SET if canary.spec.target_ref.kind == "DaemonSet" else DEPLOYMENT


def is_daemon_set(canary: Canary) -> bool:
    return canary.spec.target_ref.kind == "DaemonSet"


async def get_target(ctx: TickContext) -> Obj | None:
    c = ctx.canary
    return await ctx.cluster.get(workload_kind(c), c.namespace, c.target)


async def get_primary(ctx: TickContext) -> Obj | None:
    c = ctx.canary
    return await ctx.cluster.get(workload_kind(c), c.namespace, f"{c.target}-primary")


def not_found(canary: Canary) -> str:
    """Flagger's Warning when the target is missing: ``deployment podinfo.test get query error: ...``."""
    kind = workload_kind(canary)
    word = kind.kind.lower()
    return f'{word} {canary.target_key} get query error: {kind.plural}.apps "{canary.target}" not found'


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
    word = workload_kind(canary).kind.lower()
    raise TargetError(f"{word} {canary.target_key} spec.selector.matchLabels must contain one of "
                      f"[{' '.join(SELECTOR_LABELS)}]")


def _primary_template(canary: Canary, deployment: Obj, label: str, value: str, cfgs: list[Config]) -> Obj:
    template = rewrite_to_primary(copy_json((deployment.get("spec") or {}).get("template") or {}), cfgs)
    pod_spec = template.get("spec")
    if isinstance(pod_spec, dict) and isinstance(pod_spec.get("nodeSelector"), dict):
        pod_spec["nodeSelector"].pop(SCALE_TO_ZERO_LABEL, None)  # the primary is never scaled to zero
        if not pod_spec["nodeSelector"]:
            del pod_spec["nodeSelector"]
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
    kind = workload_kind(canary)
    spec: Obj = {
        "selector": {"matchLabels": {label: f"{value}-primary"}},
        "template": _primary_template(canary, deployment, label, value, cfgs),
    }
    if kind is DEPLOYMENT:
        replicas = int(src.get("replicas", 1) or 0)
        spec["replicas"] = replicas if replicas > 0 else 1
    for key in _ROLLOUT_FIELDS[kind.kind]:
        if key in src:
            spec[key] = copy_json(src[key])
    return kind.new(canary.namespace, f"{canary.target}-primary", spec=spec) | {
        "metadata": {"name": f"{canary.target}-primary", "namespace": canary.namespace, "labels": labels,
                     "annotations": annotations, "ownerReferences": [owner_ref(ctx)]},
    }  # fmt: skip


_ROLLOUT_FIELDS = {
    "Deployment": ("progressDeadlineSeconds", "minReadySeconds", "revisionHistoryLimit", "strategy"),
    "DaemonSet": ("minReadySeconds", "revisionHistoryLimit", "updateStrategy"),
}


async def ensure_primary(ctx: TickContext, deployment: Obj, label: str, value: str, cfgs: list[Config]) -> Obj:
    """The primary workload (and its ``-primary`` configs), created when absent."""
    c = ctx.canary
    if is_daemon_set(c):
        strategy = (((deployment.get("spec") or {}).get("updateStrategy") or {}).get("type")) or "RollingUpdate"
        if strategy != "RollingUpdate":
            raise TargetError(f"createPrimaryDaemonSet failed: daemonset {c.target_key} must have RollingUpdate "
                              f"strategy but have {strategy}")
    primary = await get_primary(ctx)
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


def daemon_set_readiness(daemon_set: Obj, deadline: int, threshold: int, since: float | None,
                         now: float) -> Readiness:
    """Flagger's ``isDaemonSetReady``: every scheduled daemon pod updated and enough of them available. The
    deadline counts from the Canary's ``lastTransitionTime``, as Flagger's does."""
    meta = daemon_set.get("metadata") or {}
    status = daemon_set.get("status") or {}
    if int(meta.get("generation", 1)) > int(status.get("observedGeneration", 0)):
        return Readiness("waiting for rollout to finish: observed daemonset generation less than desired "
                         "generation")
    desired = int(status.get("desiredNumberScheduled", 0))
    updated = int(status.get("updatedNumberScheduled", 0))
    available = int(status.get("numberAvailable", 0))
    needed = int(desired * threshold / 100)
    if updated >= desired and available >= needed:
        return Readiness()
    if since is not None and since + deadline < now:
        return Readiness(f"exceeded its progressDeadlineSeconds: {deadline}", False)
    if updated < desired:
        return Readiness(f"waiting for rollout to finish: {updated} out of {desired} new pods have been updated")
    return Readiness(f"waiting for rollout to finish: {available} of {needed} (readyThreshold {threshold}%) "
                     "updated pods are available")


def _readiness(ctx: TickContext, workload: Obj, threshold: int) -> Readiness:
    c = ctx.canary
    if is_daemon_set(c):
        since = _parse_time(ctx.status.get("lastTransitionTime"))
        return daemon_set_readiness(workload, c.progress_deadline_seconds, threshold, since, ctx.now())
    return deployment_readiness(workload, c.progress_deadline_seconds, threshold, ctx.now())


async def primary_readiness(ctx: TickContext) -> Readiness:
    """``IsPrimaryReady``, with Flagger's message prefix."""
    c = ctx.canary
    primary = await get_primary(ctx)
    word = workload_kind(c).kind.lower()
    if primary is None:
        return Readiness(f"{c.target}-primary.{c.namespace} not ready: {word} {c.target}-primary not found")
    r = _readiness(ctx, primary, c.primary_ready_threshold)
    if r.ready:
        return r
    if is_daemon_set(c):
        return Readiness(f"primary daemonset {c.target}-primary.{c.namespace} not ready: {r.error}", r.retriable)
    return Readiness(f"{c.target}-primary.{c.namespace} not ready: {r.error}", r.retriable)


async def canary_readiness(ctx: TickContext, deployment: Obj) -> Readiness:
    """``IsCanaryReady``, with Flagger's message prefix."""
    c = ctx.canary
    r = _readiness(ctx, deployment, c.canary_ready_threshold)
    if r.ready:
        return r
    if is_daemon_set(c):
        # Flagger's own wording, misspelling included (pkg/canary/daemonset_ready.go)
        return Readiness(f"canary damonset {c.target_key} not ready with retryable {str(r.retriable).lower()}: "
                         f"{r.error}", r.retriable)
    return Readiness(f"canary deployment {c.target_key} not ready: {r.error}", r.retriable)


async def scale(ctx: TickContext, name: str, replicas: int) -> None:
    """Set ``spec.replicas`` of a Deployment in the Canary's namespace; a DaemonSet goes to zero (or back)
    by Flagger's node selector."""
    c = ctx.canary
    if is_daemon_set(c):
        value = "true" if replicas <= 0 else None
        await ctx.cluster.patch(DAEMON_SET, c.namespace, name, {"spec": {"template": {"spec": {
            "nodeSelector": {SCALE_TO_ZERO_LABEL: value}}}}})
        return
    await ctx.cluster.patch(DEPLOYMENT, c.namespace, name, {"spec": {"replicas": replicas}})


def scaled_to_zero(canary: Canary, workload: Obj) -> bool:
    """Whether the target is at zero: no replicas, or (DaemonSet) Flagger's node selector on its pods."""
    spec = workload.get("spec") or {}
    if is_daemon_set(canary):
        selector = ((spec.get("template") or {}).get("spec") or {}).get("nodeSelector") or {}
        return SCALE_TO_ZERO_LABEL in selector
    return int(spec.get("replicas", 1) if spec.get("replicas") is not None else 1) == 0


async def scale_from_zero(ctx: TickContext, deployment: Obj) -> None:
    """``ScaleFromZero``: target replicas if > 0; else the HPA's minReplicas if > 1, or the primary's, or 1.
    A DaemonSet loses Flagger's node selector."""
    c = ctx.canary
    if is_daemon_set(c):
        await scale(ctx, c.target, 1)
        return
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
    for key in _ROLLOUT_FIELDS[workload_kind(c).kind]:
        if key in src:
            spec[key] = copy_json(src[key])
    if c.spec.autoscaler_ref is None and not is_daemon_set(c):
        replicas = int(src.get("replicas", 1) or 0)
        if replicas > 0:
            spec["replicas"] = replicas
    primary = await get_primary(ctx)
    if primary is None:
        raise TargetError(f"{c.target}-primary.{c.namespace} not found")
    primary["spec"] = {**(primary.get("spec") or {}), **spec}
    primary["metadata"].pop("resourceVersion", None)
    await ctx.cluster.replace(primary)
