"""The hint line under the detail: what to press next in the seed walkthrough (pure)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from canarylab.screens.tags import tag

if TYPE_CHECKING:
    from canarylab.engine.controller import CanaryState


def hint(state: CanaryState | None, next_image: str, *, readonly: bool, supports_faults: bool) -> str:
    """One sentence for the current phase; mutating keys are not suggested under ``--readonly``."""
    if state is None:
        return "waiting for the engine to see a Canary…"
    if state.problem:
        return f"this Canary is not run: {state.problem}"
    if readonly:
        return "read-only: watching; press ctrl+s to export a report, ? for keys"
    if state.waiting_gate:
        return f"waiting at gate {state.waiting_gate}: press g to open it"
    if state.paused:
        return "analysis paused: press space to resume"
    phase = state.phase
    if phase in ("Initialized", "Succeeded", "Failed"):
        return f"press b to ship {tag(next_image)}" + (", then f to break it" if supports_faults else "")
    if phase == "Progressing":
        extra = "f to inject a fault, " if supports_faults else ""
        return f"analysis running: {extra}p to promote now, r to roll back, space to pause"
    if phase in ("Promoting", "Finalising"):
        return "promoting: the primary is taking the canary's spec"
    return "initializing: the engine is creating the primary, services and routing"
