"""What Flagger's Gateway API router carries from ``spec.service`` into the HTTPRoute rules (``makeFilters`` and
``makeHTTPRouteTimeouts`` in pkg/router/gateway_api.go, v1.44): header modifiers, rewrite, mirrors, CORS and
timeouts, on the weighted rule and on A/B testing's primary-only rule."""

from __future__ import annotations

from typing import Any

from canarylab.engine.kinds import HTTP_ROUTE
from tests.engine.conftest import Lab, canary

GATEWAY_REF = {"name": "podinfo", "namespace": "test", "group": "core", "kind": "Service", "port": 9898}


def gateway(service: dict[str, Any], **analysis: Any) -> dict:
    obj = canary(**analysis)
    obj["spec"]["provider"] = "gatewayapi:v1"
    obj["spec"]["service"].update({"gatewayRefs": [GATEWAY_REF], **service})
    return obj


def rules(lab: Lab) -> list[dict]:
    route = lab.cluster.get_now(HTTP_ROUTE, "test", "podinfo")
    assert route is not None
    return route["spec"]["rules"]


SERVICE = {
    "timeout": "30s", "backendTimeout": "10s",
    "headers": {"request": {"set": {"x-b": "2", "x-a": "1"}, "add": {"x-trace": "on"}, "remove": ["x-debug"]},
                "response": {"add": {"x-served-by": "canarylab"}}},
    "rewrite": {"uri": "/v2", "type": "ReplacePrefixMatch", "authority": "podinfo.internal"},
    "mirror": [{"backendRef": {"name": "shadow", "port": 9898}}],
    "corsPolicy": {"allowOrigin": ["https://example.com"], "allowMethods": ["GET", "POST"],
                   "allowHeaders": ["x-token"], "allowCredentials": True, "maxAge": "24h"},
}
FILTERS = [
    {"type": "RequestHeaderModifier", "requestHeaderModifier": {
        "add": [{"name": "x-trace", "value": "on"}],
        "set": [{"name": "x-a", "value": "1"}, {"name": "x-b", "value": "2"}],  # sorted by name
        "remove": ["x-debug"]}},
    {"type": "ResponseHeaderModifier", "responseHeaderModifier": {"add": [{"name": "x-served-by",
                                                                           "value": "canarylab"}]}},
    {"type": "URLRewrite", "urlRewrite": {"hostname": "podinfo.internal",
                                          "path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/v2"}}},
    {"type": "RequestMirror", "requestMirror": {"backendRef": {"name": "shadow", "port": 9898}}},
    {"type": "CORS", "cors": {"allowOrigins": ["https://example.com"], "allowMethods": ["GET", "POST"],
                              "allowHeaders": ["x-token"], "allowCredentials": True, "maxAge": 86400}},
]


def backend(name: str, weight: int) -> dict:
    return {"group": "", "kind": "Service", "name": name, "port": 9898, "weight": weight}


async def test_service_headers_rewrite_mirror_cors_and_timeouts_are_written_on_the_weighted_rule() -> None:
    lab = Lab(gateway(SERVICE))
    await lab.initialized()
    assert rules(lab) == [{
        "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
        "filters": FILTERS,
        "backendRefs": [backend("podinfo-primary", 100), backend("podinfo-canary", 0)],
        "timeouts": {"request": "30s", "backendRequest": "10s"},
    }]
    await lab.set_image("ghcr.io/stefanprodan/podinfo:6.0.1")
    await lab.tick(2)
    [weighted] = rules(lab)
    assert weighted["filters"] == FILTERS and weighted["timeouts"] == {"request": "30s", "backendRequest": "10s"}
    assert weighted["backendRefs"] == [backend("podinfo-primary", 90), backend("podinfo-canary", 10)]


async def test_ab_testings_primary_only_rule_carries_them_too() -> None:
    match = [{"headers": {"x-canary": {"exact": "insider"}}}]
    lab = Lab(gateway({"timeout": "5s", "headers": {"response": {"set": {"x-env": "lab"}}}},
                      iterations=2, stepWeight=None, maxWeight=None, match=match))
    await lab.initialized()
    for rule in rules(lab):
        assert rule["filters"] == [{"type": "ResponseHeaderModifier",
                                    "responseHeaderModifier": {"set": [{"name": "x-env", "value": "lab"}]}}]
        assert rule["timeouts"] == {"request": "5s"}


async def test_a_changed_timeout_is_drift_the_next_reconcile_rewrites() -> None:
    lab = Lab(gateway({"timeout": "5s"}))
    await lab.initialized()
    lab.patch_canary({"service": {"timeout": "7s", "headers": {"request": {"add": {"x-new": "1"}}}}})
    await lab.tick()
    [rule] = rules(lab)
    assert rule["timeouts"] == {"request": "7s"}
    assert rule["filters"] == [{"type": "RequestHeaderModifier",
                                "requestHeaderModifier": {"add": [{"name": "x-new", "value": "1"}]}}]


async def test_blue_green_mirroring_comes_after_the_services_filters() -> None:
    lab = Lab(gateway({"headers": {"request": {"add": {"x-a": "1"}}}}, iterations=3, stepWeight=None,
                      maxWeight=None, mirror=True))
    await lab.progressing()
    await lab.tick()
    [rule] = rules(lab)
    assert [f["type"] for f in rule["filters"]] == ["RequestHeaderModifier", "RequestMirror"]
    await lab.tick()  # the mirror filter during the run is not drift: it stays
    assert [f["type"] for f in rules(lab)[0]["filters"]] == ["RequestHeaderModifier", "RequestMirror"]


async def test_flaggers_v1beta1_router_writes_no_timeouts_and_no_cors() -> None:
    obj = gateway({"timeout": "30s", "corsPolicy": SERVICE["corsPolicy"],
                   "headers": {"request": {"add": {"x-a": "1"}}}})
    obj["spec"]["provider"] = "gatewayapi:v1beta1"
    lab = Lab(obj)
    await lab.initialized()
    [rule] = rules(lab)
    assert "timeouts" not in rule
    assert [f["type"] for f in rule["filters"]] == ["RequestHeaderModifier"]


async def test_the_api_servers_defaults_in_a_mirror_filter_are_not_drift() -> None:
    lab = Lab(gateway({"mirror": [{"backendRef": {"name": "shadow", "port": 9898}}]}))
    await lab.progressing()
    await lab.tick()
    route = lab.cluster.get_now(HTTP_ROUTE, "test", "podinfo")
    assert route is not None
    # the API server fills in the backendRef's defaults
    route["spec"]["rules"][0]["filters"][0]["requestMirror"]["backendRef"].update({"group": "", "kind": "Service"})
    lab.cluster.replace_now(route)
    mark = lab.mark()
    await lab.tick()
    assert [m for m in lab.messages(mark) if "canary weight" in m] == ["Advance podinfo.test canary weight 20"]
