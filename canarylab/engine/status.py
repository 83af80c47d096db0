"""Status writers with Flagger's semantics (flagger-spec 1.8): SyncStatus, SetStatusPhase and friends."""

from __future__ import annotations

from typing import Any

from canarylab.engine.context import TickContext, rfc3339_now
from canarylab.engine.documents import merge_patch
from canarylab.engine.events import PhaseChanged, StatusChanged
from canarylab.engine.kinds import CANARY

_PROMOTED: dict[str, tuple[str, str]] = {
    "Initializing": ("Unknown", "New {kind} detected, starting initialization."),
    "Initialized": ("True", "{kind} initialization completed."),
    "Waiting": ("Unknown", "Waiting for approval."),
    "WaitingPromotion": ("Unknown", "Waiting for approval."),
    "Progressing": ("Unknown", "New revision detected, progressing canary analysis."),
    "Promoting": ("Unknown", "Canary analysis completed, starting primary rolling update."),
    "Finalising": ("Unknown", "Canary analysis completed, routing all traffic to primary."),
    "Succeeded": ("True", "Canary analysis completed successfully, promotion finished."),
    "Failed": ("False", "Canary analysis failed, {kind} scaled to zero."),
}
_KEEPS_WEIGHT = ("Progressing", "Waiting", "Promoting")


def promoted_condition(phase: str, old: list[dict[str, Any]] | None, now: str,
                       kind: str = "Deployment") -> list[dict[str, Any]] | None:
    """The single ``Promoted`` condition for ``phase``; keeps its time while its status does not change.
    ``kind`` is the target's (Flagger writes ``spec.targetRef.kind`` into the messages)."""
    if phase not in _PROMOTED:
        return old
    status, message = _PROMOTED[phase]
    message = message.format(kind=kind)
    previous = next((c for c in old or [] if c.get("type") == "Promoted"), None)
    if previous and previous.get("status") == status and previous.get("reason") == phase:
        return old
    since = previous["lastTransitionTime"] if previous and previous.get("status") == status else now
    return [{"type": "Promoted", "status": status, "lastUpdateTime": now, "lastTransitionTime": since,
             "reason": phase, "message": message}]  # fmt: skip


async def write_status(ctx: TickContext, changes: dict[str, Any]) -> None:
    """Patch the status subresource, keep ``ctx`` current and emit PhaseChanged / StatusChanged."""
    now = rfc3339_now(ctx.clock)
    old_phase = ctx.phase
    changes = {**changes, "lastTransitionTime": now}
    phase = changes.get("phase", old_phase)
    conditions = promoted_condition(phase, ctx.status.get("conditions"), now, ctx.canary.spec.target_ref.kind)
    if conditions is not None and conditions != ctx.status.get("conditions"):
        changes["conditions"] = conditions
    c = ctx.canary
    await ctx.cluster.patch_status(CANARY, c.namespace, c.name, changes)
    merged = merge_patch(ctx.status, changes)  # the same merge the API server applied
    ctx.status.clear()
    ctx.status.update(merged)
    if phase != old_phase:
        ctx.emit(PhaseChanged(time=ctx.now(), namespace=c.namespace, name=c.name, old=old_phase, new=phase))
    st = ctx.status
    ctx.emit(StatusChanged(time=ctx.now(), namespace=c.namespace, name=c.name, phase=phase,
                           canary_weight=int(st.get("canaryWeight", 0)),
                           failed_checks=int(st.get("failedChecks", 0)),
                           iterations=int(st.get("iterations", 0))))  # fmt: skip


async def sync_status(ctx: TickContext, phase: str, spec_hash: str, *, weight: int = 0, failed: int = 0,
                      iterations: int = 0, tracked: dict[str, str] | None = None) -> None:
    """``SyncStatus``: phase, the three counters, ``lastAppliedSpec`` and ``trackedConfigs`` from the target."""
    changes: dict[str, Any] = {"phase": phase, "canaryWeight": weight, "failedChecks": failed,
                               "iterations": iterations, "lastAppliedSpec": spec_hash}  # fmt: skip
    if tracked is not None:
        # a merge patch cannot drop keys by omission: removed configs are written as null
        old = ctx.status.get("trackedConfigs") or {}
        changes["trackedConfigs"] = {**{k: None for k in old if k not in tracked}, **tracked}
    if phase == "Initialized":
        changes["lastPromotedSpec"] = spec_hash
    await write_status(ctx, changes)


async def set_phase(ctx: TickContext, phase: str) -> None:
    """``SetStatusPhase``: resets weight and iterations except in Progressing/Waiting/Promoting."""
    changes: dict[str, Any] = {"phase": phase}
    if phase not in _KEEPS_WEIGHT:
        changes["canaryWeight"] = 0
        changes["iterations"] = 0
    if phase == "WaitingPromotion":
        changes["iterations"] = ctx.canary.analysis.iterations - 1
    if phase in ("Initialized", "Succeeded"):
        changes["lastPromotedSpec"] = ctx.status.get("lastAppliedSpec", "")
    await write_status(ctx, changes)


async def set_weight(ctx: TickContext, weight: int) -> None:
    await write_status(ctx, {"canaryWeight": weight})


async def set_failed_checks(ctx: TickContext, failed: int) -> None:
    await write_status(ctx, {"failedChecks": failed})


async def set_iterations(ctx: TickContext, iterations: int) -> None:
    await write_status(ctx, {"iterations": iterations})


async def set_session_cookies(ctx: TickContext, changes: dict[str, Any]) -> None:
    """The session affinity cookies of the run (``sessionAffinityCookie`` and friends): Flagger sets them on its
    copy of the Canary in SetRoutes and its next status write carries them; written here at once, alone (no
    transition time, no events), so a restarted engine keeps the cookies users hold."""
    c = ctx.canary
    await ctx.cluster.patch_status(CANARY, c.namespace, c.name, changes)
    merged = merge_patch(ctx.status, changes)
    ctx.status.clear()
    ctx.status.update(merged)
