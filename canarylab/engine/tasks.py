"""Background tasks of a lab (the engine, the controllers, the traffic): which one died, and stopping them all.

The simulated lab, the attached data plane and the real-cluster lab each run a few asyncio tasks; the
dashboard and the headless commands poll :func:`failed_task` to say "the engine stopped" instead of freezing.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from typing import Any


def failed_task(tasks: Iterable[asyncio.Task[Any] | None]) -> BaseException | None:
    """The error of the first task that died with one; ``None`` while all run, finished cleanly or were
    cancelled."""
    for task in tasks:
        if task is not None and task.done() and not task.cancelled() and task.exception() is not None:
            return task.exception()
    return None


async def cancel_all(tasks: Iterable[asyncio.Task[Any]]) -> None:
    """Cancel every task, then wait for each to end; never raises (a task's own error is the caller's to read
    with :func:`failed_task` before)."""
    tasks = list(tasks)
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(BaseException):
            await task
