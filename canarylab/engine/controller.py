"""The Engine: one asyncio task per Canary, ticking on the injected clock.

Each task ticks at once, then every analysis interval, and wakes early when its target Deployment gets a
new pod template, its Canary spec changes, or a command arrives. All run state lives in the Canary status
(and a pause in the ``canarylab.dev/paused`` annotation), so a new Engine resumes where the old one stopped.
A Canary with ``revertOnDeletion`` gets Flagger's finalizer; when it is deleted its task runs the finalizer
path (:mod:`canarylab.engine.finalizer`) instead of the analysis.
With ``readonly=True`` the engine never writes: it follows what a real Flagger writes and emits the same
typed events.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import marshal
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from canarylab.engine import finalizer, routing
from canarylab.engine.alerts import Alerts, NoAlerts
from canarylab.engine.clock import sleep_or_wake, stop_if_cancelled
from canarylab.engine.commands import Abort, Command, OpenGate, Pause, Promote, Resume, refusal
from canarylab.engine.context import RunNotes, TickCluster, TickContext, template_hash
from canarylab.engine.events import (
    CanaryProblem,
    CanaryRemoved,
    EngineEvent,
    EngineNotice,
    EventSink,
    KubeEvent,
    PhaseChanged,
    StatusChanged,
    TickFinished,
    WeightChanged,
)
from canarylab.engine.flagger_metrics import CanaryFacts
from canarylab.engine.kinds import (
    CANARY,
    DAEMON_SET,
    DEPLOYMENT,
    EVENT,
    HTTP_ROUTE,
    INGRESS,
    TRAFFIC_SPLIT,
    VIRTUAL_SERVICE,
    Kind,
    Obj,
)
from canarylab.engine.ports import Clock, Cluster, ClusterError, Metrics, WatchEvent, WebhookCall, Webhooks
from canarylab.engine.spec import Canary, SpecError, parse_canary
from canarylab.engine.tick import advance_canary

PAUSED_ANNOTATION = "canarylab.dev/paused"


class EngineError(Exception):
    """A command or request the engine cannot honour; ``str(err)`` is the user-facing message."""


@dataclass(frozen=True)
class CanaryState:
    """What a UI row or detail view needs about one Canary, without parsing messages."""

    namespace: str
    name: str
    target: str
    phase: str
    canary_weight: int
    primary_weight: int
    failed_checks: int
    threshold: int
    iterations: int
    strategy: str
    steps: tuple[int, ...]
    max_weight: int
    interval: float
    last_transition_time: str | None
    paused: bool
    suspended: bool
    waiting_gate: str | None
    problem: str | None
    router: str


class _Slot:
    """Everything the engine keeps about one Canary.

    The last Canary object is kept marshal'd (``obj`` loads a private copy): a thousand canaries then leave
    almost nothing for the cyclic garbage collector to scan, and the few fields read on every tick are
    kept aside.
    """

    def __init__(self, namespace: str, name: str, obj: Obj) -> None:
        self.namespace = namespace
        self.name = name
        self.canary: Canary | None = None
        self.problem: str | None = None
        self.notes = RunNotes()
        self.wake = asyncio.Event()
        self.lock = asyncio.Lock()
        self.task: asyncio.Task[None] | None = None
        self.target_hash: str | None = None
        self.generation: int | None = None
        self.parsed_key: bytes | None = None
        self.parsed: Canary | None = None
        self._raw = b""
        self.paused = False
        self.phase = ""
        self.deleting = False
        self.obj = obj

    @property
    def obj(self) -> Obj:
        """The Canary as last seen (a private copy)."""
        return marshal.loads(self._raw)

    @obj.setter
    def obj(self, value: Obj) -> None:
        annotations = (value.get("metadata") or {}).get("annotations") or {}
        self.paused = str(annotations.get(PAUSED_ANNOTATION, "")).lower() == "true"
        self.phase = str((value.get("status") or {}).get("phase") or "")
        self.deleting = finalizer.deleting(value)
        try:
            self._raw = marshal.dumps(value)
        except ValueError:  # a value YAML produced that is not JSON (a date): keep it as text
            self._raw = marshal.dumps(json.loads(json.dumps(value, default=str)))

    @property
    def key(self) -> str:
        return f"{self.name}.{self.namespace}"


class Engine:
    """Flagger's canary analysis over the Cluster, Metrics and Webhooks ports."""

    def __init__(self, cluster: Cluster, metrics: Metrics, webhooks: Webhooks, clock: Clock, *,
                 namespaces: Collection[str] | None = None, readonly: bool = False,
                 metrics_server: str = "http://prometheus.linkerd-viz:9090", alerts: Alerts | None = None,
                 mesh_provider: str = "linkerd") -> None:
        self.cluster = cluster
        self.mesh_provider = mesh_provider
        """The provider of Canaries without ``spec.provider`` (Flagger's ``-mesh-provider``)."""
        self.metrics = metrics
        self.webhooks = webhooks
        self.clock = clock
        self.namespaces = None if namespaces is None else frozenset(namespaces)
        self.readonly = readonly
        self.metrics_server = metrics_server
        self.alerts: Alerts = alerts or NoAlerts()
        """Where ``analysis.alerts`` are posted (:class:`~canarylab.engine.alerts.NoAlerts`: reported, not sent)."""
        self._sinks: list[EventSink] = []
        self._slots: dict[tuple[str, str], _Slot] = {}
        self._target_index: dict[tuple[str, str], list[_Slot]] | None = None
        self._target_index_size = -1
        self._stopping = False
        self._routers_seen: dict[str, asyncio.Event] = {}  # readonly: a Canary routes with this kind
        self.ticks = 0
        """How many ticks ran (benchmarks)."""
        self.tick_cpu = 0.0
        """CPU seconds spent inside ticks (exact with in-memory ports, which never wait)."""

    # ------------------------------------------------------------------------------------- public

    def subscribe(self, sink: EventSink) -> Callable[[], None]:
        """Call ``sink`` for every event, in order; returns a function that unsubscribes."""
        self._sinks.append(sink)

        def unsubscribe() -> None:
            if sink in self._sinks:
                self._sinks.remove(sink)

        return unsubscribe

    def emit(self, event: EngineEvent) -> None:
        """Deliver ``event`` to every subscriber."""
        for sink in list(self._sinks):
            sink(event)

    async def run(self) -> None:
        """Until cancelled: watch Canaries and their target Deployments, one task per Canary."""
        try:
            async with asyncio.TaskGroup() as group:
                if self.readonly:
                    group.create_task(self._keep_watching("Canaries", self._observe_canaries))
                    group.create_task(self._keep_watching("TrafficSplits",
                                                          lambda: self._observe_routes(TRAFFIC_SPLIT)))
                    group.create_task(self._keep_watching("HTTPRoutes", lambda: self._observe_routes(HTTP_ROUTE)))
                    # Istio's and the ingress's objects only once a Canary routes with them (a cluster without
                    # Istio has no VirtualServices to watch)
                    group.create_task(self._keep_watching("VirtualServices", lambda: self._observe_routes(
                        VIRTUAL_SERVICE, on_demand=True)))
                    group.create_task(self._keep_watching("Ingresses", lambda: self._observe_routes(
                        INGRESS, on_demand=True)))
                    group.create_task(self._keep_watching("Events", self._observe_events))
                else:
                    group.create_task(self._keep_watching("Canaries", self._watch_canaries))
                    group.create_task(self._keep_watching("Deployments", lambda: self._watch_targets(DEPLOYMENT)))
                    group.create_task(self._keep_watching("DaemonSets", lambda: self._watch_targets(DAEMON_SET)))
        finally:
            self._stopping = True  # every per-canary loop ends at its next round, whatever swallowed a cancel
            tasks = [s.task for s in self._slots.values() if s.task is not None]
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _keep_watching(self, what: str, watch: Callable[[], Awaitable[None]]) -> None:
        """Run one watch loop; when the API fails, say so (once per outage) and try again."""
        delay = 1.0
        warned = False
        while not self._stopping:
            stop_if_cancelled()
            try:
                await watch()
                return
            except ClusterError as err:
                if not warned:
                    self.emit(EngineNotice(time=self.clock.now(), namespace="", name="", level="warning",
                                           message=f"watching {what} failed: {err}; retrying"))
                    warned = True
                await self.clock.sleep(delay)
                delay = min(30.0, delay * 2)

    async def send(self, command: Command) -> None:
        """Apply a command (:mod:`canarylab.engine.commands`); raises :class:`EngineError` if not applicable."""
        key = f"{command.name}.{command.namespace}"
        if self.readonly:
            raise EngineError(f"cannot {type(command).__name__.lower()} {key}: the engine is read-only "
                              "(--readonly), it only follows what Flagger does")
        slot = await self._slot(command.namespace, command.name)
        fresh = await self.cluster.get(CANARY, command.namespace, command.name)
        if fresh is not None:
            slot.obj = fresh
        phase = slot.phase or "Initializing"
        if isinstance(command, Pause | Resume):
            await self._set_paused(slot, isinstance(command, Pause))
            return
        why = refusal(type(command), key, phase, paused=slot.paused, problem=slot.problem)
        if why:
            raise EngineError(why)
        if isinstance(command, Abort):
            slot.notes.abort = True
            self._notice(slot, "manual abort requested")
        elif isinstance(command, Promote):
            slot.notes.promote = True
            self._notice(slot, "manual promotion requested")
        elif isinstance(command, OpenGate):
            await self._open_gate(slot, phase)
        else:
            raise EngineError(f"unknown command {type(command).__name__}")
        slot.wake.set()

    async def settle(self) -> None:
        """Wait until no tick is in flight (a tick ends its Flagger step: events, hooks and alerts sent)."""
        for slot in list(self._slots.values()):
            async with slot.lock:
                pass

    def facts(self, namespace: str, name: str) -> CanaryFacts | None:
        """The target, strategy and skipAnalysis of a Canary the engine serves (Flagger's metric labels)."""
        slot = self._slots.get((namespace, name))
        if slot is None or slot.canary is None:
            return None
        c = slot.canary
        return CanaryFacts(target=c.target, strategy=c.strategy, skip_analysis=c.skip_analysis)

    def canary_states(self) -> list[CanaryState]:
        """A snapshot of every Canary the engine serves, sorted by namespace and name."""
        return [self._state(self._slots[k]) for k in sorted(self._slots)]

    async def tick_once(self, namespace: str, name: str) -> None:
        """Run one tick of the Canary now (tests)."""
        slot = await self._slot(namespace, name)
        obj = await self.cluster.get(CANARY, namespace, name)
        if obj is None:
            raise EngineError(f"Canary {name}.{namespace} does not exist")
        await self._tick(slot, obj)

    # ------------------------------------------------------------------------------------- ticking

    async def _slot(self, namespace: str, name: str) -> _Slot:
        slot = self._slots.get((namespace, name))
        if slot is None:
            obj = await self.cluster.get(CANARY, namespace, name)
            if obj is None:
                raise EngineError(f"Canary {name}.{namespace} does not exist (kubectl get canaries -A lists them)")
            slot = _Slot(namespace, name, obj)
            self._slots[(namespace, name)] = slot
        return slot

    def _notice(self, slot: _Slot, message: str, level: str = "info") -> None:
        self.emit(EngineNotice(time=self.clock.now(), namespace=slot.namespace, name=slot.name, message=message,
                               level=level))  # type: ignore[arg-type]

    async def _tick(self, slot: _Slot, obj: Obj) -> None:
        async with slot.lock:
            meta = obj.get("metadata") or {}
            deleting = finalizer.deleting(obj)
            annotations = meta.get("annotations") or {}
            if str(annotations.get(PAUSED_ANNOTATION, "")).lower() == "true" and not deleting:
                slot.obj = obj
                return
            try:
                canary = self._parse(slot, self._provided(obj))
            except SpecError as err:
                slot.obj = obj
                await self._problem(slot, str(err))
                return
            if slot.problem is not None:
                slot.problem = None
                self._notice(slot, "the Canary spec is valid again")
            slot.canary = canary
            if deleting or canary.spec.revert_on_deletion != finalizer.has_finalizer(obj):
                current = await self._finalizer(slot, canary, obj)
                if current is None:
                    return
                obj = current
            ctx = TickContext(cluster=TickCluster(self.cluster), metrics=self.metrics, webhooks=self.webhooks,
                              clock=self.clock, emit=self.emit, canary=canary, obj=obj, notes=slot.notes,
                              metrics_server=self.metrics_server, alerts=self.alerts)  # fmt: skip
            self.ticks += 1
            started, wall = time.process_time(), time.perf_counter()
            try:
                await advance_canary(ctx)
            except (ClusterError, ValueError, KeyError, TypeError) as err:
                # A bad object in the cluster or an API failure: say so, keep the task alive.
                self._notice(slot, f"tick failed: {type(err).__name__}: {err}", "error")
            finally:
                self.tick_cpu += time.process_time() - started
                self.emit(TickFinished(time=self.clock.now(), namespace=slot.namespace, name=slot.name,
                                       seconds=time.perf_counter() - wall))
                slot.obj = {**obj, "status": dict(canary.status)}

    async def _finalizer(self, slot: _Slot, canary: Canary, obj: Obj) -> Obj | None:
        """Keep Flagger's finalizer in step with ``revertOnDeletion``, and run it when the Canary is deleted.

        Returns the Canary to tick, or ``None`` when it is being deleted (no analysis runs then).
        """
        revert = canary.spec.revert_on_deletion
        try:
            if not finalizer.deleting(obj):
                obj = await finalizer.set_finalizer(self.cluster, obj, revert)
                return obj
            slot.obj = obj
            if not finalizer.has_finalizer(obj):
                return None  # finalized already; other finalizers keep it a little longer
            if revert:
                ctx = TickContext(cluster=self.cluster, metrics=self.metrics, webhooks=self.webhooks,
                                  clock=self.clock, emit=self.emit, canary=canary, obj=obj, notes=slot.notes,
                                  metrics_server=self.metrics_server)  # fmt: skip
                try:
                    done = await finalizer.finalize(ctx)
                finally:
                    slot.obj = {**obj, "status": dict(canary.status)}
                if not done:
                    self._notice(slot, f"{slot.key} keeps its finalizer {finalizer.FINALIZER} and is tried again "
                                 "every interval; to delete it without reverting: kubectl -n "
                                 f"{slot.namespace} patch canary {slot.name} --type=merge "
                                 """-p '{"metadata":{"finalizers":null}}'""", "warning")
                    return None
            fresh = await self.cluster.get(CANARY, slot.namespace, slot.name)
            if fresh is not None and finalizer.has_finalizer(fresh):
                await finalizer.set_finalizer(self.cluster, fresh, False)
            if revert:
                await ctx.info(f"Terminated canary {canary.key}")
        except ClusterError as err:
            # A stale Canary (Conflict) or an API failure: the next tick tries again.
            self._notice(slot, f"finalizer {finalizer.FINALIZER}: {type(err).__name__}: {err}", "warning")
        return None

    def _provided(self, obj: Obj) -> Obj:
        """``obj`` with the engine's default provider when its spec names none (Flagger's ``-mesh-provider``)."""
        spec = obj.get("spec")
        if self.mesh_provider == "linkerd" or not isinstance(spec, dict) or spec.get("provider"):
            return obj
        return {**obj, "spec": {**spec, "provider": self.mesh_provider}}

    @staticmethod
    def _parse(slot: _Slot, obj: Obj) -> Canary:
        """The parsed Canary; validation runs again only when the spec changed (most ticks reuse it)."""
        meta = obj.get("metadata") or {}
        key: bytes | None
        if meta.get("uid") and meta.get("generation"):
            # the API server bumps generation on every spec change: (uid, generation) names one spec
            key = f"{meta['uid']}/{meta['generation']}".encode()
        else:
            try:
                key = marshal.dumps((meta.get("name"), meta.get("namespace"), obj.get("spec")))
            except ValueError:
                key = None
        if key is not None and key == slot.parsed_key and slot.parsed is not None:
            return slot.parsed.model_copy(update={"status": dict(obj.get("status") or {})})
        canary = parse_canary(obj)
        slot.parsed_key, slot.parsed = key, canary
        return canary.model_copy(update={"status": dict(obj.get("status") or {})})

    async def _problem(self, slot: _Slot, message: str) -> None:
        slot.canary = None
        if slot.problem == message:
            return
        slot.problem = message
        self.emit(CanaryProblem(time=self.clock.now(), namespace=slot.namespace, name=slot.name, message=message))
        with contextlib.suppress(ClusterError):
            await self.cluster.record_event(slot.obj, "Warning", "Synced", message)
        self.emit(KubeEvent(time=self.clock.now(), namespace=slot.namespace, name=slot.name, type="Warning",
                            reason="Synced", message=message))

    async def _loop(self, slot: _Slot) -> None:
        """The per-canary task: tick, sleep an interval or until woken, repeat until the Canary is gone or the
        engine stops."""
        while not self._stopping:
            stop_if_cancelled()
            obj = await self.cluster.get(CANARY, slot.namespace, slot.name)
            if obj is None:
                self._remove(slot.namespace, slot.name)
                return
            try:
                await self._tick(slot, obj)
            except asyncio.CancelledError:
                raise
            except Exception as err:  # the engine must outlive any one canary's surprise
                self._notice(slot, f"tick failed: {type(err).__name__}: {err}", "error")
            interval = slot.canary.interval_seconds if slot.canary is not None else 60.0
            await sleep_or_wake(self.clock, interval, slot.wake)

    def _start(self, slot: _Slot) -> None:
        if self._stopping:
            return
        if slot.task is None or slot.task.done():
            slot.task = asyncio.create_task(self._loop(slot), name=f"canary {slot.key}")

    def _remove(self, namespace: str, name: str) -> None:
        slot = self._slots.pop((namespace, name), None)
        if slot is None:
            return
        if slot.task is not None and slot.task is not asyncio.current_task():
            slot.task.cancel()
        self.emit(CanaryRemoved(time=self.clock.now(), namespace=namespace, name=name))

    def _wanted(self, namespace: str) -> bool:
        return self.namespaces is None or namespace in self.namespaces

    async def _watch(self, kind: Kind) -> AsyncIterator[WatchEvent]:
        """One stream of changes of ``kind`` in the engine's namespaces."""
        if self.namespaces is None or len(self.namespaces) == 1:
            ns = None if self.namespaces is None else next(iter(self.namespaces))
            async for ev in self.cluster.watch(kind, ns):
                yield ev
            return
        queue: asyncio.Queue[WatchEvent] = asyncio.Queue()

        async def pump(namespace: str) -> None:
            async for ev in self.cluster.watch(kind, namespace):
                queue.put_nowait(ev)

        pumps = [asyncio.create_task(pump(ns)) for ns in sorted(self.namespaces)]
        try:
            while True:
                yield await queue.get()
        finally:
            for p in pumps:
                p.cancel()

    async def _canary_changes(self) -> AsyncIterator[tuple[Obj, _Slot, bool]]:
        """Canaries as the watch sees them, in the engine's namespaces: ``(object, its slot, slot is new)``.
        Deletions are handled here (the slot goes) and not yielded."""
        async for ev in self._watch(CANARY):
            meta = ev.object.get("metadata") or {}
            ns, name = meta.get("namespace", "default"), meta.get("name", "")
            if not self._wanted(ns):
                continue
            if ev.type == "DELETED":
                self._remove(ns, name)
                continue
            slot = self._slots.get((ns, name))
            created = slot is None
            if slot is None:
                slot = self._slots[(ns, name)] = _Slot(ns, name, ev.object)
            yield ev.object, slot, created

    async def _watch_canaries(self) -> None:
        async for obj, slot, _ in self._canary_changes():
            generation = (obj.get("metadata") or {}).get("generation")
            if finalizer.deleting(obj) and not slot.deleting:
                slot.obj = obj
                slot.wake.set()  # deleted: revert now, not at the next interval
            if slot.generation is not None and generation != slot.generation:
                # Like Flagger, a new analysis interval restarts the canary's timer (so it ticks at once);
                # an invalid spec is re-checked at once, so a fix shows without waiting an interval.
                if slot.problem is not None or _interval(slot.obj) != _interval(obj):
                    slot.wake.set()
                slot.obj = obj
                self._target_index = None  # its targetRef may have changed
            slot.generation = generation
            self._start(slot)

    async def _watch_targets(self, kind: Kind) -> None:
        async for ev in self._watch(kind):
            meta = ev.object.get("metadata") or {}
            ns, name = meta.get("namespace", "default"), meta.get("name", "")
            if ev.type == "DELETED" or name.endswith("-primary"):
                continue
            if not isinstance(ev.object.get("spec"), dict):
                continue  # not a workload any API server would store: never a canary target, never a crash
            new_hash = template_hash(ev.object)
            for slot in self._targeting(ns, name):
                if (_dig(slot.obj, "spec", "targetRef", "kind") or "Deployment") != kind.kind:
                    continue  # a Deployment and a DaemonSet may share a name
                if slot.target_hash is not None and slot.target_hash != new_hash:
                    slot.wake.set()  # a new revision: see it now, not at the next interval
                slot.target_hash = new_hash

    def _targeting(self, namespace: str, target: str) -> list[_Slot]:
        """The canaries in ``namespace`` whose targetRef names ``target``."""
        index: dict[tuple[str, str], list[_Slot]] = {}
        if self._target_index_size != len(self._slots) or self._target_index is None:
            for slot in self._slots.values():
                name = _dig(slot.obj, "spec", "targetRef", "name")
                index.setdefault((slot.namespace, str(name)), []).append(slot)
            self._target_index, self._target_index_size = index, len(self._slots)
        return self._target_index.get((namespace, target), [])

    # ------------------------------------------------------------------------------------- commands

    async def _set_paused(self, slot: _Slot, paused: bool) -> None:
        value = "true" if paused else None
        slot.obj = await self.cluster.patch(CANARY, slot.namespace, slot.name,
                                            {"metadata": {"annotations": {PAUSED_ANNOTATION: value}}})
        self._notice(slot, "paused: no ticks until resumed" if paused else "resumed")
        if not paused:
            slot.wake.set()

    def _gate_hook(self, slot: _Slot, phase: str) -> str | None:
        if slot.notes.waiting_gate:
            return slot.notes.waiting_gate
        hooks = _hooks(slot.obj)
        wanted = {"Waiting": "confirm-rollout", "WaitingPromotion": "confirm-promotion"}.get(phase)
        return next((h.get("name") for h in hooks if h.get("type") == wanted), None) if wanted else None

    async def _open_gate(self, slot: _Slot, phase: str) -> None:
        gate = self._gate_hook(slot, phase)
        if gate is None:
            raise EngineError(f"{slot.key} is not waiting at a gate (phase {phase})")
        slot.notes.opened_gates.add(gate)
        self._notice(slot, f"gate {gate} opened")
        hooks = _hooks(slot.obj)
        hook = next((h for h in hooks if h.get("name") == gate), None)
        url = str((hook or {}).get("url", ""))
        parts = urlsplit(url)
        if parts.path.rstrip("/").endswith("/gate/check"):
            # Keep the loadtester's own gate in step, so Flagger-style checks agree with the engine.
            open_url = urlunsplit(parts._replace(path=parts.path.rstrip("/")[: -len("check")] + "open"))
            resp = await self.webhooks.call(WebhookCall(
                name=f"{gate}-open", type="gate-open", url=open_url,
                payload={"name": slot.name, "namespace": slot.namespace}))  # fmt: skip
            if not resp.ok:
                self._notice(slot, f"POST {open_url} failed: {resp.error or resp.body}", "warning")

    # ------------------------------------------------------------------------------------- states

    def _state(self, slot: _Slot) -> CanaryState:
        obj = slot.obj
        status = obj.get("status") or {}
        spec: dict[str, Any] = obj["spec"] if isinstance(obj.get("spec"), dict) else {}
        c = slot.canary
        phase = str(status.get("phase") or "")
        weight = int(status.get("canaryWeight", 0) or 0)
        primary_w, canary_w = slot.notes.weights or (100 - weight, weight)
        gate = slot.notes.waiting_gate if phase in ("Waiting", "WaitingPromotion", "Progressing") else None
        if gate is None and phase in ("Waiting", "WaitingPromotion"):
            gate = self._gate_hook(slot, phase)
        return CanaryState(
            namespace=slot.namespace, name=slot.name,
            target=c.target if c else str(_dig(obj, "spec", "targetRef", "name") or ""),
            phase=phase, canary_weight=canary_w, primary_weight=primary_w,
            failed_checks=int(status.get("failedChecks", 0) or 0),
            threshold=c.threshold if c else 0,
            iterations=int(status.get("iterations", 0) or 0),
            strategy=c.strategy if c else "canary",
            steps=c.steps() if c else (),
            max_weight=c.max_weight if c else 0,
            interval=c.interval_seconds if c else 60.0,
            last_transition_time=status.get("lastTransitionTime"),
            paused=slot.paused, suspended=bool(spec.get("suspend")), waiting_gate=gate,
            problem=slot.problem, router=c.router if c else "TrafficSplit",
        )  # fmt: skip

    # ------------------------------------------------------------------------------------- readonly

    async def _observe_canaries(self) -> None:
        async for obj, slot, created in self._canary_changes():
            old = None if created else (slot.obj.get("status") or {})
            slot.obj = obj
            try:
                slot.canary = parse_canary(self._provided(obj))
                slot.problem = None
                self._router_seen(slot.canary.router).set()
            except SpecError as err:
                slot.problem = str(err)
            self._status_events(slot, old, obj.get("status") or {})

    def _router_seen(self, router: str) -> asyncio.Event:
        return self._routers_seen.setdefault(router, asyncio.Event())

    def _status_events(self, slot: _Slot, old: dict[str, Any] | None, new: dict[str, Any]) -> None:
        now = self.clock.now()
        old = old or {}
        fields = ("phase", "canaryWeight", "failedChecks", "iterations")
        if old.get("phase") != new.get("phase") and new.get("phase"):
            self.emit(PhaseChanged(time=now, namespace=slot.namespace, name=slot.name,
                                   old=str(old.get("phase") or ""), new=str(new["phase"])))
        if any(old.get(f) != new.get(f) for f in fields) and new.get("phase"):
            self.emit(StatusChanged(time=now, namespace=slot.namespace, name=slot.name, phase=str(new["phase"]),
                                    canary_weight=int(new.get("canaryWeight", 0) or 0),
                                    failed_checks=int(new.get("failedChecks", 0) or 0),
                                    iterations=int(new.get("iterations", 0) or 0)))  # fmt: skip

    async def _observe_routes(self, kind: Kind, *, on_demand: bool = False) -> None:
        """Follow the weights Flagger writes: a TrafficSplit's or HTTPRoute's backends, a VirtualService's
        destinations, the canary Ingress's ``canary-weight`` annotation (``on_demand``: start watching once a
        Canary routes with ``kind``)."""
        if on_demand:
            await self._router_seen(kind.kind).wait()
        async for ev in self._watch(kind):
            if ev.type == "DELETED":
                continue
            meta = ev.object.get("metadata") or {}
            weights = routing.weights_of(ev.object)
            if weights is None:
                continue
            for slot in self._slots.values():
                if slot.namespace != meta.get("namespace") or slot.canary is None:
                    continue
                if kind in (VIRTUAL_SERVICE, INGRESS) and slot.canary.router != kind.kind:
                    continue
                if routing.canary_route_name(slot.canary) == meta.get("name") and slot.notes.weights != weights:
                    slot.notes.weights = weights
                    self.emit(WeightChanged(time=self.clock.now(), namespace=slot.namespace, name=slot.name,
                                            primary=weights[0], canary=weights[1]))

    async def _observe_events(self) -> None:
        counts: dict[str, int] = {}
        async for ev in self._watch(EVENT):
            obj = ev.object
            involved = obj.get("involvedObject") or {}
            if ev.type == "DELETED" or involved.get("kind") != "Canary":
                continue
            uid = str((obj.get("metadata") or {}).get("uid") or (obj.get("metadata") or {}).get("name"))
            count = int(obj.get("count", 1) or 1)
            if counts.get(uid, 0) >= count:
                continue
            counts[uid] = count
            self.emit(KubeEvent(time=_timestamp(obj.get("lastTimestamp")) or self.clock.now(),
                                namespace=str(involved.get("namespace") or ""), name=str(involved.get("name", "")),
                                type="Warning" if obj.get("type") == "Warning" else "Normal",
                                reason=str(obj.get("reason", "")), message=str(obj.get("message", ""))))  # fmt: skip


def _dig(obj: Any, *path: str) -> Any:
    """``obj[path[0]][path[1]]...``, or ``None`` where a level is missing or not an object (invalid specs)."""
    for key in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def _hooks(obj: Obj) -> list[dict[str, Any]]:
    """The Canary's webhooks that are objects (an invalid spec may hold anything)."""
    hooks = _dig(obj, "spec", "analysis", "webhooks")
    return [h for h in hooks if isinstance(h, dict)] if isinstance(hooks, list) else []


def _interval(obj: Obj) -> Any:
    return _dig(obj, "spec", "analysis", "interval") or _dig(obj, "spec", "canaryAnalysis", "interval")


def _timestamp(text: Any) -> float | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None
