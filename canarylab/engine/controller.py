"""The Engine: one asyncio task per Canary, ticking on the injected clock (API skeleton; the run loop follows)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection
from dataclasses import dataclass

from canarylab.engine.commands import Command
from canarylab.engine.events import EngineEvent, EventSink
from canarylab.engine.ports import Clock, Cluster, Metrics, Webhooks


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


class Engine:
    """Flagger's canary analysis over the Cluster, Metrics and Webhooks ports."""

    def __init__(self, cluster: Cluster, metrics: Metrics, webhooks: Webhooks, clock: Clock, *,
                 namespaces: Collection[str] | None = None, readonly: bool = False,
                 metrics_server: str = "http://prometheus.linkerd-viz:9090") -> None:
        self.cluster = cluster
        self.metrics = metrics
        self.webhooks = webhooks
        self.clock = clock
        self.namespaces = None if namespaces is None else frozenset(namespaces)
        self.readonly = readonly
        self.metrics_server = metrics_server
        self._sinks: list[EventSink] = []
        self._states: dict[tuple[str, str], CanaryState] = {}

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
        await asyncio.Event().wait()

    async def send(self, command: Command) -> None:
        """Apply a command (:mod:`canarylab.engine.commands`); raises :class:`EngineError` if not applicable."""
        raise EngineError(f"canary {command.name}.{command.namespace} is not known to the engine")

    def canary_states(self) -> list[CanaryState]:
        """A snapshot of every Canary the engine serves, sorted by namespace and name."""
        return [self._states[k] for k in sorted(self._states)]

    async def tick_once(self, namespace: str, name: str) -> None:
        """Run one tick of the Canary now (tests)."""
        raise EngineError(f"canary {name}.{namespace} is not known to the engine")
