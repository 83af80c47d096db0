"""The hint line under the detail: what to press next in the seed walkthrough (pure)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from canarylab.screens.tags import tag

if TYPE_CHECKING:
    from canarylab.engine.controller import CanaryState


def hint(state: CanaryState | None, next_image: str, *, readonly: bool, supports_faults: bool,
         width: int | None = None) -> str:
    """One sentence for the current phase; mutating keys are not suggested under ``--readonly``.

    ``width``: the columns the line has; when the sentence is longer, a shorter wording of it."""
    long, short = _hints(state, next_image, readonly=readonly, supports_faults=supports_faults)
    return long if width is None or len(long) <= width else short


def _hints(state: CanaryState | None, next_image: str, *, readonly: bool, supports_faults: bool) -> tuple[str, str]:
    """``(sentence, short form)``."""
    if state is None:
        return "waiting for the engine to see a Canary…", "waiting for a Canary…"
    if state.problem:
        return f"this Canary is not run: {state.problem}", f"not run: {state.problem}"
    if readonly:
        return "read-only: watching; press ctrl+s to export a report, ? for keys", "read-only · ^s report · ? keys"
    if state.waiting_gate:
        return f"waiting at gate {state.waiting_gate}: press g to open it", f"gate {state.waiting_gate}: g opens it"
    if state.paused:
        return "analysis paused: press space to resume", "paused: space resumes"
    phase = state.phase
    if phase in ("Initialized", "Succeeded", "Failed"):
        then = ", then f to break it" if supports_faults else ""
        short = f"b ships {tag(next_image)}" + (", f breaks it" if then else "")
        return f"press b to ship {tag(next_image)}{then}", short
    if phase == "Progressing":
        extra = "f to inject a fault, " if supports_faults else ""
        short = ("f fault · " if supports_faults else "") + "p promote · r roll back · space pause"
        return f"analysis running: {extra}p to promote now, r to roll back, space to pause", f"running: {short}"
    if phase in ("Promoting", "Finalising"):
        return "promoting: the primary is taking the canary's spec", "promoting the canary's spec"
    return "initializing: the engine is creating the primary, services and routing", "initializing…"
