"""Benchmark: 1,000 canaries through full runs (init, image bump, 5 steps, promotion) on a virtual clock.

Prints the CPU time per canary per tick and the peak memory. Targets: < 0.2 ms per tick, < 200 MB.
Run: ``.venv/bin/python bench/bench_engine.py [--canaries N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the test doubles live in tests/

from canarylab.engine.clock import LoopClock, run_virtual
from canarylab.engine.controller import Engine
from canarylab.engine.events import EngineEvent, PhaseChanged
from canarylab.engine.kinds import CANARY, DEPLOYMENT, Obj
from canarylab.engine.memory_cluster import MemoryCluster
from tests.doubles import FakeMetrics, FakeWebhooks


def deployment(ns: str, name: str) -> Obj:
    return DEPLOYMENT.new(ns, name, spec={
        "replicas": 1, "selector": {"matchLabels": {"app": name}},
        "template": {"metadata": {"labels": {"app": name}},
                     "spec": {"containers": [{"name": "app", "image": "podinfo:6.0.0"}]}},
    })  # fmt: skip


def canary(ns: str, name: str) -> Obj:
    return CANARY.new(ns, name, spec={
        "provider": "linkerd",
        "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
        "service": {"port": 9898},
        "analysis": {"interval": "30s", "threshold": 5, "stepWeight": 10, "maxWeight": 50,
                     "metrics": [{"name": "request-success-rate", "thresholdRange": {"min": 99}},
                                 {"name": "request-duration", "thresholdRange": {"max": 500}}],
                     "webhooks": [{"name": "load-test", "type": "rollout", "url": "http://tester/",
                                   "metadata": {"cmd": "hey -z 1m http://x/"}}]},
    })  # fmt: skip


async def bench(n: int, freeze: bool) -> tuple[int, float, float, float]:
    clock = LoopClock(epoch=1_700_000_000)
    cluster = MemoryCluster(clock, instant_ready=True)
    names = [(f"ns{i % 20}", f"app{i}") for i in range(n)]
    for ns, name in names:
        cluster.create_now(deployment(ns, name))
        cluster.create_now(canary(ns, name))
    engine = Engine(cluster, FakeMetrics.healthy(), FakeWebhooks(), clock)
    if freeze:
        # The 2,000 objects loaded above live for the whole run: keep the cyclic GC from re-scanning them.
        gc.freeze()
    reached: dict[str, int] = {}

    def count(event: EngineEvent) -> None:
        if isinstance(event, PhaseChanged):
            reached[event.new] = reached.get(event.new, 0) + 1

    engine.subscribe(count)

    def phases() -> list[str]:
        return [p for p, n in reached.items() for _ in range(n)]

    cpu0 = time.process_time()
    task = asyncio.create_task(engine.run())
    while phases().count("Initialized") < n:
        await asyncio.sleep(5)
    for ns, name in names:
        dep = cluster.get_now(DEPLOYMENT, ns, name)
        assert dep is not None
        dep["spec"]["template"]["spec"]["containers"][0]["image"] = "podinfo:6.0.1"
        cluster.replace_now(dep)
    # Poll between ticks (they fall on whole 30 s steps after the bump): a poll at the very instant of the last
    # tick would count, or not, one idle tick per canary depending on the order of same-instant timers.
    await asyncio.sleep(1)
    while phases().count("Succeeded") < n:
        assert clock.elapsed() < 3600, "runs did not finish within an hour of lab time"
        await asyncio.sleep(30)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    cpu = time.process_time() - cpu0
    return engine.ticks, cpu, clock.elapsed(), engine.tick_cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--canaries", type=int, default=1000)
    parser.add_argument("--no-gc-freeze", action="store_true", help="measure without gc.freeze() after setup")
    args = parser.parse_args()
    wall0 = time.perf_counter()
    ticks, cpu, lab_seconds, tick_cpu = run_virtual(bench(args.canaries, not args.no_gc_freeze))
    wall = time.perf_counter() - wall0
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"canaries:            {args.canaries}")
    print(f"ticks:               {ticks} ({ticks / args.canaries:.1f} per canary)")
    print(f"lab time:            {lab_seconds / 60:.1f} min (virtual), wall {wall:.2f} s")
    print(f"CPU per canary tick: {tick_cpu / ticks * 1000:.3f} ms inside the tick  (target < 0.2 ms)")
    print(f"                     {cpu / ticks * 1000:.3f} ms all in (watches, scheduling, GC, fake cluster)")
    print(f"peak memory (RSS):   {peak_mb:.0f} MB  (target < 200 MB)")


if __name__ == "__main__":
    main()
