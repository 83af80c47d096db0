"""The progress of ``canarylab up``: the step list (pending/running/done/failed), elapsed times and a live log tail.

The installer runs in a thread worker (it shells out and blocks); its events come back through
``call_from_thread``. The app wires and shows; all the work is in :mod:`canarylab.lab.installer`.
"""

from __future__ import annotations

import time
from typing import ClassVar

from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.reactive import reactive
from textual.widgets import Footer, Header, RichLog, Static
from textual.worker import Worker, WorkerState

from canarylab.lab.installer import Event, Installer, LabFailed, LogLine, StepEvent

MARKS = {"pending": "○", "running": "◐", "done": "✓", "skipped": "·", "failed": "✗"}


class StepRow(Static):
    """One step: its mark, title, elapsed time and note."""

    DEFAULT_CSS = """
    StepRow { height: 1; padding: 0 1; }
    StepRow.-running { color: $warning; text-style: bold; }
    StepRow.-done, StepRow.-skipped { color: $success; }
    StepRow.-failed { color: $error; text-style: bold; }
    StepRow.-pending { color: $text-muted; }
    """

    status: reactive[str] = reactive("pending")
    elapsed: reactive[float] = reactive(0.0)
    note: reactive[str] = reactive("")

    def __init__(self, key: str, title: str) -> None:
        super().__init__(id=f"step-{key}", classes="-pending")
        self.key = key
        self.title = title

    def render(self) -> str:
        """``✓ Linkerd control plane   42.1s  already there``."""
        shown = f"{self.elapsed:5.1f}s" if self.status in ("running", "done", "failed") else "      "
        note = f"  {self.note}" if self.note else ""
        return f"{MARKS.get(self.status, '?')} {self.title:<44} {shown}{note}"

    def watch_status(self, old: str, new: str) -> None:
        """Swap the style class with the status."""
        self.remove_class(f"-{old}")
        self.add_class(f"-{new}")


class LabProgressApp(App[LabFailed | None]):
    """``canarylab up`` in a terminal: returns None when the lab is ready, else the failure."""

    TITLE = "canarylab up"
    CSS = """
    #steps { height: auto; border: round $primary; padding: 0 1; }
    #log { border: round $secondary; height: 1fr; }
    #verdict { height: auto; padding: 0 1; }
    #verdict.-failed { color: $error; }
    #verdict.-done { color: $success; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [Binding("q", "quit_when_finished", "Quit", id="lab_progress.quit")]

    def __init__(self, installer: Installer, *, auto_exit: bool = True) -> None:
        super().__init__()
        self.installer = installer
        self.auto_exit = auto_exit
        self.finished = False
        self.failure: LabFailed | None = None
        self.installer_stopped = False
        self._started: dict[str, float] = {}

    def compose(self) -> ComposeResult:
        """Step list above, log tail below."""
        yield Header()
        with Vertical(id="steps"):
            for step in self.installer.steps:
                yield StepRow(step.key, step.title)
        yield Static(f"Building lab {self.installer.name!r} (router {self.installer.router}); "
                     f"log: {self.installer.log_path}", id="verdict")
        yield RichLog(id="log", max_lines=500, wrap=False, markup=False)
        yield Footer()

    def on_mount(self) -> None:
        """Start the installer in a thread and a timer for the running step's elapsed time."""
        self.sub_title = f"kind-{self.installer.name}"
        self.installer.on_event = self._from_thread
        self.set_interval(0.5, self._tick)
        self.run_worker(self._install, thread=True, exit_on_error=False, name="installer")

    def _install(self) -> None:
        self.installer.run()

    def _from_thread(self, event: Event) -> None:
        if self.installer_stopped:
            return  # the app has closed: nobody to show it to (the log file still has it)
        try:
            self.call_from_thread(self.apply_event, event)
        except RuntimeError:  # the app closed between the check and the call
            self.installer_stopped = True

    def on_unmount(self) -> None:
        """Leaving early (ctrl+q): the installer stops before its next step."""
        self.installer_stopped = True
        self.installer.cancel()

    def apply_event(self, event: Event) -> None:
        """Show one installer event."""
        if isinstance(event, LogLine):
            self.query_one("#log", RichLog).write(event.text)
            return
        assert isinstance(event, StepEvent)
        row = self.query_one(f"#step-{event.key}", StepRow)
        if event.status == "running":
            self._started[event.key] = time.monotonic()
        else:
            self._started.pop(event.key, None)
            row.elapsed = event.elapsed
        row.note = "done earlier" if event.status == "skipped" else (event.note if event.status == "done" else "")
        row.status = event.status

    def _tick(self) -> None:
        now = time.monotonic()
        for key, start in self._started.items():
            self.query_one(f"#step-{key}", StepRow).elapsed = now - start

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """The installer finished: exit when the lab is ready, else show the failure and wait for q."""
        if event.worker.name != "installer" or event.state not in (WorkerState.SUCCESS, WorkerState.ERROR):
            return
        self.finished = True
        verdict = self.query_one("#verdict", Static)
        if event.state is WorkerState.SUCCESS:
            verdict.update("The lab is ready.")
            verdict.add_class("-done")
            if self.auto_exit:
                self.exit(None)
            return
        error = event.worker.error
        self.failure = error if isinstance(error, LabFailed) else LabFailed(f"canarylab up stopped: {error}", "?")
        verdict.update(f"{self.failure}\n\nPress q to quit.")
        verdict.add_class("-failed")

    def action_quit_when_finished(self) -> None:
        """Quit once the installer is done (a half-run step cannot be interrupted cleanly)."""
        if not self.finished:
            self.notify("The lab is still being built. ctrl+q stops it after the current command; "
                        "`canarylab up` then resumes where it stopped.", severity="warning")
            return
        self.exit(self.failure)


def run_progress(installer: Installer) -> LabFailed | None:
    """Run the progress app; returns the failure, if any (an app closed before the end counts as one)."""
    app = LabProgressApp(installer)
    result = app.run()
    if result is None and not app.finished:
        return LabFailed(f"canarylab up was interrupted before the lab was ready; run `canarylab up --name "
                         f"{installer.name}` again: it resumes where it stopped.", "?")
    return result
