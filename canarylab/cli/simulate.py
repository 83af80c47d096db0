"""``canarylab simulate``: the simulated lab headless, a scripted scenario, events as text or JSON.

Exit codes: 0 every Canary that started a run Succeeded, 1 one Failed, 2 invalid input (file, YAML,
spec, scenario), 3 the ``--timeout`` (lab time) passed first, 130/143 SIGINT/SIGTERM (the lab is stopped, a
local Prometheus and its temporary TSDB removed, and the result is printed marked interrupted).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from typing import TextIO

from canarylab.cli import run_async
from canarylab.cli.output import alert_json, alert_text
from canarylab.engine.clock import run_virtual, sleep_or_wake
from canarylab.engine.commands import Abort, Pause, Promote, Resume
from canarylab.engine.controller import EngineError
from canarylab.engine.durations import parse_duration
from canarylab.engine.events import AlertPosted, EngineEvent, KubeEvent, PhaseChanged, StatusChanged
from canarylab.engine.kinds import Obj
from canarylab.engine.ports import ClusterError
from canarylab.errors import UserError
from canarylab.sim.inputs import lab_objects
from canarylab.sim.lab import SimLab
from canarylab.sim.scenario import Step, check_against_lab, default_scenario, load_scenario

EXIT_SUCCEEDED, EXIT_FAILED, EXIT_INVALID, EXIT_TIMEOUT = 0, 1, 2, 3
EXIT_PIPE_CLOSED = 141  # 128 + SIGPIPE: what a shell reports for a writer whose reader went away
NOT_STARTED = {"", "Initializing", "Initialized"}
DONE = {"Succeeded", "Failed"}
POLL_SECONDS = 1.0


def run(args: argparse.Namespace) -> int:
    """Run ``canarylab simulate`` with parsed arguments; returns the exit code."""
    try:
        timeout = parse_duration(str(args.timeout))
    except ValueError as err:
        raise UserError(f"--timeout {args.timeout}: {err}.") from None
    if timeout <= 0:
        raise UserError(f"--timeout {args.timeout}: must be longer than 0s.")
    validate = getattr(args, "validate", "strict")
    notes: list[str] = []  # --validate=warn findings, and objects the lab sets aside
    objects = lab_objects(args.files, validate=validate, warnings=notes)
    if args.scenario:
        steps = load_scenario(args.scenario, validate=validate, warnings=notes)
        check_against_lab(steps, objects, args.scenario)
    else:
        steps = default_scenario(objects)
    for note in notes:
        print(f"canarylab: warning: {note}", file=sys.stderr, flush=True)
    session = Simulation(objects, steps, as_json=args.json, timeout=timeout, speed=args.speed,
                         prometheus=args.prometheus, metrics_port=args.metrics_port,
                         send_alerts=getattr(args, "send_alerts", False))
    if args.speed is None and args.prometheus is None:
        return run_async(session.main(), run_virtual)
    return run_async(session.main())


class Simulation:
    """One ``simulate`` run: the lab, the scenario steps, the output and the exit code."""

    def __init__(self, objects: Sequence[Obj], steps: Sequence[Step], *, as_json: bool = False,
                 timeout: float = 3600.0, speed: float | None = None, prometheus: str | None = None,
                 metrics_port: int | None = None, out: TextIO | None = None, err: TextIO | None = None,
                 send_alerts: bool = False) -> None:
        self.lab = SimLab(speed=speed, prometheus=prometheus, metrics_port=metrics_port, objects=objects,
                          send_alerts=send_alerts)
        self.steps = list(steps)
        self.as_json = as_json
        self.timeout = timeout
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.started: set[tuple[str, str]] = set()
        self.wake = asyncio.Event()
        self.finished = False
        self.output_closed = False
        """stdout's reader went away (EPIPE): the run ends with exit code 141, as a shell pipeline expects."""

    def _on_event(self, event: EngineEvent) -> None:
        if isinstance(event, KubeEvent):
            self._print_event(event)
        elif isinstance(event, AlertPosted):
            self._print_alert(event)
        elif isinstance(event, PhaseChanged):
            if event.new not in NOT_STARTED:
                self.started.add((event.namespace, event.name))
            self.wake.set()
        elif isinstance(event, StatusChanged):
            if event.phase not in NOT_STARTED:
                self.started.add((event.namespace, event.name))
            self.wake.set()

    def _since_start(self, lab_time: float) -> float:
        return max(0.0, lab_time - (self.lab.started_at or lab_time))

    def _print_event(self, event: KubeEvent) -> None:
        if self.finished:
            return  # the result line is the last line
        at = self._since_start(event.time)
        if self.as_json:
            line = json.dumps({"kind": "event", "time": round(at, 3), "type": event.type, "reason": event.reason,
                               "namespace": event.namespace, "name": event.name, "message": event.message})
        else:
            whole = int(at)
            line = f"+{whole // 60:02d}:{whole % 60:02d} {event.type} {event.name}.{event.namespace} {event.message}"
        self._write(line)

    def _print_alert(self, event: AlertPosted) -> None:
        if self.finished:
            return
        at = self._since_start(event.time)
        if self.as_json:
            line = json.dumps(alert_json(event, round(at, 3)))
        else:
            whole = int(at)
            line = f"+{whole // 60:02d}:{whole % 60:02d} {alert_text(event)}"
        self._write(line)

    def _write(self, line: str) -> None:
        """One line on stdout; a reader that went away (``| head``) ends the run instead of being ignored."""
        if self.output_closed:
            return
        try:
            print(line, file=self.out, flush=True)
        except BrokenPipeError:
            self.output_closed = True
            self.wake.set()

    def _phases(self) -> dict[tuple[str, str], Obj]:
        return {key: obj.get("status") or {} for key, obj in sorted(self.lab.cluster.canaries.items())}

    async def main(self) -> int:
        """Run until every started Canary is done and no step is left, or the timeout."""
        unsubscribe = self.lab.engine.subscribe(self._on_event)
        try:
            await self.lab.start()
            if self.lab.metrics_server is not None:
                print(f"canarylab: serving the simulated Linkerd metrics on "
                      f"http://{self.lab.metrics_server.target}/metrics", file=self.err, flush=True)
            try:
                return await self._drive()
            except asyncio.CancelledError:
                self._finish(EXIT_TIMEOUT, interrupted=True)  # SIGINT/SIGTERM: the code comes from the signal
                raise
            finally:
                await self.lab.stop()
        finally:
            unsubscribe()

    async def _drive(self) -> int:
        clock = self.lab.clock
        deadline = self.lab.elapsed() + self.timeout
        pending = list(self.steps)
        zero: float | None = None
        last_step_at = 0.0
        grace = max([float(_interval(obj)) for obj in self.lab.cluster.canaries.values()] or [30.0]) + 1.0
        while True:
            if self.output_closed:
                return EXIT_PIPE_CLOSED
            failure = self.lab.failed_task()
            if failure is not None:
                raise RuntimeError(f"the simulated lab stopped: {failure!r}") from failure
            now = self.lab.elapsed()
            statuses = self._phases()
            for key, status in statuses.items():
                if status.get("phase") not in NOT_STARTED:
                    self.started.add(key)
            if zero is None and statuses and all(s.get("phase") not in ("", None, "Initializing")
                                                 for s in statuses.values()):
                zero = now  # every Canary is Initialized: scenario offsets count from here
            while zero is not None and pending and zero + pending[0].at <= now:
                await self._apply(pending.pop(0))
                last_step_at = now
            done = all(statuses.get(key, {}).get("phase") in DONE for key in self.started)
            if zero is not None and not pending and done and now >= last_step_at + grace:
                await self.lab.engine.settle()  # the tick that finished the run still sends its alerts
                return self._finish(EXIT_FAILED if any(statuses[k].get("phase") == "Failed" for k in self.started)
                                    else EXIT_SUCCEEDED)
            if now >= deadline:
                print(f"canarylab: --timeout: {_show(self.timeout)} of lab time passed before every Canary "
                      "finished.", file=self.err)
                return self._finish(EXIT_TIMEOUT)
            wait = POLL_SECONDS
            if zero is not None and pending:
                wait = min(wait, max(0.0, zero + pending[0].at - now))
            await sleep_or_wake(clock, min(wait, max(0.0, deadline - now)), self.wake)

    async def _apply(self, step: Step) -> None:
        lab, a, ns = self.lab, step.args, step.namespace
        try:
            workload = str(a.get("deployment") or a.get("daemonset") or "")
            if step.action == "setImage":
                before = lab.fault(ns, workload)
                await lab.set_image(ns, workload, a["container"], a["image"])
                after = lab.fault(ns, workload)
                if before is not None and before.active and after is not None and not after.active:
                    print(f"canarylab: scenario {step.describe()}: {a['image']} starts clean; the fault "
                          f"({before.what()}) stays with {before.image}, the revision it was injected into (to "
                          "break the new image, put the fault step after this setImage)", file=self.err, flush=True)
            elif step.action == "fault":
                await lab.set_fault(ns, workload, float(a.get("errorRate", 0)), float(a.get("latencyMs", 0)),
                                    bool(a.get("neverReady", False)))
            elif step.action == "clearFault":
                await lab.clear_fault(ns, workload)
            elif step.action == "gate":
                lab.webhooks.set_gate(a["canary"], ns, bool(a["open"]))
            else:
                command = {"abort": Abort, "promote": Promote, "pause": Pause, "resume": Resume}[step.action]
                await lab.engine.send(command(namespace=ns, name=a["canary"]))
        except (EngineError, ClusterError, UserError, ValueError) as err:
            print(f"canarylab: scenario {step.describe()} was not applied: {err}", file=self.err, flush=True)

    def _finish(self, code: int, *, interrupted: bool = False) -> int:
        if self.finished:
            return code
        self.finished = True
        canaries = [
            {"namespace": ns, "name": name, "phase": status.get("phase") or "",
             "canaryWeight": int(status.get("canaryWeight") or 0), "failedChecks": int(status.get("failedChecks") or 0)}
            for (ns, name), status in self._phases().items()
        ]  # fmt: skip
        elapsed = self.lab.elapsed()
        if self.as_json:
            result: dict[str, object] = {"kind": "result", "time": round(elapsed, 3), "canaries": canaries}
            if interrupted:
                result.update(interrupted=True, signal=_signal_name())
            self._write(json.dumps(result))
        else:
            if interrupted:
                print(f"canarylab: interrupted ({_signal_name()}) after {_show(elapsed)} of lab time; the lab is "
                      "stopped.", file=self.err, flush=True)
            for c in canaries:
                print(f"canarylab: {c['name']}.{c['namespace']} {c['phase'] or 'not initialized'} (canary weight "
                      f"{c['canaryWeight']}, failed checks {c['failedChecks']}) after {_show(elapsed)} of lab time",
                      file=self.err, flush=True)
        return code


def _signal_name() -> str:
    from canarylab.cli import interrupted_by

    return interrupted_by() or "SIGINT"


def _interval(canary: Obj) -> float:
    text = ((canary.get("spec") or {}).get("analysis") or {}).get("interval") or "60s"
    try:
        return max(10.0, parse_duration(str(text)))
    except ValueError:
        return 60.0


def _show(seconds: float) -> str:
    whole = int(seconds)
    return f"{whole // 60}m{whole % 60:02d}s" if whole >= 60 else f"{whole}s"
