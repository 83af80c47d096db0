"""``canarylab engine`` as the pods of ``deploy/base`` run it, on the real control plane (tests/realkube.py).

Each test applies the shipped RBAC with the real kubectl, mints a token for the ServiceAccount with the
TokenRequest API (``kubectl create token``), and runs the engine with only that token, the cluster CA and
``KUBERNETES_SERVICE_HOST``/``_PORT``: no kubeconfig exists in its environment. KWOK runs the pods.
"""

from __future__ import annotations

import re
import signal
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from canarylab.controlplane import ControlPlane
from tests.incluster.pod import (
    RBAC_KINDS,
    EnginePod,
    EngineProcess,
    FakePrometheus,
    admin_get,
    apply,
    canary_status,
    fake_prometheus,
    readyz,
    render,
    set_image,
    workloads,
)

pytestmark = pytest.mark.timeout(180)


def rbac(plane: ControlPlane, namespace: str, tmp: Path) -> list[dict[str, Any]]:
    return [d for d in render(plane, namespace, tmp) if d["kind"] in RBAC_KINDS]


def endpoint(engine: EngineProcess) -> str:
    line = engine.wait_for(lambda: next((x for _, x in engine.errors if "serving Flagger's metrics on" in x), None),
                           20, "the metrics address")
    found = re.search(r"http://(\S+)/metrics", line)
    assert found, line
    return f"http://{found.group(1)}"


@pytest.fixture
def prom() -> Any:
    with fake_prometheus() as fake:
        yield fake


def test_with_only_a_service_account_token_the_engine_drives_a_canary_to_promotion(
        lab_crds: ControlPlane, kube_namespace: str, tmp_path: Path, prom: FakePrometheus) -> None:
    ns = kube_namespace
    apply(lab_crds, rbac(lab_crds, ns, tmp_path))
    apply(lab_crds, workloads(ns, step=30))
    pod = EnginePod(lab_crds, ns, tmp_path, f"canarylab-engine-{ns}")
    engine = pod.start("--metrics-server", prom.url, "--metrics-addr", "127.0.0.1:0")
    try:
        # Given the engine logged in as the pod's service account (no kubeconfig anywhere)
        engine.wait_for(lambda: engine.line_at("logged in as in-cluster (service account "
                                               f"{ns}/canarylab-engine-{ns})"), 30, "the in-cluster login")
        url = endpoint(engine)
        engine.wait_for(lambda: "Initialization done! podinfo." + ns in engine.messages(), 60, "Initialization")
        assert readyz(url + "/readyz")[0] == 200
        # when a new image ships
        set_image(lab_crds, ns, "stefanprodan/podinfo:3.1.1")
        # then the canary walks 30, 60 and is promoted, with the token's rights only
        engine.wait_for(lambda: f"Promotion completed! Scaling down podinfo.{ns}" in engine.messages(), 90,
                        "the promotion")
        engine.wait_for(lambda: canary_status(lab_crds, ns).get("phase") == "Succeeded", 30, "phase Succeeded")
        weights = [m.rsplit(" ", 1)[1] for m in engine.messages() if " canary weight " in m]
        assert weights == ["30", "60"]
        primary = admin_get(lab_crds, f"/apis/apps/v1/namespaces/{ns}/deployments/podinfo-primary")
        assert primary["spec"]["template"]["spec"]["containers"][0]["image"] == "stefanprodan/podinfo:3.1.1"
        assert any("latency" in q for q in prom.queries)  # the checks went to --metrics-server
    finally:
        code = engine.stop()
    assert code == 130
    assert "Traceback" not in engine.stderr()
    assert "forbidden" not in engine.stderr()


def test_a_clusterrole_missing_one_verb_is_named_in_one_line_and_healed_without_a_restart(
        lab_crds: ControlPlane, kube_namespace: str, tmp_path: Path, prom: FakePrometheus) -> None:
    ns = kube_namespace
    docs = rbac(lab_crds, ns, tmp_path)
    role = next(d for d in docs if d["kind"] == "ClusterRole")
    status_rule = next(r for r in role["rules"] if r["resources"] == ["canaries/status"])
    status_rule["verbs"] = []  # the ClusterRole lacks "patch" on canaries/status
    role["rules"] = [r for r in role["rules"] if r["verbs"]]
    apply(lab_crds, docs)
    apply(lab_crds, workloads(ns))
    pod = EnginePod(lab_crds, ns, tmp_path, f"canarylab-engine-{ns}")
    engine = pod.start("--metrics-server", prom.url, "--metrics-addr", "127.0.0.1:0")
    try:
        url = endpoint(engine)
        # then the engine says which verb on which resource is forbidden, in one line
        engine.wait_for(lambda: engine.line_at('may not "patch" canaries/status'), 30, "the forbidden line")
        time.sleep(12)  # longer than a re-check: it neither repeats itself nor crash-loops
        lines = [line for _, line in engine.errors if "forbidden" in line]
        assert len(lines) == 1, engine.stderr()
        assert (f'forbidden: service account {ns}/canarylab-engine-{ns} may not "patch" canaries/status (API group '
                f"flagger.app) in namespace {ns}, which the engine needs to keep the run's state in the Canary "
                "status; add that verb to the engine's ClusterRole (deploy/base/rbac.yaml)") in lines[0]
        assert engine.proc.poll() is None
        code, text = readyz(url + "/readyz")
        assert code == 503 and 'may not "patch" canaries/status' in text
        assert not engine.messages()  # it did not act half-permitted
        # when the verb is granted, it starts by itself
        apply(lab_crds, rbac(lab_crds, ns, tmp_path))
        engine.wait_for(lambda: engine.line_at("permissions are complete now"), 30, "the permissions to heal")
        engine.wait_for(lambda: "Initialization done! podinfo." + ns in engine.messages(), 60, "Initialization")
        assert readyz(url + "/readyz")[0] == 200
    finally:
        engine.stop()
    assert "Traceback" not in engine.stderr()


def test_two_engines_with_leader_election_one_acts_and_the_other_finishes_after_the_leader_is_killed(
        lab_crds: ControlPlane, kube_namespace: str, tmp_path: Path, prom: FakePrometheus,
        record_property: Any) -> None:
    ns = kube_namespace
    apply(lab_crds, rbac(lab_crds, ns, tmp_path))
    apply(lab_crds, workloads(ns))
    pod = EnginePod(lab_crds, ns, tmp_path, f"canarylab-engine-{ns}")
    args = ("--metrics-server", prom.url, "--leader-elect")  # Kubernetes' 15s / 10s / 2s
    first = pod.start(*args, name="first")
    try:
        first.wait_for(lambda: first.line_at("leading: this engine"), 40, "the first engine to lead")
        second = pod.start(*args, name="second")
        # Given one leader and one follower
        second.wait_for(lambda: second.line_at("waiting to lead: the lease "
                                               f"{ns}/canarylab-engine is held by "), 40, "the follower to wait")
        first.wait_for(lambda: "Initialization done! podinfo." + ns in first.messages(), 60, "Initialization")
        # when the leader is killed in the middle of the analysis
        set_image(lab_crds, ns, "stefanprodan/podinfo:3.1.1")
        first.wait_for(lambda: first.event_at("canary weight 20"), 60, "the first step")
        assert not second.messages()
        assert not [line for _, line in second.errors if re.search(r"Z (create|patch|replace) ", line)]
        killed, killed_wall = time.monotonic(), time.time()
        first.proc.send_signal(signal.SIGKILL)
        first.proc.wait(10)
        # then the follower takes over and finishes the run from the Canary's status
        second.wait_for(lambda: second.line_at("leading: this engine"), 40, "the follower to take over")
        step = second.wait_for(lambda: next((t for t, e in second.events if "canary weight" in e.get("message", "")),
                                            None), 40, "the next step by the new leader")
        second.wait_for(lambda: f"Promotion completed! Scaling down podinfo.{ns}" in second.messages(), 90,
                        "the promotion by the new leader")
        took_over = second.line_at("leading: this engine")
        assert took_over is not None
        failover, lease_wait = step - killed, took_over - killed
        print(f"\nfailover: leader killed -> next step by the new leader {failover:.1f}s "
              f"(lease taken after {lease_wait:.1f}s)")
        record_property("failover_seconds", round(failover, 2))
        # the lease duration bounds it from below; a retry period, the start of the engine and one tick above
        assert 12.0 <= failover < 15 + 2 * 2.2 + 12
        # no second "New revision detected!", no lost or repeated weight
        new_revision = [m for m in first.messages() + second.messages() if m.startswith("New revision detected!")]
        assert len(new_revision) == 1
        weights = [int(m.rsplit(" ", 1)[1]) for m in first.messages() + second.messages() if " canary weight " in m]
        assert sorted(set(weights)) == [20, 40, 60] and weights == sorted(weights)
        events = admin_get(lab_crds, f"/api/v1/namespaces/{ns}/events")["items"]
        detected = [e for e in events if e["message"].startswith("New revision detected!")]
        assert sum(e.get("count", 1) for e in detected) == 1
        lease = admin_get(lab_crds, f"/apis/coordination.k8s.io/v1/namespaces/{ns}/leases/canarylab-engine")
        assert lease["spec"]["leaseTransitions"] == 1
        # the new leader's timestamps are the wall clock's, though it waited for the lease before starting
        changed = canary_status(lab_crds, ns)["lastTransitionTime"]
        assert datetime.fromisoformat(changed.replace("Z", "+00:00")).timestamp() >= killed_wall - 1
        # a clean stop hands the lease back at once
        assert second.stop(signal.SIGTERM) == 143  # interrupted by SIGTERM, the one code for it
        lease = admin_get(lab_crds, f"/apis/coordination.k8s.io/v1/namespaces/{ns}/leases/canarylab-engine")
        assert lease["spec"].get("holderIdentity", "") == ""
    finally:
        pod.stop_all()
    assert "Traceback" not in first.stderr() + second.stderr()
