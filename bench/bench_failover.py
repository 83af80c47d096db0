"""Failover of ``canarylab engine --leader-elect`` on a real control plane (etcd, kube-apiserver, KWOK).

Two engines log in as the ServiceAccount of ``deploy/base`` (token from the TokenRequest API, no kubeconfig),
with Kubernetes' lease durations (15 s / 10 s / 2 s). A canary run starts; when the leader has made its first
step it is stopped, and the script prints how long it took from the stop to the next analysis step made by the
other engine. Two ways to stop the leader:

- ``kill``: SIGKILL, the Lease is not released: the follower waits for it to expire (lease duration, measured
  from when it last saw it change, plus up to one jittered retry period);
- ``term``: SIGTERM, as ``kubectl delete pod`` or a rolling update: the leader releases the Lease.

    .venv/bin/python bench/bench_failover.py [--runs N]

Needs the control-plane binaries (``make substrate``).
"""

from __future__ import annotations

import argparse
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for tests.incluster (the pod's view)

from canarylab.controlplane import ControlPlane
from tests.incluster.pod import RBAC_KINDS, EnginePod, FakePrometheus, apply, render, set_image, workloads
from tests.realkube import install_lab_crds


def one_run(plane: ControlPlane, prom: FakePrometheus, sig: int, index: int, tmp: Path) -> tuple[float, float]:
    ns = f"failover-{index}"
    plane.kubectl("create", "namespace", ns)
    deadline = time.monotonic() + 20
    while plane.kubectl("-n", ns, "get", "serviceaccount", "default", check=False).returncode != 0:
        if time.monotonic() > deadline:
            raise SystemExit(f"no default ServiceAccount in {ns}")
        time.sleep(0.1)
    work = tmp / ns
    work.mkdir()
    apply(plane, [d for d in render(plane, ns, work) if d["kind"] in RBAC_KINDS])
    apply(plane, workloads(ns))
    pod = EnginePod(plane, ns, work, f"canarylab-engine-{ns}")
    args = ("--metrics-server", prom.url, "--leader-elect")
    try:
        first = pod.start(*args, name="first")
        first.wait_for(lambda: first.line_at("leading: this engine"), 40, "the first leader")
        second = pod.start(*args, name="second")
        second.wait_for(lambda: second.line_at("waiting to lead"), 40, "the follower")
        first.wait_for(lambda: any(m.startswith("Initialization done!") for m in first.messages()), 60, "init")
        set_image(plane, ns, "stefanprodan/podinfo:3.1.1")
        first.wait_for(lambda: first.event_at("canary weight 20"), 60, "the first step")
        stopped = time.monotonic()
        first.proc.send_signal(sig)
        first.proc.wait(20)
        took = second.wait_for(lambda: second.line_at("leading: this engine"), 40, "the takeover")
        step = second.wait_for(lambda: next((t for t, e in second.events if "canary weight" in e.get("message", "")),
                                            None), 40, "the next step")
        return took - stopped, step - stopped
    finally:
        pod.stop_all()
        plane.kubectl("delete", "namespace", ns, "--wait=false", check=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2, help="runs per way of stopping the leader (default 2)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="canarylab-failover-") as tmp:
        plane = ControlPlane(Path(tmp) / "plane", nodes=1)
        plane.start()
        prom = FakePrometheus()
        try:
            install_lab_crds(plane)
            index = 0
            for label, sig in (("kill", signal.SIGKILL), ("term", signal.SIGTERM)):
                lease, step = [], []
                for _ in range(args.runs):
                    index += 1
                    took, next_step = one_run(plane, prom, sig, index, Path(tmp))
                    lease.append(took)
                    step.append(next_step)
                    print(f"{label:>4} run {index}: lease taken after {took:5.1f}s, next step after {next_step:5.1f}s",
                          flush=True)
                median = statistics.median(step)
                print(f"{label:>4}: leader stopped -> next step by the new leader: median {median:.1f}s "
                      f"(min {min(step):.1f}s, max {max(step):.1f}s, {len(step)} runs)", flush=True)
        finally:
            prom.stop()
            plane.stop()


if __name__ == "__main__":
    main()
