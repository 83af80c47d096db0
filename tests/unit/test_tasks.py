"""The labs' background tasks: the one that died is reported, cancelled or clean ones are not."""

from __future__ import annotations

import asyncio

from canarylab.engine.tasks import cancel_all, failed_task


async def test_the_error_of_a_task_that_died_is_reported_and_cancelled_ones_are_not() -> None:
    async def forever() -> None:
        await asyncio.sleep(3600)

    async def dies() -> None:
        raise RuntimeError("the engine fell over")

    async def ends() -> None:
        return None

    running = asyncio.create_task(forever())
    clean = asyncio.create_task(ends())
    await asyncio.sleep(0)
    assert failed_task([running, clean, None]) is None

    broken = asyncio.create_task(dies())
    await asyncio.sleep(0)
    error = failed_task([running, clean, broken])
    assert isinstance(error, RuntimeError) and str(error) == "the engine fell over"

    await cancel_all([running, broken])  # never raises, even with a task that died
    assert running.cancelled()
    assert failed_task([running]) is None
