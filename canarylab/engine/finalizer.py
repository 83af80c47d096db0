"""Deletion and ``revertOnDeletion`` (flagger-spec 2.15, Flagger's ``finalizer.go``).

A Canary with ``spec.revertOnDeletion: true`` carries the finalizer ``finalizer.flagger.app``, so deleting it
only sets ``metadata.deletionTimestamp``. The engine then hands the workload back: phase Terminating, the
target Deployment scaled to the primary's replicas (or from zero when the primary is gone) and waited for,
the apex Service selector reverted when the user created that Service, the finalizer removed. Kubernetes
then deletes the Canary and garbage-collects what it owned (primary, generated Services, routing object,
primary HPA). Without ``revertOnDeletion`` there is no finalizer: the owned objects go at once and the target
stays at zero replicas, as with Flagger.
"""

from __future__ import annotations

from canarylab.engine import services, status, targets
from canarylab.engine.context import TickContext
from canarylab.engine.kinds import CANARY, Obj
from canarylab.engine.ports import Cluster, Conflict, NotFound
from canarylab.engine.targets import Readiness, TargetError

FINALIZER = "finalizer.flagger.app"
READY_BACKOFF = (3.0, 2.0, 4)
"""Flagger's wait for the reverted target: first delay in seconds, factor, attempts (delays capped at the
analysis interval)."""


def finalizers(obj: Obj) -> list[str]:
    """``metadata.finalizers`` of an object."""
    return [str(f) for f in (obj.get("metadata") or {}).get("finalizers") or []]


def has_finalizer(obj: Obj) -> bool:
    """Whether the Canary carries Flagger's finalizer."""
    return FINALIZER in ((obj.get("metadata") or {}).get("finalizers") or ())


def deleting(obj: Obj) -> bool:
    """Whether the object was deleted and waits for its finalizers."""
    return bool((obj.get("metadata") or {}).get("deletionTimestamp"))


async def set_finalizer(cluster: Cluster, obj: Obj, present: bool) -> Obj:
    """Add or remove Flagger's finalizer; guarded by ``resourceVersion``. Nothing is written when the finalizer
    is already as wanted. A stale ``obj`` (a real API server answers 409: the engine's own status writes move
    the ``resourceVersion`` on) is read again and the change retried, as client-go's ``RetryOnConflict``;
    a Canary found deleting meanwhile gets no new finalizer (Kubernetes refuses that)."""
    for attempt in range(4):
        meta = obj.get("metadata") or {}
        current = finalizers(obj)
        if (FINALIZER in current) == present or (present and deleting(obj)):
            return obj
        wanted = [*current, FINALIZER] if present else [f for f in current if f != FINALIZER]
        patch: Obj = {"metadata": {"finalizers": wanted or None}}
        if meta.get("resourceVersion"):
            patch["metadata"]["resourceVersion"] = meta["resourceVersion"]
        namespace, name = str(meta.get("namespace", "")), str(meta.get("name", ""))
        try:
            return await cluster.patch(CANARY, namespace, name, patch)
        except Conflict:
            fresh = await cluster.get(CANARY, namespace, name)
            if fresh is None:
                raise NotFound(f'canaries.flagger.app "{name}" not found in namespace "{namespace}"') from None
            if attempt == 3:
                raise
            obj = fresh
    raise AssertionError("unreachable")


async def wait_for_target(ctx: TickContext) -> Readiness:
    """Flagger's bounded wait for the target (``IsCanaryReady`` with backoff); non-retriable errors stop it."""
    c = ctx.canary
    delay, factor, attempts = READY_BACKOFF
    verdict = Readiness(f"canary deployment {c.target_key} not found")
    for attempt in range(attempts):
        target = await targets.get_target(ctx)
        if target is None:
            return Readiness(targets.not_found(c))
        verdict = await targets.canary_readiness(ctx, target)
        if verdict.ready or not verdict.retriable or attempt == attempts - 1:
            return verdict
        await ctx.clock.sleep(min(delay, c.interval_seconds))
        delay *= factor
    return verdict


async def finalize(ctx: TickContext) -> bool:
    """Revert the target and the apex Service (Flagger's ``finalize``); ``False`` after a Warning event when
    it has to be tried again (the caller keeps the finalizer then)."""
    c = ctx.canary
    if ctx.phase != "Terminating":
        await status.set_phase(ctx, "Terminating")
        await ctx.info(f"Terminating canary {c.key}")
    target = await targets.get_target(ctx)
    if target is None:
        await ctx.warn(targets.not_found(c))
        return False
    try:
        label, value = targets.selector_label(c, target)
    except TargetError as err:
        await ctx.warn(str(err))
        return False
    primary = await targets.get_primary(ctx)
    if targets.is_daemon_set(c):
        if targets.scaled_to_zero(c, target):
            await targets.scale_from_zero(ctx, target)  # Flagger's DaemonSet Finalize: ScaleFromZero
    elif primary is None:
        await targets.scale_from_zero(ctx, target)
    else:
        replicas = (primary.get("spec") or {}).get("replicas")
        replicas = 1 if replicas is None else int(replicas)
        if (target.get("spec") or {}).get("replicas") != replicas:
            await targets.scale(ctx, c.target, replicas)
    ready = await wait_for_target(ctx)
    if not ready.ready:
        await ctx.warn(ready.error)
        return False
    await services.revert_apex(ctx, label, value)
    return True
