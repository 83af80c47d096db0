"""A/B testing on the Gateway API (analysis.match + iterations), as Flagger's runAB and its HTTPRoute."""

from __future__ import annotations

import pytest

from canarylab.engine.kinds import HTTP_ROUTE
from canarylab.engine.routing import weights_of
from canarylab.engine.spec import SpecError, parse_canary
from tests.engine.conftest import Lab, canary

GATEWAY = [{"name": "podinfo", "namespace": "test", "group": "core", "kind": "Service", "port": 9898}]
MATCH = [{"headers": {"x-canary": {"exact": "insider"}}},
         {"headers": {"cookie": {"regex": "^(.*?;)?(canary=always)(;.*)?$"}}}]


def ab_canary(**analysis: object) -> dict:
    obj = canary(iterations=3, stepWeight=None, maxWeight=None, match=MATCH, **analysis)
    obj["spec"]["provider"] = "gatewayapi:v1"
    obj["spec"]["service"]["gatewayRefs"] = GATEWAY
    return obj


def route(lab: Lab) -> dict:
    obj = lab.cluster.get_now(HTTP_ROUTE, "test", "podinfo")
    assert obj is not None
    return obj


async def test_the_route_sends_only_matching_requests_to_the_split_and_everyone_else_to_the_primary() -> None:
    lab = Lab(ab_canary())
    await lab.initialized()
    rules = route(lab)["spec"]["rules"]
    # Flagger's two rules: the weighted one for matching requests (each match merged with the path prefix),
    # then the primary alone for everybody else
    assert rules[0]["matches"] == [
        {"path": {"type": "PathPrefix", "value": "/"},
         "headers": [{"name": "x-canary", "type": "Exact", "value": "insider"}]},
        {"path": {"type": "PathPrefix", "value": "/"},
         "headers": [{"name": "cookie", "type": "RegularExpression", "value": "^(.*?;)?(canary=always)(;.*)?$"}]},
    ]
    assert [(b["name"], b["weight"]) for b in rules[0]["backendRefs"]] == [("podinfo-primary", 100),
                                                                           ("podinfo-canary", 0)]
    assert rules[1] == {"matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                        "backendRefs": [{"group": "", "kind": "Service", "name": "podinfo-primary", "port": 9898,
                                         "weight": 100}]}
    # and the weights are read from the weighted rule only
    assert weights_of(route(lab)) == (100, 0)


async def test_iterations_route_the_matched_users_to_the_canary_then_promote() -> None:
    lab = Lab(ab_canary())
    await lab.progressing()
    mark = lab.mark()
    for _ in range(12):
        await lab.tick()
        if lab.phase == "Succeeded":
            break
    messages = lab.messages(mark)
    assert messages[:4] == ["Starting canary analysis for podinfo.test",
                            "Advance podinfo.test canary iteration 1/3",
                            "Advance podinfo.test canary iteration 2/3",
                            "Advance podinfo.test canary iteration 3/3"]
    assert messages[4:] == ["Copying podinfo.test template spec to podinfo-primary.test",
                            "Routing all traffic to primary",
                            "Promotion completed! Scaling down podinfo.test"]
    assert lab.phase == "Succeeded"
    assert weights_of(route(lab)) == (100, 0)
    assert lab.status["canaryWeight"] == 0


async def test_during_the_iterations_the_matched_rule_is_all_canary_and_the_rest_all_primary() -> None:
    lab = Lab(ab_canary())
    await lab.progressing()
    await lab.tick()  # iteration 1
    rules = route(lab)["spec"]["rules"]
    assert [(b["name"], b["weight"]) for b in rules[0]["backendRefs"]] == [("podinfo-primary", 0),
                                                                           ("podinfo-canary", 100)]
    assert [(b["name"], b["weight"]) for b in rules[1]["backendRefs"]] == [("podinfo-primary", 100)]
    assert lab.status["iterations"] == 1


async def test_a_failing_canary_rolls_back_and_the_matched_users_return_to_the_primary() -> None:
    lab = Lab(ab_canary(threshold=2))
    lab.metrics.set("request-success-rate", 80.0)
    await lab.progressing()
    for _ in range(8):
        await lab.tick()
        if lab.phase == "Failed":
            break
    assert lab.phase == "Failed"
    assert weights_of(route(lab)) == (100, 0)


@pytest.mark.parametrize(("match", "path", "rule"), [
    ([{"headers": {"x-canary": {"prefix": "ins"}}}], "spec.analysis.match[0].headers.x-canary",
     "the Gateway API matches only exact or regex header values"),
    ([{"method": {"regex": "GET|POST"}}], "spec.analysis.match[0].method",
     "the Gateway API matches a method only exactly"),
    ("x-canary", "spec.analysis.match", "must be a list"),
])
def test_matches_the_gateway_api_cannot_express_are_refused_naming_the_field(
        match: object, path: str, rule: str) -> None:
    obj = ab_canary()
    obj["spec"]["analysis"]["match"] = match
    with pytest.raises(SpecError) as err:
        parse_canary(obj)
    text = str(err.value)
    assert path in text and rule in text


def test_linkerd_still_refuses_match_and_names_the_provider_that_can() -> None:
    obj = ab_canary()
    obj["spec"]["provider"] = "linkerd"
    with pytest.raises(SpecError) as err:
        parse_canary(obj)
    assert "spec.analysis.match" in str(err.value) and "gatewayapi" in str(err.value)
