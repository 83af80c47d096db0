"""``docs/conformance.md``: one row per scenario, then each scenario's two recordings side by side."""

from __future__ import annotations

from collections.abc import Sequence

from canarylab.conformance.compare import Verdict
from canarylab.conformance.harness import FLAGGER_VERSION, Recording
from canarylab.conformance.scenarios import Scenario


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _timing(f: Recording, e: Recording) -> str:
    """Reaction times (not compared: canarylab wakes on the Deployment watch, Flagger on its next tick)."""
    parts = [f"{what}: Flagger {f.reaction[what]:g} s, canarylab {e.reaction[what]:g} s"
             for what in ("new revision", "restart") if what in f.reaction and what in e.reaction]
    return (" Reaction (timing, not compared): " + "; ".join(parts) + ".") if parts else ""


def summary(verdicts: Sequence[Verdict]) -> str:
    matched = sum(v.match for v in verdicts)
    return f"{matched} matched, {len(verdicts) - matched} differ"


def render(scenarios: Sequence[Scenario], verdicts: Sequence[Verdict],
           recordings: Sequence[dict[str, Recording]], *, header: str, seconds: float) -> str:
    lines = [
        "# Conformance: canarylab's engine side by side with Flagger " + FLAGGER_VERSION,
        "",
        "Written by `make conformance` (`python -m canarylab.conformance`); do not edit by hand.",
        "",
        header,
        "",
        f"**{summary(verdicts)}** ({len(verdicts)} scenarios, {seconds:.0f} s).",
        "",
        "| scenario | what it exercises | verdict | first difference | why it is kept |",
        "|---|---|---|---|---|",
    ]
    for s, v in zip(scenarios, verdicts, strict=True):
        lines.append(f"| `{s.name}` | {_cell(s.exercises)} | {v.label} | {_cell(v.first) or '—'} | "
                     f"{_cell(v.deliberate) or ('—' if v.match else 'not explained yet')} |")
    lines += ["", "## The runs", ""]
    for s, pair in zip(scenarios, recordings, strict=True):
        f, e = pair["flagger"], pair["engine"]
        lines += [f"### `{s.name}`", "", s.exercises, "",
                  f"Flagger: {f.seconds:g} s in `{f.namespace}`; canarylab: {e.seconds:g} s in `{e.namespace}`."
                  + _timing(f, e), ""]
        for label, a, b in (("phases", f.phases, e.phases), ("canary weights (routing object)", f.weights, e.weights),
                            ("status.canaryWeight", f.status_weights, e.status_weights),
                            ("failed checks", f.failed_checks, e.failed_checks),
                            ("iterations", f.iterations, e.iterations), ("webhook calls", f.hook_calls, e.hook_calls)):
            mark = "" if a == b else " **(differs)**"
            lines += [f"- {label}{mark}: Flagger `{a}`", f"  canarylab `{b}`"]
        lines += ["", "| # | Flagger event | canarylab event |", "|---|---|---|"]
        fe = [f"{x['type']} {x['message']}" + (f" (x{x['count']})" if x.get("count", 1) > 1 else "") for x in f.events]
        ee = [f"{x['type']} {x['message']}" + (f" (x{x['count']})" if x.get("count", 1) > 1 else "") for x in e.events]
        for i in range(max(len(fe), len(ee))):
            fa = fe[i] if i < len(fe) else ""
            eb = ee[i] if i < len(ee) else ""
            lines.append(f"| {i + 1} | {_cell(fa)} | {_cell(eb)} |")
        keys = sorted(set(f.final) | set(e.final))
        lines += ["", "| final object | Flagger | canarylab |", "|---|---|---|"]
        for k in keys:
            fo, eo = str(f.final.get(k)), str(e.final.get(k))
            lines.append(f"| {k} | `{_cell(fo)}` | `{_cell(eo)}`{' **≠**' if fo != eo else ''} |")
        notes = [n for n in f.notes + e.notes if not n.startswith(("action", "trigger"))]
        if notes:
            lines += ["", "Notes: " + "; ".join(_cell(n) for n in notes)]
        lines.append("")
    return "\n".join(lines)
