"""What one tick works with: the ports, the parsed Canary, and a way to record Flagger's events.

The tick functions take a :class:`TickContext`; every read and write goes through its ports, so a tick is a
pure function of the cluster state, the provider answers and the clock.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from canarylab.engine.alerts import Alerts, NoAlerts
from canarylab.engine.events import EngineEvent, EngineNotice, KubeEvent
from canarylab.engine.kinds import Kind, Obj
from canarylab.engine.ports import Clock, Cluster, Metrics, WatchEvent, WebhookCall, Webhooks
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


_HASHES: dict[tuple[str, str], str] = {}


SCALE_TO_ZERO_LABEL = "flagger.app/scale-to-zero"
"""Flagger "scales a DaemonSet to zero" with this node selector, which no node carries."""


def template_hash(deployment: Obj) -> str:
    """The pod-template hash Flagger keeps in ``lastAppliedSpec`` / ``lastPromotedSpec``."""
    meta = deployment.get("metadata") or {}
    # An object version never changes, so its hash is remembered by (uid, resourceVersion).
    key = (str(meta.get("uid", "")), str(meta.get("resourceVersion", "")))
    if key[1] and key in _HASHES:
        return _HASHES[key]
    template = (deployment.get("spec") or {}).get("template") or {}
    selector = (template.get("spec") or {}).get("nodeSelector") if isinstance(template, dict) else None
    if isinstance(selector, dict) and (SCALE_TO_ZERO_LABEL in selector or not selector):
        # (an empty selector is what removing the label by merge patch leaves: the same template)
        # A DaemonSet "scaled to zero" is the same revision (Flagger's HasTargetChanged drops the label).
        rest = {k: v for k, v in selector.items() if k != SCALE_TO_ZERO_LABEL}
        pod_spec = {k: v for k, v in template["spec"].items() if k != "nodeSelector"}
        if rest:
            pod_spec["nodeSelector"] = rest
        template = {**template, "spec": pod_spec}
    value = stable_hash(template)
    if key[1]:
        if len(_HASHES) > 50_000:
            _HASHES.clear()
        _HASHES[key] = value
    return value


@dataclass
class RunNotes:
    """Per-canary memory of the engine between ticks that is not Flagger state (lost on restart, harmlessly)."""

    provider_down: bool = False
    waiting_gate: str | None = None
    opened_gates: set[str] = field(default_factory=set)
    abort: bool = False
    promote: bool = False
    weights: tuple[int, int] | None = None  # (primary, canary) as last read from the routing object
    mirrored: bool = False  # the routing object mirrors requests to the canary


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
    alerts: Alerts = field(default_factory=NoAlerts)

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
        "checksum": _checksum(status.get("trackedConfigs") or {}, str(status.get("lastAppliedSpec", ""))),
    }
    if metadata:
        payload["metadata"] = dict(metadata)
    return payload


_CHECKSUMS: dict[str, str] = {}


def _checksum(tracked: dict[str, Any], applied: str) -> str:
    """Flagger's per-revision checksum of ``{trackedConfigs, lastAppliedSpec}`` (memoized: it is per revision)."""
    if tracked:
        return stable_hash({"trackedConfigs": tracked, "lastAppliedSpec": applied})
    if applied not in _CHECKSUMS:
        if len(_CHECKSUMS) > 50_000:
            _CHECKSUMS.clear()
        _CHECKSUMS[applied] = stable_hash({"trackedConfigs": {}, "lastAppliedSpec": applied})
    return _CHECKSUMS[applied]


_last_stamp: tuple[int, str] = (-1, "")


def rfc3339_now(clock: Clock) -> str:
    """The clock's now as a Kubernetes timestamp."""
    global _last_stamp
    whole = int(clock.now() // 1)
    if _last_stamp[0] != whole:  # every status write asks; a thousand canaries share each second
        _last_stamp = (whole, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(whole)))
    return _last_stamp[1]


class TickCluster:
    """The Cluster port for one tick: reads are remembered until that object is written.

    Flagger's tick reads the same objects several times (the primary for creation and readiness, the
    routing object for reconcile and weights); within one tick nothing else changes them in between, so
    the second read is served from memory. Callers must not mutate what ``get`` returns unless they write
    it back (which forgets it).
    """

    def __init__(self, cluster: Cluster) -> None:
        self.inner = cluster
        self._cache: dict[tuple[str, str, str], Obj | None] = {}

    async def get(self, kind: Kind, namespace: str, name: str) -> Obj | None:
        key = (kind.kind, namespace, name)
        if key not in self._cache:
            self._cache[key] = await self.inner.get(kind, namespace, name)
        return self._cache[key]

    def _forget(self, kind: str, namespace: str, name: str) -> None:
        self._cache.pop((kind, namespace, name), None)

    async def list(self, kind: Kind, namespace: str | None = None,
                   labels: Mapping[str, str] | None = None) -> list[Obj]:
        return await self.inner.list(kind, namespace, labels)

    async def create(self, obj: Obj) -> Obj:
        out = await self.inner.create(obj)
        self._cache[(out["kind"], out["metadata"].get("namespace", ""), out["metadata"]["name"])] = out
        return out

    async def replace(self, obj: Obj) -> Obj:
        self._forget(obj["kind"], obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
        return await self.inner.replace(obj)

    async def patch(self, kind: Kind, namespace: str, name: str, patch: Obj) -> Obj:
        self._forget(kind.kind, namespace, name)
        return await self.inner.patch(kind, namespace, name, patch)

    async def patch_status(self, kind: Kind, namespace: str, name: str, status: Obj) -> Obj:
        self._forget(kind.kind, namespace, name)
        return await self.inner.patch_status(kind, namespace, name, status)

    async def delete(self, kind: Kind, namespace: str, name: str) -> None:
        self._forget(kind.kind, namespace, name)
        await self.inner.delete(kind, namespace, name)

    async def record_event(self, involved: Obj, type: str, reason: str, message: str) -> None:
        await self.inner.record_event(involved, type, reason, message)

    def watch(self, kind: Kind, namespace: str | None = None) -> AsyncIterator[WatchEvent]:
        return self.inner.watch(kind, namespace)
