"""The dashboard: wires a lab (simulated or real) and its engine to the screens, and binds the keys.

The engine runs in Textual's asyncio loop. Its events land in a buffer (the sink never blocks) and a
0.2 s timer folds them into the history and repaints the visible screen: at most ~5 repaints a second,
however fast the lab runs. Commands and cluster writes run in workers whose errors end up in one place
(:meth:`CanaryLabApp._report`). The computation lives in ``canarylab.screens.*`` and ``canarylab.widgets.*``.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.css.query import NoMatches
from textual.screen import Screen

from canarylab import keymap as keys
from canarylab.engine.commands import RUNNING, Abort, Command, OpenGate, Pause, Promote, Resume, refusal
from canarylab.engine.events import EngineEvent
from canarylab.engine.kinds import DAEMON_SET, DEPLOYMENT
from canarylab.engine.ports import ClusterError
from canarylab.errors import UserError
from canarylab.screens.bump_image import BumpImageScreen
from canarylab.screens.confirm import ConfirmScreen
from canarylab.screens.detail import DetailScreen
from canarylab.screens.fault import DEFAULT_PRESETS, FaultChoice, FaultScreen, describe
from canarylab.screens.help import HelpScreen
from canarylab.screens.hints import QUEUE_PHASES, queue_until
from canarylab.screens.history import History
from canarylab.screens.overview import OverviewScreen
from canarylab.screens.report import markdown, report_stem, reports_dir
from canarylab.screens.tags import next_image, tag
from canarylab.screens.view import LabView
from canarylab.screens.workloads import Workloads, container_name, first_image, read_workloads

if TYPE_CHECKING:
    from canarylab.engine.controller import CanaryState
    from canarylab.session import FaultInfo, Lab

MUTATING = frozenset(k.action for k in keys.KEYS if k.mutating)


class CanaryLabApp(App[None]):
    """The canarylab dashboard on one lab."""

    TITLE = "canarylab"
    BINDINGS: ClassVar[list[BindingType]] = [
        *keys.bindings(),
        # ctrl+c quits, as in every terminal program (Textual only tells how to quit); priority: also in inputs
        Binding("ctrl+c", "quit", "Quit", show=False, priority=True),
    ]

    def __init__(
        self,
        lab: Lab,
        *,
        start_lab: bool = True,
        keymap: Mapping[str, str] | None = None,
        refresh_interval: float = 0.2,
        poll_interval: float = 1.0,
        export_dir: Path | None = None,
        open_single: bool = True,
    ) -> None:
        """``start_lab``: start (and on exit stop) the lab here; ``run_demo`` starts it before the TUI.

        ``export_dir``: where ``ctrl+s`` saves reports (default :func:`~canarylab.screens.report.reports_dir`)."""
        super().__init__()
        self.lab = lab
        self.readonly = lab.readonly
        self.history = History()
        self.export_dir = export_dir or reports_dir()
        self.saved_reports: list[Path] = []
        """Files ``ctrl+s`` wrote (printed again when the dashboard exits)."""
        self._faults: dict[tuple[str, str], FaultInfo] = {}
        self._queued: dict[tuple[str, str], tuple[str, str, str]] = {}  # key -> (target, container, image)
        self._start_lab = start_lab
        self._started = not start_lab
        self._engine_text = "running" if self._started else "starting"
        self._pending: list[EngineEvent] = []
        self._states: list[CanaryState] = []
        self._workloads: dict[tuple[str, str], Workloads] = {}
        self._refresh_interval = refresh_interval
        self._poll_interval = poll_interval
        self._open_single = open_single
        self._dirty = True
        self._unsubscribe: Callable[[], None] | None = None
        if keymap:
            self.set_keymap(dict(keymap))

    # ------------------------------------------------------------------------------------------ lifecycle

    def on_mount(self) -> None:
        self._unsubscribe = self.lab.engine.subscribe(self._pending.append)  # non-blocking sink
        self.push_screen(OverviewScreen())
        for note in getattr(self.lab, "warnings", ()):  # --validate=warn: printed before, shown here too
            self.notify(str(note), title="your YAML", severity="warning", timeout=20)
        if self._start_lab:
            self.run_worker(self._start(), group="lab", exit_on_error=False)
        self.set_interval(self._refresh_interval, self._coalesce)
        self.set_interval(self._poll_interval, self._poll)
        self.call_after_refresh(self._coalesce)

    async def _start(self) -> None:
        try:
            await self.lab.start()
        except (UserError, ClusterError, OSError) as err:
            self._engine_text = "failed"
            self.notify(str(err), title="the lab did not start", severity="error", timeout=30)
            return
        self._started = True
        self._engine_text = "running"
        self._dirty = True

    async def on_unmount(self) -> None:
        if self._unsubscribe:
            self._unsubscribe()
        if self._start_lab and self._started:
            await self.lab.stop()

    # ---------------------------------------------------------------------------------------- refreshing

    def view(self) -> LabView:
        """The snapshot the screens draw."""
        engine = self._engine_text + (" · read-only" if self.readonly else "")
        return LabView(
            title=self.lab.title, engine=engine, readonly=self.readonly,
            supports_faults=self.lab.supports_faults and not self.readonly,
            now=self.lab.clock.now() if self._started else None,
            states=self._states, history=self.history, workloads=self._workloads, faults=self._faults,
            queued={key: image for key, (_, _, image) in self._queued.items()},
        )  # fmt: skip

    def _coalesce(self) -> None:
        """Coalesce: fold buffered events, take a state snapshot, repaint the visible screen once."""
        events = self._fold()
        self._check_lab()
        states = self.lab.engine.canary_states() if self._started else []
        if states != self._states:
            self._states = states
            self._dirty = True
        self._check_faults()
        self._ship_queued()
        if events:
            self._dirty = True
            if any(type(e).__name__ in ("WeightChanged", "PhaseChanged") for e in events):
                # pods and images change with weights
                self.run_worker(self._poll, group="poll", exclusive=True)  # type: ignore[arg-type]
        if self._open_single and len(states) == 1 and isinstance(self.screen, OverviewScreen):
            self._open_single = False  # one Canary: open straight on its detail, once
            self.action_open_canary(states[0].namespace, states[0].name)
            return
        screen = self.lab_screen()
        if screen is None:
            return
        try:
            if self._dirty:
                screen.show(self.view())
                self._dirty = False
            elif self._started:
                screen.show_clock(self.view())  # lab time moves even when nothing else does: one line
        except NoMatches:
            pass  # the screen is still composing (or closing): the next frame draws it

    def _fold(self) -> list[EngineEvent]:
        """Move buffered engine events into the history; returns them."""
        events, self._pending[:] = list(self._pending), []
        self.history.feed(events)
        return events

    def _check_faults(self) -> None:
        """Follow each Canary's fault; say so on screen when a new revision leaves one behind."""
        fault_of = getattr(self.lab, "fault", None)
        if not callable(fault_of) or not self._started:
            return
        for state in self._states:
            key = (state.namespace, state.name)
            fault: FaultInfo | None = fault_of(state.namespace, state.target)
            before = self._faults.get(key)
            if fault == before:
                continue
            self._dirty = True
            if fault is None:
                self._faults.pop(key, None)
                continue
            self._faults[key] = fault
            if not fault.active and before is not None and before.active:
                message = (f"{tag(fault.replaced_by or '')} starts clean: the fault ({fault.what()}) stays with "
                           f"{tag(fault.image)}, the revision it was injected into")
                self._note(state.namespace, state.name, fault.replaced_at or self.lab.clock.now(), message)
                self.notify(message, title="a new image starts clean", timeout=8)

    def _note(self, namespace: str, name: str, time: float, message: str) -> None:
        """A line of the dashboard's own in the Canary's event log, after the engine events buffered so far."""
        self._fold()
        self.history.note(namespace, name, time, message)
        self._dirty = True

    def _ship_queued(self) -> None:
        """Set a queued image once the Canary can analyse it (Initialized, or the promotion done)."""
        for key, (target, container, image) in list(self._queued.items()):
            state = next((s for s in self._states if (s.namespace, s.name) == key), None)
            if state is None or state.phase in QUEUE_PHASES:
                continue
            del self._queued[key]
            self._dirty = True
            namespace = key[0]
            self._note(namespace, key[1], self.lab.clock.now(),
                              f"shipping the queued {tag(image)}: the Canary is {state.phase}")
            self._work("set image", self.lab.set_image(namespace, target, container, image))
            self.notify(f"deployment/{target} {container}={image}", title=f"queued image set ({state.phase})",
                        timeout=6)

    def _check_lab(self) -> None:
        """Say so when the engine (or a lab controller) died, instead of showing a frozen lab as running."""
        failed_task = getattr(self.lab, "failed_task", None)
        if self._engine_text != "running" or not callable(failed_task):
            return
        error = failed_task()
        while isinstance(error, BaseExceptionGroup) and error.exceptions:
            error = error.exceptions[0]  # the engine's TaskGroup wraps the error that stopped it: name that one
        if error is not None:
            self._engine_text = "stopped"
            self._dirty = True
            self.notify(f"{type(error).__name__}: {error}", title="the engine stopped", severity="error",
                        timeout=60)

    def lab_screen(self) -> OverviewScreen | DetailScreen | None:
        """The overview or detail on top of the stack, also while a modal covers it (it keeps updating)."""
        for screen in reversed(self.screen_stack):
            if isinstance(screen, OverviewScreen | DetailScreen):
                return screen
        return None

    async def _poll(self) -> None:
        """Read pods and images of the Canary on screen (the engine's events do not carry them)."""
        screen = self.lab_screen()
        if not isinstance(screen, DetailScreen) or not self._started:
            return
        state = next((s for s in self._states if (s.namespace, s.name) == screen.key), None)
        if state is None:
            return
        workloads = await read_workloads(self.lab.cluster, state.namespace, state.target)
        if self._workloads.get(screen.key) != workloads:
            self._workloads[screen.key] = workloads
            self._dirty = True

    # ------------------------------------------------------------------------------------------- helpers

    def current_state(self) -> CanaryState | None:
        """The Canary the keys act on: the detail's, or the overview's cursor row."""
        screen = self.lab_screen()
        key = screen.current_key() if screen is not None else None
        return next((s for s in self._states if (s.namespace, s.name) == key), None) if key else None

    def _need_state(self) -> CanaryState | None:
        """The Canary the keys act on, as the engine has it now (the screen's snapshot may be 0.2 s old)."""
        state = self.current_state()
        if state is None:
            self.notify("no canary selected: the engine has not seen one yet", severity="warning")
            return None
        return self._fresh((state.namespace, state.name)) or state

    def _fresh(self, key: tuple[str, str]) -> CanaryState | None:
        if not self._started:
            return None
        return next((s for s in self.lab.engine.canary_states() if (s.namespace, s.name) == key), None)

    def _work(self, label: str, job: Awaitable[Any]) -> None:
        """Run a lab/engine call in a worker; its failure becomes one notification."""

        async def run() -> None:
            try:
                await job
            except Exception as err:  # every failure of a user action is shown, none crash the UI
                self._report(label, err)
            else:
                self._dirty = True

        self.run_worker(run(), group="commands")

    def _report(self, label: str, err: BaseException) -> None:
        """The one place worker errors are shown."""
        self.notify(str(err) or type(err).__name__, title=f"{label} failed", severity="error", timeout=10)

    def _refused(self, label: str, command: type[Command], state: CanaryState) -> bool:
        """Say at once why ``command`` cannot act now (the engine's own rule), before any confirmation."""
        why = refusal(command, f"{state.name}.{state.namespace}", state.phase, paused=state.paused,
                      problem=state.problem)
        if why:
            self.notify(why, title=f"cannot {label} now", severity="warning", timeout=6)
        return why is not None

    def _send(self, label: str, command: Command) -> None:
        self._work(label, self.lab.engine.send(command))
        self.notify(f"{label}: sent to the engine", timeout=3)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """``--readonly`` hides every key that changes anything (footer, help and palette)."""
        if self.readonly and action in MUTATING:
            return False
        return not (action == "fault" and not self.lab.supports_faults)

    # ------------------------------------------------------------------------------------------- actions

    def action_open_canary(self, namespace: str, name: str) -> None:
        """Show one Canary's detail (over the overview)."""
        while isinstance(self.screen, DetailScreen):
            self.pop_screen()
        self.push_screen(DetailScreen(namespace, name))
        self._dirty = True
        self.run_worker(self._poll, group="poll", exclusive=True)  # type: ignore[arg-type]
        self.call_after_refresh(self._coalesce)

    def action_overview(self) -> None:
        """Back to every Canary."""
        while isinstance(self.screen, DetailScreen):
            self.pop_screen()
        self._dirty = True
        self.call_after_refresh(self._coalesce)

    def action_filter(self) -> None:
        """``/``: filter the overview."""
        self.action_overview()
        self.call_after_refresh(lambda: self.screen.open_filter() if isinstance(self.screen, OverviewScreen) else None)

    async def action_bump(self) -> None:
        """``b``: propose the next image tag for the target; set it when confirmed."""
        state = self._need_state()
        if state is None:
            return
        target = await self.lab.cluster.get(DEPLOYMENT, state.namespace, state.target) \
            or await self.lab.cluster.get(DAEMON_SET, state.namespace, state.target)
        if target is None:
            self.notify(f"deployment {state.target}.{state.namespace} not found", severity="error")
            return
        image, container = first_image(target), container_name(target)
        key = (state.namespace, state.name)
        if state.phase in QUEUE_PHASES:
            self._queue_ship(state, image, container)
            return

        def apply(new: str | None) -> None:
            if new and new != image:
                self._work("set image", self.lab.set_image(state.namespace, state.target, container, new))
                self.notify(f"deployment/{state.target} {container}={new}", title="image set", timeout=4)

        queued = self._queued.pop(key, None)  # a ship queued earlier is superseded (it was not set)
        self.push_screen(BumpImageScreen(state.target, container, image, queued[2] if queued else next_image(image)),
                         apply)

    def _queue_ship(self, state: CanaryState, image: str, container: str) -> None:
        """``b`` while the Canary cannot analyse a new revision: the image waits, and the screen says so.

        Flagger (v1.44) marks a target changed during initialization as applied and promoted although the
        primary keeps the first version, so no analysis ever runs; during a promotion the primary would take
        the new spec unanalysed. Queuing does better: the image is set as soon as the Canary is ready for it."""
        key = (state.namespace, state.name)
        until = queue_until(state.phase)
        queued = self._queued.get(key)
        note = (f"The Canary is {state.phase or 'Initializing'}: a new image set now would never be analysed. "
                f"Enter queues it; it is set as soon as {until}.")

        def apply(new: str | None) -> None:
            if not new or new == image:
                return
            now = self._fresh(key) or state
            if now.phase not in QUEUE_PHASES:  # it got ready while the modal was open: set it at once
                self._work("set image", self.lab.set_image(state.namespace, state.target, container, new))
                self.notify(f"deployment/{state.target} {container}={new}", title="image set", timeout=4)
                return
            self._queued[key] = (state.target, container, new)
            self._dirty = True
            self._note(state.namespace, state.name, self.lab.clock.now(),
                              f"{tag(new)} queued: it ships as soon as {until}")
            self.notify(f"{new} ships as soon as {until}", title="image queued", timeout=6)

        proposed = queued[2] if queued else next_image(image)
        self.push_screen(BumpImageScreen(state.target, container, image, proposed, note=note), apply)

    def action_fault(self) -> None:
        """``f``: inject errors or latency in the canary (the target Deployment's pods)."""
        state = self._need_state()
        if state is None:
            return
        fault = self._faults.get((state.namespace, state.name))
        if state.phase not in RUNNING and not (fault is not None and fault.active):
            self.notify(f"deployment/{state.target} (the canary) has no pods while the Canary is "
                        f"{state.phase or 'Initializing'}: nothing to break. Press b to ship a new image, then f "
                        "during its analysis.", title="no fault now", severity="warning", timeout=8)
            return
        presets = dict(DEFAULT_PRESETS)  # the walkthrough's presets first, then the lab's own extras
        for name, values in (getattr(self.lab, "fault_presets", None) or {}).items():
            if values not in presets.values():
                presets[name] = values

        def apply(choice: FaultChoice | None) -> None:
            if choice is None:
                return
            now = self.lab.clock.now()
            if choice.clear:
                self._work("clear fault", self.lab.clear_fault(state.namespace, state.target))
                self.notify(f"fault cleared on {state.target}", timeout=4)
                self._note(state.namespace, state.name, now, f"fault cleared on deployment/{state.target}")
            else:
                self._work("inject fault", self.lab.set_fault(state.namespace, state.target, choice.error_rate,
                                                              choice.latency_ms))
                self._note(state.namespace, state.name, now,
                                  f"fault injected: {describe(choice.error_rate, choice.latency_ms)} on "
                                  f"deployment/{state.target} (the canary's pods)")
                self.notify(f"{describe(choice.error_rate, choice.latency_ms)} on {state.target}",
                            title="fault injected", severity="warning", timeout=4)

        self.push_screen(FaultScreen(state.target, presets), apply)

    def action_rollback(self) -> None:
        """``r``: roll back now, after a confirmation."""
        state = self._need_state()
        if state is None or self._refused("roll back", Abort, state):
            return
        question = (f"Roll back {state.name}.{state.namespace} now? All traffic goes back to the primary "
                    "and the canary is scaled down.")

        def apply(yes: bool | None) -> None:
            if yes:
                self._send("roll back", Abort(namespace=state.namespace, name=state.name))

        self.push_screen(ConfirmScreen("Roll back", question, "Roll back"), apply)

    def action_promote(self) -> None:
        """``p``: promote now (skip the remaining steps), after a confirmation."""
        state = self._need_state()
        if state is None or self._refused("promote", Promote, state):
            return
        question = (f"Promote {state.name}.{state.namespace} now? The remaining steps are skipped and the "
                    "primary takes the canary's spec.")

        def apply(yes: bool | None) -> None:
            if yes:
                self._send("promote", Promote(namespace=state.namespace, name=state.name))

        self.push_screen(ConfirmScreen("Promote", question, "Promote"), apply)

    def action_pause(self) -> None:
        """``space``: pause or resume this Canary's analysis."""
        state = self._need_state()
        if state is not None:
            command = Resume if state.paused else Pause
            self._send("resume" if state.paused else "pause", command(namespace=state.namespace, name=state.name))

    def action_gate(self) -> None:
        """``g``: open the gate the Canary waits at."""
        state = self._need_state()
        if state is None:
            return
        if not state.waiting_gate:
            self.notify(f"{state.name}.{state.namespace} is not waiting at a gate", severity="warning")
            return
        self._send(f"open gate {state.waiting_gate}", OpenGate(namespace=state.namespace, name=state.name))

    def action_help(self) -> None:
        """``?``: the keys as currently mapped."""
        self.push_screen(HelpScreen(self.key_rows(), self._help_note()))

    def action_export(self) -> None:
        """``ctrl+s``: a Markdown report of the run and an SVG screenshot."""
        state = self.current_state() or (self._states[0] if self._states else None)
        if state is None:
            self.notify("nothing to export yet", severity="warning")
            return
        self._fold()  # the report includes what happened since the last repaint
        folder = self.export_dir
        now = self.lab.clock.now() if self._started else None
        exported_at = time.time()  # files are named by the wall clock: lab time runs faster in the demo
        stem = report_stem(state.namespace, state.name, exported_at)
        n = 1
        while (folder / f"{stem}.md").exists():  # two exports in one second keep both
            n += 1
            stem = f"{report_stem(state.namespace, state.name, exported_at)}-{n}"
        report = markdown(self.lab.title, state, state.namespace, state.name,
                          self.history.of(state.namespace, state.name), now, exported_at=exported_at)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{stem}.md").write_text(report)
            svg = self.save_screenshot(filename=f"{stem}.svg", path=str(folder))
        except OSError as err:
            self._report("export", err)
            return
        self.saved_reports += [folder / f"{stem}.md", Path(svg)]
        self.notify(f"{folder / (stem + '.md')}\n{svg}", title="report saved", timeout=8)

    # ------------------------------------------------------------------------------------------ key help

    def key_rows(self) -> list[tuple[str, str, str]]:
        """``(keys, action, help)`` for the help screen, with the user's remapping, without hidden ones."""
        rows = []
        for k in keys.KEYS:
            if not self.check_action(k.action, ()):
                continue
            mapped = self._keymap.get(keys.PREFIX + k.id, k.keys)
            if k.id == "quit":
                mapped += ",ctrl+c"
            shown = ", ".join(self.get_key_display(b) for b in _bindings_for(mapped))
            rows.append((shown, k.description, k.help))
        rows.append(("ctrl+p", "Palette", "Every action by name (command palette)"))
        return rows

    def _help_note(self) -> str:
        folder = str(self.export_dir)
        home = str(Path.home())
        if folder == home or folder.startswith(home + "/"):
            folder = "~" + folder[len(home):]
        note = (f"Reports (ctrl+s) go to {folder} ($CANARYLAB_REPORTS_DIR). Remap keys in "
                "~/.config/canarylab/keymap.yaml ($CANARYLAB_KEYMAP) or CANARYLAB_KEY_<ID>=keys.")
        if self.readonly:
            note = "Read-only: keys that change anything are hidden. " + note
        return note

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        """Every key's action in the command palette too (hidden ones stay hidden)."""
        yield from super().get_system_commands(screen)
        for k in keys.KEYS:
            if k.id == "quit" or not self.check_action(k.action, ()):  # Quit is among Textual's own
                continue
            yield SystemCommand(k.description, k.help, _runner(self, k.action))


def _bindings_for(mapped: str) -> list[Binding]:
    return [Binding(key.strip(), "") for key in mapped.split(",") if key.strip()]


def _runner(app: App[Any], action: str) -> Callable[[], Awaitable[None]]:
    async def run() -> None:
        await app.run_action(action)

    return run
