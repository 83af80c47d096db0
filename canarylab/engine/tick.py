"""One tick of Flagger's analysis (``advanceCanary``, flagger-spec 2.4), step by step, through the ports.

The order of the steps, the counters and the event wording are Flagger's; the numbered comments refer to
the steps of flagger-spec 2.4. Commands beyond Flagger (abort, promote now) enter at the points where
Flagger's own rollback and promotion happen, so they take the same paths.
"""

from __future__ import annotations

from canarylab.engine import configs, hooks, routing, status, targets
from canarylab.engine.alerts import raise_alert
from canarylab.engine.checks import providers_online, run_metric_checks
from canarylab.engine.context import TickContext, template_hash
from canarylab.engine.kinds import Obj
from canarylab.engine.routing import RoutingError
from canarylab.engine.services import discovered_ports, initialize_services, reconcile_apex
from canarylab.engine.targets import TargetError

ACTIVE = ("Progressing", "WaitingPromotion", "Promoting", "Finalising")
ADVANCING = ("Initializing", "Progressing", "Waiting", "Promoting", "Finalising", "WaitingPromotion")


async def advance_canary(ctx: TickContext) -> None:
    """Run one tick for ``ctx.canary`` (already re-read and parsed by the caller)."""
    c = ctx.canary
    # 1. suspended canaries do nothing but say so
    if c.spec.suspend:
        await ctx.info("skipping canary run as object is suspended")
        return
    if not ctx.phase:
        # Flagger's syncHandler marks a new Canary Initializing before its first tick (flagger-spec 2.1).
        await status.write_status(ctx, {"phase": "Initializing", "canaryWeight": 0, "failedChecks": 0,
                                        "iterations": 0})  # fmt: skip
    # 2. the target and its selector label
    target = await targets.get_target(ctx)
    if target is None:
        await ctx.warn(targets.not_found(c))
        return
    try:
        label, value = targets.selector_label(c, target)
    except TargetError as err:
        await ctx.warn(str(err))
        return
    try:
        cfgs = await configs.target_configs(ctx, target)
    except configs.ConfigError as err:
        await ctx.warn(str(err))
        return
    tracked = configs.tracked(cfgs)
    initializing = ctx.phase in ("", "Initializing")
    # 3. canary and primary services
    ports = discovered_ports(ctx, target) if c.spec.service.port_discovery else {}
    await initialize_services(ctx, label, value, ports)
    # 4. metric providers online (non-blocking)
    if not c.skip_analysis and initializing:
        problem = await providers_online(ctx)
        if problem:
            await ctx.warn(f"Error checking metric providers: {problem}")
        else:
            await ctx.info("all the metrics providers are available!")
    # 6. the primary, and during initialization its readiness
    try:
        await targets.ensure_primary(ctx, target, label, value, cfgs)
    except TargetError as err:
        await ctx.warn(str(err))
        return
    if initializing and not c.skip_analysis:
        ready = await targets.primary_readiness(ctx)
        if not ready.ready:
            await ctx.warn(ready.error)
            return
    # 7. the primary HPA (created during initialization only)
    try:
        await targets.reconcile_primary_hpa(ctx, init=True)
    except TargetError as err:
        await ctx.warn(str(err))
        return
    # 8. the apex service selects the primary
    await reconcile_apex(ctx, label, value, ports)
    # 9. the target waits at zero replicas
    if initializing:
        await targets.scale(ctx, c.target, 0)
        target = await targets.get_target(ctx) or target
    # 10. the routing object
    await routing.reconcile(ctx)
    spec_hash = template_hash(target)
    # 11. initialization done
    if initializing:
        await status.sync_status(ctx, "Initialized", spec_hash, tracked=tracked)
        await ctx.info(f"Initialization done! {c.key}")
        await raise_alert(ctx, f"New {c.spec.target_ref.kind} detected, initialization completed.", "info",
                          metadata=True)
        return
    # 12. anything to do?
    if not await _should_advance(ctx, spec_hash, cfgs):
        return
    # 13. the primary must be ready
    if not c.skip_analysis:
        ready = await targets.primary_readiness(ctx)
        if not ready.ready:
            await ctx.warn(ready.error)
            if not ready.retriable:
                if ctx.phase in ("Promoting", "Finalising"):
                    await _failed_promotion(ctx, ready.error)
                else:
                    await rollback(ctx)
            return
    # 14. weights from the routing object
    try:
        primary_weight, canary_weight = await routing.get_routes(ctx)
    except RoutingError as err:
        await ctx.warn(str(err))
        return
    # command: abort takes Flagger's rollback path at once
    if ctx.notes.abort:
        ctx.notes.abort = False
        if ctx.phase in ACTIVE or ctx.phase == "Waiting":
            await ctx.warn(f"Rolling back {c.key} manual abort requested")
            await rollback(ctx)
            return
    # 15. a new run starts (gates first) or a finished one stays idle
    if ctx.phase not in ACTIVE:
        if not await hooks.confirm_rollout(ctx):
            return
        await ctx.info(f"New revision detected! Scaling up {c.target_key}", phase="Progressing")
        await raise_alert(ctx, "New revision detected, progressing canary analysis.", "info", metadata=True)
        await targets.scale_from_zero(ctx, target)
        await status.sync_status(ctx, "Progressing", spec_hash, tracked=tracked)
        return
    # 16. a new revision during the analysis restarts it
    if ctx.phase in ("Progressing", "WaitingPromotion") and _changed(ctx, spec_hash, cfgs):
        await ctx.info(f"New revision detected! Restarting analysis for {c.target_key}")
        await routing.set_routes(ctx, 100, 0)
        await status.sync_status(ctx, "Progressing", spec_hash, tracked=tracked)
        return
    # 17. the canary must be ready (``target`` was read at step 2 of this tick)
    ready = await targets.canary_readiness(ctx, target)
    if not ready.ready:
        await ctx.warn(ready.error)
        if not ready.retriable:
            await raise_alert(ctx, f"Progress deadline exceeded {ready.error}", "error")
            await rollback(ctx)
        return
    # 18. skipAnalysis promotes straight away
    if c.skip_analysis:
        await _skip_analysis(ctx, target, label, value, cfgs)
        return
    # 19. rollback hooks
    if ctx.phase in ("Progressing", "Waiting", "WaitingPromotion") and await hooks.rollback_requested(ctx):
        await ctx.warn(f"Rolling back {c.key} manual webhook invoked")
        await raise_alert(ctx, "Rolling back manual webhook invoked", "warn")
        await rollback(ctx)
        return
    # 20. promotion: wait for the primary (step 13), then route traffic back to it
    if ctx.phase == "Promoting":
        try:
            await targets.reconcile_primary_hpa(ctx, init=False)
        except TargetError as err:
            await ctx.warn(str(err))
        await _promotion_traffic_shift(ctx, primary_weight, canary_weight)
        return
    # 21. finalising: the canary goes back to zero, the run succeeded
    if ctx.phase == "Finalising":
        await targets.scale(ctx, c.target, 0)
        await status.set_phase(ctx, "Succeeded")
        await hooks.post_rollout(ctx, "Succeeded")
        await ctx.info(f"Promotion completed! Scaling down {c.target_key}")
        await raise_alert(ctx, "Canary analysis completed successfully, promotion finished.", "info")
        return
    # 22. the threshold is tested at the start of the tick
    if ctx.phase in ("Progressing", "WaitingPromotion") and \
            int(ctx.status.get("failedChecks", 0)) >= c.threshold:
        await rollback(ctx)
        return
    # command: promote now skips the remaining steps, through Flagger's promotion path
    if ctx.notes.promote:
        ctx.notes.promote = False
        ctx.notice("manual promotion requested: skipping the remaining steps")
        await _promote(ctx, target, label, value, cfgs)
        return
    # 23. pre-rollout hooks on the first step, the analysis afterwards
    mirrored = ctx.notes.mirrored
    if canary_weight == 0 and int(ctx.status.get("iterations", 0)) == 0 and not (c.analysis.mirror and mirrored):
        await ctx.info(f"Starting canary analysis for {c.target_key}")
        if not await hooks.pre_rollout(ctx):
            await status.set_failed_checks(ctx, int(ctx.status.get("failedChecks", 0)) + 1)
            return
    elif not await hooks.rollout(ctx) or not await run_metric_checks(ctx):
        await status.set_failed_checks(ctx, int(ctx.status.get("failedChecks", 0)) + 1)
        return
    # 24. the strategy moves the canary one step
    if c.strategy == "ab-testing":
        await _run_ab(ctx, target, label, value, cfgs)
    elif c.strategy == "blue-green":
        await _run_blue_green(ctx, target, label, value, cfgs)
    elif c.next_step_weight(canary_weight) > 0:
        if not mirrored and ctx.phase not in ("Promoting", "WaitingPromotion", "Finalising") \
                and not await hooks.confirm_traffic_increase(ctx):
            return
        await _run_canary(ctx, target, label, value, cfgs, primary_weight, canary_weight)


def _template_changed(ctx: TickContext, spec_hash: str) -> bool:
    """``hasSpecChanged``: a hash equal to the promoted spec is never a change (manual revert)."""
    applied = ctx.status.get("lastAppliedSpec", "")
    if not applied:
        return True
    if spec_hash == ctx.status.get("lastPromotedSpec"):
        return False
    return spec_hash != applied


def _changed(ctx: TickContext, spec_hash: str, cfgs: list[configs.Config]) -> bool:
    """``HasTargetChanged || HaveDependenciesChanged``."""
    return _template_changed(ctx, spec_hash) or configs.changed(ctx.status, cfgs)


async def _should_advance(ctx: TickContext, spec_hash: str, cfgs: list[configs.Config]) -> bool:
    if not ctx.status.get("lastAppliedSpec") or ctx.phase in ADVANCING:
        return True
    changed = _changed(ctx, spec_hash, cfgs)
    tracked = configs.tracked(cfgs)
    if ctx.phase == "Failed" and (ctx.status.get("lastAppliedSpec") != spec_hash
                                  or (ctx.status.get("trackedConfigs") or {}) != tracked):
        # Flagger re-syncs a failed canary's lastAppliedSpec, so re-applying the failed spec later
        # (after a manual revert) starts a new run.
        old = ctx.status.get("trackedConfigs") or {}
        await status.write_status(ctx, {"lastAppliedSpec": spec_hash, "trackedConfigs": {
            **{k: None for k in old if k not in tracked}, **tracked}})
    return changed


async def rollback(ctx: TickContext) -> None:
    """Flagger's ``rollback()``: all traffic to the primary, canary to zero, Failed, post-rollout hooks."""
    c = ctx.canary
    failed = int(ctx.status.get("failedChecks", 0))
    if failed >= c.threshold:
        await ctx.warn(f"Rolling back {c.key} failed checks threshold reached {failed}")
        await raise_alert(ctx, f"Failed checks threshold reached {failed}", "error")
    await routing.set_routes(ctx, 100, 0)
    await ctx.warn(f"Canary failed! Scaling down {c.key}", phase="Failed")
    await targets.scale(ctx, c.target, 0)
    target = await targets.get_target(ctx)
    spec_hash = template_hash(target) if target else str(ctx.status.get("lastAppliedSpec", ""))
    try:
        tracked: dict[str, str] | None = configs.tracked(await configs.target_configs(ctx, target or {}))
    except configs.ConfigError:
        tracked = None
    await status.sync_status(ctx, "Failed", spec_hash, tracked=tracked)
    await hooks.post_rollout(ctx, "Failed")


async def _failed_promotion(ctx: TickContext, error: str) -> None:
    """``handleFailedPromotion``: the primary broke while promoting; all traffic stays on the canary."""
    c = ctx.canary
    await ctx.warn(f"Promotion of {c.target_key} failed, primary not ready: {error}")
    await raise_alert(ctx, f"Promotion failed, primary not ready: {error}", "error")
    await routing.set_routes(ctx, 0, 100)
    await status.write_status(ctx, {"phase": "Failed", "canaryWeight": 100})
    await hooks.post_rollout(ctx, "Failed")


async def _promote(ctx: TickContext, target: Obj, label: str, value: str, cfgs: list[configs.Config]) -> None:
    c = ctx.canary
    await ctx.info(f"Copying {c.target_key} template spec to {c.target}-primary.{c.namespace}")
    await targets.promote(ctx, target, label, value, cfgs)
    await status.set_phase(ctx, "Promoting")


async def _run_canary(ctx: TickContext, target: Obj, label: str, value: str, cfgs: list[configs.Config],
                      primary: int, canary: int) -> None:
    """``runCanary``: one weight step while below maxWeight (overshoot allowed), else promotion."""
    c = ctx.canary
    if canary < c.max_weight:
        step = c.next_step_weight(canary)
        mirrored = False
        if c.analysis.mirror and canary == 0:
            # one step of mirroring first: every request also reaches the canary, only the primary answers
            mirrored = not ctx.notes.mirrored
            primary, canary = (100, 0) if mirrored else (100 - step, step)
        else:
            primary = max(0, primary - step)
            canary = min(100, canary + step)
        await routing.set_routes(ctx, primary, canary, mirrored=mirrored)
        await status.set_weight(ctx, canary)
        await ctx.info(f"Advance {c.key} canary weight {canary}")
        return
    if not await hooks.confirm_promotion(ctx):
        return
    await _promote(ctx, target, label, value, cfgs)


async def _run_ab(ctx: TickContext, target: Obj, label: str, value: str, cfgs: list[configs.Config]) -> None:
    """``runAB``: the matched requests go to the canary (its rule at 0/100) for ``iterations`` ticks, then
    promotion. Unmatched requests stay on the primary throughout."""
    c = ctx.canary
    n = c.analysis.iterations
    i = int(ctx.status.get("iterations", 0))
    if n > i:
        await routing.set_routes(ctx, 0, 100)
        await status.set_iterations(ctx, i + 1)
        await ctx.info(f"Advance {c.key} canary iteration {i + 1}/{n}")
        return
    if not await hooks.confirm_promotion(ctx):
        return
    if n == i:
        await _promote(ctx, target, label, value, cfgs)


async def _run_blue_green(ctx: TickContext, target: Obj, label: str, value: str,
                          cfgs: list[configs.Config]) -> None:
    """``runBlueGreen``: count iterations at weight 0, then all traffic to the canary, then promote."""
    c = ctx.canary
    n = c.analysis.iterations
    i = int(ctx.status.get("iterations", 0))
    if n > i:
        if c.analysis.mirror and not ctx.notes.mirrored:
            await routing.set_routes(ctx, 100, 0, mirrored=True)  # mirror during the whole Blue/Green test
        await status.set_iterations(ctx, i + 1)
        await ctx.info(f"Advance {c.key} canary iteration {i + 1}/{n}")
        return
    if n < i:
        await _promote(ctx, target, label, value, cfgs)
        return
    if not await hooks.confirm_promotion(ctx):
        return
    await ctx.info("Stop traffic mirroring and route all traffic to canary" if c.analysis.mirror
                   else "Routing all traffic to canary")
    await routing.set_routes(ctx, 0, 100)
    await status.set_iterations(ctx, i + 1)


async def _promotion_traffic_shift(ctx: TickContext, primary: int, canary: int) -> None:
    """``runPromotionTrafficShift``: all traffic back at once, or by stepWeightPromotion per tick."""
    c = ctx.canary
    step = c.analysis.step_weight_promotion
    if step <= 0:
        await ctx.info("Routing all traffic to primary")
        await routing.set_routes(ctx, 100, 0)
        await status.set_phase(ctx, "Finalising")
        return
    if canary > 0:
        primary = min(100, primary + step)
        canary = max(0, canary - step)
        await routing.set_routes(ctx, primary, canary)
        await ctx.info(f"Advance {c.key} primary weight {primary}")
        if primary == 100:
            await status.set_phase(ctx, "Finalising")
        else:
            await status.set_weight(ctx, canary)


async def _skip_analysis(ctx: TickContext, target: Obj, label: str, value: str,
                         cfgs: list[configs.Config]) -> None:
    """The skipAnalysis path (flagger-spec 2.13): promote at once, canary to zero, Succeeded."""
    c = ctx.canary
    await routing.set_routes(ctx, 100, 0)
    await ctx.info(f"Copying {c.target_key} template spec to {c.target}-primary.{c.namespace}")
    await targets.promote(ctx, target, label, value, cfgs)
    try:
        await targets.reconcile_primary_hpa(ctx, init=False)
    except TargetError as err:
        await ctx.warn(str(err))
    await targets.scale(ctx, c.target, 0)
    await status.set_phase(ctx, "Succeeded")
    await hooks.post_rollout(ctx, "Succeeded")
    await ctx.info(f"Promotion completed! Canary analysis was skipped for {c.target_key}")
    await raise_alert(ctx, "Canary analysis was skipped, promotion finished.", "info")
