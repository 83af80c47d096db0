"""One contract suite for the engine's Cluster port, run against every implementation.

``cluster`` is parametrized: ``memory`` is the engine's :class:`MemoryCluster`, ``sim`` the simulated lab's
:class:`SimCluster` (the same store with a deployment and an HPA controller writing status), ``kube`` is
:class:`KubeCluster` talking HTTP through kr8s to a fresh in-memory API server (kmock, fixed for kr8s) on
127.0.0.1, started per test, and ``real`` is :class:`KubeCluster` on the session's real kube-apiserver
(``tests/realkube.py``: etcd, controller-manager, scheduler, KWOK), with the lab's CRDs installed. The real
server is shared by the session, so its namespaces ``test``, ``other``, ``one`` and ``two`` are emptied of
every kind the suite writes after each test.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from canarylab.controlplane import ControlPlane
from canarylab.engine.clock import LoopClock
from canarylab.engine.kinds import CANARY, DEPLOYMENT, EVENT, HPA, HTTP_ROUTE, METRIC_TEMPLATE, SERVICE, TRAFFIC_SPLIT
from canarylab.engine.memory_cluster import MemoryCluster
from canarylab.engine.ports import Cluster, NotFound
from canarylab.kube.cluster import KubeCluster
from canarylab.sim.cluster import SimCluster
from tests.kube.apiserver import serve, write_kubeconfig

REAL_NAMESPACES = ("test", "other", "one", "two")
WRITTEN_KINDS = (CANARY, METRIC_TEMPLATE, DEPLOYMENT, SERVICE, HPA, TRAFFIC_SPLIT, HTTP_ROUTE, EVENT)


@pytest.fixture(scope="session")
def real_namespaces(lab_crds: ControlPlane) -> ControlPlane:
    """The session's control plane with the suite's namespaces."""
    with lab_crds.http() as http:
        for name in REAL_NAMESPACES:
            answer = http.post("/api/v1/namespaces", json={"metadata": {"name": name}})
            assert answer.status_code in (201, 409), answer.text
        for name in REAL_NAMESPACES:  # pods (of Deployments) need the namespace's default ServiceAccount
            end = time.monotonic() + 20
            while http.get(f"/api/v1/namespaces/{name}/serviceaccounts/default").status_code != 200:
                assert time.monotonic() < end, f"no default ServiceAccount in namespace {name}"
                time.sleep(0.05)
    return lab_crds


async def empty(cluster: KubeCluster) -> None:
    """Delete what a test wrote in the suite's namespaces (the garbage collector takes ReplicaSets and pods)."""
    for kind in WRITTEN_KINDS:
        for namespace in REAL_NAMESPACES:
            for obj in await cluster.list(kind, namespace):
                with contextlib.suppress(NotFound):  # the garbage collector was quicker
                    await cluster.delete(kind, namespace, obj["metadata"]["name"])


@pytest.fixture(params=["memory", "sim", "kube", "real"])
async def cluster(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Cluster]:
    """An empty cluster behind the Cluster port."""
    if request.param == "memory":
        yield MemoryCluster()
        return
    if request.param == "sim":
        yield SimCluster(LoopClock())
        return
    if request.param == "real":
        plane: ControlPlane = request.getfixturevalue("real_namespaces")
        from tests.realkube import ensure_running

        ensure_running(plane)
        real = await KubeCluster.connect(plane.context, kubeconfig=str(plane.kubeconfig), backoff=(0.2, 3.0))
        try:
            yield real
        finally:
            await empty(real)
        return
    async with serve() as server:
        kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", str(server.url).rstrip("/"))
        yield await KubeCluster.connect("kmock", kubeconfig=str(kubeconfig))


@pytest.fixture
def substrate(request: pytest.FixtureRequest) -> str:
    """Which ``cluster`` this test runs on (``memory``, ``sim``, ``kube`` or ``real``)."""
    return str(request.node.callspec.params.get("cluster", ""))
