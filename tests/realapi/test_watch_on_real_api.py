"""Watches on the real API server: a resume point older than the watch cache answers 410 Gone, and the
adapter relists instead of failing."""

from __future__ import annotations

import asyncio

import pytest

from canarylab.controlplane import ControlPlane
from canarylab.engine.kinds import CANARY
from canarylab.kube import cluster as kube_cluster
from canarylab.kube.cluster import KubeCluster

pytestmark = pytest.mark.timeout(60)


def canary(name: str, namespace: str) -> dict[str, object]:
    return {"apiVersion": "flagger.app/v1beta1", "kind": "Canary", "metadata": {"name": name, "namespace": namespace},
            "spec": {"targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
                     "service": {"port": 9898}, "analysis": {"interval": "30s", "threshold": 5,
                                                                     "maxWeight": 50, "stepWeight": 5}}}


async def test_a_too_old_resource_version_is_410_gone_and_relisted(lab_crds: ControlPlane, kube_namespace: str,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    cluster = await KubeCluster.connect(lab_crds.context, kubeconfig=str(lab_crds.kubeconfig), backoff=(0.05, 0.2))
    await cluster.create(canary("first", kube_namespace))
    # The real server refuses a watch from resourceVersion 1 ("too old resource version"): the adapter's signal
    with pytest.raises(kube_cluster._Gone):
        async for _ in cluster._stream(CANARY, kube_namespace, "1"):
            pass
    # Given a watch whose first resume point is that old (as after a long outage past compaction)
    real_list = cluster._list
    calls = []

    async def stale_once(kind, namespace, labels=None):  # type: ignore[no-untyped-def]
        items, rv = await real_list(kind, namespace, labels)
        calls.append(rv)
        return items, ("1" if len(calls) == 1 else rv)

    monkeypatch.setattr(cluster, "_list", stale_once)
    events = cluster.watch(CANARY, kube_namespace)
    try:
        first = await asyncio.wait_for(anext(events), 10)
        assert (first.type, first.object["metadata"]["name"]) == ("ADDED", "first")
        # then the 410 makes it relist (no duplicate ADDED), and it sees what happens next
        await cluster.create(canary("second", kube_namespace))
        nxt = await asyncio.wait_for(anext(events), 10)
        assert (nxt.type, nxt.object["metadata"]["name"]) == ("ADDED", "second")
        assert len(calls) == 2
    finally:
        await events.aclose()  # type: ignore[attr-defined]
