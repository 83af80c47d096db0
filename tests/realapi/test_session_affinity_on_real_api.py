"""Session affinity and the service's route options on the real API server, with ``canarylab engine`` as a user
runs it: the Gateway API CRDs accept the sticky rules, the Set-Cookie filters and the timeouts the engine writes,
and the Canary's CRD keeps the cookies in its status, through a run to promotion."""

from __future__ import annotations

import pytest

from canarylab.engine.kinds import CANARY, HTTP_ROUTE
from canarylab.engine.routing import weights_of
from tests.realapi.conftest import SeedLab, apply, seed_in, until

pytestmark = pytest.mark.timeout(150)

SERVICE = {"timeout": "30s", "backendTimeout": "10s", "headers": {"request": {"set": {"x-a": "1"}}}}


async def test_sticky_rules_filters_and_timeouts_are_accepted_and_the_cookies_kept(seed: SeedLab) -> None:
    lab = seed
    docs = seed_in(lab.namespace, metrics_server=lab.prometheus.url, loadtester=lab.loadtester.url,
                   router="gatewayapi", stepWeight=25, maxWeight=50,
                   sessionAffinity={"cookieName": "flagger-cookie", "primaryCookieName": "primary-cookie"})
    for doc in docs:
        if doc["kind"] == "Canary":
            doc["spec"]["provider"] = "gatewayapi:v1"  # Flagger's v1beta1 router writes no timeouts
            doc["spec"]["service"].update(SERVICE)
    await apply(lab.plane, docs)
    await lab.start_engine()

    async def phase_is(phase: str) -> bool:
        return await lab.phase() == phase

    try:
        await until("the Canary to be Initialized", lambda: phase_is("Initialized"), 60)
    except AssertionError:
        raise AssertionError(f"{await lab.phase()!r}; engine stderr:\n{lab.engines[-1].stderr()[-3000:]}") from None
    await lab.set_image("6.0.1")

    async def sticky() -> bool:
        route = await lab.cluster.get(HTTP_ROUTE, lab.namespace, "podinfo")
        return route is not None and len(route["spec"]["rules"]) == 3

    await until("the sticky rules", sticky, 60)
    route = await lab.get(HTTP_ROUTE, "podinfo")
    canary_rule, primary_rule, weighted = route["spec"]["rules"]
    status = (await lab.get(CANARY, "podinfo"))["status"]
    cookie, primary_cookie = status["sessionAffinityCookie"], status["primarySessionAffinityCookie"]
    name, value = cookie.split("=")
    assert canary_rule["matches"][0]["headers"] == [{"type": "RegularExpression", "name": "Cookie",
                                                     "value": f".*{name}.*{value}.*"}]
    assert {b["name"]: b["weight"] for b in canary_rule["backendRefs"]} == {"podinfo-primary": 0,
                                                                            "podinfo-canary": 100}
    assert {b["name"]: b["weight"] for b in primary_rule["backendRefs"]} == {"podinfo-primary": 100,
                                                                             "podinfo-canary": 0}
    assert weights_of(route) == (75, 25)
    by_name = {b["name"]: b for b in weighted["backendRefs"]}
    assert by_name["podinfo-canary"]["filters"][0]["responseHeaderModifier"]["add"] == [
        {"name": "Set-Cookie", "value": f"{cookie}; Max-Age=86400"}]
    assert by_name["podinfo-primary"]["filters"][0]["responseHeaderModifier"]["add"] == [
        {"name": "Set-Cookie", "value": f"{primary_cookie}; Max-Age=10"}]
    assert weighted["timeouts"] == {"request": "30s", "backendRequest": "10s"}
    assert [f["type"] for f in weighted["filters"]] == ["RequestHeaderModifier"]

    try:
        await until("phase Succeeded", lambda: phase_is("Succeeded"), 90)
    except AssertionError:
        raise AssertionError(f"{await lab.phase()!r}; events {lab.engines[-1].messages()[-5:]}") from None
    status = (await lab.get(CANARY, "podinfo"))["status"]
    assert status["previousSessionAffinityCookie"] == cookie and "sessionAffinityCookie" not in status
    expire = (await lab.get(HTTP_ROUTE, "podinfo"))["spec"]["rules"][0]
    assert expire["filters"][-1]["responseHeaderModifier"]["add"] == [
        {"name": "Set-Cookie", "value": f"{cookie}; Max-Age=-1"}]
