"""The hint line under the detail: what to press next in the seed walkthrough (pure).

It accounts for what else is true on screen: an injected fault (a faulty revision stays faulty; a new image
starts clean), a ship queued until the Canary can analyse it, a target changed while it was initializing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from canarylab.screens.tags import tag

if TYPE_CHECKING:
    from canarylab.engine.controller import CanaryState
    from canarylab.session import FaultInfo

QUEUE_PHASES = ("", "Initializing", "Promoting", "Finalising")
"""Phases in which ``b`` queues the image instead of setting it: during initialization Flagger records a
changed target as already applied (the primary keeps the first version and no analysis ever runs), and
during a promotion the primary would take the new spec without an analysis."""


def queue_until(phase: str) -> str:
    """What a queued ship waits for in ``phase``: ``the Canary is Initialized`` or ``the promotion is done``."""
    return "the promotion is done" if phase in ("Promoting", "Finalising") else "the Canary is Initialized"


def hint(state: CanaryState | None, next_image: str, *, readonly: bool, supports_faults: bool,
         width: int | None = None, fault: FaultInfo | None = None, queued: str | None = None,
         primary_image: str = "", canary_image: str = "") -> str:
    """One sentence for the current phase; mutating keys are not suggested under ``--readonly``.

    ``width``: the columns the line has; when the sentence is longer, a shorter wording of it. ``fault``: the
    fault on the canary's Deployment (active or left behind), ``queued``: an image waiting to be shipped,
    ``primary_image``/``canary_image``: what the pods panel shows."""
    long, short = _hints(state, next_image, readonly=readonly, supports_faults=supports_faults,
                         fault=fault if fault is not None and fault.active else None, queued=queued,
                         primary_image=primary_image, canary_image=canary_image)
    return long if width is None or len(long) <= width else short


def _hints(state: CanaryState | None, next_image: str, *, readonly: bool, supports_faults: bool,
           fault: FaultInfo | None, queued: str | None, primary_image: str, canary_image: str) -> tuple[str, str]:
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
    if queued and phase in QUEUE_PHASES:
        until = queue_until(phase)
        return (f"{tag(queued)} is queued: it ships as soon as {until}",
                f"{tag(queued)} queued until {until.removeprefix('the ')}")
    if phase in ("Initialized", "Succeeded", "Failed"):
        if fault is not None:
            what = fault.what()
            return (f"{tag(fault.image)} keeps its fault ({what}): press b to ship {tag(next_image)}, a new image "
                    "starts clean", f"b ships {tag(next_image)} (starts clean)")
        if phase == "Initialized" and primary_image and canary_image and primary_image != canary_image:
            # Flagger's dead end: the target changed while the Canary was initializing (by kubectl, say)
            return (f"{tag(canary_image)} was set while initializing, so it is never analysed and the primary "
                    f"keeps {tag(primary_image)}: press b to ship {tag(next_image)}",
                    f"{tag(canary_image)} not analysed: b ships {tag(next_image)}")
        then = ", then f to break it" if supports_faults else ""
        short = f"b ships {tag(next_image)}" + (", f breaks it" if then else "")
        return f"press b to ship {tag(next_image)}{then}", short
    if phase in ("Progressing", "WaitingPromotion", "Waiting"):
        if fault is not None:
            return (f"analysis running with a fault on {tag(fault.image)} ({fault.what()}): expect failed checks; "
                    "f clears it, r rolls back", f"fault {fault.what()}: f clears · r roll back")
        extra = "f to inject a fault, " if supports_faults else ""
        short = ("f fault · " if supports_faults else "") + "p promote · r roll back · space pause"
        return f"analysis running: {extra}p to promote now, r to roll back, space to pause", f"running: {short}"
    if phase in ("Promoting", "Finalising"):
        return "promoting: the primary is taking the canary's spec", "promoting the canary's spec"
    if phase in ("", "Initializing"):
        return ("initializing: the engine is creating the primary, services and routing; b queues a new image "
                "until it is done", "initializing… (b queues a ship)")
    return f"{phase}: nothing to do", phase
