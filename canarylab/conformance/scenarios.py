"""The conformance scenarios: one Canary, one metric script, webhook answers and timed actions each.

A scenario is data. The harness builds the namespace's objects from it (podinfo, the Canary, any
MetricTemplate), scripts the metrics and webhooks, starts the controller, sets a new image once the Canary is
``Initialized`` (unless ``trigger`` is ``None``), then runs each :class:`Action` the first time its condition
holds, until the run ends (a terminal phase held for ``settle`` seconds, or the Canary gone).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from canarylab.conformance.exporter import HEALTHY, MetricScript
from canarylab.conformance.hooks import HookAnswer

Obj = dict[str, Any]

INTERVAL = "10s"
"""The analysis interval of every scenario: Flagger's floor (``GetAnalysisInterval`` never ticks faster than
10 s, and canarylab follows it), so the whole suite runs in minutes."""

IMAGE_V1 = "ghcr.io/stefanprodan/podinfo:6.0.0"
IMAGE_V2 = "ghcr.io/stefanprodan/podinfo:6.0.1"
IMAGE_V3 = "ghcr.io/stefanprodan/podinfo:6.0.2"


@dataclass(frozen=True)
class Observed:
    """What the harness last saw of the run: the conditions of actions look at this."""

    phase: str
    canary_weight: int | None
    failed_checks: int
    iterations: int
    hook_calls: dict[str, int]
    exists: bool
    since_trigger: float


Condition = Callable[[Observed], bool]


def weight_at_least(weight: int) -> Condition:
    return lambda o: o.canary_weight is not None and o.canary_weight >= weight and o.phase == "Progressing"


def hook_called(hook: str, times: int) -> Condition:
    return lambda o: o.hook_calls.get(hook, 0) >= times


def iterations_at_least(n: int) -> Condition:
    return lambda o: o.iterations >= n and o.phase == "Progressing"


@dataclass(frozen=True)
class Action:
    """``do`` the first time ``when`` holds: ``set-image`` (arg: image), ``open-gate`` (arg: hook),
    ``delete-canary``, ``restart`` (stop the controller, wait ``arg`` seconds, start it again)."""

    when: Condition
    do: str
    arg: Any = None
    label: str = ""


@dataclass(frozen=True)
class Scenario:
    name: str
    exercises: str
    canary: Obj
    metrics: MetricScript = HEALTHY
    hooks: dict[str, HookAnswer] = field(default_factory=dict)
    mesh_provider: str = "linkerd"
    extra: tuple[Obj, ...] = ()
    trigger: dict[str, Any] | None = field(default_factory=lambda: {"image": IMAGE_V2})
    actions: tuple[Action, ...] = ()
    ends: str = "terminal"  # or "deleted"
    settle: float = 12.0
    timeout: float = 260.0
    quick: bool = False  # part of the quick subset `make test` runs
    hpa: bool = False

    def objects(self, namespace: str, hook_url: Callable[[str], str], prometheus: str) -> list[Obj]:
        """The namespace's objects, the webhook URLs pointing at the scripted receiver."""
        out = [deployment(namespace)]
        if self.hpa:
            out.append(hpa(namespace))
        for obj in self.extra:
            obj = copy.deepcopy(obj)
            obj["metadata"]["namespace"] = namespace
            if obj["kind"] == "MetricTemplate":
                obj["spec"]["provider"]["address"] = prometheus
            out.append(obj)
        canary = copy.deepcopy(self.canary)
        canary["metadata"]["namespace"] = namespace
        for hook in canary["spec"].get("analysis", {}).get("webhooks", []):
            hook["url"] = hook_url(hook["name"])
        out.append(canary)
        return out


def deployment(namespace: str) -> Obj:
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "podinfo", "namespace": namespace, "labels": {"app": "podinfo"}},
        "spec": {
            "replicas": 2,
            "progressDeadlineSeconds": 60,
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0}},
            "selector": {"matchLabels": {"app": "podinfo"}},
            "template": {
                "metadata": {"labels": {"app": "podinfo"}},
                "spec": {"containers": [{
                    "name": "podinfod", "image": IMAGE_V1,
                    "ports": [{"name": "http", "containerPort": 9898, "protocol": "TCP"}],
                }]},
            },
        },
    }  # fmt: skip


def hpa(namespace: str) -> Obj:
    return {
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "podinfo", "namespace": namespace},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
                 "minReplicas": 2, "maxReplicas": 4,
                 "metrics": [{"type": "Resource", "resource": {
                     "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 99}}}]},
    }  # fmt: skip


BUILTIN_CHECKS = [
    {"name": "request-success-rate", "thresholdRange": {"min": 99}, "interval": "15s"},
    {"name": "request-duration", "thresholdRange": {"max": 500}, "interval": "15s"},
]


def canary(analysis: Obj | None = None, **spec: Any) -> Obj:
    """A Canary on podinfo with short intervals; ``analysis`` keys replace the defaults."""
    a: Obj = {"interval": INTERVAL, "threshold": 2, "maxWeight": 30, "stepWeight": 10,
              "metrics": copy.deepcopy(BUILTIN_CHECKS)}
    a.update(analysis or {})
    a = {k: v for k, v in a.items() if v is not None}  # None: drop a default (stepWeights, iterations)
    body: Obj = {
        "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
        "progressDeadlineSeconds": 60,
        "service": {"port": 9898, "targetPort": 9898},
        "analysis": a,
    }
    body.update(spec)
    return {"apiVersion": "flagger.app/v1beta1", "kind": "Canary",
            "metadata": {"name": "podinfo", "namespace": "default"}, "spec": body}


def hook(name: str, type: str, **extra: Any) -> Obj:
    return {"name": name, "type": type, "url": "", "timeout": "5s", **extra}


def seed_canary() -> Obj:
    """The seed tutorial's Canary with its interval cut to seconds and its loadtester hooks scripted."""
    c = canary({
        "interval": INTERVAL, "threshold": 5, "maxWeight": 50, "stepWeight": 5,
        "metrics": [{"name": "request-success-rate", "thresholdRange": {"min": 99}, "interval": "1m"},
                    {"name": "request-duration", "thresholdRange": {"max": 500}, "interval": "30s"}],
        "webhooks": [
            hook("acceptance-test", "pre-rollout", timeout="30s", metadata={
                "type": "bash", "cmd": "curl -sd 'test' http://podinfo-canary.test:9898/token | grep token"}),
            hook("load-test", "rollout",
                 metadata={"cmd": "hey -z 2m -q 10 -c 2 http://podinfo-canary.test:9898/"}),
        ],
    })
    c["spec"]["autoscalerRef"] = {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
                                  "name": "podinfo"}
    return c


LATENCY_TEMPLATE: Obj = {
    "apiVersion": "flagger.app/v1beta1", "kind": "MetricTemplate",
    "metadata": {"name": "p99-latency", "namespace": "default"},
    "spec": {
        "provider": {"type": "prometheus", "address": ""},
        "query": 'histogram_quantile(0.99, sum(rate(response_latency_ms_bucket{namespace="{{ namespace }}",'
                 'deployment=~"{{ target }}",direction="inbound"}[{{ interval }}])) by (le))',
    },
}  # fmt: skip


def _gate(kind: str, name: str) -> Scenario:
    return Scenario(
        name=f"gate-{kind}",
        exercises=f"a {kind} gate answers 403 for three calls, then 200",
        canary=canary({"webhooks": [hook(name, kind)]}),
        hooks={name: HookAnswer(gate=True)},
        actions=(Action(hook_called(name, 3), "open-gate", name),),
    )


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("seed", "the seed tutorial: HPA, stepWeight 5 to 50, both Linkerd checks, pre-rollout and rollout "
             "hooks, promotion", seed_canary(), hpa=True, timeout=330),
    Scenario("rollback-error-rate", "canary answers 10% errors: request-success-rate fails until threshold 2, "
             "rollback", canary(), metrics=MetricScript(error_ratio=0.10), quick=True),
    Scenario("rollback-latency", "canary P99 near 1 s: request-duration fails, rollback",
             canary(), metrics=MetricScript(latency_ms=900)),
    Scenario("step-weights", "stepWeights [5, 15, 40] instead of stepWeight",
             canary({"stepWeights": [5, 15, 40], "stepWeight": None, "maxWeight": None}), quick=True),
    Scenario("max-weight-not-multiple", "maxWeight 25 with stepWeight 10: 10, 20, then 25",
             canary({"maxWeight": 25})),
    Scenario("step-weight-promotion", "stepWeightPromotion 40: the primary takes traffic back in steps",
             canary({"maxWeight": 20, "stepWeightPromotion": 40})),
    Scenario("blue-green-iterations", "no weights: 3 iterations at weight 0, then promotion",
             canary({"iterations": 3, "stepWeight": None, "maxWeight": None})),
    Scenario("ab-header-match", "A/B on gatewayapi:v1: header match, 3 iterations, custom MetricTemplate",
             canary({"iterations": 3, "stepWeight": None, "maxWeight": None,
                     "match": [{"headers": {"x-canary": {"exact": "insider"}}}],
                     "metrics": [{"name": "p99", "templateRef": {"name": "p99-latency"},
                                  "thresholdRange": {"max": 500}, "interval": "10s"}]},
                    provider="gatewayapi:v1",
                    service={"port": 9898, "targetPort": 9898,
                             "gatewayRefs": [{"name": "podinfo", "group": "core", "kind": "Service",
                                              "port": 9898}]}),
             mesh_provider="gatewayapi:v1", extra=(LATENCY_TEMPLATE,)),
    _gate("confirm-rollout", "approve-rollout"),
    _gate("confirm-traffic-increase", "approve-step"),
    _gate("confirm-promotion", "approve-promotion"),
    Scenario("rollback-webhook", "a rollback hook that says 200 (roll back) from its third call",
             canary({"webhooks": [hook("abort", "rollback")]}),
             hooks={"abort": HookAnswer(gate=True)},
             actions=(Action(hook_called("abort", 2), "open-gate", "abort"),)),
    Scenario("pre-rollout-failing", "the pre-rollout hook answers 500: failed checks up to threshold, rollback",
             canary({"webhooks": [hook("acceptance", "pre-rollout")]}),
             hooks={"acceptance": HookAnswer(status=500, body="acceptance test failed")}, quick=True),
    Scenario("no-data", "the canary's proxies report nothing: the query returns no values",
             canary(), metrics=MetricScript(present=False)),
    Scenario("new-revision-mid-run", "image changed again at weight 20: the analysis restarts",
             canary({"maxWeight": 40}),
             actions=(Action(weight_at_least(20), "set-image", IMAGE_V3),)),
    Scenario("skip-analysis", "skipAnalysis: promote at once", canary(skipAnalysis=True)),
    Scenario("progress-deadline", "the new revision's pods never get scheduled: progressDeadlineSeconds 30 "
             "exceeded, rollback", canary(progressDeadlineSeconds=30),
             trigger={"image": IMAGE_V2, "nodeSelector": {"canarylab.dev/none": "true"}}),
    Scenario("canary-deleted", "the Canary is deleted at weight 20: what is left behind",
             canary(), actions=(Action(weight_at_least(20), "delete-canary"),), ends="deleted", settle=15),
    Scenario("controller-restart", "the controller is stopped at weight 20 and started again 12 s later",
             canary({"maxWeight": 40}), actions=(Action(weight_at_least(20), "restart", 12.0),)),
    Scenario("session-affinity", "gatewayapi:v1 with sessionAffinity (canary and primary cookies), service "
             "headers and timeouts: the sticky rules and filters Flagger writes",
             canary({"maxWeight": 20, "sessionAffinity": {"cookieName": "flagger-cookie",
                                                           "primaryCookieName": "primary-cookie", "maxAge": 600},
                     "metrics": [{"name": "p99", "templateRef": {"name": "p99-latency"},
                                  "thresholdRange": {"max": 500}, "interval": "10s"}]},
                    provider="gatewayapi:v1",
                    service={"port": 9898, "targetPort": 9898, "timeout": "30s", "backendTimeout": "10s",
                             "headers": {"request": {"set": {"x-b": "2", "x-a": "1"}, "remove": ["x-debug"]}},
                             "gatewayRefs": [{"name": "podinfo", "group": "core", "kind": "Service",
                                              "port": 9898}]}),
             mesh_provider="gatewayapi:v1", extra=(LATENCY_TEMPLATE,)),
)

BY_NAME = {s.name: s for s in SCENARIOS}
