"""``canarylab learn``: guided lessons in the dashboard; ``--list``, ``--check [LESSON]`` and ``--reset`` headless.

On the simulated lab (the default) each lesson starts its own lab; picking another lesson (key ``l``) restarts
the lab with that lesson's manifests. With ``--context`` the lessons run on a real lab: the learner types the
seed's kubectl commands in another terminal and the checks read the cluster.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from canarylab.cli import run_async
from canarylab.engine.ports import ClusterError
from canarylab.errors import UserError
from canarylab.learn.model import Lesson, find_lesson, load_lessons
from canarylab.learn.progress import Progress, default_path

SIM_LAB = "simulated lab"
CATCH_UP_SPEED = 200.0
"""Lab speed while replaying the steps a learner already did (a 10-minute lesson catches up in 3 s)."""


def run(args: argparse.Namespace) -> int:
    """Dispatch ``canarylab learn`` by its flags."""
    lessons = load_lessons()
    progress = Progress.load(default_path())
    if args.reset:
        had = progress.reset()
        print(f"canarylab: progress {'forgotten' if had else 'was empty'} ({progress.path})", file=sys.stderr)
        if args.lesson is None and args.check is None and not args.list:
            return 0
    if args.list:
        return _list(lessons, progress, _lab_name(args))
    if args.check is not None:
        if args.context:
            raise UserError("--check plays the lessons on the simulated lab; drop --context.")
        from canarylab.learn.player import check_lessons

        name = args.check or args.lesson  # `learn --check 3` and `learn 3 --check` alike
        chosen = [find_lesson(lessons, name)] if name else lessons
        return check_lessons(chosen, out=lambda line: print(line, flush=True))
    return _dashboard(args, lessons, progress)


def _validate(args: argparse.Namespace) -> str:
    """``--validate`` (strict unless given)."""
    return str(getattr(args, "validate", None) or "strict")


def _lab_name(args: argparse.Namespace) -> str:
    return f"context {args.context}" if args.context else SIM_LAB


def _list(lessons: list[Lesson], progress: Progress, lab: str) -> int:
    current = progress.current(lab)
    for lesson in lessons:
        if progress.completed(lab, lesson.id):
            state = "done"
        elif progress.step(lab, lesson.id):
            state = f"step {progress.step(lab, lesson.id) + 1}/{len(lesson.steps)}"
        else:
            state = ""
        mark = "▸" if lesson.id == current else " "
        needs = " (runs a real Prometheus)" if lesson.prometheus else ""
        print(f"{mark} {lesson.number}  {lesson.id:<10} {lesson.title}{needs}  {len(lesson.steps)} steps"
              + (f"  [{state}]" if state else ""))
    print(f"progress on the {lab}: {progress.path}")
    return 0


def _dashboard(args: argparse.Namespace, lessons: list[Lesson], progress: Progress) -> int:
    from canarylab import keymap as keys

    lab_name = _lab_name(args)
    if args.lesson:
        first = find_lesson(lessons, args.lesson)
    else:
        current = progress.current(lab_name)
        unfinished = [lesson for lesson in lessons if not progress.completed(lab_name, lesson.id)]
        first = next((lesson for lesson in lessons if lesson.id == current), None) or \
            (unfinished[0] if unfinished else lessons[0])
    work_root = Path(args.workdir) if args.workdir else Path.cwd() / "canarylab-lessons"
    notes: list[str] = []
    keymap = keys.load_keymap(validate=_validate(args), warnings=notes)
    for note in notes:
        print(f"canarylab: warning: {note}", file=sys.stderr, flush=True)
    if args.context:
        return run_async(_real(args, lessons, first, progress, work_root, keymap))
    return run_async(_simulated(args, lessons, first, progress, work_root, keymap))


async def _simulated(args: argparse.Namespace, lessons: list[Lesson], lesson: Lesson | None, progress: Progress,
                     work_root: Path, keymap: dict[str, str]) -> int:
    """One simulated lab per lesson: the app exits with the next lesson to open, or ``None`` to quit."""
    from canarylab.learn.player import catch_up, lesson_lab
    from canarylab.learn.tracker import prepare_work_dir, work_dir_of
    from canarylab.learn_app import LearnApp

    speed = args.speed or 2.0  # slower than the demo (5x): learners read while the lab runs
    while lesson is not None:
        lab = lesson_lab(lesson, speed=speed)
        print(f"canarylab: starting the simulated lab for lesson {lesson.label}…", file=sys.stderr, flush=True)
        try:
            await lab.start()
        except (ClusterError, OSError) as err:
            raise UserError(f"the lab did not start: {err}") from None
        try:
            # A fresh lab: replay the steps the learner already did (fast), so they resume where they stopped.
            saved = 0 if progress.completed(SIM_LAB, lesson.id) else progress.step(SIM_LAB, lesson.id)
            start = 0
            if saved and not lesson.prometheus:  # a real Prometheus cannot be fast-forwarded
                work_dir = work_dir_of(lesson, work_root)
                prepare_work_dir(lesson, work_dir)
                start = await catch_up(lab, lesson, saved, work_dir, speed=CATCH_UP_SPEED,
                                       log=lambda line: print(line, file=sys.stderr, flush=True),
                                       validate=_validate(args))
            app = LearnApp(lab, lessons, lesson, progress, lab_name=SIM_LAB, work_root=work_root, keymap=keymap,
                           start_step=start, validate=_validate(args))
            await app.run_async()
            lesson = app.next_lesson
        finally:
            await lab.stop()
    return 0


async def _real(args: argparse.Namespace, lessons: list[Lesson], lesson: Lesson, progress: Progress,
                work_root: Path, keymap: dict[str, str]) -> int:
    """One real lab for every lesson: picking a lesson swaps the panel, the cluster stays."""
    try:
        from canarylab.kube.lab import KubeLab
    except ImportError:
        raise UserError("canarylab learn --context needs the cluster adapter (canarylab.kube.lab).") from None
    from canarylab.learn_app import LearnApp

    namespaces = args.namespaces or ["test"]
    lab = KubeLab(args.context, namespaces, readonly=args.readonly, in_cluster=args.in_cluster)
    print(f"canarylab: connecting to {lab.title}…", file=sys.stderr, flush=True)
    try:
        await lab.start()
    except (ClusterError, OSError) as err:
        raise UserError(f"the lab did not start: {err}") from None
    try:
        current: Lesson | None = lesson
        while current is not None:
            app = LearnApp(lab, lessons, current, progress, lab_name=_lab_name(args), work_root=work_root,
                           keymap=keymap, real=True)
            await app.run_async()
            current = app.next_lesson
    finally:
        await lab.stop()
    return 0
