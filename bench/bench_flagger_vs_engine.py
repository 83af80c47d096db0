"""The real Flagger v1.44 and ``canarylab engine`` on the same N canaries, one after the other, side by side.

For each N (default 10 and 100; ``--sizes 10,100,200``) and each controller: a fresh namespace on a real API
server (the control-plane launcher, KWOK pods) with N podinfo Deployments and N Canaries (interval 10 s, Linkerd
checks against a real Prometheus scraping the scripted exporter). Once all are Initialized, every Deployment
gets a new image at once; then, during ``--window`` seconds of analysis:

- CPU seconds per analysis tick per canary (utime + stime of the controller process, /proc),
- resident memory (VmRSS at the end, VmHWM peak),
- API requests per tick (the API server's ``apiserver_request_total``; the bench itself only holds one watch),
- new revision -> analysis started (image patched -> the Canary's phase Progressing): median and max.

It prints both columns and the ratio Flagger / canarylab. Run: ``.venv/bin/python bench/bench_flagger_vs_engine.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from canarylab.conformance.exporter import HEALTHY
from canarylab.conformance.harness import Controller, Substrate, find_binary, start_substrate, stop_substrate
from canarylab.conformance.scenarios import IMAGE_V2, canary, deployment
from canarylab.engine.kinds import CANARY, DEPLOYMENT, NAMESPACE
from canarylab.engine.ports import ClusterError

TICK = 10.0
CLK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK


def memory_mb(pid: int) -> tuple[float, float]:
    text = Path(f"/proc/{pid}/status").read_text()
    rss = int(re.search(r"VmRSS:\s+(\d+)", text).group(1))  # type: ignore[union-attr]
    hwm = int(re.search(r"VmHWM:\s+(\d+)", text).group(1))  # type: ignore[union-attr]
    return rss / 1024, hwm / 1024


def api_requests(plane: Any) -> Counter[str]:
    """``apiserver_request_total`` summed by verb and resource (watches count once, when opened)."""
    with plane.http() as http:
        text = http.get("/metrics").text
    out: Counter[str] = Counter()
    for line in text.splitlines():
        if not line.startswith("apiserver_request_total{"):
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}", 1)[0]))
        resource = labels.get("resource", "") + (f"/{labels['subresource']}" if labels.get("subresource") else "")
        key = f"{labels.get('verb', '?')} {resource or labels.get('component', '?')}"
        out[key] += int(float(line.rsplit(" ", 1)[1]))
    return out


async def create_all(sub: Substrate, namespace: str, n: int) -> None:
    cluster = sub.cluster
    assert cluster is not None
    await cluster.create(NAMESPACE.new("", namespace) | {"metadata": {"name": namespace}})
    sub.exporter.script(namespace, HEALTHY, targets=tuple(f"podinfo-{i}" for i in range(n)))
    gate = asyncio.Semaphore(16)

    async def one(i: int) -> None:
        name = f"podinfo-{i}"
        d = deployment(namespace)
        d["metadata"]["name"] = name
        d["spec"]["replicas"] = 1
        d["metadata"]["labels"] = {"app": name}
        d["spec"]["selector"]["matchLabels"] = {"app": name}
        d["spec"]["template"]["metadata"]["labels"] = {"app": name}
        c = canary({"maxWeight": 50, "stepWeight": 10})
        c["metadata"] = {"name": name, "namespace": namespace}
        c["spec"]["targetRef"]["name"] = name
        async with gate:
            await cluster.create(d)
            await cluster.create(c)

    await asyncio.gather(*(one(i) for i in range(n)))


async def phases(sub: Substrate, namespace: str) -> dict[str, str]:
    assert sub.cluster is not None
    return {c["metadata"]["name"]: str((c.get("status") or {}).get("phase", ""))
            for c in await sub.cluster.list(CANARY, namespace)}


async def wait_for(sub: Substrate, namespace: str, n: int, phase: str, timeout: float) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        seen = await phases(sub, namespace)
        if sum(p == phase for p in seen.values()) >= n:
            return time.monotonic() - start
        await asyncio.sleep(1.0)
    seen = await phases(sub, namespace)
    raise TimeoutError(f"{namespace}: only {sum(p == phase for p in seen.values())}/{n} canaries reached {phase} "
                       f"in {timeout:g}s")


async def measure(sub: Substrate, plane: Any, which: str, n: int, window: float) -> dict[str, float]:
    namespace = f"bench-{which}-{n}-{int(time.time()) % 4096:x}"
    await create_all(sub, namespace, n)
    ctl = Controller(sub, which, namespace, "linkerd")
    await ctl.start()
    try:
        try:
            await wait_for(sub, namespace, n, "Initialized", 60 + n * 1.5)
        except TimeoutError as err:
            print(f"{which}: {err} (see {ctl.log_path})", flush=True)
            return {}
        assert ctl.proc is not None
        pid = ctl.proc.pid
        await asyncio.sleep(TICK)  # one quiet tick after initialization
        # new revision for all, then follow each Canary to Progressing through one watch
        started: dict[str, float] = {}
        patched: dict[str, float] = {}
        assert sub.cluster is not None
        cluster = sub.cluster

        async def follow() -> None:
            async for ev in cluster.watch(CANARY, namespace):
                name = ev.object["metadata"]["name"]
                if (ev.object.get("status") or {}).get("phase") == "Progressing" and name in patched \
                        and name not in started:
                    started[name] = time.monotonic()

        watcher = asyncio.create_task(follow())
        cpu0, req0, t0 = cpu_seconds(pid), api_requests(plane), time.monotonic()
        gate = asyncio.Semaphore(16)

        async def bump(i: int) -> None:
            name = f"podinfo-{i}"
            async with gate:
                patched[name] = time.monotonic()
                await cluster.patch(DEPLOYMENT, namespace, name, {"spec": {"template": {"spec": {"containers": [
                    {"name": "podinfod", "image": IMAGE_V2}]}}}})

        await asyncio.gather(*(bump(i) for i in range(n)))
        await asyncio.sleep(max(0.0, window - (time.monotonic() - t0)))
        cpu1, req1, t1 = cpu_seconds(pid), api_requests(plane), time.monotonic()
        rss, hwm = memory_mb(pid)
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)
        latencies = [started[k] - patched[k] for k in started]
        ticks = (t1 - t0) / TICK
        by_kind = req1 - req0
        print(f"{which}, N = {n}: API requests per tick by verb and resource: " + ", ".join(
            f"{k} {v / ticks:.0f}" for k, v in by_kind.most_common(10)), flush=True)
        return {
            "cpu_ms_per_tick_per_canary": 1000 * (cpu1 - cpu0) / (ticks * n),
            "cpu_s_window": cpu1 - cpu0,
            "rss_mb": rss, "peak_rss_mb": hwm,
            "api_requests_per_tick": by_kind.total() / ticks,
            "api_requests_per_tick_per_canary": by_kind.total() / ticks / n,
            "latency_median_s": statistics.median(latencies) if latencies else float("nan"),
            "latency_max_s": max(latencies) if latencies else float("nan"),
            "started": float(len(latencies)),
        }
    finally:
        await ctl.stop()
        with contextlib.suppress(ClusterError):
            await sub.cluster.delete(NAMESPACE, "", namespace)  # type: ignore[union-attr]


ROWS = (
    ("cpu_ms_per_tick_per_canary", "CPU ms per analysis tick per canary", "{:.2f}"),
    ("rss_mb", "resident memory MB (end)", "{:.0f}"),
    ("peak_rss_mb", "peak resident memory MB", "{:.0f}"),
    ("api_requests_per_tick", "API requests per tick (all canaries)", "{:.0f}"),
    ("api_requests_per_tick_per_canary", "API requests per tick per canary", "{:.2f}"),
    ("latency_median_s", "new revision -> Progressing, median s", "{:.2f}"),
    ("latency_max_s", "new revision -> Progressing, max s", "{:.2f}"),
)


def table(n: int, f: dict[str, float], e: dict[str, float]) -> str:
    if not f or not e:
        who = "Flagger" if not f else "canarylab"
        return f"\nN = {n} canaries: no figures, {who} did not initialize them all"
    lines = [f"\nN = {n} canaries (analysis window {f.get('window', 0):.0f} s; "
             f"{f['started']:.0f}/{n} and {e['started']:.0f}/{n} analyses started)",
             f"{'':40} {'Flagger':>10} {'canarylab':>10} {'Flagger/canarylab':>18}"]
    for key, label, fmt in ROWS:
        ratio = f[key] / e[key] if e[key] else float("inf")
        lines.append(f"{label:40} {fmt.format(f[key]):>10} {fmt.format(e[key]):>10} {ratio:>17.2f}x")
    return "\n".join(lines)


async def main(sizes: list[int], window: float, controllers: list[str]) -> None:
    from canarylab.controlplane import ControlPlane

    find_binary("flagger")
    logs = Path(tempfile.mkdtemp(prefix="canarylab-bench-flagger-"))
    plane = ControlPlane(logs / "control-plane")
    await asyncio.to_thread(plane.start)
    try:
        sub = await start_substrate(Path(plane.kubeconfig), plane.context, find_binary("kubectl"), logs / "runs")
        try:
            print(f"machine: {os.cpu_count()} cores; Flagger {find_binary('flagger')}; logs {logs}", flush=True)
            for n in sizes:
                results = {}
                for which in controllers:
                    results[which] = await measure(sub, plane, which, n, window)
                    results[which]["window"] = window
                    if len(controllers) == 1:
                        print(f"\nN = {n}, {which} only: " + ", ".join(f"{k} {v:.2f}" for k, v in
                                                                    results[which].items()), flush=True)
                if len(controllers) == 2:
                    print(table(n, results["flagger"], results["engine"]), flush=True)
        finally:
            await stop_substrate(sub)
    finally:
        await asyncio.to_thread(plane.stop)


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="10,100", help="comma-separated canary counts (default 10,100)")
    p.add_argument("--window", type=float, default=60.0, help="seconds of analysis measured (default 60)")
    p.add_argument("--only", choices=["flagger", "engine"], help="measure one controller (no ratios)")
    args = p.parse_args()
    try:
        asyncio.run(main([int(x) for x in args.sizes.split(",")], args.window,
                         [args.only] if args.only else ["flagger", "engine"]))
    except TimeoutError as err:
        print(f"bench: {err}", file=sys.stderr)
        sys.exit(1)
