"""LoopClock.set_speed: lab time goes on from where it is, at the new rate."""

from __future__ import annotations

import asyncio

from canarylab.engine.clock import LoopClock, run_virtual


def test_set_speed_keeps_lab_time_continuous() -> None:
    async def main() -> tuple[float, float, float]:
        clock = LoopClock(100.0, epoch=1000.0)
        clock.pin()
        await asyncio.sleep(1.0)  # 100 lab seconds
        before = clock.now()
        clock.set_speed(2.0)
        right_after = clock.now()
        await asyncio.sleep(1.0)  # 2 lab seconds
        return before, right_after, clock.now()

    before, right_after, later = run_virtual(main())
    assert before == right_after == 1100.0
    assert later == 1102.0
