"""The Markdown run report ``ctrl+s`` saves: timeline, weights, and each check against its threshold, run by run
(pure)."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from canarylab.screens.history import CanaryHistory, Sample, by_run
from canarylab.widgets.clock_text import hms, iso

if TYPE_CHECKING:
    from canarylab.engine.controller import CanaryState


REPORTS_ENV = "CANARYLAB_REPORTS_DIR"


def reports_dir(env: Mapping[str, str] | None = None) -> Path:
    """Where ``ctrl+s`` saves reports: ``$CANARYLAB_REPORTS_DIR``, else ``$XDG_DATA_HOME/canarylab/reports``
    (``~/.local/share/canarylab/reports``); never the current directory."""
    env = os.environ if env is None else env
    if env.get(REPORTS_ENV):
        return Path(env[REPORTS_ENV]).expanduser()
    data = Path(env["XDG_DATA_HOME"]).expanduser() if env.get("XDG_DATA_HOME") else Path.home() / ".local" / "share"
    return data / "canarylab" / "reports"


def wall_clock(seconds: float) -> str:
    """``2026-12-03 07:30:12 +0100``: local wall-clock time with its offset."""
    return time.strftime("%Y-%m-%d %H:%M:%S %z", time.localtime(seconds))


def report_stem(namespace: str, name: str, exported_at: float) -> str:
    """``canarylab-podinfo.test-20261203-073012``: the Canary and the local wall-clock time of the export."""
    return f"canarylab-{name}.{namespace}-{time.strftime('%Y%m%d-%H%M%S', time.localtime(exported_at))}"


def _num(value: float | None) -> str:
    return "no values" if value is None else f"{value:g}"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _run_title(history: CanaryHistory, run: int, samples: list[Sample]) -> str:
    """``Run 2 (new revision at 12:01:30): 10 evaluations, 0 failed.``"""
    started = history.run_started.get(run)
    failed = sum(1 for s in samples if not s.ok)
    counts = f"{len(samples)} evaluations, {failed} failed."
    if started is None:
        return f"The run in progress when the dashboard started: {counts}"
    return f"Run {run} (new revision at {hms(started)}): {counts}"


def markdown(title: str, state: CanaryState | None, namespace: str, name: str, history: CanaryHistory,
             now: float | None, *, exported_at: float | None = None) -> str:
    """The report for one Canary as Markdown text; ``now`` is lab time, ``exported_at`` the wall clock."""
    out = [f"# Canary run report: {name}.{namespace}", ""]
    when = []
    if exported_at is not None:
        when.append(f"exported at {wall_clock(exported_at)}")
    if now is not None:
        when.append(f"lab time {iso(now)}")
    out.append(f"Lab: {title}" + "".join(f" · {w}" for w in when))
    out.append("")
    if state is not None:
        out += [
            "| status | weight (primary/canary) | failed checks | iterations | strategy | last transition |",
            "|---|---|---|---|---|---|",
            f"| {state.phase} | {state.primary_weight}/{state.canary_weight} | {state.failed_checks}/"
            f"{state.threshold} | {state.iterations} | {state.strategy} | {state.last_transition_time or '-'} |",
            "",
        ]
    out += ["## Timeline", ""]
    if history.log:
        out += ["| time (UTC) | type | message |", "|---|---|---|"]
        out += [f"| {hms(line.time)} | {line.type}{' (routine)' if line.expected else ''} | {_cell(line.message)}"
                f"{' (' + _cell(line.expected) + ')' if line.expected else ''} |" for line in history.log]
    else:
        out.append("No events yet.")
    out += ["", "## Traffic weights", ""]
    if history.weights:
        out += ["| time (UTC) | primary | canary |", "|---|---|---|"]
        out += [f"| {hms(t)} | {p}% | {c}% |" for t, p, c in history.weights]
    else:
        out.append("The routing object did not change during this run.")
    out += ["", "## Metric checks", ""]
    if not history.checks:
        out.append("No metric check was evaluated.")
    for metric, samples in history.checks.items():
        failed = sum(1 for s in samples if not s.ok)
        out += [f"### {metric}", "", f"{len(samples)} evaluations, {failed} failed.", ""]
        runs = by_run(samples)
        for run, run_samples in runs:
            if len(runs) > 1 or run > 0:
                out += [_run_title(history, run, run_samples), ""]
            out += ["| time (UTC) | value | min | max | result |", "|---|---|---|---|---|"]
            for s in run_samples:
                verdict = "ok" if s.ok else f"FAILED{': ' + _cell(s.error) if s.error else ''}"
                out.append(f"| {hms(s.time)} | {_num(s.value)}{s.unit} | {_num(s.min) if s.min is not None else '-'} "
                           f"| {_num(s.max) if s.max is not None else '-'} | {verdict} |")
            out.append("")
    return "\n".join(out).rstrip() + "\n"
