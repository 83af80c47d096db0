"""Leader election on a Lease over HTTP (kr8s to the in-memory API server): client-go's rules, short durations.

The real API server runs the same elector in tests/incluster (two ``canarylab engine`` processes, one killed).
"""

from __future__ import annotations

import asyncio

import pytest

from canarylab.engine.kinds import DEPLOYMENT, LEASE
from canarylab.engine.ports import ClusterError
from canarylab.kube.cluster import KubeCluster
from canarylab.kube.leader import LeaderElector, LeaseConfig
from tests.kube.apiserver import ApiServer

pytestmark = pytest.mark.timeout(30)

FAST = {"lease_duration": 2.0, "renew_deadline": 1.0, "retry_period": 0.2}


def elector(kube: KubeCluster, identity: str, log: list[str] | None = None) -> LeaderElector:
    return LeaderElector(kube, LeaseConfig("test", "canarylab-engine", identity, **FAST),
                         log=(log.append if log is not None else None))


def spec(apiserver: ApiServer) -> dict:
    [lease] = apiserver.objects(LEASE, "test")
    return lease["spec"]


async def test_the_first_candidate_takes_the_lease_and_the_second_waits(apiserver: ApiServer,
                                                                         kube: KubeCluster) -> None:
    a, b = elector(kube, "a"), elector(kube, "b")
    assert await a.try_acquire_or_renew()
    assert not await b.try_acquire_or_renew()
    assert a.is_leader() and not b.is_leader()
    assert b.holder == "a"
    lease = spec(apiserver)
    assert lease["holderIdentity"] == "a" and lease["leaseDurationSeconds"] == 2
    assert lease["renewTime"].endswith("Z") and "." in lease["renewTime"]  # a MicroTime
    # renewing keeps acquireTime and the transition count
    first = lease["acquireTime"]
    await asyncio.sleep(0.05)
    assert await a.try_acquire_or_renew()
    assert spec(apiserver)["acquireTime"] == first and spec(apiserver)["renewTime"] != lease["renewTime"]


async def test_a_follower_takes_over_only_after_the_lease_expires_on_its_own_clock(apiserver: ApiServer,
                                                                                   kube: KubeCluster) -> None:
    # Given a leader that stops renewing (killed)
    a, b = elector(kube, "a"), elector(kube, "b")
    assert await a.try_acquire_or_renew()
    loop = asyncio.get_running_loop()
    killed = loop.time()
    # when the follower campaigns
    await asyncio.wait_for(b.acquire(), timeout=10)
    waited = loop.time() - killed
    # then it took the lease no earlier than a lease duration after it first saw the record
    assert b.is_leader() and spec(apiserver)["holderIdentity"] == "b"
    assert 2.0 <= waited < 2.0 + 3 * 0.2 * 2.2
    assert spec(apiserver)["leaseTransitions"] == 1
    # and the old leader's fence closes once its renew deadline passed
    await asyncio.sleep(1.0)
    assert a.fence() == "this engine (a) does not hold the leader lease test/canarylab-engine"


async def test_release_hands_over_within_a_retry_period(apiserver: ApiServer, kube: KubeCluster) -> None:
    a, b = elector(kube, "a"), elector(kube, "b")
    assert await a.try_acquire_or_renew()
    assert not await b.try_acquire_or_renew()
    assert await a.release()
    assert spec(apiserver)["holderIdentity"] == "" and spec(apiserver)["leaseDurationSeconds"] == 1
    assert a.fence() is not None  # releasing fences first
    loop = asyncio.get_running_loop()
    started = loop.time()
    await asyncio.wait_for(b.acquire(), timeout=5)
    assert loop.time() - started < 1.0


async def test_two_candidates_racing_for_a_new_lease_never_both_win(apiserver: ApiServer,
                                                                    kube: KubeCluster) -> None:
    candidates = [elector(kube, f"c{i}") for i in range(5)]
    won = await asyncio.gather(*(c.try_acquire_or_renew() for c in candidates))
    assert sum(won) == 1
    assert spec(apiserver)["holderIdentity"] == next(c.identity for c, w in zip(candidates, won, strict=True) if w)


async def test_a_leader_that_cannot_renew_gives_up_within_the_renew_deadline(apiserver: ApiServer,
                                                                             kube: KubeCluster) -> None:
    # Given a leader, when every Lease request starts failing (the API server is unreachable for it)
    a = elector(kube, "a")
    assert await a.try_acquire_or_renew()
    apiserver.faults.append(lambda request: 503 if request.resource and request.resource.plural == "leases"
                            else None)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await asyncio.wait_for(a.hold(), timeout=10)
    # then it stops leading before the lease duration is up, so no follower can act at the same time
    assert loop.time() - started < FAST["lease_duration"] + FAST["retry_period"]
    assert not a.is_leader()


async def test_a_fenced_cluster_refuses_writes(apiserver: ApiServer, kube: KubeCluster) -> None:
    b = elector(kube, "b")
    kube.fence = b.fence
    with pytest.raises(ClusterError, match=r"refused to patch Deployment test/podinfo: this engine \(b\) does "
                                           r"not hold the leader lease test/canarylab-engine"):
        await kube.patch(DEPLOYMENT, "test", "podinfo", {"spec": {"replicas": 1}})
    assert await b.try_acquire_or_renew()
    assert kube.fence() is None


async def test_the_waiting_line_names_the_holder_once(apiserver: ApiServer, kube: KubeCluster) -> None:
    log: list[str] = []
    a, b = elector(kube, "a"), elector(kube, "b", log)
    assert await a.try_acquire_or_renew()
    keep = asyncio.create_task(a.hold())
    waiting = asyncio.create_task(b.acquire())
    await asyncio.sleep(1.0)
    keep.cancel()
    waiting.cancel()
    assert log == ["waiting to lead: the lease test/canarylab-engine is held by a; this engine (b) takes over if "
                   "it is not renewed for 2s"]


def test_durations_are_checked_as_client_go_does() -> None:
    assert LeaseConfig("ns").problems() == []
    assert LeaseConfig("ns", lease_duration=10, renew_deadline=10).problems() == [
        "--leader-elect-lease-duration must be greater than --leader-elect-renew-deadline"]
    assert LeaseConfig("ns", renew_deadline=2, retry_period=2).problems() == [
        "--leader-elect-renew-deadline must be greater than 1.2 x --leader-elect-retry-period"]
