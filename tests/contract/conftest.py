"""One contract suite for the engine's Cluster port, run against every implementation.

``cluster`` is parametrized: ``memory`` is the engine's :class:`MemoryCluster`, ``sim`` the simulated lab's
:class:`SimCluster` (the same store with a deployment and an HPA controller writing status), ``kube`` is
:class:`KubeCluster` talking HTTP through kr8s to a fresh in-memory API server (kmock, fixed for kr8s) on
127.0.0.1, started per test.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from canarylab.engine.clock import LoopClock
from canarylab.engine.memory_cluster import MemoryCluster
from canarylab.engine.ports import Cluster
from canarylab.kube.cluster import KubeCluster
from canarylab.sim.cluster import SimCluster
from tests.kube.apiserver import serve, write_kubeconfig


@pytest.fixture(params=["memory", "sim", "kube"])
async def cluster(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Cluster]:
    """An empty cluster behind the Cluster port."""
    if request.param == "memory":
        yield MemoryCluster()
        return
    if request.param == "sim":
        yield SimCluster(LoopClock())
        return
    async with serve() as server:
        kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", str(server.url).rstrip("/"))
        yield await KubeCluster.connect("kmock", kubeconfig=str(kubeconfig))
