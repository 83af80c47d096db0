"""Lessons as data: one YAML file per lesson under ``canarylab/learn/lessons/``, validated on load.

A lesson has a title, a goal, the lab it runs on (extra manifests on top of the seed lab), files the learner
edits, steps, and a closing summary with questions. A step has

* ``explain``: what Flagger does now, and why;
* ``do``: what to do, as a dashboard key (``keys``, by keymap id), a kubectl command (``kubectl``), or a YAML
  edit of a work file (``edit``), with the kubectl/Flagger equivalent of every key (``equivalents``);
* ``hint`` (shown after ``hintAfter`` of real time without progress);
* ``check``: when the step is done, from engine events and cluster state (:mod:`canarylab.learn.checks`);
* ``auto`` / ``wrong``: the right action and a wrong one, which ``canarylab learn --check`` performs to prove
  that the check passes for the one and not for the other.

Every problem in a lesson file is reported with the file and the field path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from canarylab.engine.durations import parse_duration
from canarylab.errors import UserError

LESSONS_DIR = Path(str(resources.files("canarylab.learn") / "lessons"))
DEFAULT_HINT_AFTER = 45.0
DEFAULT_WITHIN = 1800.0  # lab seconds --check waits for a check to pass
DEFAULT_CANARY = ("test", "podinfo")
KEY_IDS = ("bump", "fault", "rollback", "promote", "pause", "gate", "overview", "help", "apply", "lessons")
"""Dashboard key ids a step may name: :mod:`canarylab.keymap`'s, plus learn mode's ``apply`` and ``lessons``
(kept here so lessons load without Textual; a test holds the two lists together)."""

CHECK_KINDS: dict[str, str] = {
    "all": "every sub-check passes",
    "any": "one sub-check passes",
    "event": "a Kubernetes Event on the Canary, since the step began, contains this text",
    "warning": "a Warning Event on the Canary, since the step began, contains this text",
    "phase": "the Canary's status.phase is this",
    "weight": "the canary weight reached atLeast (since the step began)",
    "canaryWeightStayed": "the canary weight never went above max since the step began",
    "metric": "a metric check named name was evaluated (since the step began) with this verdict (ok)",
    "webhook": "a webhook named name answered (since the step began) with this verdict (ok)",
    "paused": "the Canary is paused (true) or not (false)",
    "image": "a container image of the Deployment contains this text",
    "exists": "an object of this kind and name exists in the lesson's namespace",
    "canaryWebhook": "the Canary in the cluster has a webhook of this type",
    "canaryMetric": "the Canary in the cluster has a metric check referencing this MetricTemplate",
    "matches": "every object of this lesson file is in the cluster with the same fields",
    "simulate": "canarylab simulate with this scenario exits with this code",
}
ACTIONS: dict[str, str] = {
    "setImage": "kubectl set image (deployment, container, image)",
    "fault": "inject errors or latency in a Deployment (simulated lab): deployment, errorRate, latencyMs",
    "clearFault": "remove a fault: deployment",
    "abort": "roll back now (key r)",
    "promote": "promote now (key p)",
    "pause": "pause the analysis (key space)",
    "resume": "resume the analysis (key space)",
    "openGate": "open the gate the canary waits at (key g)",
    "write": "write a lesson file into the work directory, as the learner's edit would: file, source",
    "apply": "kubectl apply -f a work file",
    "wait": "let the lab run for a duration of lab time",
    "initialized": "wait until the Canary is Initialized (a learner reads the first step meanwhile)",
}


@dataclass(frozen=True)
class Check:
    """One completion rule (``kind`` in :data:`CHECK_KINDS`) or a combination (``all``/``any``)."""

    kind: str
    args: Any = None
    children: tuple[Check, ...] = ()


@dataclass(frozen=True)
class Action:
    """One thing ``--check`` does in the lab (``name`` in :data:`ACTIONS`)."""

    name: str
    args: Any = None


@dataclass(frozen=True)
class Step:
    """One step of a lesson."""

    title: str
    explain: str
    do: str
    check: Check
    keys: tuple[str, ...] = ()
    kubectl: str = ""
    edit: str = ""
    equivalents: dict[str, str] = field(default_factory=dict)
    try_commands: tuple[str, ...] = ()
    hint: str = ""
    hint_after: float = DEFAULT_HINT_AFTER
    auto: tuple[Action, ...] = ()
    wrong: tuple[Action, ...] = ()
    wrong_wait: float = 0.0
    within: float = DEFAULT_WITHIN


@dataclass(frozen=True)
class Lesson:
    """One lesson file."""

    id: str
    number: int
    title: str
    goal: str
    steps: tuple[Step, ...]
    summary: str
    questions: tuple[str, ...]
    lab_files: tuple[Path, ...] = ()
    work_files: dict[str, Path] = field(default_factory=dict)
    prometheus: bool = False
    canary: tuple[str, str] = DEFAULT_CANARY
    source: Path = Path()

    @property
    def label(self) -> str:
        """``3 gates``: how ``--list`` and ``--check`` name the lesson."""
        return f"{self.number} {self.id}"


class _Reader:
    """Reads one mapping, naming ``where`` in every complaint."""

    def __init__(self, data: Any, where: str) -> None:
        if not isinstance(data, dict):
            raise UserError(f"{where}: expected a mapping (got {type(data).__name__}).")
        self.data = data
        self.where = where

    def text(self, key: str, *, required: bool = True, default: str = "") -> str:
        value = self.data.get(key)
        if value is None:
            if required:
                raise UserError(f"{self.where}.{key}: is required (text).")
            return default
        if not isinstance(value, str) or (required and not value.strip()):
            raise UserError(f"{self.where}.{key}: must be non-empty text (got {value!r}).")
        return " ".join(value.split()) if "\n" not in value.strip() else value.strip()

    def texts(self, key: str) -> tuple[str, ...]:
        value = self.data.get(key) or []
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            raise UserError(f"{self.where}.{key}: must be a list of non-empty texts.")
        return tuple(v.strip() for v in value)

    def duration(self, key: str, default: float) -> float:
        value = self.data.get(key)
        if value is None:
            return default
        try:
            return float(value) if isinstance(value, int | float) and not isinstance(value, bool) \
                else parse_duration(str(value))
        except ValueError:
            raise UserError(f"{self.where}.{key}: must be a duration such as 30s or 2m (got {value!r}).") from None

    def only(self, allowed: set[str]) -> None:
        for key in self.data:
            if key not in allowed:
                raise UserError(f"{self.where}.{key}: unknown field (known: {', '.join(sorted(allowed))}).")


def parse_check(data: Any, where: str) -> Check:
    """A check from its YAML form: a one-key mapping ``{kind: args}``; ``all``/``any`` take a list."""
    if not isinstance(data, dict) or len(data) != 1:
        raise UserError(f"{where}: a check is a mapping with exactly one of {', '.join(CHECK_KINDS)}.")
    ((kind, args),) = data.items()
    if kind not in CHECK_KINDS:
        raise UserError(f"{where}: unknown check {kind!r} (known: {', '.join(CHECK_KINDS)}).")
    here = f"{where}.{kind}"
    if kind in ("all", "any"):
        if not isinstance(args, list) or not args:
            raise UserError(f"{here}: must list at least one check.")
        return Check(kind, None, tuple(parse_check(c, f"{here}[{i}]") for i, c in enumerate(args)))
    expect: dict[str, type | tuple[type, ...]] = {
        "event": str, "warning": str, "phase": str, "paused": bool, "canaryWebhook": str, "canaryMetric": str,
        "matches": str, "weight": dict, "canaryWeightStayed": dict, "metric": dict, "webhook": dict, "image": dict,
        "exists": dict, "simulate": dict,
    }  # fmt: skip
    if not isinstance(args, expect[kind]):
        raise UserError(f"{here}: expected {getattr(expect[kind], '__name__', 'a value')} (got {args!r}).")
    needs = {"weight": {"atLeast"}, "canaryWeightStayed": {"max"}, "metric": {"name", "ok"},
             "webhook": {"name", "ok"}, "image": {"deployment", "contains"}, "exists": {"kind", "name"},
             "simulate": {"scenario", "exit"}}
    for key in sorted(needs.get(kind, set())):
        if not isinstance(args, dict) or key not in args:
            raise UserError(f"{here}.{key}: is required.")
    return Check(kind, args)


def parse_actions(data: Any, where: str) -> tuple[Action, ...]:
    """A list of one-key mappings ``{action: args}``."""
    if data is None:
        return ()
    if not isinstance(data, list):
        raise UserError(f"{where}: must be a list of actions ({', '.join(ACTIONS)}).")
    out = []
    for i, item in enumerate(data):
        if not isinstance(item, dict) or len(item) != 1:
            raise UserError(f"{where}[{i}]: an action is a mapping with exactly one of {', '.join(ACTIONS)}.")
        ((name, args),) = item.items()
        if name not in ACTIONS:
            raise UserError(f"{where}[{i}]: unknown action {name!r} (known: {', '.join(ACTIONS)}).")
        if name == "wait":
            args = _Reader({"wait": args}, f"{where}[{i}]").duration("wait", 0.0)
        out.append(Action(name, args))
    return tuple(out)


def _parse_step(data: Any, where: str, keymap_ids: set[str]) -> Step:
    r = _Reader(data, where)
    r.only({"title", "explain", "do", "check", "hint", "hintAfter", "try", "auto", "wrong", "within"})
    do = _Reader(data.get("do"), f"{where}.do")
    do.only({"say", "keys", "kubectl", "edit", "equivalents"})
    keys = do.texts("keys")
    for key in keys:
        if key not in keymap_ids:
            raise UserError(f"{where}.do.keys: unknown key id {key!r} (known: {', '.join(sorted(keymap_ids))}).")
    equivalents = data["do"].get("equivalents") or {}
    if not isinstance(equivalents, dict) or not all(isinstance(v, str) for v in equivalents.values()):
        raise UserError(f"{where}.do.equivalents: must map key ids to commands.")
    if "check" not in data:
        raise UserError(f"{where}.check: is required (when is the step done?).")
    wrong = data.get("wrong") or {}
    wr = _Reader(wrong, f"{where}.wrong")
    wr.only({"do", "wait"})
    step = Step(
        title=r.text("title"), explain=r.text("explain"), do=do.text("say"),
        keys=keys, kubectl=do.text("kubectl", required=False), edit=do.text("edit", required=False),
        equivalents={str(k): v for k, v in equivalents.items()}, try_commands=r.texts("try"),
        hint=r.text("hint"), hint_after=r.duration("hintAfter", DEFAULT_HINT_AFTER),
        check=parse_check(data["check"], f"{where}.check"),
        auto=parse_actions(data.get("auto"), f"{where}.auto"),
        wrong=parse_actions(wrong.get("do"), f"{where}.wrong.do"), wrong_wait=wr.duration("wait", 0.0),
        within=r.duration("within", DEFAULT_WITHIN),
    )  # fmt: skip
    if not step.auto:
        raise UserError(f"{where}.auto: is required: the action --check performs to complete the step.")
    return step


def load_lesson(path: Path, keymap_ids: set[str] | None = None) -> Lesson:
    """One lesson file, validated."""
    ids = keymap_ids if keymap_ids is not None else set(KEY_IDS)
    where = f"lessons/{path.name}"
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise UserError(f"{where}: cannot be read as YAML ({err}).") from None
    r = _Reader(data, where)
    r.only({"id", "title", "goal", "lab", "workFiles", "prometheus", "canary", "steps", "summary", "questions"})
    number_text, _, _ = path.stem.partition("-")
    if not number_text.isdigit():
        raise UserError(f"{where}: lesson files are named NN-id.yaml (e.g. 01-seed.yaml).")
    steps = data.get("steps")
    if not isinstance(steps, list) or not steps:
        raise UserError(f"{where}.steps: must list at least one step.")
    lab = tuple(path.parent / "files" / f for f in r.texts("lab"))
    work = data.get("workFiles") or {}
    if not isinstance(work, dict):
        raise UserError(f"{where}.workFiles: must map a work file name to a file under lessons/files/.")
    work_files = {str(k): path.parent / "files" / str(v) for k, v in work.items()}
    for f in [*lab, *work_files.values()]:
        if not f.is_file():
            raise UserError(f"{where}: lessons/files/{f.name} does not exist.")
    canary = r.text("canary", required=False, default="test/podinfo")
    ns, _, name = canary.partition("/")
    questions = r.texts("questions")
    if not questions:
        raise UserError(f"{where}.questions: a lesson ends with a question or two.")
    return Lesson(
        id=r.text("id"), number=int(number_text), title=r.text("title"), goal=r.text("goal"),
        steps=tuple(_parse_step(s, f"{where}.steps[{i}]", ids) for i, s in enumerate(steps)),
        summary=r.text("summary"), questions=questions, lab_files=lab, work_files=work_files,
        prometheus=bool(data.get("prometheus", False)), canary=(ns, name or "podinfo"), source=path,
    )  # fmt: skip


def load_lessons(directory: Path | None = None) -> list[Lesson]:
    """Every lesson shipped in the package, in order."""
    folder = directory or LESSONS_DIR
    lessons = [load_lesson(p) for p in sorted(folder.glob("[0-9]*.yaml"))]
    seen: dict[str, Path] = {}
    for lesson in lessons:
        if lesson.id in seen:
            raise UserError(f"lessons/{lesson.source.name}: id {lesson.id!r} is also used by {seen[lesson.id].name}.")
        seen[lesson.id] = lesson.source
    return lessons


def find_lesson(lessons: list[Lesson], name: str) -> Lesson:
    """A lesson by number (``3``) or id (``gates``), or a :class:`UserError` listing them."""
    for lesson in lessons:
        if name in (lesson.id, str(lesson.number), f"{lesson.number:02d}"):
            return lesson
    known = ", ".join(lesson.label for lesson in lessons)
    raise UserError(f"no lesson {name!r}: give a number or an id ({known}); `canarylab learn --list` lists them.")
