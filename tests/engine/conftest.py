"""Given-helpers for engine scenarios: the default lab of flagger-spec 8.3 on the in-memory fakes."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from canarylab.engine.controller import Engine
from canarylab.engine.events import EngineEvent, KubeEvent
from canarylab.engine.kinds import CANARY, DEPLOYMENT, SERVICE, TRAFFIC_SPLIT, Obj
from canarylab.engine.memory_cluster import MemoryCluster
from canarylab.engine.routing import weights_of
from tests.doubles import FakeMetrics, FakeWebhooks, ManualClock


def podinfo(replicas: int = 1, image: str = "ghcr.io/stefanprodan/podinfo:6.0.0") -> Obj:
    """The default Deployment: selector ``app: podinfo``."""
    return DEPLOYMENT.new("test", "podinfo", spec={
        "replicas": replicas,
        "selector": {"matchLabels": {"app": "podinfo"}},
        "template": {"metadata": {"labels": {"app": "podinfo"}},
                     "spec": {"containers": [{"name": "podinfod", "image": image,
                                              "ports": [{"name": "http", "containerPort": 9898}]}]}},
    })  # fmt: skip


def canary(**analysis: Any) -> Obj:
    """The default Canary of flagger-spec 8.3, with ``analysis`` fields overridden (None removes one)."""
    base: dict[str, Any] = {
        "interval": "15s", "threshold": 5, "stepWeight": 10, "maxWeight": 50,
        "metrics": [{"name": "request-success-rate", "thresholdRange": {"min": 99}, "interval": "1m"},
                    {"name": "request-duration", "thresholdRange": {"max": 500}, "interval": "30s"}],
        "webhooks": [],
    }  # fmt: skip
    for key, value in analysis.items():
        if value is None:
            base.pop(key, None)
        else:
            base[key] = value
    return CANARY.new("test", "podinfo", spec={
        "provider": "linkerd",
        "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
        "service": {"port": 9898},
        "analysis": base,
    })  # fmt: skip


class Lab:
    """A MemoryCluster, fake providers, a manual clock and an Engine; ``tick()`` runs one tick."""

    def __init__(self, canary_obj: Obj | None = None, *, instant_ready: bool = True,
                 deployment: Obj | None = None, extra: list[Obj] | None = None) -> None:
        self.clock = ManualClock()
        self.cluster = MemoryCluster(self.clock, instant_ready=instant_ready)
        self.metrics = FakeMetrics.healthy()
        self.webhooks = FakeWebhooks()
        self.engine = Engine(self.cluster, self.metrics, self.webhooks, self.clock)
        self.events: list[EngineEvent] = []
        self.engine.subscribe(self.events.append)
        self.cluster.load([deployment or podinfo(), *(extra or []), canary_obj or canary()])

    # ------------------------------------------------------------------ when

    async def tick(self, n: int = 1) -> None:
        for _ in range(n):
            await self.engine.tick_once("test", "podinfo")
            self.clock.advance(15)

    async def set_image(self, image: str) -> None:
        """``kubectl set image``: only the container's image changes."""
        dep = self.deployment()
        dep["spec"]["template"]["spec"]["containers"][0]["image"] = image
        self.cluster.replace_now(dep)

    async def initialized(self) -> None:
        await self.tick()
        assert self.phase == "Initialized", self.messages()

    async def progressing(self) -> None:
        """Initialized, then a new image and the scale-up tick."""
        await self.initialized()
        await self.set_image("ghcr.io/stefanprodan/podinfo:6.0.1")
        await self.tick()
        assert self.phase == "Progressing", self.messages()

    async def ship_to_the_end(self, limit: int = 40) -> None:
        """Initialized, a new image, then ticks until Succeeded or Failed (an AssertionError after ``limit``)."""
        await self.initialized()
        await self.set_image("ghcr.io/stefanprodan/podinfo:6.0.1")
        for _ in range(limit):
            await self.tick()
            if self.phase in ("Succeeded", "Failed"):
                return
        raise AssertionError(f"still {self.phase} after {limit} ticks: {self.messages()[-3:]}")

    def patch_canary(self, spec: dict[str, Any]) -> None:
        self.cluster.patch_now(CANARY, "test", "podinfo", {"spec": spec})

    def patch_status(self, status: dict[str, Any]) -> None:
        self.cluster.patch_status_now(CANARY, "test", "podinfo", status)

    # ------------------------------------------------------------------ then

    @property
    def status(self) -> dict[str, Any]:
        obj = self.cluster.get_now(CANARY, "test", "podinfo")
        assert obj is not None
        return obj.get("status") or {}

    @property
    def phase(self) -> str:
        return str(self.status.get("phase", ""))

    @property
    def weights(self) -> tuple[int, int] | None:
        """(primary, canary) from the TrafficSplit."""
        ts = self.cluster.get_now(TRAFFIC_SPLIT, "test", "podinfo")
        return weights_of(ts) if ts else None

    def deployment(self, name: str = "podinfo") -> Obj:
        obj = self.cluster.get_now(DEPLOYMENT, "test", name)
        assert obj is not None, f"deployment {name} missing"
        return obj

    def service(self, name: str) -> Obj | None:
        return self.cluster.get_now(SERVICE, "test", name)

    def messages(self, since: int = 0) -> list[str]:
        """Kubernetes Event messages the engine recorded, in order."""
        return [e.message for e in self.events[since:] if isinstance(e, KubeEvent)]

    def warnings(self) -> list[str]:
        return [e.message for e in self.events if isinstance(e, KubeEvent) and e.type == "Warning"]

    def of(self, kind: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]

    def mark(self) -> int:
        """An index into the event list, for 'events since'."""
        return len(self.events)


@pytest.fixture
def lab() -> Lab:
    return Lab()


def with_hooks(*hooks: dict[str, Any], **analysis: Any) -> Obj:
    """The default Canary with these webhooks."""
    return canary(webhooks=[copy.deepcopy(h) for h in hooks], **analysis)
