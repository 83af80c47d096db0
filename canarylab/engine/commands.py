"""Commands a user sends to the engine, beyond what Flagger offers (flagger#724, #1467, #1469, #1814)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class Command:
    """A command for the Canary ``name`` in ``namespace``."""

    namespace: str
    name: str


@dataclass(frozen=True, kw_only=True)
class Abort(Command):
    """Roll back now, as a failed run would; the event says it was manual."""


@dataclass(frozen=True, kw_only=True)
class Promote(Command):
    """Skip the remaining steps and promote, still through the promotion path."""


@dataclass(frozen=True, kw_only=True)
class Pause(Command):
    """Stop ticking this canary until resumed (kept on the Canary, so it survives a restart)."""


@dataclass(frozen=True, kw_only=True)
class Resume(Command):
    """Resume a paused canary at once."""


@dataclass(frozen=True, kw_only=True)
class OpenGate(Command):
    """Approve the gate (confirm-rollout, confirm-traffic-increase, confirm-promotion) the canary waits at."""


RUNNING = ("Progressing", "WaitingPromotion", "Promoting", "Finalising", "Waiting")
"""Phases with an analysis (or a promotion) under way: what :class:`Abort` can stop."""
PROMOTABLE = ("Progressing", "WaitingPromotion")
"""Phases :class:`Promote` can skip ahead from."""


def refusal(command: type[Command], key: str, phase: str, *, paused: bool = False,
            problem: str | None = None) -> str | None:
    """Why ``command`` cannot act on the Canary ``key`` (``name.namespace``) now, or ``None`` when it can.

    One place for the rules, so the dashboard can say why at once (before any confirmation) and the engine
    refuses with the same words. :class:`OpenGate` depends on the gate the canary waits at (the engine's)."""
    if issubclass(command, Pause | Resume):
        return None
    if paused:
        return f"{key} is paused; resume it first"
    if problem:
        return f"{key} is not run because its spec is invalid: {problem}"
    phase = phase or "Initializing"
    if issubclass(command, Abort) and phase not in RUNNING:
        return (f"{key} is {phase}: there is no analysis to abort (it starts when the target Deployment's pod "
                "template changes)")
    if issubclass(command, Promote) and phase not in PROMOTABLE:
        return f"{key} is {phase}: only a canary in Progressing or WaitingPromotion can be promoted now"
    return None
