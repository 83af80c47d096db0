"""Virtual and scaled time: a lab hour passes in no wall time, and a wake-up cuts a wait short."""

import asyncio
import time

from canarylab.engine.clock import LoopClock, VirtualTimeLoop, run_virtual, sleep_or_wake


def test_an_hour_of_virtual_time_costs_no_wall_time() -> None:
    async def main() -> float:
        clock = LoopClock(epoch=1_000.0)
        await clock.sleep(3600)
        return clock.now()

    started = time.monotonic()
    assert run_virtual(main) == 4_600.0
    assert time.monotonic() - started < 0.5


def test_timers_fire_in_lab_time_order() -> None:
    seen: list[tuple[str, float]] = []

    async def main() -> None:
        clock = LoopClock(epoch=0.0)

        async def at(label: str, delay: float) -> None:
            await clock.sleep(delay)
            seen.append((label, clock.now()))

        await asyncio.gather(at("late", 90), at("early", 30), at("middle", 60))

    run_virtual(main)
    assert seen == [("early", 30.0), ("middle", 60.0), ("late", 90.0)]


def test_a_wake_event_ends_the_wait_early() -> None:
    async def main() -> tuple[bool, float, bool, float]:
        clock = LoopClock(epoch=0.0)
        wake = asyncio.Event()

        async def poke() -> None:
            await clock.sleep(5)
            wake.set()

        poker = asyncio.create_task(poke())
        woken = await sleep_or_wake(clock, 60, wake)
        at_wake = clock.now()
        await poker
        slept = await sleep_or_wake(clock, 60, wake)
        return woken, at_wake, slept, clock.now()

    woken, at_wake, slept, end = run_virtual(main)
    assert (woken, at_wake) == (True, 5.0)
    assert (slept, end) == (False, 65.0)


def test_real_io_on_loopback_lets_real_time_pass() -> None:
    """A socket in flight must not see its timeout fire early: virtual time follows real time meanwhile."""

    async def main() -> bytes:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await asyncio.get_running_loop().run_in_executor(None, time.sleep, 0.2)  # a slow peer, in real time
            writer.write(b"pong")
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        data = await asyncio.wait_for(reader.read(4), timeout=5)
        writer.close()
        server.close()
        return data

    with asyncio.Runner(loop_factory=VirtualTimeLoop) as runner:
        assert runner.run(main()) == b"pong"


def test_scaled_clock_runs_faster_than_real_time() -> None:
    async def main() -> tuple[float, float]:
        clock = LoopClock(speed=100.0, epoch=0.0)
        started = time.monotonic()
        await clock.sleep(10)  # 10 lab seconds = 0.1 s real
        return clock.now(), time.monotonic() - started

    lab, wall = asyncio.run(main())
    assert lab >= 10.0
    assert 0.05 < wall < 1.0


def test_work_in_an_executor_thread_holds_virtual_time_like_a_socket() -> None:
    # Given a 30 s lab timer, and a call running in a thread (as getaddrinfo does before every connect)
    async def main() -> tuple[bool, float]:
        loop = asyncio.get_running_loop()
        timer = asyncio.create_task(asyncio.sleep(30))
        started = loop.time()
        await loop.run_in_executor(None, time.sleep, 0.2)
        # then the thread's 0.2 s passed as 0.2 s of lab time: the timer did not jump ahead and fire
        elapsed = loop.time() - started
        fired = timer.done()
        timer.cancel()
        return fired, elapsed

    fired, elapsed = run_virtual(main)
    assert not fired
    assert 0.15 <= elapsed < 5.0
