"""Istio (VirtualService + DestinationRules) and traffic mirroring, as Flagger's Istio and Gateway API routers."""

from __future__ import annotations

from typing import Any

import pytest

from canarylab.engine.kinds import DESTINATION_RULE, HTTP_ROUTE, VIRTUAL_SERVICE
from canarylab.engine.routing import mirrored_by, weights_of
from canarylab.engine.spec import SpecError, parse_canary
from tests.engine.conftest import Lab, canary


def istio(**analysis: Any) -> dict:
    obj = canary(**analysis)
    obj["spec"]["provider"] = "istio"
    obj["spec"]["service"].update({
        "hosts": ["podinfo.example.com"], "gateways": ["public-gateway.istio-system.svc.cluster.local"],
        "retries": {"attempts": 3, "perTryTimeout": "1s"}, "timeout": "5s",
        "trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL"}},
    })
    return obj


def vs(lab: Lab) -> dict:
    obj = lab.cluster.get_now(VIRTUAL_SERVICE, "test", "podinfo")
    assert obj is not None
    return obj


async def run(lab: Lab, limit: int = 30) -> list[str]:
    mark = lab.mark()
    for _ in range(limit):
        await lab.tick()
        if lab.phase in ("Succeeded", "Failed"):
            break
    return lab.messages(mark)


async def test_initialization_writes_flaggers_virtual_service_and_destination_rules() -> None:
    lab = Lab(istio())
    await lab.initialized()
    spec = vs(lab)["spec"]
    assert spec["hosts"] == ["podinfo.example.com", "podinfo"]  # the apex is always a host
    assert spec["gateways"] == ["public-gateway.istio-system.svc.cluster.local"]
    assert spec["http"] == [{
        "timeout": "5s", "retries": {"attempts": 3, "perTryTimeout": "1s"},
        "route": [{"destination": {"host": "podinfo-primary"}, "weight": 100},
                  {"destination": {"host": "podinfo-canary"}, "weight": 0}],
    }]
    for host in ("podinfo-canary", "podinfo-primary"):
        rule = lab.cluster.get_now(DESTINATION_RULE, "test", host)
        assert rule is not None
        assert rule["spec"] == {"host": host, "trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL"}}}


async def test_a_canary_run_on_istio_steps_the_weights_and_promotes() -> None:
    lab = Lab(istio())
    await lab.progressing()
    messages = await run(lab)
    assert [m for m in messages if "canary weight" in m] == \
        [f"Advance podinfo.test canary weight {w}" for w in range(10, 60, 10)]
    assert lab.phase == "Succeeded" and weights_of(vs(lab)) == (100, 0)


async def test_blue_green_mirrors_every_request_during_the_iterations() -> None:
    lab = Lab(istio(iterations=3, stepWeight=None, maxWeight=None, mirror=True, mirrorWeight=50))
    await lab.progressing()
    await lab.tick()  # the first iteration starts mirroring
    http = vs(lab)["spec"]["http"][0]
    assert http["mirror"] == {"host": "podinfo-canary"} and http["mirrorPercentage"] == {"value": 50.0}
    assert weights_of(vs(lab)) == (100, 0) and mirrored_by(vs(lab))
    messages = await run(lab)
    assert "Stop traffic mirroring and route all traffic to canary" in messages
    assert lab.phase == "Succeeded"
    assert not mirrored_by(vs(lab))


async def test_the_canary_strategy_mirrors_one_step_before_shifting_traffic() -> None:
    lab = Lab(istio(mirror=True))
    await lab.progressing()
    messages = await run(lab, limit=3)
    # Flagger's runCanary: a mirroring step at weight 0, then the first real step
    assert messages[0] == "Starting canary analysis for podinfo.test"
    weights = [m for m in messages if "canary weight" in m]
    assert weights[:2] == ["Advance podinfo.test canary weight 0", "Advance podinfo.test canary weight 10"]
    assert messages.count("Starting canary analysis for podinfo.test") == 1  # the mirror step is not a new start


async def test_ab_testing_on_istio_routes_the_matched_requests() -> None:
    match = [{"headers": {"x-canary": {"exact": "insider"}}}]
    lab = Lab(istio(iterations=2, stepWeight=None, maxWeight=None, match=match))
    await lab.initialized()
    http = vs(lab)["spec"]["http"]
    assert http[0]["match"] == match
    assert [d["destination"]["host"] for d in http[1]["route"]] == ["podinfo-primary"]
    await lab.set_image("ghcr.io/stefanprodan/podinfo:6.0.1")
    messages = await run(lab)
    assert "Advance podinfo.test canary iteration 2/2" in messages and lab.phase == "Succeeded"


async def test_gateway_api_blue_green_mirrors_with_a_request_mirror_filter() -> None:
    obj = canary(iterations=3, stepWeight=None, maxWeight=None, mirror=True)
    obj["spec"]["provider"] = "gatewayapi:v1"
    obj["spec"]["service"]["gatewayRefs"] = [{"name": "podinfo", "namespace": "test", "group": "core",
                                              "kind": "Service", "port": 9898}]
    lab = Lab(obj)
    await lab.progressing()
    await lab.tick()
    route = lab.cluster.get_now(HTTP_ROUTE, "test", "podinfo")
    assert route is not None
    assert route["spec"]["rules"][0]["filters"] == [{"type": "RequestMirror", "requestMirror": {"backendRef": {
        "group": "", "kind": "Service", "name": "podinfo-canary", "port": 9898}}}]
    await run(lab)
    assert lab.phase == "Succeeded"


def test_what_canarylab_does_not_route_yet_is_refused_by_field() -> None:
    tcp = istio()
    tcp["spec"]["service"]["appProtocol"] = "tcp"
    with pytest.raises(SpecError, match=r"spec\.service\.appProtocol: TCP routing on Istio is not implemented"):
        parse_canary(tcp)
