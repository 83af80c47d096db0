"""Fixtures for kr8s over HTTP: a fresh fixed-kmock API server per test and a KubeCluster talking to it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from canarylab.kube.cluster import KubeCluster
from tests.kube.apiserver import ApiServer, serve, write_kubeconfig


@pytest.fixture
async def apiserver() -> AsyncIterator[ApiServer]:
    """An empty Kubernetes API on 127.0.0.1 (bookmarks every 0.2 s so resume paths get exercised)."""
    async with serve(bookmark_interval=0.2) as server:
        yield server


@pytest.fixture
def kubeconfig(apiserver: ApiServer, tmp_path: Path) -> Path:
    """A kubeconfig whose context ``kmock`` points at :func:`apiserver`."""
    return write_kubeconfig(tmp_path / "kubeconfig", str(apiserver.url).rstrip("/"))


@pytest.fixture
def write_log() -> list[str]:
    """Lines the KubeCluster logged (one per write, plus connection notices)."""
    return []


@pytest.fixture
async def kube(kubeconfig: Path, write_log: list[str]) -> KubeCluster:
    """A KubeCluster on :func:`apiserver`, with quick retries."""
    return await KubeCluster.connect("kmock", kubeconfig=str(kubeconfig), log=write_log.append,
                                     backoff=(0.05, 0.2))
