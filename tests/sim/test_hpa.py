"""The simulated HPA scales on load: CPU from the requests each pod serves, Kubernetes' algorithm and windows."""

from __future__ import annotations

import asyncio

from canarylab.engine.clock import run_virtual
from canarylab.engine.kinds import DEPLOYMENT, HPA
from canarylab.sim.lab import SimLab


def test_load_scales_the_primary_up_and_the_quiet_after_it_scales_it_down_after_five_minutes() -> None:
    async def main() -> list[tuple[float, int, object]]:
        lab = SimLab(speed=None)  # the seed: podinfo-primary gets the seed HPA's copy, 2..4 replicas at 99 % CPU
        await lab.start()
        seen: list[tuple[float, int, object]] = []

        def sample() -> None:
            dep = lab.cluster.get_now(DEPLOYMENT, "test", "podinfo-primary")
            hpa = lab.cluster.get_now(HPA, "test", "podinfo-primary")
            metrics = ((hpa or {}).get("status") or {}).get("currentMetrics")
            seen.append((lab.elapsed(), int((dep or {}).get("spec", {}).get("replicas", 0)), metrics))

        try:
            for _ in range(120):
                await asyncio.sleep(1)
                if [s.phase for s in lab.engine.canary_states()] == ["Initialized"]:
                    break
            sample()
            # 120 requests/s on the apex for two minutes: ~60/s per primary pod is far above 99 % of 100m
            lab.traffic.start_load("users", "http://podinfo.test:9898/", 120, 120)
            for _ in range(14):
                await asyncio.sleep(15)
                sample()
            for _ in range(30):  # then quiet for 7.5 minutes
                await asyncio.sleep(15)
                sample()
        finally:
            await lab.stop()
        return seen

    seen = run_virtual(main)
    start = seen[0]
    assert start[1] == 2  # the seed's minReplicas at rest
    peak = max(r for _, r, _ in seen)
    assert peak == 4  # capped at maxReplicas
    load_end = start[0] + 120
    up_at = next(t for t, r, _ in seen if r > 2)
    assert up_at - start[0] <= 45, seen  # within a few HPA syncs of the load
    # no scale-down while the last five minutes held a higher recommendation
    assert all(r == 4 for t, r, _ in seen if load_end + 30 < t < load_end + 240), seen
    assert seen[-1][1] == 2, seen  # back at the minimum after the stabilization window
    busy = next(m for t, r, m in seen if r == 4 and m)
    assert isinstance(busy, list) and busy[0]["resource"]["current"]["averageUtilization"] > 99
