"""The engine's ports: everything it needs from the world, as Protocols.

Adapters implement them: ``canarylab.kube`` (kr8s, a real cluster), ``canarylab.sim`` (the simulated lab),
``canarylab.prometheus`` (httpx). ``canarylab.engine.memory_cluster`` is the in-memory reference Cluster; test
doubles of the other ports live in ``tests/doubles.py``.
Objects cross the Cluster port as plain Kubernetes JSON (``dict``), so one contract suite can run against
every adapter.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from canarylab.engine.kinds import Kind, Obj

# --------------------------------------------------------------------------------------------- cluster


class ClusterError(Exception):
    """The cluster refused or failed a request; the message says which object and why."""


class NotFound(ClusterError):
    """The object does not exist."""


class Conflict(ClusterError):
    """The object exists already (create) or changed since it was read (stale ``resourceVersion``)."""


WatchType = Literal["ADDED", "MODIFIED", "DELETED"]


@dataclass(frozen=True)
class WatchEvent:
    """One change seen by a watch."""

    type: WatchType
    object: Obj


@runtime_checkable
class Cluster(Protocol):
    """Kubernetes as the engine sees it: CRUD with resourceVersion semantics, status, events, watches."""

    async def get(self, kind: Kind, namespace: str, name: str) -> Obj | None:
        """The object, or ``None`` when it does not exist."""
        ...

    async def list(
        self, kind: Kind, namespace: str | None = None, labels: Mapping[str, str] | None = None
    ) -> list[Obj]:
        """Objects of a kind, in one namespace or all (``None``), optionally matching every label given."""
        ...

    async def create(self, obj: Obj) -> Obj:
        """Create; raises :class:`Conflict` when it exists. Returns the stored object."""
        ...

    async def replace(self, obj: Obj) -> Obj:
        """Replace ``metadata``/``spec`` (not ``status``); a set ``metadata.resourceVersion`` must match."""
        ...

    async def patch(self, kind: Kind, namespace: str, name: str, patch: Obj) -> Obj:
        """JSON merge patch (RFC 7386) of the main resource; ``status`` in the patch is ignored."""
        ...

    async def patch_status(self, kind: Kind, namespace: str, name: str, status: Obj) -> Obj:
        """JSON merge patch of the ``status`` subresource."""
        ...

    async def delete(self, kind: Kind, namespace: str, name: str) -> None:
        """Delete; raises :class:`NotFound` when absent."""
        ...

    async def record_event(self, involved: Obj, type: str, reason: str, message: str) -> None:
        """Record a Kubernetes Event about ``involved`` (type ``Normal`` or ``Warning``)."""
        ...

    def watch(self, kind: Kind, namespace: str | None = None) -> AsyncIterator[WatchEvent]:
        """Changes of a kind from now on: ``ADDED`` for every existing object first, then live changes."""
        ...


# --------------------------------------------------------------------------------------------- metrics


class NoValuesFound(Exception):
    """The query returned no series, or NaN (Flagger's ``ErrNoValuesFound``)."""


class MetricsError(Exception):
    """The provider failed: unreachable, HTTP error, a matrix result, an unsupported query."""


@dataclass(frozen=True)
class MetricQuery:
    """One metric check to answer, with everything a provider may need.

    ``query`` is the rendered PromQL (whitespace not yet collapsed). ``builtin`` names Linkerd's built-in
    check (``request-success-rate`` or ``request-duration``) so the simulator can answer it without PromQL.
    """

    metric: str
    query: str
    namespace: str
    target: str
    interval: str
    interval_seconds: float
    builtin: str | None = None
    address: str | None = None
    provider: str = "prometheus"
    headers: Mapping[str, str] = field(default_factory=dict)
    bearer_token: str | None = None
    basic_auth: tuple[str, str] | None = None
    insecure_skip_verify: bool = False


@runtime_checkable
class Metrics(Protocol):
    """A metrics provider (Prometheus, or the simulated lab's evaluator)."""

    async def query(self, q: MetricQuery) -> float:
        """The value; raises :class:`NoValuesFound` or :class:`MetricsError`."""
        ...

    async def is_online(self, address: str | None) -> bool:
        """Flagger's ``vector(1)`` check against the provider at ``address`` (``None``: the default)."""
        ...


# -------------------------------------------------------------------------------------------- webhooks


@dataclass(frozen=True)
class WebhookCall:
    """One webhook request in Flagger's JSON contract (flagger-spec 6.1)."""

    name: str
    type: str
    url: str
    payload: Mapping[str, Any]
    timeout: float = 10.0
    retries: int = 0
    disable_tls: bool = False


@dataclass(frozen=True)
class WebhookResponse:
    """What came back: ``ok`` iff the status was 200-202; ``error`` is the text Flagger appends to events."""

    ok: bool
    status: int | None
    body: str = ""
    error: str = ""


@runtime_checkable
class Webhooks(Protocol):
    """Sends webhook calls (httpx for real; the simulated loadtester in the lab)."""

    async def call(self, call: WebhookCall) -> WebhookResponse:
        ...


# ----------------------------------------------------------------------------------------------- clock


@runtime_checkable
class Clock(Protocol):
    """Time for the engine and the simulator: real, scaled (``--speed``) or virtual."""

    def now(self) -> float:
        """Seconds since the epoch, as the lab sees them (virtual under a virtual clock)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of lab time."""
        ...
