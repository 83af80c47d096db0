"""Webhooks in the tick: gates, pre-rollout, rollout, rollback and post-rollout (flagger-spec 2.9, 6.1)."""

from __future__ import annotations

from canarylab.engine.alerts import raise_alert
from canarylab.engine.context import TickContext, webhook_payload
from canarylab.engine.events import WebhookResult
from canarylab.engine.ports import WebhookCall, WebhookResponse
from canarylab.engine.spec import CanaryWebhook
from canarylab.engine.status import set_iterations, set_phase


def _error_text(resp: WebhookResponse) -> str:
    return resp.error or resp.body or (f"status {resp.status}" if resp.status else "no response")


async def call_hook(ctx: TickContext, hook: CanaryWebhook, phase: str) -> WebhookResponse:
    """POST one hook with Flagger's payload; a gate opened by a command passes without asking."""
    c = ctx.canary
    if hook.name in ctx.notes.opened_gates:
        ctx.notes.opened_gates.discard(hook.name)
        resp = WebhookResponse(ok=True, status=None, body="opened by canarylab")
    else:
        call = WebhookCall(name=hook.name, type=hook.kind, url=hook.url,
                           payload=webhook_payload(ctx, phase, hook.metadata), timeout=hook.timeout_seconds,
                           retries=hook.retries, disable_tls=hook.disable_tls)  # fmt: skip
        resp = await ctx.webhooks.call(call)
    ctx.emit(WebhookResult(time=ctx.now(), namespace=c.namespace, name=c.name, hook=hook.name, type=hook.kind,
                           ok=resp.ok, status=resp.status, message="" if resp.ok else _error_text(resp)))
    return resp


async def confirm_rollout(ctx: TickContext) -> bool:
    """Every confirm-rollout hook must pass; the first closed one moves the canary to Waiting."""
    c = ctx.canary
    for hook in c.hooks("confirm-rollout"):
        resp = await call_hook(ctx, hook, ctx.phase)
        if not resp.ok:
            ctx.notes.waiting_gate = hook.name
            if ctx.phase != "Waiting":
                await set_phase(ctx, "Waiting")
                await ctx.warn(f"Halt {c.key} advancement waiting for approval {hook.name}")
                if not hook.mute_alert:
                    await raise_alert(ctx, "Canary is waiting for approval.", "warn")
            return False
        await ctx.info(f"Confirm-rollout check {hook.name} passed")
    ctx.notes.waiting_gate = None
    return True


async def confirm_traffic_increase(ctx: TickContext) -> bool:
    """Every confirm-traffic-increase hook must pass before a weight step; a halt costs no failed check."""
    c = ctx.canary
    for hook in c.hooks("confirm-traffic-increase"):
        resp = await call_hook(ctx, hook, "Progressing")
        if not resp.ok:
            ctx.notes.waiting_gate = hook.name
            await ctx.warn(f"Halt {c.key} advancement waiting for traffic increase approval {hook.name}")
            if not hook.mute_alert:
                await raise_alert(ctx, "Canary traffic increase is waiting for approval.", "warn")
            return False
        await ctx.info(f"Confirm-traffic-increase check {hook.name} passed")
    ctx.notes.waiting_gate = None
    return True


async def confirm_promotion(ctx: TickContext) -> bool:
    """Every confirm-promotion hook must pass; the first closed one moves the canary to WaitingPromotion."""
    c = ctx.canary
    for hook in c.hooks("confirm-promotion"):
        resp = await call_hook(ctx, hook, "Progressing")
        if not resp.ok:
            ctx.notes.waiting_gate = hook.name
            if ctx.phase != "WaitingPromotion":
                await set_phase(ctx, "WaitingPromotion")
                await ctx.warn(f"Halt {c.key} advancement waiting for promotion approval {hook.name}")
                if not hook.mute_alert:
                    await raise_alert(ctx, "Canary promotion is waiting for approval.", "warn")
            else:
                await set_iterations(ctx, c.analysis.iterations - 1)
            return False
        await ctx.info(f"Confirm-promotion check {hook.name} passed")
    ctx.notes.waiting_gate = None
    return True


async def pre_rollout(ctx: TickContext) -> bool:
    """Pre-rollout hooks in order; the first failure fails the tick's check."""
    c = ctx.canary
    for hook in c.hooks("pre-rollout"):
        resp = await call_hook(ctx, hook, "Progressing")
        if not resp.ok:
            await ctx.warn(f"Halt {c.key} advancement pre-rollout check {hook.name} failed {_error_text(resp)}")
            return False
        await ctx.info(f"Pre-rollout check {hook.name} passed")
    return True


async def rollout(ctx: TickContext) -> bool:
    """Rollout hooks (type ``rollout`` or empty) in order; silent on success."""
    c = ctx.canary
    for hook in c.hooks("rollout"):
        resp = await call_hook(ctx, hook, "Progressing")
        if not resp.ok:
            await ctx.warn(f"Halt {c.key} advancement external check {hook.name} failed {_error_text(resp)}")
            return False
    return True


async def rollback_requested(ctx: TickContext) -> bool:
    """Rollback hooks: a 2xx means "roll back now"."""
    for hook in ctx.canary.hooks("rollback"):
        resp = await call_hook(ctx, hook, ctx.phase)
        if resp.ok:
            await ctx.warn(f"Rollback check {hook.name} passed")
            return True
        await ctx.info(f"Rollback hook {hook.name} not signaling a rollback")
    return False


async def post_rollout(ctx: TickContext, phase: str) -> None:
    """Post-rollout hooks with ``Succeeded`` or ``Failed``; failures never change the outcome."""
    for hook in ctx.canary.hooks("post-rollout"):
        resp = await call_hook(ctx, hook, phase)
        if resp.ok:
            await ctx.info(f"Post-rollout check {hook.name} passed")
        else:
            await ctx.warn(f"Post-rollout hook {hook.name} failed {_error_text(resp)}")
