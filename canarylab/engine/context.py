"""What one tick works with: the ports, the parsed Canary, and a way to record Flagger's events.

The tick functions take a :class:`TickContext`; every read and write goes through its ports, so a tick is a
pure function of the cluster state, the provider answers and the clock.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from canarylab.engine.events import EngineEvent, EngineNotice, KubeEvent
from canarylab.engine.kinds import Obj
from canarylab.engine.ports import Clock, Cluster, Metrics, WebhookCall, Webhooks
from canarylab.engine.spec import Canary

_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # Kubernetes' SafeEncodeString alphabet, as Flagger's hashes look


def stable_hash(value: Any, length: int = 10) -> str:
    """A short, stable hash of JSON data: sha256 of the canonical JSON, in Kubernetes' safe alphabet."""
    digest = hashlib.sha256(json.dumps(value, sort_keys=True, separators=(",", ":")).encode()).digest()
    number = int.from_bytes(digest[:8], "big")
    out = []
    for _ in range(length):
        number, rest = divmod(number, len(_ALPHABET))
        out.append(_ALPHABET[rest])
    return "".join(out)


def template_hash(deployment: Obj) -> str:
    """The pod-template hash Flagger keeps in ``lastAppliedSpec`` / ``lastPromotedSpec``."""
    return stable_hash((deployment.get("spec") or {}).get("template") or {})


@dataclass
class RunNotes:
    """Per-canary memory of the engine between ticks that is not Flagger state (lost on restart, harmlessly)."""

    provider_down: bool = False
    waiting_gate: str | None = None
    opened_gates: set[str] = field(default_factory=set)
    abort: bool = False
    promote: bool = False
    weights: tuple[int, int] | None = None  # (primary, canary) as last read from the routing object


@dataclass
class TickContext:
    """The ports and the Canary a tick works on."""

    cluster: Cluster
    metrics: Metrics
    webhooks: Webhooks
    clock: Clock
    emit: Callable[[EngineEvent], None]
    canary: Canary
    obj: Obj
    notes: RunNotes
    metrics_server: str = "http://prometheus.linkerd-viz:9090"

    @property
    def status(self) -> dict[str, Any]:
        """The Canary status as last written (kept current by the status writers)."""
        return self.canary.status

    @property
    def phase(self) -> str:
        return str(self.canary.status.get("phase") or "")

    def now(self) -> float:
        return self.clock.now()

    async def event(self, type: str, message: str, *, phase: str | None = None) -> None:
        """Record a Kubernetes Event (reason ``Synced``), emit it, and forward it to ``event`` webhooks."""
        await self.cluster.record_event(self.obj, type, "Synced", message)
        c = self.canary
        self.emit(KubeEvent(time=self.now(), namespace=c.namespace, name=c.name,
                            type="Warning" if type == "Warning" else "Normal", reason="Synced", message=message))
        hooks = c.hooks("event")
        if not hooks:
            return
        for hook in hooks:
            # The three event keys win over the hook's own metadata (flagger-spec 6.1).
            meta = {**hook.metadata, "eventMessage": message, "eventType": type,
                    "timestamp": str(int(self.now() * 1000))}  # fmt: skip
            payload = webhook_payload(self, phase or self.phase, meta)
            await self.webhooks.call(WebhookCall(name=hook.name, type="event", url=hook.url, payload=payload,
                                                 timeout=hook.timeout_seconds, retries=hook.retries,
                                                 disable_tls=hook.disable_tls))  # fmt: skip

    async def info(self, message: str, *, phase: str | None = None) -> None:
        await self.event("Normal", message, phase=phase)

    async def warn(self, message: str, *, phase: str | None = None) -> None:
        await self.event("Warning", message, phase=phase)

    def notice(self, message: str, level: str = "info") -> None:
        """An :class:`EngineNotice` about this canary (not a Kubernetes Event)."""
        c = self.canary
        lvl = level if level in ("info", "warning", "error") else "info"
        self.emit(EngineNotice(time=self.now(), namespace=c.namespace, name=c.name, message=message,
                               level=lvl))  # type: ignore[arg-type]


def webhook_payload(ctx: TickContext, phase: str, metadata: dict[str, str] | None) -> dict[str, Any]:
    """Flagger's webhook body: name, namespace, phase, checksum (per revision), metadata when not empty."""
    status = ctx.status
    payload: dict[str, Any] = {
        "name": ctx.canary.name,
        "namespace": ctx.canary.namespace,
        "phase": phase,
        "checksum": stable_hash({"trackedConfigs": status.get("trackedConfigs") or {},
                                 "lastAppliedSpec": status.get("lastAppliedSpec", "")}),
    }  # fmt: skip
    if metadata:
        payload["metadata"] = dict(metadata)
    return payload


def rfc3339_now(clock: Clock) -> str:
    """The clock's now as a Kubernetes timestamp."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(clock.now()))
