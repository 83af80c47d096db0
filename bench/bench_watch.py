"""How fast a Deployment change reaches the engine through a watch over HTTP (target: under 1 s).

Runs the kr8s adapter against the in-memory Kubernetes API (kmock, fixed for kr8s) on 127.0.0.1 with the
seed lab, and measures two delays per image bump:

- watch: from the PUT that changes the pod template to ``KubeCluster.watch`` yielding the new revision;
- engine: from the same change to the engine's "New revision detected!" event, with an analysis interval of
  30 s of real time, so only the watch can explain a fast reaction.

Usage: ``python bench/bench_watch.py [--bumps N]``
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for tests.kube (the fixed kmock server)

from canarylab.engine.events import EngineEvent, EngineNotice, KubeEvent
from canarylab.engine.kinds import CANARY, DEPLOYMENT
from canarylab.kube.cluster import KubeCluster
from canarylab.kube.lab import KubeLab
from canarylab.manifests import seed_lab
from tests.doubles import FakeMetrics
from tests.kube.apiserver import ApiServer, ready_deployments, serve, write_kubeconfig
from tests.kube.loadtester import run_loadtester


def image_of(obj: dict[str, object]) -> str:
    return str(obj["spec"]["template"]["spec"]["containers"][0]["image"])  # type: ignore[index]


async def until(check: object, timeout: float, notes: list[str]) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise SystemExit("the engine did not get there in time; what it said:\n  " + "\n  ".join(notes))
        await asyncio.sleep(0.005)


async def measure_watch(kube: KubeCluster, bumps: int) -> list[float]:
    """Delay from a PUT to the watch yielding it, ``bumps`` times."""
    events = kube.watch(DEPLOYMENT, "test")
    delays = []
    async for event in events:  # drain the initial ADDED events
        if event.object["metadata"]["name"] == "podinfo":
            break
    for i in range(bumps):
        tag = f"bench-watch-{i}"
        obj = await kube.get(DEPLOYMENT, "test", "podinfo")
        assert obj is not None
        obj["spec"]["template"]["spec"]["containers"][0]["image"] = tag
        start = time.monotonic()
        await kube.replace(obj)
        async for event in events:
            if event.object["metadata"]["name"] == "podinfo" and image_of(event.object) == tag:
                delays.append(time.monotonic() - start)
                break
    await events.aclose()  # type: ignore[attr-defined]
    return delays


async def measure_engine(server: ApiServer, kubeconfig: Path, bumps: int) -> list[float]:
    """Delay from an image bump to the engine's "New revision detected!" event, ``bumps`` times."""
    seen: list[float] = []
    notes: list[str] = []

    def on_event(event: EngineEvent) -> None:
        if isinstance(event, KubeEvent) and event.message.startswith("New revision detected!"):
            seen.append(time.monotonic())
        if isinstance(event, KubeEvent | EngineNotice):
            notes.append(f"{type(event).__name__}: {event.message}")

    lab = KubeLab("kmock", ["test"], kubeconfig=str(kubeconfig), metrics=FakeMetrics.healthy(), speed=1.0,
                  log=lambda line: None)
    await lab.connect()
    await lab.start()
    lab.engine.subscribe(on_event)
    delays = []
    try:
        await until(lambda: (server.objects(CANARY, "test")[0].get("status") or {}).get("phase") == "Initialized",
                    30, notes)
        for i in range(bumps):
            await asyncio.sleep(0.05)  # the engine is asleep on its 30 s interval
            before = len(seen)
            start = time.monotonic()
            await lab.set_image("test", "podinfo", "podinfod", f"stefanprodan/podinfo:bench-{i}")
            await until(lambda before=before: len(seen) > before, 5, notes)  # type: ignore[misc]
            delays.append(seen[before] - start)
    finally:
        await lab.stop()
    return delays


def summary(name: str, delays: list[float]) -> str:
    ms = sorted(d * 1000 for d in delays)
    p95 = ms[max(0, round(0.95 * len(ms)) - 1)]
    verdict = "ok" if ms[-1] < 1000 else "OVER 1 s"
    return (f"{name:<8} n={len(ms):<3} median {statistics.median(ms):6.1f} ms   p95 {p95:6.1f} ms   "
            f"max {ms[-1]:6.1f} ms   target < 1000 ms: {verdict}")


async def main(bumps: int) -> None:
    os.environ["CANARYLAB_CACHE_DIR"] = tempfile.mkdtemp(prefix="canarylab-bench-")  # no lab state
    async with serve() as server, run_loadtester() as loadtester:
        server.proxy_service("test", "flagger-loadtester", 80, loadtester.url)
        server.controllers.append(ready_deployments)
        for obj in seed_lab():
            server.put_object(obj)
        kubeconfig = write_kubeconfig(Path(tempfile.mkdtemp()) / "kubeconfig", str(server.url).rstrip("/"))
        kube = await KubeCluster.connect("kmock", kubeconfig=str(kubeconfig), log=lambda line: None)
        print("new revision -> seen, kr8s over HTTP to kmock on 127.0.0.1 (seed lab, analysis interval 30 s)")
        print(summary("watch", await measure_watch(kube, bumps)))
        print(summary("engine", await measure_engine(server, kubeconfig, bumps)))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bumps", type=int, default=20, help="image bumps to time (default 20)")
    asyncio.run(main(parser.parse_args().bumps))
