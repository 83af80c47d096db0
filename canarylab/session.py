"""What the dashboard and the headless commands drive: a lab (simulated or real) with its engine.

``canarylab.sim`` provides the simulated lab, ``canarylab.kube`` the real cluster; the UI only sees this
Protocol, the engine's events and its commands.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from canarylab.engine.controller import Engine
    from canarylab.engine.ports import Clock, Cluster


@dataclass(frozen=True)
class FaultInfo:
    """A fault injected into one revision of a Deployment (what the dashboard shows about it).

    A fault belongs to the revision (pod template) it was injected into, like a bad release: a new image
    makes a new revision, which starts clean. ``replaced_by`` is set once that happened (the fault is then
    no longer active, and the dashboard says the new revision started clean).
    """

    namespace: str
    deployment: str
    error_rate: float
    latency_ms: float
    never_ready: bool
    image: str
    """The image of the revision the fault was injected into."""
    since: float
    """Lab time of the injection."""
    replaced_by: str | None = None
    """The image of the revision that replaced the faulty one (``None`` while the fault is active)."""
    replaced_at: float | None = None
    """Lab time of that replacement."""

    @property
    def active(self) -> bool:
        """The fault still hits the Deployment's current revision."""
        return self.replaced_by is None

    def what(self) -> str:
        """``50% errors``, ``+600 ms latency``, ``pods never ready``, joined with commas."""
        parts = []
        if self.error_rate:
            parts.append(f"{self.error_rate * 100:g}% errors")
        if self.latency_ms:
            parts.append(f"+{self.latency_ms:g} ms latency")
        if self.never_ready:
            parts.append("pods never ready")
        return ", ".join(parts) or "no effect"


class Lab(Protocol):
    """A running lab: a cluster behind the Cluster port, an engine, a clock and the user's actions."""

    # Read-only in the protocol (properties), so an adapter may back them with attributes or properties.
    @property
    def title(self) -> str:
        """Shown in the dashboard header: ``simulated lab`` or the kube context."""
        ...

    @property
    def engine(self) -> Engine:
        """The engine running this lab's Canaries (available once :meth:`start` returned)."""
        ...

    @property
    def cluster(self) -> Cluster:
        """The cluster behind the Cluster port (available once :meth:`start` returned)."""
        ...

    @property
    def clock(self) -> Clock:
        """Lab time: virtual, scaled or real."""
        ...

    @property
    def readonly(self) -> bool:
        """True when the lab must not be changed: the UI hides every mutating key."""
        ...

    @property
    def supports_faults(self) -> bool:
        """Whether :meth:`set_fault` works here (the simulated lab injects faults in the workload)."""
        ...

    async def start(self) -> None:
        """Bring the lab up and start the engine (returns once it runs in the background)."""
        ...

    async def stop(self) -> None:
        """Stop the engine and everything the lab started; never raises."""
        ...

    async def set_image(self, namespace: str, deployment: str, container: str, image: str) -> None:
        """``kubectl set image``: change one container's image in a Deployment's pod template."""
        ...

    async def set_fault(self, namespace: str, deployment: str, error_rate: float, latency_ms: float) -> None:
        """Make the Deployment's pods answer ``error_rate`` of requests with 500 and add ``latency_ms``."""
        ...

    async def clear_fault(self, namespace: str, deployment: str) -> None:
        """Remove an injected fault."""
        ...

    def fault(self, namespace: str, deployment: str) -> FaultInfo | None:
        """The fault on the Deployment: the active one, or the last one a new revision left behind;
        ``None`` when there is none (or it was cleared)."""
        ...
