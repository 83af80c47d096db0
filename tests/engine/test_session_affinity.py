"""Session affinity: a user who landed on the canary stays on it, as Flagger's Gateway API and Istio routers
write it (``getSessionAffinityRouteRules`` in pkg/router/gateway_api.go and pkg/router/istio.go, v1.44)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from canarylab.engine.kinds import HTTP_ROUTE, VIRTUAL_SERVICE
from canarylab.engine.routing import weights_of
from canarylab.engine.spec import SpecError, parse_canary
from tests.engine.conftest import Lab, canary

GATEWAY_REF = {"name": "podinfo", "namespace": "test", "group": "core", "kind": "Service", "port": 9898}


def gateway(**analysis: Any) -> dict:
    obj = canary(**analysis)
    obj["spec"]["provider"] = "gatewayapi:v1"
    obj["spec"]["service"]["gatewayRefs"] = [GATEWAY_REF]
    return obj


def istio(**analysis: Any) -> dict:
    obj = canary(**analysis)
    obj["spec"]["provider"] = "istio"
    return obj


def backend(name: str, weight: int, **extra: Any) -> dict:
    return {"group": "", "kind": "Service", "name": name, "port": 9898, "weight": weight, **extra}


def set_cookie(value: str) -> dict:
    return {"type": "ResponseHeaderModifier",
            "responseHeaderModifier": {"add": [{"name": "Set-Cookie", "value": value}]}}


def cookie_match(cookie: str) -> dict:
    name, value = cookie.split("=")
    return {"headers": [{"type": "RegularExpression", "name": "Cookie", "value": f".*{name}.*{value}.*"}]}


ROOT = [{"path": {"type": "PathPrefix", "value": "/"}}]


def rules(lab: Lab) -> list[dict]:
    route = lab.cluster.get_now(HTTP_ROUTE, "test", "podinfo")
    assert route is not None
    return route["spec"]["rules"]


async def finish(lab: Lab, limit: int = 30) -> None:
    for _ in range(limit):
        await lab.tick()
        if lab.phase in ("Succeeded", "Failed"):
            return


async def test_gateway_api_sends_the_canarys_users_back_to_it_and_expires_the_cookie_after_promotion() -> None:
    lab = Lab(gateway(sessionAffinity={"cookieName": "flagger-cookie", "maxAge": 600}))
    await lab.initialized()
    assert rules(lab) == [{"matches": ROOT, "backendRefs": [backend("podinfo-primary", 100),
                                                            backend("podinfo-canary", 0)]}]
    await lab.set_image("ghcr.io/stefanprodan/podinfo:6.0.1")
    await lab.tick(2)  # scale up, then the first step

    cookie = lab.status["sessionAffinityCookie"]
    assert re.fullmatch(r"flagger-cookie=[a-zA-Z]{10}", cookie)  # Flagger's randSeq: ten letters
    assert rules(lab) == [
        {"matches": [cookie_match(cookie)],
         "backendRefs": [backend("podinfo-primary", 0), backend("podinfo-canary", 100)]},
        {"matches": ROOT,
         "backendRefs": [backend("podinfo-primary", 90),
                         backend("podinfo-canary", 10, filters=[set_cookie(f"{cookie}; Max-Age=600")])]},
    ]
    assert weights_of(lab.cluster.get_now(HTTP_ROUTE, "test", "podinfo") or {}) == (90, 10)

    await lab.tick()
    assert lab.status["sessionAffinityCookie"] == cookie  # one cookie for the whole run
    assert weights_of(lab.cluster.get_now(HTTP_ROUTE, "test", "podinfo") or {}) == (80, 20)

    await finish(lab)
    assert lab.phase == "Succeeded"
    assert "sessionAffinityCookie" not in lab.status
    assert lab.status["previousSessionAffinityCookie"] == cookie
    assert rules(lab) == [
        {"matches": [cookie_match(cookie)], "filters": [set_cookie(f"{cookie}; Max-Age=-1")],
         "backendRefs": [backend("podinfo-primary", 100), backend("podinfo-canary", 0)]},
        {"matches": ROOT, "backendRefs": [backend("podinfo-primary", 100), backend("podinfo-canary", 0)]},
    ]


async def test_a_primary_cookie_keeps_the_primarys_users_there_for_one_interval() -> None:
    affinity = {"cookieName": "canary-session", "primaryCookieName": "primary-session", "domain": "example.com",
                "httpOnly": True, "path": "/", "sameSite": "Strict", "secure": True}
    lab = Lab(gateway(sessionAffinity=affinity))
    await lab.progressing()
    await lab.tick()
    canary_cookie = lab.status["sessionAffinityCookie"]
    primary_cookie = lab.status["primarySessionAffinityCookie"]
    assert primary_cookie.startswith("primary-session=") and canary_cookie.startswith("canary-session=")
    attributes = "; Domain=example.com; HttpOnly; Path=/; SameSite=Strict; Secure"  # BuildCookie's order
    assert rules(lab) == [
        {"matches": [cookie_match(canary_cookie)],
         "backendRefs": [backend("podinfo-primary", 0), backend("podinfo-canary", 100)]},
        {"matches": [cookie_match(primary_cookie)],
         "backendRefs": [backend("podinfo-primary", 100), backend("podinfo-canary", 0)]},
        {"matches": ROOT, "backendRefs": [
            backend("podinfo-primary", 90, filters=[set_cookie(f"{primary_cookie}; Max-Age=15{attributes}")]),
            backend("podinfo-canary", 10, filters=[set_cookie(f"{canary_cookie}; Max-Age=86400{attributes}")])]},
    ]
    await finish(lab)
    # the next run draws a new canary cookie; Flagger keeps the primary one
    await lab.set_image("ghcr.io/stefanprodan/podinfo:6.0.2")
    await lab.tick(2)
    assert lab.status["sessionAffinityCookie"] != canary_cookie
    assert lab.status["primarySessionAffinityCookie"] == primary_cookie


async def test_the_sticky_rules_keep_the_service_matches_and_filters() -> None:
    obj = gateway(sessionAffinity={"cookieName": "flagger-cookie"})
    obj["spec"]["service"]["match"] = [{"uri": {"prefix": "/api"}}]
    obj["spec"]["service"]["timeout"] = "10s"
    lab = Lab(obj)
    await lab.progressing()
    await lab.tick()
    cookie = lab.status["sessionAffinityCookie"]
    sticky, weighted = rules(lab)
    assert sticky["matches"] == [{"path": {"type": "PathPrefix", "value": "/api"}, **cookie_match(cookie)}]
    assert sticky["timeouts"] == weighted["timeouts"] == {"request": "10s"}


async def test_istio_sticky_routes_carry_the_cookie_in_the_destination_headers() -> None:
    lab = Lab(istio(sessionAffinity={"cookieName": "flagger-cookie"}))
    await lab.progressing()
    await lab.tick()
    vs = lab.cluster.get_now(VIRTUAL_SERVICE, "test", "podinfo")
    assert vs is not None
    cookie = lab.status["sessionAffinityCookie"]
    name, value = cookie.split("=")
    assert vs["spec"]["http"] == [
        {"match": [{"headers": {"Cookie": {"regex": f".*{name}.*{value}.*"}}}],
         "route": [{"destination": {"host": "podinfo-primary"}, "weight": 0},
                   {"destination": {"host": "podinfo-canary"}, "weight": 100}]},
        {"route": [{"destination": {"host": "podinfo-primary"}, "weight": 90},
                   {"destination": {"host": "podinfo-canary"}, "weight": 10,
                    "headers": {"response": {"add": {"Set-Cookie": f"{cookie}; Max-Age=86400"}}}}]},
    ]
    assert weights_of(vs) == (90, 10)  # the weighted route, not the sticky one before it
    await finish(lab)
    vs = lab.cluster.get_now(VIRTUAL_SERVICE, "test", "podinfo")
    assert vs is not None and lab.phase == "Succeeded"
    assert vs["spec"]["http"][0]["headers"] == {"response": {"add": {"Set-Cookie": f"{cookie}; Max-Age=-1"}}}
    assert weights_of(vs) == (100, 0)


def test_providers_whose_flagger_router_ignores_session_affinity_are_refused_naming_the_supported_ones() -> None:
    for provider in ("linkerd", "nginx"):
        obj = canary(sessionAffinity={"cookieName": "flagger-cookie"})
        obj["spec"]["provider"] = provider
        if provider == "nginx":
            obj["spec"]["ingressRef"] = {"name": "podinfo"}
        with pytest.raises(SpecError, match=r"spec\.analysis\.sessionAffinity: sticky canary sessions work only "
                                            r"with providers gatewayapi:v1, gatewayapi:v1beta1, istio"):
            parse_canary(obj)
    same = gateway(sessionAffinity={"cookieName": "session", "primaryCookieName": "session"})
    with pytest.raises(SpecError, match=r"spec\.analysis\.sessionAffinity\.primaryCookieName: can't use the same "
                                        r"cookie name"):
        parse_canary(same)
    assert parse_canary(gateway(sessionAffinity={"cookieName": "flagger-cookie"})).session_affinity is not None


def test_response_headers_with_session_affinity_on_the_gateway_api_are_refused() -> None:
    # Flagger v1.44 writes a rule the API server refuses after the run (two ResponseHeaderModifier filters), so its
    # promotion and rollback fail over and over; canarylab says so before the run
    obj = gateway(sessionAffinity={"cookieName": "flagger-cookie"})
    obj["spec"]["service"]["headers"] = {"response": {"add": {"x-served-by": "podinfo"}}}
    with pytest.raises(SpecError, match=r"spec\.service\.headers\.response: cannot be combined with "
                                        r"analysis\.sessionAffinity on the Gateway API.*cannot be repeated"):
        parse_canary(obj)
    obj["spec"]["service"]["headers"] = {"request": {"add": {"x-via": "gateway"}}}
    parse_canary(obj)  # request headers are fine
    sticky_istio = istio(sessionAffinity={"cookieName": "flagger-cookie"})
    sticky_istio["spec"]["service"]["headers"] = {"response": {"add": {"x-served-by": "podinfo"}}}
    parse_canary(sticky_istio)  # Istio keeps headers in a map: nothing repeats
