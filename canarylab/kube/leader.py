"""Leader election on a ``coordination.k8s.io/v1`` Lease, as client-go's ``leaderelection`` does it.

Two or more engines campaign for one Lease; the holder acts, the others wait. The rules are client-go's
(``k8s.io/client-go/tools/leaderelection``), with Kubernetes' usual durations:

- **lease duration** (15 s): a follower takes the Lease when its record has not changed for this long, timed
  on the follower's own monotonic clock from when it last *saw* a change (so clocks need not agree);
- **renew deadline** (10 s): the leader gives up when it could not renew for this long, before any follower
  may take over; its writes are fenced off from then on (:meth:`LeaderElector.fence`);
- **retry period** (2 s): how often the leader renews and followers try, with client-go's jitter (x1.2).

Every update carries the Lease's ``resourceVersion``, so two candidates never both win. On a clean stop the
leader releases the Lease (holder cleared, duration 1 s) and a follower takes over within a retry period.
"""

from __future__ import annotations

import asyncio
import math
import os
import random
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from canarylab.engine.kinds import LEASE, Obj
from canarylab.engine.ports import ClusterError, Conflict, NotFound

Log = Callable[[str], None]
JITTER = 1.2
"""client-go's ``JitterFactor``: followers retry after ``retry_period`` x (1 .. 1 + 1.2)."""


def default_identity() -> str:
    """``<hostname>_<uuid>`` as Flagger names its candidates (the hostname is the pod's name in a pod)."""
    return f"{os.environ.get('HOSTNAME') or socket.gethostname()}_{uuid.uuid4()}"


def micro_time(seconds: float) -> str:
    """A Kubernetes ``MicroTime``: RFC 3339 with microseconds."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class LeaseConfig:
    """Which Lease, who we are, and the three durations (seconds)."""

    namespace: str
    name: str = "canarylab-engine"
    identity: str = ""
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0

    def problems(self) -> list[str]:
        """client-go's checks on the durations, worded for the flags."""
        out = []
        if self.lease_duration <= self.renew_deadline:
            out.append("--leader-elect-lease-duration must be greater than --leader-elect-renew-deadline")
        if self.renew_deadline <= JITTER * self.retry_period:
            out.append("--leader-elect-renew-deadline must be greater than 1.2 x --leader-elect-retry-period")
        if self.retry_period <= 0:
            out.append("--leader-elect-retry-period must be greater than 0")
        return out


class LeaderElector:
    """Campaign for, hold and release one Lease through a ``KubeCluster`` (its ``request``).

    ``monotonic`` and ``wall`` are injectable for tests; ``sleep`` too.
    """

    def __init__(self, cluster: Any, config: LeaseConfig, *, log: Log | None = None,
                 monotonic: Callable[[], float] = time.monotonic, wall: Callable[[], float] = time.time) -> None:
        self.cluster = cluster
        self.config = config if config.identity else LeaseConfig(**{**config.__dict__, "identity": default_identity()})
        self.log: Log = log or (lambda line: None)
        self.monotonic = monotonic
        self.wall = wall
        self.holder = ""
        """The holder as last seen ("" when nobody)."""
        self._observed: dict[str, Any] | None = None  # the Lease spec as last seen
        self._observed_at = 0.0  # monotonic time it last changed
        self._renewed_at: float | None = None  # monotonic time of our last successful acquire/renew
        self._rv = ""

    @property
    def identity(self) -> str:
        return self.config.identity

    @property
    def where(self) -> str:
        return f"{self.config.namespace}/{self.config.name}"

    def is_leader(self) -> bool:
        """Whether we hold the Lease now: renewed within the renew deadline."""
        return self._renewed_at is not None and self.monotonic() - self._renewed_at < self.config.renew_deadline

    def fence(self) -> str | None:
        """For ``KubeCluster.fence``: why a write must not go out now (we are not, or no longer, the leader)."""
        if self.is_leader():
            return None
        return f"this engine ({self.identity}) does not hold the leader lease {self.where}"

    async def try_acquire_or_renew(self) -> bool:
        """One attempt: take a free or expired Lease, or renew ours. ``False`` when someone else holds it or
        another candidate wrote first; API errors propagate as :class:`ClusterError`."""
        cfg = self.config
        now = self.wall()
        mono = self.monotonic()
        record: dict[str, Any] = {"holderIdentity": cfg.identity, "leaseDurationSeconds": math.ceil(cfg.lease_duration),
                                  "acquireTime": micro_time(now), "renewTime": micro_time(now),
                                  "leaseTransitions": 0}
        try:
            lease = await self.cluster.request("GET", LEASE, cfg.namespace, cfg.name)
        except NotFound:
            body = LEASE.new(cfg.namespace, cfg.name, spec=record)
            try:
                stored = await self.cluster.request("POST", LEASE, cfg.namespace, body=body)
            except Conflict:
                return False
            self._won(stored, mono)
            return True
        spec = dict(lease.get("spec") or {})
        if spec != self._observed:
            self._observed, self._observed_at = spec, mono
        holder = str(spec.get("holderIdentity") or "")
        self.holder = holder
        duration = float(spec.get("leaseDurationSeconds") or cfg.lease_duration)
        if holder and holder != cfg.identity and self._observed_at + duration > mono:
            return False  # held, and not expired by what we have seen
        if holder == cfg.identity:
            record["acquireTime"] = spec.get("acquireTime") or record["acquireTime"]
            record["leaseTransitions"] = int(spec.get("leaseTransitions") or 0)
        else:
            record["leaseTransitions"] = int(spec.get("leaseTransitions") or 0) + 1
        body = {**lease, "spec": record}
        try:
            stored = await self.cluster.request("PUT", LEASE, cfg.namespace, cfg.name, body=body)
        except Conflict:
            return False
        self._won(stored, mono)
        return True

    def _won(self, stored: Obj, mono: float) -> None:
        self._renewed_at = mono
        self.holder = self.identity
        self._observed = dict(stored.get("spec") or {})
        self._observed_at = mono
        self._rv = str((stored.get("metadata") or {}).get("resourceVersion") or "")

    async def acquire(self) -> None:
        """Wait until we hold the Lease. Says once who holds it, and again when the holder changes."""
        said = None
        failed = ""
        while True:
            try:
                if await self.try_acquire_or_renew():
                    return
                failed = ""
                if self.holder != said:
                    self.log(f"waiting to lead: the lease {self.where} is held by {self.holder}; this engine "
                             f"({self.identity}) takes over if it is not renewed for "
                             f"{self.config.lease_duration:g}s")
                    said = self.holder
            except ClusterError as err:
                if str(err) != failed:
                    self.log(f"cannot read or take the lease {self.where}: {err} (retrying)")
                    failed = str(err)
            await asyncio.sleep(self.config.retry_period * (1 + random.random() * JITTER))

    async def hold(self) -> None:
        """Renew every retry period; return when we could not renew within the renew deadline (lost)."""
        cfg = self.config
        while True:
            await asyncio.sleep(cfg.retry_period)
            deadline = (self._renewed_at or self.monotonic()) + cfg.renew_deadline
            renewed = False
            while not renewed and self.monotonic() < deadline:
                try:
                    renewed = await asyncio.wait_for(self.try_acquire_or_renew(),
                                                     timeout=max(0.1, deadline - self.monotonic()))
                except (ClusterError, TimeoutError):
                    renewed = False
                if not renewed and self.monotonic() < deadline:
                    await asyncio.sleep(min(cfg.retry_period, max(0.0, deadline - self.monotonic())))
            if not renewed:
                self._renewed_at = None
                return

    async def release(self) -> bool:
        """Give the Lease up (holder cleared, duration 1 s) if we hold it, so a follower takes over at once."""
        if not self.is_leader() or self._observed is None:
            return False
        cfg = self.config
        self._renewed_at = None  # fence writes first
        now = micro_time(self.wall())
        try:
            lease = await self.cluster.request("GET", LEASE, cfg.namespace, cfg.name)
            if (lease.get("spec") or {}).get("holderIdentity") != cfg.identity:
                return False
            lease["spec"] = {**(lease.get("spec") or {}), "holderIdentity": "", "leaseDurationSeconds": 1,
                             "renewTime": now, "acquireTime": now}
            await self.cluster.request("PUT", LEASE, cfg.namespace, cfg.name, body=lease)
        except ClusterError:
            return False
        return True
