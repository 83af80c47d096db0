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
