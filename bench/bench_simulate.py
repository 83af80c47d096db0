"""Benchmark: 200 Canaries, each on its own Deployment, through full runs in one simulated lab.

Prints wall time, CPU per canary per tick and peak memory. Target: under 30 s and 400 MB on 2 cores.
Run: ``.venv/bin/python bench/bench_simulate.py [--canaries N]``.
"""

from __future__ import annotations

import argparse
import copy
import io
import json
import resource
import sys
import time

from canarylab.cli.simulate import Simulation
from canarylab.engine.clock import run_virtual
from canarylab.engine.durations import parse_duration
from canarylab.engine.kinds import Obj
from canarylab.manifests import bootstrap_documents
from canarylab.sim.scenario import Step


def lab(count: int) -> list[Obj]:
    """The seed's namespace and loadtester, plus ``count`` podinfo Deployments each with the seed's Canary."""
    objects = [*bootstrap_documents("workloads", "namespace.yaml"),
               *bootstrap_documents("workloads", "loadtester.yaml")]
    deployment = next(d for d in bootstrap_documents("workloads", "podinfo.yaml") if d["kind"] == "Deployment")
    canary = bootstrap_documents("workloads", "podinfo-canary.yaml")[0]
    for i in range(count):
        name = f"app-{i:03d}"
        dep = copy.deepcopy(deployment)
        dep["metadata"]["name"] = name
        dep["metadata"]["labels"] = {"app": name}
        dep["spec"]["replicas"] = 2
        dep["spec"]["selector"]["matchLabels"] = {"app": name}
        dep["spec"]["template"]["metadata"]["labels"] = {"app": name}
        can = copy.deepcopy(canary)
        can["metadata"]["name"] = name
        can["spec"]["targetRef"]["name"] = name
        del can["spec"]["autoscalerRef"]
        for hook in can["spec"]["analysis"]["webhooks"]:
            hook["metadata"]["cmd"] = hook["metadata"]["cmd"].replace("podinfo-canary", f"{name}-canary")
        objects += [dep, can]
    return objects


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--canaries", type=int, default=200)
    args = parser.parse_args()
    objects = lab(args.canaries)
    steps = [Step(0.0, "setImage", "test", {"deployment": f"app-{i:03d}", "container": "podinfod",
                                             "image": "stefanprodan/podinfo:3.1.1"}, i + 1)
             for i in range(args.canaries)]
    out, err = io.StringIO(), io.StringIO()
    run = Simulation(objects, steps, as_json=True, timeout=7200, out=out, err=err)
    wall0, cpu0 = time.perf_counter(), time.process_time()
    code = run_virtual(run.main())
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    lines = out.getvalue().splitlines()
    result = json.loads(lines[-1])
    phases: dict[str, int] = {}
    for c in result["canaries"]:
        phases[c["phase"]] = phases.get(c["phase"], 0) + 1
    interval = parse_duration("30s")
    ticks = result["time"] / interval
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"canaries:               {args.canaries} ({', '.join(f'{n} {p}' for p, n in sorted(phases.items()))})")
    print(f"exit code:              {code}")
    print(f"lab time:               {result['time']:.0f} s ({ticks:.0f} analysis ticks of 30 s)")
    print(f"events:                 {len(lines) - 1}")
    print(f"wall time:              {wall:.2f} s (target < 30 s)")
    print(f"CPU:                    {cpu:.2f} s, {cpu / args.canaries / ticks * 1000:.2f} ms per canary per tick")
    print(f"peak memory (RSS):      {peak_mb:.0f} MB (target < 400 MB)")
    return 0 if code == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
