"""The Markdown run report ``ctrl+s`` saves: timeline, weights, and each check against its threshold, run by run
(pure)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from canarylab.screens.history import CanaryHistory, Sample, by_run
from canarylab.widgets.clock_text import hms, iso

if TYPE_CHECKING:
    from canarylab.engine.controller import CanaryState


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
             now: float | None) -> str:
    """The report for one Canary as Markdown text."""
    out = [f"# Canary run report: {name}.{namespace}", ""]
    out.append(f"Lab: {title}" + (f" · exported at {iso(now)}" if now is not None else ""))
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
        out += [f"| {hms(line.time)} | {line.type} | {_cell(line.message)} |" for line in history.log]
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
