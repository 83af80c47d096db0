"""Runs the steps of ``canarylab up``: skips what an earlier run finished, times and logs each step, records
progress in the state file and stops at the first failure with its output and a hint.

Progress goes out as events (:class:`StepEvent`), so the Textual screen and the plain printer show the same run.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from canarylab.errors import UserError
from canarylab.lab.runner import CommandFailed, Runner
from canarylab.lab.state import LabState, lab_dir
from canarylab.lab.steps import Step, StepContext, StepError, plan
from canarylab.lab.versions import Versions


@dataclass(frozen=True)
class StepEvent:
    """Something happened to a step. ``status`` is ``running``, ``done``, ``skipped`` or ``failed``."""

    key: str
    title: str
    status: str
    elapsed: float = 0.0
    note: str = ""


@dataclass(frozen=True)
class LogLine:
    """One line for the live log tail (a command, or a line of its output)."""

    text: str


Event = StepEvent | LogLine
EventSink = Callable[[Event], None]


class LabFailed(UserError):
    """``up`` stopped at a step; the message has the output tail, a hint and how to resume."""

    def __init__(self, message: str, step: str) -> None:
        super().__init__(message)
        self.step = step


class Installer:
    """One ``canarylab up`` run."""

    def __init__(self, name: str, router: str, runner: Runner, versions: Versions, *,
                 dry_run: bool = False, on_event: EventSink | None = None,
                 clock: Callable[[], float] = time.monotonic, engine: str = "host") -> None:
        self.name = name
        self.router = router
        self.engine = engine
        self.runner = runner
        self.versions = versions
        self.dry_run = dry_run
        self.on_event = on_event or (lambda e: None)
        self.clock = clock
        self.steps: list[Step] = [s for s in plan(router, engine) if s.in_dry_run or not dry_run]
        self.state = LabState.load(name)
        self.work_dir = lab_dir(name)
        self._log_file: IO[str] | None = None
        self._cancelled = False

    def cancel(self) -> None:
        """Stop before the next step (a running command is not killed: it finishes or times out)."""
        self._cancelled = True

    @property
    def log_path(self) -> Path:
        """``~/.cache/canarylab/<name>/up.log``."""
        return self.work_dir / "up.log"

    def _log(self, text: str) -> None:
        if self._log_file is not None:
            self._log_file.write(f"{datetime.now(UTC).strftime('%H:%M:%S')} {text}\n")
            self._log_file.flush()
        self.on_event(LogLine(text))

    def _reconcile_state(self) -> None:
        """A different router invalidates the router-dependent steps; the cluster step re-checks the rest."""
        if self.state.router and self.state.router != self.router:
            self.state.done = [k for k in self.state.done if k not in ("smi", "canary")]
        self.state.router = self.router

    def run(self) -> None:
        """Every step in order; raises :class:`LabFailed` at the first one that fails."""
        if not self.dry_run:
            self.work_dir.mkdir(parents=True, exist_ok=True)
            self._log_file = self.log_path.open("a")
            self._reconcile_state()
            self.state.save()
            self._log(f"== canarylab up --name {self.name} --router {self.router}")
        ctx = StepContext(self.name, self.router, self.runner, self.versions, self.work_dir, log=self._log,
                          engine=self.engine)
        try:
            for step in self.steps:
                if self._cancelled:
                    raise LabFailed(f"canarylab up was stopped before {step.title!r}; run `canarylab up --name "
                                    f"{self.name}` again: it resumes there.", step.key)
                self._run_step(step, ctx)
        finally:
            if self._log_file is not None:
                self._log_file.close()
                self._log_file = None

    def _run_step(self, step: Step, ctx: StepContext) -> None:
        if not self.dry_run and step.key in self.state.done and not (step.always or step.always_check):
            self.on_event(StepEvent(step.key, step.title, "skipped", note="done earlier"))
            return
        self.on_event(StepEvent(step.key, step.title, "running"))
        self._log(f"== {step.title}")
        start = self.clock()
        try:
            if not self.dry_run and step.check is not None and step.check(ctx):
                note = "already there"
            else:
                if step.key == "cluster" and not self.dry_run and self.state.done:
                    # The cluster is gone (deleted by hand?): everything recorded after it must be redone.
                    self._log("cluster not found: starting the later steps over")
                    self.state.done = [k for k in self.state.done if k == "preflight"]
                step.ensure(ctx)
                note = ""
                if step.key == "cluster" and not self.dry_run:
                    self.state.created = True
        except (CommandFailed, StepError, UserError) as err:
            elapsed = self.clock() - start
            self.on_event(StepEvent(step.key, step.title, "failed", elapsed, note=str(err)))
            if not self.dry_run:
                self.state.save()
            raise LabFailed(self._failure_message(step, err), step.key) from None
        elapsed = self.clock() - start
        if not self.dry_run:
            self.state.mark_done(step.key)
            self._log(f"== {step.title}: done in {elapsed:.1f}s {note}".rstrip())
        self.on_event(StepEvent(step.key, step.title, "done", elapsed, note=note))

    def _failure_message(self, step: Step, err: Exception) -> str:
        if isinstance(err, CommandFailed):
            output = err.result.output_tail()
        elif isinstance(err, StepError):
            output = err.output
        else:
            output = ""
        parts = [f"step {step.title!r} failed: {err}"]
        if output:
            parts.append(output)
        parts.append(f"hint: {step.hint}")
        if not self.dry_run:
            parts.append(f"Full log: {self.log_path}. Fix the cause and run `canarylab up --name {self.name}` "
                         "again: it resumes at this step.")
        return "\n".join(parts)
