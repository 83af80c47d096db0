"""A DaemonSet canary on the real API server: kube-controller-manager's DaemonSet controller runs the daemon
pods on the KWOK nodes; ``canarylab engine`` creates the primary DaemonSet, "scales the target to zero" with
Flagger's node selector, and promotes ``kubectl set image daemonset/...``."""

from __future__ import annotations

import pytest

from canarylab.engine.context import SCALE_TO_ZERO_LABEL
from canarylab.engine.kinds import CANARY, DAEMON_SET, Obj
from tests.realapi.conftest import SeedLab, apply, until

pytestmark = pytest.mark.timeout(150)


def daemon_set(namespace: str) -> Obj:
    container = {"name": "agent", "image": "ghcr.io/stefanprodan/podinfo:6.0.0",
                 "ports": [{"name": "http", "containerPort": 9898}]}
    return {"apiVersion": "apps/v1", "kind": "DaemonSet",
            "metadata": {"name": "agent", "namespace": namespace, "labels": {"app": "agent"}},
            "spec": {"selector": {"matchLabels": {"app": "agent"}},
                     "template": {"metadata": {"labels": {"app": "agent"}}, "spec": {"containers": [container]}}}}


def canary(namespace: str, metrics_server: str) -> Obj:
    return {"apiVersion": "flagger.app/v1beta1", "kind": "Canary",
            "metadata": {"name": "agent", "namespace": namespace},
            "spec": {"targetRef": {"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "agent"},
                     "metricsServer": metrics_server, "service": {"port": 9898},
                     "analysis": {"interval": "10s", "threshold": 2, "iterations": 2,
                                  "metrics": [{"name": "request-success-rate", "interval": "1m",
                                               "thresholdRange": {"min": 99}}]}}}


async def test_a_daemon_set_canary_is_promoted_on_the_real_api_server(seed: SeedLab) -> None:
    lab, ns = seed, seed.namespace
    await apply(lab.plane, [daemon_set(ns), canary(ns, lab.prometheus.url)])
    await lab.start_engine()

    async def phase() -> str:
        obj = await lab.cluster.get(CANARY, ns, "agent")
        return str(((obj or {}).get("status") or {}).get("phase", ""))

    async def initialized() -> bool:
        return await phase() == "Initialized"

    try:
        await until("the DaemonSet canary to be Initialized", initialized, 90)
    except AssertionError:
        raise AssertionError(f"{await phase()!r}; engine stderr:\n{lab.engines[-1].stderr()[-3000:]}") from None
    # the primary DaemonSet runs a daemon pod on every KWOK node; the target's pods are gone (node selector)
    primary = await lab.get(DAEMON_SET, "agent-primary")
    nodes = len((await lab.kubectl("get", "nodes", "-o", "name")).split())
    assert primary["status"]["desiredNumberScheduled"] == nodes >= 1
    target = await lab.get(DAEMON_SET, "agent")
    assert target["spec"]["template"]["spec"]["nodeSelector"] == {SCALE_TO_ZERO_LABEL: "true"}

    async def no_target_pods() -> bool:
        return not (await lab.kubectl("get", "pods", "-l", "app=agent", "-o", "name")).split()

    await until("the target's daemon pods to be gone", no_target_pods, 60)
    # when the user ships a new image the tutorial way
    await lab.kubectl("set", "image", "daemonset/agent", "agent=ghcr.io/stefanprodan/podinfo:6.0.1")

    async def succeeded() -> bool:  # the status write comes just before the event: wait for both
        done = f"Promotion completed! Scaling down agent.{ns}" in lab.engines[-1].messages()
        return done and await phase() == "Succeeded"

    try:
        await until("the DaemonSet canary to be promoted", succeeded, 120)
    except AssertionError:
        raise AssertionError(f"{await phase()!r}; events {lab.engines[-1].messages()[-5:]}") from None
    messages = lab.engines[-1].messages()
    assert f"Advance agent.{ns} canary iteration 2/2" in messages
    assert f"Promotion completed! Scaling down agent.{ns}" in messages
    primary = await lab.get(DAEMON_SET, "agent-primary")
    assert primary["spec"]["template"]["spec"]["containers"][0]["image"] == "ghcr.io/stefanprodan/podinfo:6.0.1"
    assert SCALE_TO_ZERO_LABEL not in (primary["spec"]["template"]["spec"].get("nodeSelector") or {})
    target = await lab.get(DAEMON_SET, "agent")
    assert target["spec"]["template"]["spec"]["nodeSelector"] == {SCALE_TO_ZERO_LABEL: "true"}
