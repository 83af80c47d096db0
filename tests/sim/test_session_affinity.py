"""Session affinity in the simulated lab: the background users keep cookies, and one the canary answered stays
on the canary until the run ends and the cookie is expired."""

from __future__ import annotations

import asyncio
from pathlib import Path

from canarylab.engine.clock import LoopClock, run_virtual
from canarylab.engine.kinds import CANARY, SERVICE, VIRTUAL_SERVICE
from canarylab.sim.cluster import SetCookies, SimCluster
from canarylab.sim.lab import SimLab
from canarylab.sim.metrics import LinkerdMetrics
from canarylab.sim.sessions import CookieJar
from canarylab.sim.traffic import Traffic
from tests.sim.test_traffic import app

STICKY = str(Path(__file__).parent / "manifests" / "session-affinity.yaml")


def test_a_user_the_canary_answered_stays_on_it_and_forgets_the_cookie_after_promotion() -> None:
    async def main() -> dict[str, object]:
        lab = SimLab([STICKY], speed=None)
        await lab.start()
        seen: dict[str, object] = {}
        try:
            async def until(condition: object, limit: int = 900) -> None:
                for _ in range(limit):  # lab seconds, on virtual time
                    if condition():  # type: ignore[operator]
                        return
                    await asyncio.sleep(1)
                raise AssertionError(f"still {[s.phase for s in lab.engine.canary_states()]}")

            await until(lambda: [s.phase for s in lab.engine.canary_states()] == ["Initialized"])
            await lab.set_image("test", "podinfo", "podinfod", "stefanprodan/podinfo:3.1.1")
            await until(lambda: lab.engine.canary_states()[0].canary_weight == 10)
            await asyncio.sleep(25)  # most of one interval at weight 10
            users = lab.traffic.users.of("test", "podinfo")
            status = (lab.cluster.get_now(CANARY, "test", "podinfo") or {}).get("status") or {}
            cookie = str(status["sessionAffinityCookie"])
            name, value = cookie.split("=")
            sticky = [u for u in users if u.jar.cookies.get(name, ("", 0.0))[0] == value]
            seen["sticky at 10%"] = len(sticky)
            seen["sticky served by"] = {u.last_backend for u in sticky}
            seen["others served by"] = {u.last_backend for u in users if u not in sticky and u.last_backend}
            await asyncio.sleep(30)
            seen["still sticky"] = all(u.last_backend == "podinfo-canary" for u in sticky)
            seen["sticky later"] = sum(1 for u in users if name in u.jar.cookies)
            await until(lambda: lab.engine.canary_states()[0].phase == "Succeeded")
            for user in users:
                user.last_backend = ""
            await asyncio.sleep(60)  # most users visit again in a minute
            visitors = [u for u in users if u.last_backend]
            seen["visitors after"] = len(visitors)
            seen["visitors' cookies after"] = sum(1 for u in visitors if name in u.jar.cookies)
            seen["served after"] = {u.last_backend for u in visitors}
            return seen
        finally:
            await lab.stop()

    seen = run_virtual(main)
    assert 0 < int(seen["sticky at 10%"]) < 30  # of 100 users, about 7 visited the canary  # type: ignore[call-overload]
    assert seen["sticky served by"] == {"podinfo-canary"}
    assert seen["others served by"] <= {"podinfo-primary"}  # type: ignore[operator]
    assert seen["still sticky"] is True
    # users only ever join the canary during the run, so it serves more than its weight
    assert int(seen["sticky later"]) >= int(seen["sticky at 10%"])  # type: ignore[call-overload]
    # after promotion, a visit with the old cookie is answered "Max-Age=-1" (by the primary): the cookie is gone
    assert int(seen["visitors after"]) > 50  # type: ignore[call-overload]
    assert seen["visitors' cookies after"] == 0 and seen["served after"] == {"podinfo-primary"}


def test_a_cookie_jar_keeps_cookies_until_their_max_age_and_drops_them_when_told() -> None:
    jar = CookieJar()
    jar.store("flagger-cookie=abc; Max-Age=60; Path=/", now=0.0)
    jar.store("theme=dark", now=0.0)
    assert jar.header(30.0) == "flagger-cookie=abc; theme=dark"
    assert jar.header(61.0) == "theme=dark"
    jar.store("theme=dark; Max-Age=-1", now=62.0)
    assert jar.header(62.0) == ""


def test_istios_sticky_routes_keep_a_user_with_the_cookie_on_the_canary() -> None:
    async def main() -> tuple[SetCookies | None, set[str], int]:
        cluster = SimCluster(LoopClock())
        task = asyncio.create_task(cluster.run())
        cookie = "flagger-cookie=abcdefghij"
        cluster.load([
            *app("podinfo-primary", 1), *app("podinfo-canary", 1),
            SERVICE.new("test", "podinfo", spec={"selector": {"app": "podinfo-primary"}, "ports": [{"port": 9898}]}),
            CANARY.new("test", "podinfo", spec={"targetRef": {"name": "podinfo"}, "service": {"port": 9898}}),
            VIRTUAL_SERVICE.new("test", "podinfo", spec={"hosts": ["podinfo"], "http": [
                {"match": [{"headers": {"Cookie": {"regex": ".*flagger-cookie.*abcdefghij.*"}}}],
                 "route": [{"destination": {"host": "podinfo-primary"}, "weight": 0},
                           {"destination": {"host": "podinfo-canary"}, "weight": 100}]},
                {"route": [{"destination": {"host": "podinfo-primary"}, "weight": 90},
                           {"destination": {"host": "podinfo-canary"}, "weight": 10,
                            "headers": {"response": {"add": {"Set-Cookie": f"{cookie}; Max-Age=600"}}}}]}]}),
        ])
        await asyncio.sleep(6)
        traffic = Traffic(cluster, LinkerdMetrics())
        start = cluster.clock.now()
        for second in range(1, 121):
            traffic.step(start + second)
        users = traffic.users.of("test", "podinfo")
        sticky = [u for u in users if u.jar.cookies.get("flagger-cookie", ("", 0.0))[0] == "abcdefghij"]
        for user in sticky:
            user.last_backend = ""
        for second in range(121, 241):
            traffic.step(start + second)
        task.cancel()
        return (cluster.set_cookies.get(("test", "podinfo")), {u.last_backend for u in sticky if u.last_backend},
                len(sticky))

    cookies, served, sticky = run_virtual(main)
    assert cookies == SetCookies({"podinfo-canary": "flagger-cookie=abcdefghij; Max-Age=600"}, {})
    assert sticky > 0 and served == {"podinfo-canary"}
