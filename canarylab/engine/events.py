"""The engine's typed event stream, for the UI, ``simulate`` and tests.

Kubernetes Events carry Flagger's wording (flagger-spec 7.2); the other events carry the numbers behind
them (values, thresholds, weights) so observers never parse messages.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True, kw_only=True)
class EngineEvent:
    """Something that happened to one Canary at lab time ``time`` (seconds since the epoch)."""

    time: float
    namespace: str
    name: str

    @property
    def key(self) -> str:
        """``name.namespace``, as Flagger writes a canary in its messages."""
        return f"{self.name}.{self.namespace}"


@dataclass(frozen=True, kw_only=True)
class KubeEvent(EngineEvent):
    """A Kubernetes Event the engine recorded on the Canary (reason ``Synced``, Flagger's message)."""

    type: Literal["Normal", "Warning"]
    reason: str
    message: str


@dataclass(frozen=True, kw_only=True)
class PhaseChanged(EngineEvent):
    """``status.phase`` moved."""

    old: str
    new: str


@dataclass(frozen=True, kw_only=True)
class WeightChanged(EngineEvent):
    """The routing object (TrafficSplit or HTTPRoute) now splits traffic ``primary``/``canary``."""

    primary: int
    canary: int


@dataclass(frozen=True, kw_only=True)
class StatusChanged(EngineEvent):
    """The Canary status after a write: the numbers ``kubectl get canaries`` shows."""

    phase: str
    canary_weight: int
    failed_checks: int
    iterations: int


@dataclass(frozen=True, kw_only=True)
class CheckEvaluated(EngineEvent):
    """One metric check: its value (``None`` when no values or an error), its range and the verdict."""

    metric: str
    value: float | None
    min: float | None
    max: float | None
    ok: bool
    unit: str = ""
    error: str = ""


@dataclass(frozen=True, kw_only=True)
class WebhookResult(EngineEvent):
    """One webhook call and its outcome."""

    hook: str
    type: str
    ok: bool
    status: int | None
    message: str = ""


@dataclass(frozen=True, kw_only=True)
class CanaryProblem(EngineEvent):
    """The Canary cannot be run as written (invalid spec); the engine keeps serving the others."""

    message: str


@dataclass(frozen=True, kw_only=True)
class AlertPosted(EngineEvent):
    """An alert for ``provider`` (an AlertProvider's ``name.namespace``): ``sent`` when it was delivered; ``error``
    says why not (``simulate`` without ``--send-alerts`` computes alerts and sends none: sent False, no error)."""

    provider: str
    provider_type: str
    severity: str
    message: str
    sent: bool
    error: str = ""


@dataclass(frozen=True, kw_only=True)
class TickFinished(EngineEvent):
    """One analysis tick of the Canary ran; ``seconds`` of wall-clock time (Flagger's canary_duration_seconds)."""

    seconds: float


@dataclass(frozen=True, kw_only=True)
class CanaryRemoved(EngineEvent):
    """The Canary was deleted; its task stopped."""


@dataclass(frozen=True, kw_only=True)
class EngineNotice(EngineEvent):
    """A note about the engine itself for this canary (provider back online, command accepted, ...)."""

    message: str
    level: Literal["info", "warning", "error"] = "info"


EventSink = Callable[[EngineEvent], None]
"""A subscriber: called synchronously, in order, for every event; must not block."""
