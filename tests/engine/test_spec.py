"""Canary validation: every problem at once, each with its field path, rule and value."""

from __future__ import annotations

import copy

import pytest

from canarylab.engine.spec import SpecError, parse_canary, parse_metric_template
from canarylab.manifests import seed_lab
from tests.engine.conftest import canary


def seed_canary() -> dict:
    return copy.deepcopy(next(d for d in seed_lab() if d["kind"] == "Canary"))


def problems(obj: dict) -> list[str]:
    with pytest.raises(SpecError) as err:
        parse_canary(obj)
    return [str(p) for p in err.value.problems]


def test_the_seed_canary_runs_unchanged_with_flaggers_defaults() -> None:
    c = parse_canary(seed_canary())
    assert c.spec.autoscaler_ref is not None and c.spec.autoscaler_ref.api_version == "autoscaling/v2beta2"
    assert (c.provider, c.router, c.strategy) == ("linkerd", "TrafficSplit", "canary")
    assert (c.interval_seconds, c.threshold, c.max_weight, c.progress_deadline_seconds) == (30, 5, 50, 60)
    assert c.steps() == (5, 10, 15, 20, 25, 30, 35, 40, 45, 50)
    assert [h.timeout_seconds for h in c.analysis.webhooks] == [30, 10]


def test_defaults_when_fields_are_left_out() -> None:
    obj = canary(interval=None, threshold=None, maxWeight=None)
    obj["spec"].pop("provider")
    c = parse_canary(obj)
    assert (c.interval_seconds, c.threshold, c.max_weight, c.provider) == (60, 1, 100, "linkerd")
    assert (c.primary_ready_threshold, c.canary_ready_threshold, c.progress_deadline_seconds) == (100, 100, 600)


def test_intervals_below_10s_are_clamped() -> None:
    assert parse_canary(canary(interval="5s")).interval_seconds == 10


def test_unknown_extra_fields_are_accepted() -> None:
    obj = canary(alerts=[{"name": "slack", "severity": "info", "providerRef": {"name": "slack"}, "extra": 1}])
    obj["spec"]["service"]["retries"] = {"attempts": 3}
    parse_canary(obj)


def test_every_problem_is_reported_with_path_rule_and_value() -> None:
    obj = seed_canary()
    del obj["spec"]["targetRef"]
    a = obj["spec"]["analysis"]
    a["stepWeight"] = -5
    a["interval"] = "soon"
    a["metrics"].append({"name": "error-budget"})
    a["stepWeights"] = [10, 20, 15]
    obj["spec"]["service"]["port"] = "http"
    assert problems(obj) == [
        "spec.targetRef: is required",
        "spec.service.port: must be a whole number (got \"http\")",
        "spec.analysis.interval: must be a duration such as 30s, 1m or 1m30s (got \"soon\")",
        "spec.analysis.stepWeight: must be between 1 and 100 (got -5)",
        "spec.analysis.stepWeights: must be strictly increasing (got [10, 20, 15])",
        "spec.analysis.metrics[2].name: is not a built-in metric (request-success-rate, request-duration) and has "
        "no query or templateRef (got \"error-budget\")",
    ]


def test_the_error_message_names_the_canary() -> None:
    with pytest.raises(SpecError, match=r"^Canary podinfo.test is invalid: spec.analysis.stepWeight"):
        parse_canary(canary(stepWeight=-5))


@pytest.mark.parametrize("field", ["match", "mirror"])
def test_match_and_mirror_are_refused_with_smi(field: str) -> None:
    value = [{"headers": {"x-canary": {"exact": "insider"}}}] if field == "match" else True
    found = problems(canary(**{field: value}))
    assert len(found) == 1 and found[0].startswith(f"spec.analysis.{field}: ")
    assert "linkerd" in found[0]


def test_gateway_api_needs_gateway_refs() -> None:
    obj = canary()
    obj["spec"]["provider"] = "gatewayapi:v1beta1"
    assert problems(obj)[0].startswith("spec.service.gatewayRefs: GatewayRefs must be specified")
    obj["spec"]["service"]["gatewayRefs"] = [{"name": "podinfo", "kind": "Service", "group": "core", "port": 9898}]
    assert parse_canary(obj).router == "HTTPRoute"


def test_unknown_provider_and_bad_webhooks() -> None:
    obj = canary(webhooks=[{"name": "x", "type": "sometimes", "url": "flagger-loadtester/", "timeout": "10x"}])
    obj["spec"]["provider"] = "appmesh"
    found = problems(obj)
    assert found[0].startswith("spec.provider: must be linkerd, smi:v1alpha2, gatewayapi:v1beta1, "
                               "gatewayapi:v1 or istio")
    assert any(p.startswith("spec.analysis.webhooks[0].type: must be one of confirm-rollout") for p in found)
    assert 'spec.analysis.webhooks[0].url: must be an http:// or https:// URL (got "flagger-loadtester/")' in found
    assert any(p.startswith("spec.analysis.webhooks[0].timeout: must be a duration") for p in found)


def test_weights_out_of_range() -> None:
    found = problems(canary(maxWeight=150, stepWeightPromotion=-1, stepWeights=[0, 10]))
    assert "spec.analysis.maxWeight: must be between 1 and 100 (got 150)" in found
    assert "spec.analysis.stepWeightPromotion: must be between 0 and 100 (got -1)" in found
    assert "spec.analysis.stepWeights[0]: must be at least 1 (got 0)" in found


def test_targets_are_deployments_or_daemon_sets() -> None:
    obj = canary()
    obj["spec"]["targetRef"]["kind"] = "StatefulSet"
    assert problems(obj) == ['spec.targetRef.kind: must be Deployment or DaemonSet (the workloads Flagger and '
                             'canarylab run canaries on) (got "StatefulSet")']
    obj["spec"]["targetRef"]["kind"] = "DaemonSet"
    obj["spec"].pop("autoscalerRef", None)
    assert parse_canary(obj).spec.target_ref.kind == "DaemonSet"


def test_a_daemon_set_cannot_have_an_autoscaler() -> None:
    obj = canary()
    obj["spec"]["targetRef"]["kind"] = "DaemonSet"
    obj["spec"]["autoscalerRef"] = {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
                                    "name": "podinfo"}
    assert problems(obj) == ['spec.autoscalerRef: a DaemonSet runs one pod per node and cannot be autoscaled: '
                             'remove autoscalerRef (got "podinfo")']


def test_metric_template_needs_a_query() -> None:
    with pytest.raises(SpecError, match=r"spec\.query: is required"):
        parse_metric_template({"metadata": {"name": "t", "namespace": "test"}, "spec": {"provider": {}}})
