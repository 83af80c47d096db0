"""Run a scenario under a controller (the real Flagger or ``canarylab engine``) and record what it did.

The :class:`Substrate` is shared by every run: a real API server (the control-plane launcher), the routing and
Flagger CRDs, the scripted metrics exporter, a real Prometheus scraping it, and the scripted webhook receiver.
:func:`run_scenario` gives a scenario a fresh namespace, applies its objects, starts the controller as a user
would (``flagger -kubeconfig ...`` or ``canarylab engine --context ...``) and polls the API server every
``POLL`` seconds until the run ends or its time is up, recording a :class:`Recording`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from canarylab.conformance.exporter import ScriptedExporter
from canarylab.conformance.hooks import ScriptedHooks
from canarylab.conformance.scenarios import Action, Observed, Scenario
from canarylab.engine.kinds import (
    CANARY,
    DEPLOYMENT,
    EVENT,
    HPA,
    HTTP_ROUTE,
    METRIC_TEMPLATE,
    NAMESPACE,
    SERVICE,
    TRAFFIC_SPLIT,
    Kind,
    Obj,
)  # fmt: skip
from canarylab.engine.ports import ClusterError, NotFound
from canarylab.engine.routing import weights_of
from canarylab.errors import UserError
from canarylab.kube.cluster import KubeCluster
from canarylab.prometheus.local import LocalPrometheus, free_port

POLL = 0.4
"""Seconds between two looks at the API server (the analysis interval is 10 s)."""

FLAGGER_VERSION = "v1.44.0"
CONTROLLERS = ("flagger", "engine")
_KIND_BY_NAME = {k.kind: k for k in (DEPLOYMENT, SERVICE, HPA, CANARY, METRIC_TEMPLATE)}
TERMINAL = {"Succeeded", "Failed"}


class HarnessError(Exception):
    """Something the harness needs is missing or broke; the message says what and how to fix it."""


# --------------------------------------------------------------------------------------------- binaries


def substrate_dirs() -> list[Path]:
    """The bin dirs ``substrate/build --print-dir`` names (control plane, KWOK, Flagger)."""
    build = Path(__file__).resolve().parents[2] / "substrate" / "build"
    if not build.exists():
        return []
    out = subprocess.run([str(build), "--print-dir"], capture_output=True, text=True, timeout=30, check=False)
    return [Path(line) for line in out.stdout.splitlines() if line.strip()]


def find_binary(name: str) -> Path:
    """``$CANARYLAB_<NAME>``, else the substrate cache, else PATH; a :class:`HarnessError` saying how to build it."""
    env = os.environ.get(f"CANARYLAB_{name.upper().replace('-', '_')}")
    if env and Path(env).is_file():
        return Path(env)
    for directory in substrate_dirs():
        if (directory / name).is_file():
            return directory / name
    found = shutil.which(name)
    if found:
        return Path(found)
    raise HarnessError(f"{name} not found: build it with `substrate/build flagger` (Flagger {FLAGGER_VERSION} "
                       f"and its loadtester, about 5 minutes), or set CANARYLAB_{name.upper()} to the binary")


# --------------------------------------------------------------------------------------------- substrate


@dataclass
class Substrate:
    """Everything the runs share. ``kubeconfig`` and ``context`` come from the control-plane launcher."""

    kubeconfig: Path
    context: str
    kubectl: Path
    logs: Path
    exporter: ScriptedExporter
    hooks: ScriptedHooks
    prometheus: LocalPrometheus
    flagger: Path | None = None
    cluster: KubeCluster | None = None

    @property
    def prometheus_url(self) -> str:
        return self.prometheus.url

    async def connect(self) -> KubeCluster:
        if self.cluster is None:
            self.cluster = await KubeCluster.connect(self.context, kubeconfig=str(self.kubeconfig),
                                                     log=lambda line: None)
        return self.cluster

    def kubectl_run(self, *args: str, timeout: float = 60) -> str:
        cmd = [str(self.kubectl), "--kubeconfig", str(self.kubeconfig), "--context", self.context, *args]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
        if out.returncode != 0:
            raise HarnessError(f"kubectl {' '.join(args)} failed: {out.stderr.strip()}")
        return out.stdout

    def install_crds(self) -> None:
        """The lab's CRDs, as ``tests/realkube.py`` applies them: Flagger's (Canary, MetricTemplate,
        AlertProvider), the SMI TrafficSplit (v1alpha1 for Flagger, v1alpha2 for canarylab) and the Gateway API
        release's; server-side, Established within a bounded wait."""
        from canarylab.controlplane.binaries import MissingBinaries, gateway_api_crds
        from canarylab.manifests import bootstrap_file

        try:
            gateway = sorted(gateway_api_crds().glob("*.yaml"))
        except MissingBinaries as err:
            raise HarnessError(str(err)) from None
        args = ["apply", "--server-side", "--force-conflicts"]
        for f in [bootstrap_file("crds", "flagger.yaml"), bootstrap_file("crds", "smi-trafficsplit.yaml"), *gateway]:
            args += ["-f", str(f)]
        self.kubectl_run(*args)
        self.kubectl_run("wait", "--for=condition=Established", "--timeout=60s",
                         "crd/canaries.flagger.app", "crd/metrictemplates.flagger.app",
                         "crd/alertproviders.flagger.app", "crd/trafficsplits.split.smi-spec.io",
                         "crd/httproutes.gateway.networking.k8s.io", timeout=90)


async def start_substrate(kubeconfig: Path, context: str, kubectl: Path, logs: Path,
                          *, need_flagger: bool = True) -> Substrate:
    """Start the exporter, the hook receiver and Prometheus; apply the CRDs. Stop it with :func:`stop_substrate`."""
    logs.mkdir(parents=True, exist_ok=True)
    exporter = ScriptedExporter()
    exporter.start()
    hooks = ScriptedHooks()
    hooks.start()
    prometheus = LocalPrometheus([exporter.target])
    sub = Substrate(kubeconfig, context, kubectl, logs, exporter, hooks, prometheus,
                    flagger=find_binary("flagger") if need_flagger else None)
    try:
        await prometheus.start()
        await asyncio.to_thread(sub.install_crds)
        await sub.connect()
    except BaseException:
        await stop_substrate(sub)
        raise
    return sub


async def stop_substrate(sub: Substrate) -> None:
    with contextlib.suppress(Exception):
        if sub.prometheus.workdir is not None:
            shutil.copy(sub.prometheus.log_path, sub.logs / "prometheus.log")
    await sub.prometheus.close()
    sub.hooks.stop()
    sub.exporter.stop()
    if sub.cluster is not None:
        with contextlib.suppress(Exception):
            await sub.cluster.api.api_session.aclose()  # type: ignore[attr-defined]


# --------------------------------------------------------------------------------------------- controllers


class Controller:
    """One controller process watching one namespace: Flagger out of cluster, or ``canarylab engine``."""

    def __init__(self, sub: Substrate, which: str, namespace: str, mesh_provider: str) -> None:
        self.sub = sub
        self.which = which
        self.namespace = namespace
        self.mesh_provider = mesh_provider
        self.log_path = sub.logs / f"{namespace}.log"
        self.proc: asyncio.subprocess.Process | None = None
        self.started: list[float] = []

    def command(self) -> list[str]:
        if self.which == "flagger":
            if self.sub.flagger is None:
                raise HarnessError("this run has no Flagger binary")
            return [str(self.sub.flagger), "-kubeconfig", str(self.sub.kubeconfig),
                    "-mesh-provider", self.mesh_provider, "-metrics-server", self.sub.prometheus_url,
                    "-namespace", self.namespace, "-enable-leader-election=false", "-log-level", "info",
                    "-port", str(free_port()), "-control-loop-interval", "1s", "-zap-encoding", "console"]
        script = Path(sys.executable).with_name("canarylab")  # the console script a user runs
        cli = [str(script)] if script.is_file() else [sys.executable, "-m", "canarylab.cli"]
        return [*cli, "engine", "--context", self.sub.context,
                "--namespace", self.namespace, "--in-cluster", "--metrics-server", self.sub.prometheus_url,
                "--json"]

    async def start(self) -> None:
        env = dict(os.environ, KUBECONFIG=str(self.sub.kubeconfig))
        with open(self.log_path, "ab") as log:
            log.write(f"--- start {' '.join(self.command())}\n".encode())
            log.flush()
            self.proc = await asyncio.create_subprocess_exec(*self.command(), stdout=log, stderr=log,
                                                             stdin=subprocess.DEVNULL, env=env)
        self.started.append(time.monotonic())

    async def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.returncode is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except TimeoutError:
            proc.kill()
            await asyncio.wait_for(proc.wait(), 5)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


# --------------------------------------------------------------------------------------------- recording


@dataclass
class Recording:
    """What one controller did in one scenario, with namespace, ports and URLs normalised away."""

    scenario: str
    controller: str
    namespace: str
    phases: list[str] = field(default_factory=list)
    weights: list[int] = field(default_factory=list)
    status_weights: list[int] = field(default_factory=list)
    failed_checks: list[int] = field(default_factory=list)
    iterations: list[int] = field(default_factory=list)
    ticks: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    hook_calls: list[str] = field(default_factory=list)
    final: dict[str, Any] = field(default_factory=dict)
    routes: list[Any] = field(default_factory=list)
    """The routing object's spec as it changed (normalised, without repeats); reported, not compared (the two
    controllers may write intermediate states the other does not), for reading the shapes side by side."""
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    timed_out: bool = False
    reaction: dict[str, float] = field(default_factory=dict)
    """Timing, reported but not compared: seconds from the new image to phase Progressing (``new revision``)
    and from a second image mid-run to the weight back at 0 (``restart``)."""

    def to_json(self) -> dict[str, Any]:
        return dict(vars(self))


def _push(seq: list[Any], value: Any) -> None:
    if not seq or seq[-1] != value:
        seq.append(value)


class Normaliser:
    """Replaces what legitimately differs between the two runs: namespace, hook port, Prometheus URL."""

    def __init__(self, sub: Substrate, namespace: str) -> None:
        self.pairs = [(sub.hooks.url(namespace, ""), "<hooks>/"), (sub.prometheus_url, "<prometheus>"),
                      (f".{namespace}", ".NS"), (namespace, "NS")]

    def __call__(self, text: str) -> str:
        for old, new in self.pairs:
            text = text.replace(old, new)
        return text


def _event_key(ev: Obj) -> tuple[str, int]:
    name = (ev.get("metadata") or {}).get("name", "")
    stamp = ev.get("firstTimestamp") or ev.get("eventTime") or ""
    try:
        nanos = int(name.rsplit(".", 1)[-1][:16], 16)
    except ValueError:
        nanos = 0
    return str(stamp), nanos


async def _get(cluster: KubeCluster, kind: Kind, namespace: str, name: str) -> Obj | None:
    try:
        return await cluster.get(kind, namespace, name)
    except NotFound:
        return None


class Run:
    """One scenario under one controller."""

    def __init__(self, sub: Substrate, scenario: Scenario, which: str, namespace: str) -> None:
        self.sub = sub
        self.s = scenario
        self.which = which
        self.ns = namespace
        self.norm = Normaliser(sub, namespace)
        self.rec = Recording(scenario.name, which, namespace)
        self.controller = Controller(sub, which, namespace, scenario.mesh_provider)
        self.route_kind = HTTP_ROUTE if scenario.mesh_provider.startswith("gatewayapi") or \
            scenario.canary["spec"].get("provider", "").startswith("gatewayapi") else TRAFFIC_SPLIT
        self._events: dict[str, tuple[tuple[str, int], int, Obj]] = {}
        self._canary: Obj | None = None
        self._weight: int | None = None
        self._triggered: float | None = None
        self._second_image: float | None = None

    @property
    def cluster(self) -> KubeCluster:
        assert self.sub.cluster is not None
        return self.sub.cluster

    async def setup(self) -> None:
        c = self.cluster
        with contextlib.suppress(ClusterError):
            await c.create(NAMESPACE.new("", self.ns) | {"metadata": {"name": self.ns}})
        self.sub.exporter.script(self.ns, self.s.metrics)
        self.sub.hooks.script(self.ns, self.s.hooks)
        for obj in self.s.objects(self.ns, lambda hook: self.sub.hooks.url(self.ns, hook), self.sub.prometheus_url):
            await c.create(obj)

    def _on_canary(self, obj: Obj | None) -> None:
        r = self.rec
        if obj is None:
            self._canary = None
            return
        self._canary = obj
        status = obj.get("status") or {}
        phase = str(status.get("phase", ""))
        if phase == "Progressing" and self._triggered is not None and "new revision" not in self.rec.reaction:
            self.rec.reaction["new revision"] = round(time.monotonic() - self._triggered, 2)
        _push(r.phases, phase)
        _push(r.status_weights, int(status.get("canaryWeight", 0) or 0))
        _push(r.failed_checks, int(status.get("failedChecks", 0) or 0))
        _push(r.iterations, int(status.get("iterations", 0) or 0))
        self._tick()

    def _on_route(self, obj: Obj | None) -> None:
        if obj is not None:
            _push(self.rec.routes, json.loads(self._cookies(self.norm(json.dumps(obj.get("spec") or {})))))
        weights = weights_of(obj) if obj is not None else None
        self._weight = weights[1] if weights else None
        if self._weight == 0 and self._second_image is not None and "restart" not in self.rec.reaction:
            self.rec.reaction["restart"] = round(time.monotonic() - self._second_image, 2)
        if self._weight is not None:
            _push(self.rec.weights, self._weight)
            self._tick()

    def _tick(self) -> None:
        status = (self._canary or {}).get("status") or {}
        tick = {"phase": str(status.get("phase", "")), "canaryWeight": self._weight,
                "failedChecks": int(status.get("failedChecks", 0) or 0),
                "iterations": int(status.get("iterations", 0) or 0)}
        if self._canary is not None and (not self.rec.ticks or self.rec.ticks[-1] != tick):
            self.rec.ticks.append(tick)

    async def _watch(self, kind: Kind, name: str, on: Any) -> None:
        """Every change of one object, in order: a watch never skips a state the way a poll can."""
        async for event in self.cluster.watch(kind, self.ns):
            if (event.object.get("metadata") or {}).get("name") != name:
                continue
            on(None if event.type == "DELETED" else event.object)

    def observed(self, since_trigger: float) -> Observed:
        status = (self._canary or {}).get("status") or {}
        counts: dict[str, int] = {}
        for call in self.sub.hooks.calls(self.ns):
            counts[call.hook] = counts.get(call.hook, 0) + 1
        return Observed(str(status.get("phase", "")), self._weight, int(status.get("failedChecks", 0) or 0),
                        int(status.get("iterations", 0) or 0), counts, self._canary is not None, since_trigger)

    async def collect_events(self) -> None:
        """The Canary's Events as the API server holds them at the end (``kubectl describe`` shows these)."""
        for ev in await self.cluster.list(EVENT, self.ns):
            if (ev.get("involvedObject") or {}).get("kind") == "Canary":
                self._events[ev["metadata"]["name"]] = (_event_key(ev), 0, ev)

    async def act(self, action: Action) -> None:
        self.rec.notes.append(f"action: {action.do} {action.arg or ''}".strip())
        if action.do == "set-image":
            self._second_image = time.monotonic()
            await self.patch_deployment({"image": action.arg})
        elif action.do == "open-gate":
            self.sub.hooks.open_gate(self.ns, action.arg)
        elif action.do == "delete-canary":
            await self.cluster.delete(CANARY, self.ns, "podinfo")
        elif action.do == "restart":
            await self.controller.stop()
            await asyncio.sleep(float(action.arg))
            await self.controller.start()
        else:
            raise HarnessError(f"unknown action {action.do!r}")

    async def patch_deployment(self, change: dict[str, Any]) -> None:
        template: Obj = {"spec": {"containers": [{"name": "podinfod", "image": change["image"]}]}}
        if "nodeSelector" in change:
            template["spec"]["nodeSelector"] = change["nodeSelector"]
        await self.cluster.patch(DEPLOYMENT, self.ns, "podinfo", {"spec": {"template": template}})

    async def final_state(self) -> dict[str, Any]:
        c = self.cluster
        out: dict[str, Any] = {}
        for name in ("podinfo", "podinfo-primary"):
            d = await _get(c, DEPLOYMENT, self.ns, name)
            if d is None:
                out[f"deployment/{name}"] = None
                continue
            spec = d.get("spec") or {}
            pod = (spec.get("template") or {}).get("spec") or {}
            out[f"deployment/{name}"] = {
                "replicas": spec.get("replicas"),
                "images": [x.get("image") for x in pod.get("containers") or []],
                "selector": (spec.get("selector") or {}).get("matchLabels"),
            }
        for name in ("podinfo", "podinfo-canary", "podinfo-primary"):
            svc = await _get(c, SERVICE, self.ns, name)
            out[f"service/{name}"] = None if svc is None else {
                "selector": (svc.get("spec") or {}).get("selector"),
                "ports": [(p.get("name"), p.get("port"), p.get("targetPort"))
                          for p in (svc.get("spec") or {}).get("ports") or []],
            }
        hpa = await _get(c, HPA, self.ns, "podinfo-primary")
        if self.s.hpa:
            out["hpa/podinfo-primary"] = None if hpa is None else \
                ((hpa.get("spec") or {}).get("scaleTargetRef") or {}).get("name")
        route = await _get(c, self.route_kind, self.ns, "podinfo")
        out[f"{self.route_kind.kind.lower()}/podinfo"] = None if route is None else self._route(route)
        canary = await _get(c, CANARY, self.ns, "podinfo")
        out["canary/podinfo"] = None if canary is None else (canary.get("status") or {}).get("phase")
        return out

    def _route(self, route: Obj) -> Any:
        spec = route.get("spec") or {}
        if self.route_kind is TRAFFIC_SPLIT:
            return {"service": spec.get("service"),
                    "backends": sorted((b.get("service"), int(float(b.get("weight") or 0)))
                                       for b in spec.get("backends") or [])}
        rules = []
        for rule in spec.get("rules") or []:
            shape = {"matches": rule.get("matches"),
                     "backends": sorted((b.get("name"), b.get("weight")) for b in rule.get("backendRefs") or [])}
            # the service's filters and timeouts, and session affinity's per-backend Set-Cookie filters
            for key in ("filters", "timeouts"):
                if rule.get(key):
                    shape[key] = rule[key]
            backend_filters = {b.get("name"): b["filters"] for b in rule.get("backendRefs") or [] if b.get("filters")}
            if backend_filters:
                shape["backend filters"] = backend_filters
            rules.append(shape)
        return json.loads(self._cookies(json.dumps({"parentRefs": spec.get("parentRefs"), "rules": rules})))

    def _cookies(self, text: str) -> str:
        """Session affinity's cookie values (ten random letters in Flagger) as ``<cookie>``."""
        affinity = (self.s.canary["spec"].get("analysis") or {}).get("sessionAffinity") or {}
        for name in (affinity.get("cookieName"), affinity.get("primaryCookieName")):
            if name:
                text = re.sub(rf"{re.escape(name)}(=|\.\*)[A-Za-z]{{10}}", rf"{name}\1<cookie>", text)
        return text

    def finish(self, final: dict[str, Any]) -> Recording:
        r = self.rec
        ordered = sorted(self._events.values(), key=lambda item: (item[0], item[1]))
        for _, _, ev in ordered:
            r.events.append({"type": ev.get("type"), "reason": ev.get("reason"),
                             "message": self.norm(str(ev.get("message", ""))), "count": ev.get("count", 1)})
        for call in self.sub.hooks.calls(self.ns):
            _push(r.hook_calls, f"{call.hook} {call.payload.get('phase', '')}")
        r.final = json.loads(self.norm(json.dumps(final)))
        return r

    async def run(self) -> Recording:
        start = time.monotonic()
        deadline = start + self.s.timeout
        watches = [asyncio.create_task(self._watch(CANARY, "podinfo", self._on_canary)),
                   asyncio.create_task(self._watch(self.route_kind, "podinfo", self._on_route))]
        await asyncio.sleep(0.5)  # both watches listening before anything exists
        await self.setup()
        await self.controller.start()
        triggered_at: float | None = None if self.s.trigger else start
        done: set[int] = set()
        ended_at: float | None = None
        try:
            while time.monotonic() < deadline:
                since = time.monotonic() - triggered_at if triggered_at is not None else -1.0
                seen = self.observed(since)
                if triggered_at is None and seen.phase == "Initialized" and self.s.trigger:
                    triggered_at = self._triggered = time.monotonic()
                    await self.patch_deployment(self.s.trigger)
                    self.rec.notes.append("trigger: " + json.dumps(self.s.trigger))
                elif triggered_at is not None:
                    for i, action in enumerate(self.s.actions):
                        if i not in done and action.when(seen):
                            done.add(i)
                            await self.act(action)
                ended = (seen.phase in TERMINAL and triggered_at is not None) if self.s.ends == "terminal" \
                    else (not seen.exists and bool(done))
                if ended and ended_at is None:
                    ended_at = time.monotonic()
                elif not ended:
                    ended_at = None
                if ended_at is not None and time.monotonic() - ended_at >= self.s.settle:
                    break
                if not self.controller.alive() and not any(a.do == "restart" for a in self.s.actions):
                    self.rec.notes.append("controller exited: " + self.controller.log_tail(5))
                    break
                await asyncio.sleep(POLL)
            else:
                self.rec.timed_out = True
                self.rec.notes.append(f"timed out after {self.s.timeout:g}s")
            await self.collect_events()
            final = await self.final_state()
        finally:
            await self.controller.stop()
            for task in watches:
                task.cancel()
            await asyncio.gather(*watches, return_exceptions=True)
        self.rec.seconds = round(time.monotonic() - start, 1)
        return self.finish(final)


async def delete_namespaces(sub: Substrate, namespaces: list[str], timeout: float = 90.0) -> None:
    """Delete the runs' namespaces and wait (bounded) until they are gone, so a shared API server is left clean."""
    cluster = sub.cluster
    assert cluster is not None
    for ns in namespaces:
        with contextlib.suppress(ClusterError):
            await cluster.delete(NAMESPACE, "", ns)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = [ns for ns in namespaces if await _get(cluster, NAMESPACE, "", ns) is not None]
        if not left:
            return
        await asyncio.sleep(1.0)
    raise HarnessError(f"namespaces {', '.join(left)} still terminating after {timeout:g}s")


def namespace_for(prefix: str, scenario: str, which: str) -> str:
    raw = f"{prefix}-{scenario}-{'f' if which == 'flagger' else 'e'}"
    return re.sub(r"[^a-z0-9-]", "-", raw.lower())[:63].strip("-")


async def run_scenario(sub: Substrate, scenario: Scenario, prefix: str) -> dict[str, Recording]:
    """Both runs of a scenario, side by side (two namespaces, at the same time)."""
    runs = {which: Run(sub, scenario, which, namespace_for(prefix, scenario.name, which)) for which in CONTROLLERS}
    results = await asyncio.gather(*(r.run() for r in runs.values()), return_exceptions=True)
    out: dict[str, Recording] = {}
    for (which, run), result in zip(runs.items(), results, strict=True):
        if isinstance(result, BaseException):
            if isinstance(result, asyncio.CancelledError):
                raise result
            run.rec.notes.append(f"harness error: {type(result).__name__}: {result}")
            out[which] = run.finish({})
        else:
            out[which] = result
    return out


__all__ = ["HarnessError", "Recording", "Substrate", "UserError", "run_scenario", "start_substrate",
           "stop_substrate"]
