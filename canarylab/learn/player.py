"""``canarylab learn --check``: play every lesson on the simulated lab, unattended.

For each step: perform its wrong action (if any) and let the lab run, asserting the check never passes; then
perform the right action and wait (in lab time) until the check passes. Lessons run on virtual time, so a
lesson with several full canary runs takes about a second; a lesson that needs a real Prometheus runs in
real time with short intervals.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from canarylab.engine.clock import run_virtual
from canarylab.engine.commands import Abort, OpenGate, Pause, Promote, Resume
from canarylab.engine.controller import EngineError
from canarylab.engine.events import EngineEvent
from canarylab.engine.kinds import CANARY
from canarylab.engine.ports import ClusterError
from canarylab.errors import UserError
from canarylab.learn.apply import apply_file
from canarylab.learn.checks import Observation, evaluate, run_simulate
from canarylab.learn.model import Action, Lesson, Step
from canarylab.learn.tracker import prepare_work_dir
from canarylab.sim.inputs import lab_objects
from canarylab.sim.lab import SimLab
from canarylab.validation import STRICT

POLL = 1.0  # lab seconds between two evaluations of a check
NAMESPACE = "test"
COMMANDS = {"abort": Abort, "promote": Promote, "pause": Pause, "resume": Resume, "openGate": OpenGate}


@dataclass
class LessonResult:
    """How one lesson played."""

    lesson: Lesson
    ok: bool = True
    lines: list[str] = field(default_factory=list)
    seconds: float = 0.0
    lab_seconds: float = 0.0


def lesson_lab(lesson: Lesson, *, speed: float | None, prometheus: str | None = None) -> SimLab:
    """The simulated lab a lesson starts on: the seed lab plus the lesson's manifests."""
    objects = lab_objects([str(f) for f in lesson.lab_files])
    if lesson.prometheus and prometheus is None:
        prometheus = "local"
    return SimLab(speed=speed if not prometheus else 1.0, prometheus=prometheus, objects=objects)


async def perform(action: Action, lab: SimLab, lesson: Lesson, work_dir: Path, *, validate: str = STRICT) -> str:
    """Do one action in the lab, as the learner's key, kubectl command or edit would; returns what was done.
    ``validate`` is ``--validate`` for the work files applied."""
    a = action.args if isinstance(action.args, dict) else {}
    namespace, canary = lesson.canary
    match action.name:
        case "setImage":
            await lab.set_image(namespace, a.get("deployment", "podinfo"), a.get("container", "podinfod"), a["image"])
            return f"set image {a['image']}"
        case "fault":
            await lab.set_fault(namespace, a.get("deployment", "podinfo"), float(a.get("errorRate", 0)),
                                float(a.get("latencyMs", 0)))
            return f"fault errorRate={a.get('errorRate', 0)} latencyMs={a.get('latencyMs', 0)}"
        case "clearFault":
            await lab.clear_fault(namespace, a.get("deployment", "podinfo"))
            return "fault cleared"
        case "write":
            shutil.copyfile(lesson.source.parent / "files" / a["source"], work_dir / a["file"])
            return f"edited {a['file']}"
        case "apply":
            lines = await apply_file(lab.cluster, work_dir / str(action.args), namespace, validate=validate)
            return "; ".join(lines)
        case "initialized":
            await _initialized(lab, lesson)
            return "the Canary is Initialized"
        case "wait":
            await lab.clock.sleep(float(action.args))
            return f"waited {action.args:g}s"
    command = COMMANDS[action.name]
    await lab.engine.send(command(namespace=namespace, name=a.get("canary", canary)))
    return action.name


async def play(lesson: Lesson, *, speed: float | None = None, log: Callable[[str], None] = lambda _: None,
               prometheus: str | None = None) -> LessonResult:
    """Play one lesson from a fresh lab; every step's outcome goes to ``log`` as it happens."""
    result = LessonResult(lesson)
    started = time.monotonic()
    work_dir = Path(tempfile.mkdtemp(prefix=f"canarylab-learn-{lesson.id}-"))
    try:
        prepare_work_dir(lesson, work_dir)
        lab = lesson_lab(lesson, speed=speed, prometheus=prometheus)
        events: list[EngineEvent] = []
        unsubscribe = lab.engine.subscribe(events.append)
        cache: dict[str, tuple[int, str]] = {}
        try:
            await lab.start()
            for number, step in enumerate(lesson.steps, 1):
                since = len(events)

                def observe(since: int = since) -> Observation:
                    ns, canary = lesson.canary
                    return Observation(events[since:], lab.cluster, ns, canary, work_dir, run_simulate, cache)

                problem = await _play_step(lab, lesson, step, observe, work_dir)
                name = f"  step {number}/{len(lesson.steps)} {step.title}"
                if problem:
                    result.ok = False
                    result.lines.append(f"{name}: FAILED: {problem}")
                    log(result.lines[-1])
                    break
                result.lines.append(f"{name}: ok (lab +{_mmss(lab.elapsed())})")
                log(result.lines[-1])
            failure = lab.failed_task()
            if failure is not None and result.ok:
                result.ok = False
                result.lines.append(f"  the simulated lab stopped: {failure!r}")
                log(result.lines[-1])
        finally:
            result.lab_seconds = lab.elapsed()
            unsubscribe()
            await lab.stop()
    except UserError as err:
        result.ok = False
        result.lines.append(f"  cannot start the lesson: {err}")
        log(result.lines[-1])
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
    result.seconds = time.monotonic() - started
    return result


async def _play_step(lab: SimLab, lesson: Lesson, step: Step, observe: Callable[[], Observation],
                     work_dir: Path, validate: str = STRICT) -> str:
    """``""`` when the step behaved, else what went wrong."""
    if step.wrong or step.wrong_wait:
        for action in step.wrong:
            # a wrong action may well be refused; what matters is that the check does not pass
            with contextlib.suppress(EngineError, ClusterError, UserError, ValueError):
                await perform(action, lab, lesson, work_dir, validate=validate)
        deadline = lab.elapsed() + step.wrong_wait
        while True:
            parts = await evaluate(step.check, observe())
            if all(p.ok for p in parts):
                done = ", ".join(p.text for p in parts)
                return f"the check passed after the wrong action {_names(step.wrong)} ({done})"
            if lab.elapsed() >= deadline:
                break
            await lab.clock.sleep(POLL)
    for action in step.auto:
        try:
            await perform(action, lab, lesson, work_dir, validate=validate)
        except (EngineError, ClusterError, UserError, ValueError) as err:
            return f"action {action.name} was refused: {err}"
    deadline = lab.elapsed() + step.within
    while True:
        parts = await evaluate(step.check, observe())
        if all(p.ok for p in parts):
            return ""
        if lab.elapsed() >= deadline:
            missing = ", ".join(p.text for p in parts if not p.ok)
            return f"not done after {_mmss(step.within)} of lab time: still waiting for {missing}"
        failure = lab.failed_task()
        if failure is not None:
            return f"the simulated lab stopped: {failure!r}"
        await lab.clock.sleep(POLL)


async def catch_up(lab: SimLab, lesson: Lesson, steps: int, work_dir: Path, *, speed: float,
                   log: Callable[[str], None] = lambda _: None, validate: str = STRICT) -> int:
    """Replay the first ``steps`` steps' actions on a fresh lab at ``speed`` (the learner did them before), then
    go back to the lab's own speed. Returns the steps replayed; stops early if one does not complete. The
    learner's work files are applied under ``validate`` (``--validate``)."""
    own = lab.clock.speed
    lab.clock.set_speed(speed)
    events: list[EngineEvent] = []
    unsubscribe = lab.engine.subscribe(events.append)
    try:
        for number, step in enumerate(lesson.steps[:steps]):
            since = len(events)

            def observe(since: int = since) -> Observation:
                ns, canary = lesson.canary
                return Observation(events[since:], lab.cluster, ns, canary, work_dir, run_simulate, {})

            # the learner's own edits are in the work files already: apply them, never the lesson's solution
            replay = replace(step, wrong=(), wrong_wait=0.0, auto=tuple(a for a in step.auto if a.name != "write"))
            log(f"canarylab: replaying step {number + 1}/{len(lesson.steps)}: {step.title}")
            if await _play_step(lab, lesson, replay, observe, work_dir, validate):
                return number
        return steps
    finally:
        unsubscribe()
        lab.clock.set_speed(own)


async def _initialized(lab: SimLab, lesson: Lesson, within: float = 600.0) -> None:
    """Wait until the lesson's Canary is Initialized, as a learner reading the first step does: shipping
    before that would only change the template Flagger copies to the primary, and start no run."""
    namespace, name = lesson.canary
    deadline = lab.elapsed() + within
    while lab.elapsed() < deadline:
        canary = lab.cluster.get_now(CANARY, namespace, name)
        if ((canary or {}).get("status") or {}).get("phase") not in (None, "", "Initializing"):
            return
        await lab.clock.sleep(POLL)


def _names(actions: tuple[Action, ...]) -> str:
    return "+".join(a.name for a in actions) or "(doing nothing)"


def _mmss(seconds: float) -> str:
    whole = int(seconds)
    return f"{whole // 60}m{whole % 60:02d}s"


def check_lessons(lessons: list[Lesson], *, out: Callable[[str], None] = print) -> int:
    """Play each lesson (virtual time unless it needs Prometheus); prints ``N passed, M failed`` last."""
    passed = failed = 0
    for lesson in lessons:
        out(f"lesson {lesson.label}: {lesson.title}")
        result = asyncio.run(play(lesson, log=out)) if lesson.prometheus else run_virtual(play(lesson, log=out))
        verdict = "passed" if result.ok else "FAILED"
        out(f"lesson {lesson.label}: {verdict} in {result.seconds:.1f}s ({_mmss(result.lab_seconds)} of lab time)")
        if result.ok:
            passed += 1
        else:
            failed += 1
    out(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 and passed > 0 else 1
