"""The engine on the real control plane (``make substrate``): start time, new-revision latency, load.

Prints:

- control plane start: etcd, kube-apiserver, controllers + KWOK, nodes, total; the first start in this
  process ("first") and a second one on a fresh state dir ("again");
- new revision -> "New revision detected!": from the PUT that changes podinfo's pod template (through
  ``KubeLab.set_image``, as ``kubectl set image`` does) to the engine's event, with the seed's 30 s interval,
  so only the watch explains a fast reaction; median and p95 over ``--bumps``;
- with ``--canaries N`` (default 200): N Canaries on KWOK pods (1 replica each), the engine's CPU per
  canary-tick (``Engine.tick_cpu / Engine.ticks``, which includes the awaits on the real API server) and its
  resident memory after they are all Initialized.

Usage: ``python bench/bench_realkube.py [--bumps N] [--canaries N]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for tests.doubles

import yaml

from canarylab.controlplane import ControlPlane
from canarylab.engine.events import EngineEvent, EngineNotice, KubeEvent
from canarylab.engine.kinds import CANARY, DEPLOYMENT
from canarylab.kube.lab import KubeLab
from canarylab.manifests import seed_lab
from tests.doubles import FakeMetrics, FakeWebhooks
from tests.realkube import install_lab_crds


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def start(state: Path) -> ControlPlane:
    plane = ControlPlane(state, nodes=2)
    plane.start()
    t = plane.timings
    print(f"  etcd {t['etcd']:.2f}s, kube-apiserver {t['kube-apiserver']:.2f}s, controllers+kwok "
          f"{t['controllers']:.2f}s, nodes {t['nodes']:.2f}s -> total {t['total']:.2f}s")
    return plane


def seed_docs(namespace: str, name: str = "podinfo", replicas: int | None = None) -> list[dict[str, Any]]:
    docs = []
    for obj in seed_lab():
        if obj["kind"] == "Namespace":
            continue
        obj = json.loads(json.dumps(obj).replace(".test/", f".{namespace}/"))
        obj["metadata"]["namespace"] = namespace
        if name != "podinfo":
            if obj["metadata"]["name"] == "flagger-loadtester":
                continue
            obj = json.loads(json.dumps(obj).replace('"podinfo"', f'"{name}"'))
        if replicas is not None and obj["kind"] == "Deployment":
            obj["spec"]["replicas"] = replicas
        if replicas is not None and obj["kind"] == "HorizontalPodAutoscaler":
            obj["spec"]["minReplicas"] = obj["spec"]["maxReplicas"] = replicas
        docs.append(obj)
    return docs


async def latency(plane: ControlPlane, bumps: int) -> list[float]:
    ns = "bench"
    plane.kubectl("create", "namespace", ns)
    await asyncio.sleep(2)  # the default ServiceAccount
    plane.kubectl("apply", "--server-side", "-f", "-", input=yaml.safe_dump_all(seed_docs(ns)))
    lab = KubeLab(plane.context, [ns], kubeconfig=str(plane.kubeconfig), metrics=FakeMetrics.healthy(),
                  webhooks=FakeWebhooks(), log=lambda line: None)
    seen: list[tuple[float, str]] = []

    def sink(event: EngineEvent) -> None:
        if isinstance(event, KubeEvent | EngineNotice):
            seen.append((time.monotonic(), event.message))

    await lab.connect()
    await lab.start()
    lab.engine.subscribe(sink)
    try:
        deadline = time.monotonic() + 90
        while not any(m.startswith("Initialization done!") for _, m in seen):
            if time.monotonic() > deadline:
                raise SystemExit(f"the seed Canary was not initialized in 90 s: {[m for _, m in seen][-5:]}")
            await asyncio.sleep(0.01)
        # The seed's HPA scales the primary to 2 and podinfo's minReadySeconds is 5: while the primary is not
        # available the engine halts before looking at revisions (as Flagger does), so let it settle first.
        while True:
            primary = await lab.cluster.get(DEPLOYMENT, ns, "podinfo-primary") or {}
            status, want = primary.get("status") or {}, (primary.get("spec") or {}).get("replicas", 1)
            if want >= 2 and status.get("availableReplicas") == want == status.get("replicas"):
                break
            if time.monotonic() > deadline:
                raise SystemExit("podinfo-primary did not settle at the HPA's 2 available replicas")
            await asyncio.sleep(0.2)
        await asyncio.sleep(1)
        delays = []
        for i in range(bumps):
            before = len(seen)
            t0 = time.monotonic()
            await lab.set_image(ns, "podinfo", "podinfod", f"ghcr.io/stefanprodan/podinfo:6.1.{i}")
            while not any(m.startswith("New revision detected!") for _, m in seen[before:]):
                if time.monotonic() - t0 > 20:
                    raise SystemExit(f"bump {i}: no 'New revision detected!' within 20 s; the engine said: "
                                     + "; ".join(m for _, m in seen[-8:]))
                await asyncio.sleep(0.002)
            detected = next(t for t, m in seen[before:] if m.startswith("New revision detected!"))
            delays.append(detected - t0)
            await asyncio.sleep(0.3)
        return delays
    finally:
        await lab.stop()


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def load(plane: ControlPlane, canaries: int) -> None:
    ns = "load"
    plane.kubectl("create", "namespace", ns)
    await asyncio.sleep(2)
    docs = []
    for i in range(canaries):
        docs += seed_docs(ns, f"app{i:03d}", replicas=1)
    t0 = time.monotonic()
    plane.kubectl("apply", "--server-side", "-f", "-", input=yaml.safe_dump_all(docs), timeout=300)
    print(f"  applied {canaries} Deployments, HPAs and Canaries in {time.monotonic() - t0:.1f}s")
    before = rss_mb()
    lab = KubeLab(plane.context, [ns], kubeconfig=str(plane.kubeconfig), metrics=FakeMetrics.healthy(),
                  webhooks=FakeWebhooks(), log=lambda line: None)
    await lab.connect()
    await lab.start()
    try:
        deadline = time.monotonic() + 600
        while True:
            items = await lab.cluster.list(CANARY, ns)
            done = sum(1 for c in items if (c.get("status") or {}).get("phase") == "Initialized")
            if done == canaries:
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"only {done}/{canaries} Canaries Initialized after 600 s")
            await asyncio.sleep(1)
        print(f"  {canaries} Canaries Initialized (primaries Ready on KWOK pods) after {time.monotonic() - t0:.0f}s")
        ticks0, cpu0 = lab.engine.ticks, lab.engine.tick_cpu
        await asyncio.sleep(35)  # a whole 30 s interval: every Canary ticks at least once
        ticks, cpu = lab.engine.ticks - ticks0, lab.engine.tick_cpu - cpu0
        print(f"  steady state: {ticks} ticks in 35 s, engine CPU {cpu / max(ticks, 1) * 1000:.2f} ms per canary-tick")
        print(f"  engine process RSS {rss_mb():.0f} MB ({rss_mb() - before:+.0f} MB for the engine and its "
              f"{canaries} watches and caches)")
    finally:
        await lab.stop()


async def amain(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-realkube-") as tmp:
        print("control plane start (first):")
        start(Path(tmp) / "first").stop()
        print("control plane start (again, fresh state dir):")
        plane = start(Path(tmp) / "again")
        try:
            install_lab_crds(plane)
            delays = await latency(plane, args.bumps)
            print(f"new revision -> 'New revision detected!' over {len(delays)} bumps: median "
                  f"{statistics.median(delays) * 1000:.0f} ms, p95 {p95(delays) * 1000:.0f} ms, "
                  f"max {max(delays) * 1000:.0f} ms")
            if args.canaries:
                print(f"{args.canaries} canaries on KWOK pods:")
                await load(plane, args.canaries)
        finally:
            plane.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bumps", type=int, default=20)
    parser.add_argument("--canaries", type=int, default=200)
    asyncio.run(amain(parser.parse_args()))


if __name__ == "__main__":
    main()
