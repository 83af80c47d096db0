"""Compare the Flagger run and the engine run of a scenario: MATCH, or DIFF with the first point of difference.

Sequences are compared per field (each recorded without consecutive repeats), because the two controllers
write status and routes in separate requests and a poll can land between them: the order of values of one
field is what a user sees, the interleaving of two fields is not. Events are compared as the ordered list of
distinct ``(type, reason, message)``; how often a repeated event was counted depends on timing and is not.
One detail is timing too: while the primary Deployment starts, "waiting for rollout to finish: <detail>" says
how far the Deployment controller had got when the controller looked (``observed deployment generation less
than desired generation`` or ``0 of 2 ... updated replicas are available``), so that detail is not compared.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from canarylab.conformance.harness import Recording

FIELDS: tuple[tuple[str, str], ...] = (
    ("phases", "phase"),
    ("weights", "canary weight"),
    ("status_weights", "status.canaryWeight"),
    ("failed_checks", "failed checks"),
    ("iterations", "iterations"),
    ("events", "events"),
    ("hook_calls", "webhook calls"),
    ("final", "final state"),
)


@dataclass(frozen=True)
class Deliberate:
    """A difference kept on purpose: which field, and why."""

    field: str
    reason: str


DELIBERATE: dict[str, list[Deliberate]] = {}
"""Per scenario, the differences canarylab keeps on purpose (filled in as the report shows them)."""


@dataclass(frozen=True)
class Verdict:
    scenario: str
    match: bool
    first: str  # the first difference, "" on a match
    field: str
    deliberate: str  # the reason when the first difference is a deliberate one

    @property
    def label(self) -> str:
        if self.match:
            return "MATCH"
        return "DIFF (deliberate)" if self.deliberate else "DIFF"


_PRIMARY_STARTING = re.compile(r"^(podinfo-primary\.NS not ready: waiting for rollout to finish: ).*$")


def _events(rec: Recording) -> list[str]:
    out: list[str] = []
    for ev in rec.events:
        message = _PRIMARY_STARTING.sub(r"\1(progress of the Deployment controller)", ev["message"])
        line = f"{ev['type']} {ev['reason']}: {message}"
        if line not in out:
            out.append(line)
    return out


def _value(rec: Recording, name: str) -> Any:
    return _events(rec) if name == "events" else getattr(rec, name)


def first_difference(flagger: Any, engine: Any, label: str) -> str:
    """``phase[3]: Flagger 'Waiting', canarylab 'Progressing'`` (or ``""`` when equal)."""
    if flagger == engine:
        return ""
    if isinstance(flagger, dict) and isinstance(engine, dict):
        for key in sorted(set(flagger) | set(engine)):
            if flagger.get(key) != engine.get(key):
                return f"{label} {key}: Flagger {flagger.get(key)!r}, canarylab {engine.get(key)!r}"
    if isinstance(flagger, list) and isinstance(engine, list):
        for i in range(max(len(flagger), len(engine))):
            a = flagger[i] if i < len(flagger) else "(nothing)"
            b = engine[i] if i < len(engine) else "(nothing)"
            if a != b:
                return f"{label} #{i + 1}: Flagger {a!r}, canarylab {b!r}"
    return f"{label}: Flagger {flagger!r}, canarylab {engine!r}"


def compare(flagger: Recording, engine: Recording) -> Verdict:
    """The verdict of one scenario."""
    problems = [n for n in flagger.notes + engine.notes if n.startswith(("harness error", "controller exited"))]
    if flagger.timed_out or engine.timed_out:
        problems.append(f"timed out (Flagger {flagger.timed_out}, canarylab {engine.timed_out})")
    for name, label in FIELDS:
        diff = first_difference(_value(flagger, name), _value(engine, name), label)
        if diff:
            why = next((d.reason for d in DELIBERATE.get(flagger.scenario, []) if d.field == name), "")
            if problems:
                diff = f"{diff} ({'; '.join(problems)})"
            return Verdict(flagger.scenario, False, diff, name, why)
    if problems:
        return Verdict(flagger.scenario, False, "; ".join(problems), "run", "")
    return Verdict(flagger.scenario, True, "", "", "")
