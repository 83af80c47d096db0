"""Clocks: real, scaled by ``--speed``, and virtual (as fast as the CPU allows).

Virtual time comes from :class:`VirtualTimeLoop`, an asyncio event loop whose ``time()`` jumps to the next
timer whenever no task is ready and no real I/O is pending. Code under it uses plain ``asyncio.sleep`` and
timeouts, so the engine and the simulator need no special calls: :class:`LoopClock` reads the loop's time.
"""

from __future__ import annotations

import asyncio
import selectors
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class LoopClock:
    """Lab time = ``epoch`` + (loop time since start) x ``speed``.

    Under the default event loop this is real time (``speed=1``) or scaled time; under
    :class:`VirtualTimeLoop` it is virtual time.
    """

    def __init__(self, speed: float = 1.0, epoch: float | None = None) -> None:
        if speed <= 0:
            raise ValueError(f"speed must be positive (got {speed})")
        self.speed = speed
        self.epoch = time.time() if epoch is None else epoch
        self._loop: asyncio.AbstractEventLoop | None = None
        self._start = 0.0

    def _loop_time(self) -> float:
        if self._loop is None:
            try:
                self._loop = asyncio.get_running_loop()
            except RuntimeError:
                return 0.0  # not started yet: the clock reads its epoch
            self._start = self._loop.time()
        return self._loop.time() - self._start

    def now(self) -> float:
        return self.epoch + self._loop_time() * self.speed

    def elapsed(self) -> float:
        """Lab seconds since the clock started."""
        return self._loop_time() * self.speed

    def set_speed(self, speed: float) -> None:
        """Run at ``speed`` from now on; lab time goes on from where it is (``canarylab learn`` replays the steps a
        learner already did fast, then slows down). A sleep already begun keeps the real length it had."""
        if speed <= 0:
            raise ValueError(f"speed must be positive (got {speed})")
        now = self.now()
        self.epoch, self.speed = now, speed
        if self._loop is not None:
            self._start = self._loop.time()

    def pin(self) -> None:
        """Pin the loop and the start time (the first wait does it, so lab time starts with the first use)."""
        self._loop_time()

    async def sleep(self, seconds: float) -> None:
        self.pin()
        await asyncio.sleep(max(0.0, seconds) / self.speed)


def stop_if_cancelled() -> None:
    """Raise ``CancelledError`` if the current task was asked to stop and something swallowed the request.

    Python 3.11's ``asyncio.wait_for`` (and other code) can return a result when a cancellation lands in the
    same loop iteration as the result; the task then runs on with ``cancelling() > 0``. A loop that calls this
    every round stops anyway instead of running forever (on virtual time: spinning at 100 % CPU).
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling() > 0:
        raise asyncio.CancelledError


async def sleep_or_wake(clock: Any, seconds: float, wake: asyncio.Event) -> bool:
    """Sleep ``seconds`` of lab time, returning early (``True``) when ``wake`` is set; clears ``wake``."""
    if wake.is_set():
        wake.clear()
        return True
    if type(clock) is LoopClock:
        # Lab time is loop time: a timeout around the wait needs no extra tasks (a thousand canaries sleep
        # at once, and two tasks each per wait were a good part of the engine's garbage).
        clock.pin()
        try:
            async with asyncio.timeout(max(0.0, seconds) / clock.speed):
                await wake.wait()
        except TimeoutError:
            return False
        finally:
            wake.clear()
        return True
    sleeper = asyncio.ensure_future(clock.sleep(seconds))
    waiter = asyncio.ensure_future(wake.wait())
    try:
        done, _ = await asyncio.wait({sleeper, waiter}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (sleeper, waiter):
            task.cancel()
    woken = waiter in done
    wake.clear()
    return woken


class _VirtualSelector:
    """Wraps the loop's selector: polls real I/O without blocking, then advances virtual time."""

    def __init__(self, loop: VirtualTimeLoop, inner: selectors.BaseSelector) -> None:
        self._loop = loop
        self._inner = inner

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = self._inner.select(0)
        if ready:
            return ready
        if self._has_foreign_io():
            # A real socket is in flight (an HTTP call to 127.0.0.1): let real time pass for it, and
            # advance virtual time by exactly as much, so its timeouts stay honest.
            started = time.monotonic()
            ready = self._inner.select(timeout)
            self._loop.advance(time.monotonic() - started)
            return ready
        if timeout is None:
            return self._inner.select(None)  # nothing scheduled: wait for another thread to call in
        self._loop.advance(timeout)
        return []

    def _has_foreign_io(self) -> bool:
        if self._loop.executor_jobs:
            return True  # a thread works for the loop (getaddrinfo before a connect, a file read)
        own = self._loop.own_fds()
        return any(key.fd not in own for key in self._inner.get_map().values())

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An event loop on virtual time: idle waits cost no wall time."""

    def __init__(self) -> None:
        self._virtual_now = 0.0
        self.executor_jobs = 0
        """Calls running in the executor: real work in flight, like a socket, so virtual time must not jump."""
        super().__init__()
        self._selector = _VirtualSelector(self, self._selector)  # type: ignore[has-type,arg-type]

    def time(self) -> float:
        return self._virtual_now

    def advance(self, seconds: float) -> None:
        if seconds > 0:
            self._virtual_now += seconds

    def run_in_executor(self, executor: Any, func: Callable[..., T], *args: Any) -> asyncio.Future[T]:  # type: ignore[override]
        future = super().run_in_executor(executor, func, *args)
        self.executor_jobs += 1
        future.add_done_callback(self._executor_job_done)
        return future

    def _executor_job_done(self, _: object) -> None:
        self.executor_jobs -= 1

    def own_fds(self) -> set[int]:
        fds = set()
        for sock in (getattr(self, "_ssock", None), getattr(self, "_csock", None)):
            if sock is not None:
                fds.add(sock.fileno())
        return fds


def run_virtual(main: Callable[[], Coroutine[Any, Any, T]] | Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion on a :class:`VirtualTimeLoop`."""
    coro: Awaitable[T] = main() if callable(main) else main
    with asyncio.Runner(loop_factory=VirtualTimeLoop) as runner:
        return runner.run(coro)  # type: ignore[arg-type]
