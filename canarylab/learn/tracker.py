"""Follow one learner through one lesson: feed engine events, evaluate the current step's check, advance.

Pure logic (no UI): the dashboard feeds it events and asks it for a :class:`StepView` to draw; ``--check``
does not use it (it drives :mod:`canarylab.learn.player` directly), but both evaluate the same checks.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

from canarylab.engine.events import EngineEvent
from canarylab.engine.ports import Cluster
from canarylab.learn.checks import Observation, Part, SimulateRunner, evaluate, run_simulate
from canarylab.learn.model import Action, Check, Lesson, Step

DEFAULT_EQUIVALENTS: dict[str, str] = {
    "bump": "kubectl -n test set image deployment/podinfo podinfod=stefanprodan/podinfo:<tag>",
    "fault": "kubectl -n test exec deploy/flagger-loadtester -- hey -z 1m -q 10 -c 2 "
             "http://podinfo-canary.test:9898/status/500",
    "rollback": "Flagger has no abort: a rollback webhook, then curl -d "
                "'{\"name\":\"podinfo\",\"namespace\":\"test\"}' http://flagger-loadtester.test/rollback/open",
    "promote": "Flagger has no promote-now: a confirm-promotion gate, then curl -d "
               "'{\"name\":\"podinfo\",\"namespace\":\"test\"}' http://flagger-loadtester.test/gate/open",
    "pause": "kubectl -n test patch canary podinfo --type=merge -p '{\"spec\":{\"suspend\":true}}' (false resumes)",
    "gate": "kubectl -n test exec deploy/flagger-loadtester -- curl -d '{\"name\":\"podinfo\",\"namespace\":\"test\"}' "
            "http://localhost:8080/gate/open",
    "apply": "kubectl apply -f <file>",
    "overview": "kubectl get canaries --all-namespaces",
    "help": "kubectl explain canary.spec.analysis",
    "lessons": "canarylab learn --list",
}
"""The kubectl/Flagger equivalent of each dashboard key (a step may give a more precise one)."""


def for_lab(lesson: Lesson, *, real: bool, work_dir: Path) -> Lesson:
    """The lesson as it runs on this lab.

    On a real lab nothing is preloaded: a first step asks the learner to ``kubectl apply`` the lesson's
    manifests (copied into the work directory) and checks that the cluster holds them.
    """
    if not real or not lesson.lab_files:
        return lesson
    names = [f.name for f in lesson.lab_files]
    command = " && ".join(f"kubectl apply -f {work_dir / n}" for n in names)
    check = Check("all", None, tuple(Check("matches", n) for n in names))
    setup = Step(
        title="Set up this lesson's lab",
        explain="This lesson needs its own objects in the cluster (" + ", ".join(names) + "). On a real lab you "
                "apply them yourself, as you would apply a Canary at work.",
        do="apply the lesson's manifests from another terminal", kubectl=command, check=check,
        hint="Run the kubectl command shown, with --context set to this lab's context.",
        auto=tuple(Action("apply", n) for n in names),
    )  # fmt: skip
    work = {**{f.name: f for f in lesson.lab_files}, **lesson.work_files}
    return replace(lesson, steps=(setup, *lesson.steps), work_files=work)


def work_dir_of(lesson: Lesson, work_root: Path) -> Path:
    """Where a lesson's files are edited: ``<work root>/NN-id``."""
    return work_root / f"{lesson.number:02d}-{lesson.id}"


def prepare_work_dir(lesson: Lesson, work_dir: Path) -> list[Path]:
    """Copy the lesson's work files into ``work_dir`` (an existing edit is kept); returns their paths."""
    work_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, source in lesson.work_files.items():
        target = work_dir / name
        if not target.exists():
            shutil.copyfile(source, target)
        paths.append(target)
    return paths


@dataclass(frozen=True)
class StepView:
    """What the lesson panel shows (pure data)."""

    lesson: str
    number: int
    step_index: int
    steps: int
    title: str
    explain: str
    do: str
    equivalents: tuple[tuple[str, str], ...]
    try_commands: tuple[str, ...]
    hint: str
    parts: tuple[Part, ...]
    complete: bool
    done: bool = False
    """The step shown is already done (the learner reads on with ``n``)."""
    summary: str = ""
    questions: tuple[str, ...] = ()
    files: tuple[str, ...] = ()
    note: str = ""


@dataclass
class Tracker:
    """The learner's place in one lesson, with the events seen since the current step began."""

    lesson: Lesson
    cluster: Cluster
    work_dir: Path
    real: bool = False
    step_index: int = 0
    simulate: SimulateRunner = run_simulate
    now: Callable[[], float] = time.monotonic
    on_advance: Callable[[int, bool], None] | None = None
    """Called with (the new step index, lesson complete) after each step passes: progress is saved here."""
    events: list[EngineEvent] = field(default_factory=list)
    parts: list[Part] = field(default_factory=list)
    note: str = ""
    done_parts: dict[int, list[Part]] = field(default_factory=dict)
    _step_started: float = 0.0
    _cache: dict[str, tuple[int, str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.step_index = max(0, min(self.step_index, len(self.lesson.steps)))
        self._step_started = self.now()

    @property
    def complete(self) -> bool:
        """Every step done."""
        return self.step_index >= len(self.lesson.steps)

    @property
    def step(self) -> Step | None:
        """The current step (``None`` once the lesson is complete)."""
        return None if self.complete else self.lesson.steps[self.step_index]

    def feed(self, events: Iterable[EngineEvent]) -> None:
        """Events from the engine, in order."""
        if not self.complete:
            self.events.extend(events)

    def hint_due(self) -> bool:
        """The hint shows once the learner has spent ``hintAfter`` on the step (it never decides completion)."""
        step = self.step
        return step is not None and self.now() - self._step_started >= step.hint_after

    async def update(self) -> bool:
        """Evaluate the current step's check; advance when it passes. Returns whether a step was completed."""
        step = self.step
        if step is None:
            return False
        namespace, canary = self.lesson.canary
        obs = Observation(self.events, self.cluster, namespace, canary, self.work_dir, self.simulate, self._cache)
        self.parts = await evaluate(step.check, obs)
        if not all(p.ok for p in self.parts):
            return False
        self.done_parts[self.step_index] = self.parts
        self.step_index += 1
        self.events = []
        self.parts = []
        self._step_started = self.now()
        if self.on_advance is not None:
            self.on_advance(self.step_index, self.complete)
        return True

    def view(self, key_label: Callable[[str], str] = lambda k: k, index: int | None = None) -> StepView:
        """The panel's content for step ``index`` (default: the current one); ``key_label`` turns a key id into
        the key as mapped (``bump`` -> ``b``). A step before the current one is shown as done."""
        lesson = self.lesson
        files = tuple(str(self.work_dir / n) for n in lesson.work_files)
        index = self.step_index if index is None else max(0, min(index, self.step_index))
        done = index < self.step_index
        step = lesson.steps[index] if index < len(lesson.steps) else None
        if step is None:
            return StepView(lesson.title, lesson.number, len(lesson.steps), len(lesson.steps), "Lesson complete",
                            lesson.goal, "", (), (), "", (), complete=True, done=True, summary=lesson.summary,
                            questions=lesson.questions, files=files, note=self.note)
        do = f"type in another terminal: {step.kubectl}" if self.real and step.kubectl else step.do
        equivalents = tuple((key_label(k), step.equivalents.get(k) or DEFAULT_EQUIVALENTS.get(k, ""))
                            for k in step.keys)
        if step.kubectl and not self.real and step.kubectl not in (c for _, c in equivalents):
            equivalents = (*equivalents, ("kubectl", step.kubectl))
        return StepView(
            lesson=lesson.title, number=lesson.number, step_index=index, steps=len(lesson.steps),
            title=step.title, explain=step.explain, do=do, equivalents=equivalents, try_commands=step.try_commands,
            hint=step.hint if not done and self.hint_due() else "",
            parts=tuple(self.done_parts.get(index, []) if done else self.parts), complete=False, done=done,
            files=files if step.edit else (), note="" if done else self.note,
        )  # fmt: skip
