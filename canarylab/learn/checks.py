"""Step checks: is the step done? Decided from engine events and cluster state, never from elapsed time.

The same checks run in the dashboard (simulated or real lab) and in ``canarylab learn --check``. Event
checks look at the events since the step began; state checks read the cluster through the Cluster port,
so on a real lab they see what the learner's own ``kubectl`` did.
"""

from __future__ import annotations

import asyncio
import hashlib
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from canarylab.engine.events import CheckEvaluated, EngineEvent, KubeEvent, WebhookResult, WeightChanged
from canarylab.engine.kinds import CANARY, DEPLOYMENT, kind_of
from canarylab.engine.ports import Cluster, ClusterError
from canarylab.learn.model import Check
from canarylab.manifests import load_documents

SimulateRunner = Callable[[Sequence[str]], Awaitable[tuple[int, str]]]
"""Runs ``canarylab simulate`` with these arguments; returns the exit code and its output."""


async def run_simulate(args: Sequence[str]) -> tuple[int, str]:
    """``canarylab simulate ARGS`` in a child process (no shell), as the learner runs it in a terminal."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "canarylab.cli", "simulate", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await proc.communicate()
    return proc.returncode if proc.returncode is not None else -1, out.decode(errors="replace")


@dataclass
class Observation:
    """What a check may look at: the events since the step began and the cluster."""

    events: Sequence[EngineEvent]
    cluster: Cluster
    namespace: str
    canary: str
    work_dir: Path
    simulate: SimulateRunner = run_simulate
    cache: dict[str, tuple[int, str]] = field(default_factory=dict)
    """``simulate`` results by scenario content, so an unchanged file is not run again."""


@dataclass(frozen=True)
class Part:
    """One line of a check's progress: what it waits for, and whether that holds now."""

    text: str
    ok: bool


def describe(check: Check) -> str:
    """What a check waits for, in the learner's words."""
    a = check.args
    match check.kind:
        case "all":
            return " and ".join(describe(c) for c in check.children)
        case "any":
            return " or ".join(describe(c) for c in check.children)
        case "event":
            return f'event "{a}"'
        case "warning":
            return f'warning "{a}"'
        case "phase":
            return f"phase {a}"
        case "weight":
            return f"canary weight {a['atLeast']} %"
        case "canaryWeightStayed":
            return f"canary weight stays at most {a['max']} %"
        case "metric":
            return f"check {a['name']} {'passes' if a['ok'] else 'fails'}"
        case "webhook":
            return f"webhook {a['name']} {'passes' if a['ok'] else 'fails'}"
        case "paused":
            return "analysis paused" if a else "analysis resumed"
        case "image":
            return f"{a['deployment']} runs {a['contains']}"
        case "exists":
            return f"{a['kind']} {a['name']} exists"
        case "canaryWebhook":
            return f"the Canary has a {a} webhook"
        case "canaryMetric":
            return f"the Canary checks MetricTemplate {a}"
        case "matches":
            return f"{a} applied"
        case "simulate":
            return f"`canarylab simulate --scenario {a['scenario']}` exits {a['exit']}"
    return check.kind


async def evaluate(check: Check, obs: Observation) -> list[Part]:
    """The check's parts (one per leaf of an ``all``), each with its verdict now."""
    if check.kind == "all":
        parts: list[Part] = []
        for child in check.children:
            parts.extend(await evaluate(child, obs))
        return parts
    if check.kind == "any":
        results = [await evaluate(child, obs) for child in check.children]
        ok = any(all(p.ok for p in r) for r in results)
        return [Part(describe(check), ok)]
    return [Part(describe(check), await _leaf(check, obs))]


async def passed(check: Check, obs: Observation) -> bool:
    """Whether the whole check holds now."""
    return all(p.ok for p in await evaluate(check, obs))


async def _leaf(check: Check, obs: Observation) -> bool:
    a = check.args
    key = (obs.namespace, obs.canary)
    mine = [e for e in obs.events if (e.namespace, e.name) == key]
    match check.kind:
        case "event":
            return any(isinstance(e, KubeEvent) and a in e.message for e in mine)
        case "warning":
            return any(isinstance(e, KubeEvent) and e.type == "Warning" and a in e.message for e in mine)
        case "weight":
            return any(isinstance(e, WeightChanged) and e.canary >= int(a["atLeast"]) for e in mine)
        case "canaryWeightStayed":
            return not any(isinstance(e, WeightChanged) and e.canary > int(a["max"]) for e in mine)
        case "metric":
            return any(isinstance(e, CheckEvaluated) and e.metric == a["name"] and e.ok is bool(a["ok"])
                       and (e.value is not None or not a["ok"]) for e in mine)
        case "webhook":
            return any(isinstance(e, WebhookResult) and e.hook == a["name"] and e.ok is bool(a["ok"]) for e in mine)
        case "simulate":
            return await _simulate(a, obs)
    canary = await _get(obs.cluster, CANARY, obs.namespace, obs.canary)
    spec = (canary or {}).get("spec") or {}
    match check.kind:
        case "phase":
            return ((canary or {}).get("status") or {}).get("phase") == a
        case "paused":
            annotations = ((canary or {}).get("metadata") or {}).get("annotations") or {}
            paused = str(annotations.get("canarylab.dev/paused", "")).lower() == "true" or bool(spec.get("suspend"))
            return paused is a
        case "canaryWebhook":
            hooks = (spec.get("analysis") or {}).get("webhooks") or []
            return any(isinstance(h, dict) and h.get("type") == a for h in hooks)
        case "canaryMetric":
            metrics = (spec.get("analysis") or {}).get("metrics") or []
            return any(isinstance(m, dict) and ((m.get("templateRef") or {}).get("name") == a) for m in metrics)
        case "image":
            dep = await _get(obs.cluster, DEPLOYMENT, obs.namespace, str(a["deployment"]))
            containers = ((((dep or {}).get("spec") or {}).get("template") or {}).get("spec") or {}).get(
                "containers") or []
            return any(str(a["contains"]) in str(c.get("image", "")) for c in containers)
        case "exists":
            probe = {"kind": a["kind"], "metadata": {"name": a["name"]}}
            try:
                kind = kind_of(probe)
            except ValueError:
                return False
            return await _get(obs.cluster, kind, obs.namespace, str(a["name"])) is not None
        case "matches":
            return await _matches(obs, str(a))
    raise ValueError(f"unknown check {check.kind!r}")


async def _get(cluster: Cluster, kind: Any, namespace: str, name: str) -> dict[str, Any] | None:
    try:
        return await cluster.get(kind, namespace, name)
    except ClusterError:
        return None  # an unreachable cluster is not a pass; the dashboard says why elsewhere


async def _matches(obs: Observation, name: str) -> bool:
    """Every object in the work file is in the cluster, its ``spec`` holding every field the file sets."""
    path = obs.work_dir / name
    try:
        docs = load_documents(path.read_text(), name)
    except Exception:  # a half-written file is simply not applied yet
        return False
    for doc in docs:
        try:
            kind = kind_of(doc)
        except ValueError:
            return False
        meta = doc.get("metadata") or {}
        live = await _get(obs.cluster, kind, str(meta.get("namespace") or obs.namespace), str(meta.get("name")))
        if live is None or not _contains(live.get("spec"), doc.get("spec")):
            return False
    return True


def _contains(live: Any, wanted: Any) -> bool:
    if isinstance(wanted, dict):
        return isinstance(live, dict) and all(_contains(live.get(k), v) for k, v in wanted.items())
    if isinstance(wanted, list):
        return isinstance(live, list) and len(live) == len(wanted) and all(
            _contains(x, y) for x, y in zip(live, wanted, strict=True))
    if isinstance(wanted, int | float) and isinstance(live, int | float):
        return float(live) == float(wanted)
    return bool(live == wanted or str(live) == str(wanted))


async def _simulate(args: dict[str, Any], obs: Observation) -> bool:
    """Run the learner's scenario through ``canarylab simulate``; pass on the expected exit code (and event)."""
    path = obs.work_dir / str(args["scenario"])
    try:
        content = path.read_bytes()
    except OSError:
        return False
    argv = ["--scenario", str(path)]
    if args.get("timeout"):
        argv += ["--timeout", str(args["timeout"])]
    digest = hashlib.sha256(content + repr(argv).encode()).hexdigest()
    if digest not in obs.cache:
        obs.cache[digest] = await obs.simulate(argv)
    code, output = obs.cache[digest]
    want_event = args.get("event")
    return code == int(args["exit"]) and (not want_event or str(want_event) in output)
