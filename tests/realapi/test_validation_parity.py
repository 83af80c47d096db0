"""canarylab refuses exactly what ``kubectl apply`` would: every case is sent to a real kube-apiserver (with the
lab's CRDs: Flagger's own, the TrafficSplit, the Gateway API's) as a server-side dry run with strict field
validation, and canarylab's validation layer must accept it when, and only when, the API server does."""

from __future__ import annotations

import copy
import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import yaml

from canarylab.controlplane import ControlPlane
from canarylab.manifests import bootstrap_file
from canarylab.validation import validate_object

pytestmark = pytest.mark.timeout(180)

Obj = dict[str, Any]


def _seed(kind: str, name: str | None = None) -> Obj:
    for rel in ("podinfo.yaml", "podinfo-canary.yaml", "loadtester.yaml"):
        for doc in yaml.safe_load_all(bootstrap_file("workloads", rel).read_text()):
            if doc and doc["kind"] == kind and (name is None or doc["metadata"]["name"] == name):
                return copy.deepcopy(doc)
    raise LookupError(kind)


def _with(doc: Obj, change: Any) -> Obj:
    change(doc)
    return doc


def _set(path: str, value: Any) -> Any:
    def apply(doc: Obj) -> None:
        *parents, last = path.split(".")
        node = doc
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    return apply


def _pop(path: str) -> Any:
    def apply(doc: Obj) -> None:
        *parents, last = path.split(".")
        node = doc
        for part in parents:
            node = node[part]
        node.pop(last)
    return apply


DEPLOYMENT = _seed("Deployment", "podinfo")
CANARY = _seed("Canary")
SERVICE: Obj = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
                "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80}]}}
HPA = _seed("HorizontalPodAutoscaler")

CASES: dict[str, Obj | str] = {
    # accepted
    "the seed Deployment": DEPLOYMENT,
    "progressDeadlineSeconds: null": _with(copy.deepcopy(DEPLOYMENT), _set("spec.progressDeadlineSeconds", None)),
    "a Service": SERVICE,
    "the seed HPA": HPA,
    "the seed Canary": CANARY,
    "autoscalerRef: null": _with(copy.deepcopy(CANARY), _set("spec.autoscalerRef", None)),
    "a ConfigMap": {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1"}},
    "a Secret": {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "data": {"token": "aGk="}},
    "a TrafficSplit": {"apiVersion": "split.smi-spec.io/v1alpha2", "kind": "TrafficSplit", "metadata": {"name": "t"},
                       "spec": {"service": "web", "backends": [{"service": "web-primary", "weight": 100}]}},
    "an HTTPRoute": {"apiVersion": "gateway.networking.k8s.io/v1beta1", "kind": "HTTPRoute", "metadata": {"name": "r"},
                     "spec": {"parentRefs": [{"name": "web", "kind": "Service", "group": "core", "port": 80}],
                              "rules": [{"backendRefs": [{"name": "web-primary", "port": 80, "weight": 90}]}]}},
    "an AlertProvider": {"apiVersion": "flagger.app/v1beta1", "kind": "AlertProvider", "metadata": {"name": "a"},
                         "spec": {"type": "slack", "channel": "#d", "address": "https://hooks.slack.com/x"}},
    # refused
    "minReadySeconds: abc": _with(copy.deepcopy(DEPLOYMENT), _set("spec.minReadySeconds", "abc")),
    "maxSurge: {}": _with(copy.deepcopy(DEPLOYMENT), _set("spec.strategy.rollingUpdate.maxSurge", {})),
    "maxSurge: ten%": _with(copy.deepcopy(DEPLOYMENT), _set("spec.strategy.rollingUpdate.maxSurge", "ten%")),
    "maxSurge and maxUnavailable 0": _with(copy.deepcopy(DEPLOYMENT), _set("spec.strategy.rollingUpdate",
                                                                           {"maxSurge": 0, "maxUnavailable": 0})),
    "spec.replica": _with(copy.deepcopy(DEPLOYMENT), _set("spec.replica", 2)),
    "replicas: -1": _with(copy.deepcopy(DEPLOYMENT), _set("spec.replicas", -1)),
    "selector does not match": _with(copy.deepcopy(DEPLOYMENT), _set("spec.selector.matchLabels", {"app": "x"})),
    "progressDeadline below minReady": _with(copy.deepcopy(DEPLOYMENT), _set("spec.progressDeadlineSeconds", 3)),
    "no containers": _with(copy.deepcopy(DEPLOYMENT), _set("spec.template.spec.containers", [])),
    "apiVersion extensions/v1beta1": _with(copy.deepcopy(DEPLOYMENT), _set("apiVersion", "extensions/v1beta1")),
    "Service selector: [app]": _with(copy.deepcopy(SERVICE), _set("spec.selector", ["app"])),
    "Service port 70000": _with(copy.deepcopy(SERVICE), _set("spec.ports", [{"port": 70000}])),
    "Service name Web": _with(copy.deepcopy(SERVICE), _set("metadata.name", "Web")),
    "two unnamed ports": _with(copy.deepcopy(SERVICE), _set("spec.ports", [{"port": 80}, {"port": 81}])),
    "ConfigMap data 3": {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": 3}},
    "Secret not base64": {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "data": {"t": "no!"}},
    "HPA min above max": _with(copy.deepcopy(HPA), _set("spec.minReplicas", 5)),
    "HPA maxReplicas many": _with(copy.deepcopy(HPA), _set("spec.maxReplicas", "many")),
    "labels value 1": _with(copy.deepcopy(SERVICE), _set("metadata.labels", {"version": 1})),
    "Canary threshhold": _with(copy.deepcopy(CANARY), lambda c: c["spec"]["analysis"].update(
        threshhold=c["spec"]["analysis"].pop("threshold"))),
    "Canary stepWieght": _with(copy.deepcopy(CANARY), lambda c: c["spec"]["analysis"].update(
        stepWieght=c["spec"]["analysis"].pop("stepWeight"))),
    "Canary extra analysis field": _with(copy.deepcopy(CANARY), _set("spec.analysis.owner", "team-a")),
    "Canary flagger.app/v1": _with(copy.deepcopy(CANARY), _set("apiVersion", "flagger.app/v1")),
    "Canary without interval": _with(copy.deepcopy(CANARY), _pop("spec.analysis.interval")),
    "Canary webhook type": _with(copy.deepcopy(CANARY), lambda c: c["spec"]["analysis"]["webhooks"][0].update(
        type="pre-rolout")),
    "Canary stepWeight five": _with(copy.deepcopy(CANARY), _set("spec.analysis.stepWeight", "five")),
    "Canary metadata typo": _with(copy.deepcopy(CANARY), _set("metadata.lables", {"a": "b"})),
    "TrafficSplit weight -1": {"apiVersion": "split.smi-spec.io/v1alpha2", "kind": "TrafficSplit",
                               "metadata": {"name": "t"},
                               "spec": {"service": "web", "backends": [{"service": "web-primary", "weight": -1}]}},
    "HTTPRoute port 0": {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": {"name": "r"},
                         "spec": {"parentRefs": [{"name": "web", "kind": "Service", "group": "core", "port": 0}]}},
    "AlertProvider type pager": {"apiVersion": "flagger.app/v1beta1", "kind": "AlertProvider",
                                 "metadata": {"name": "a"}, "spec": {"type": "pager", "address": "https://x"}},
}


def _server_refuses(plane: ControlPlane, namespace: str, doc: Obj, validate: str = "strict") -> tuple[bool, str]:
    doc = copy.deepcopy(doc)
    doc["metadata"]["namespace"] = namespace
    done = plane.kubectl("apply", "--dry-run=server", f"--validate={validate}", "-f", "-", input=json.dumps(doc),
                         check=False)
    return done.returncode != 0, (done.stderr or done.stdout).strip()


def test_canarylab_refuses_exactly_what_the_api_server_refuses(lab_crds: ControlPlane, kube_namespace: str) -> None:
    mismatches = []
    with ThreadPoolExecutor(max_workers=6) as pool:  # kubectl mostly waits: ask in parallel
        answers = dict(zip(CASES, pool.map(lambda d: _server_refuses(lab_crds, kube_namespace, d), CASES.values()),
                           strict=True))
    for name, doc in CASES.items():
        assert isinstance(doc, dict)
        server_refuses, answer = answers[name]
        ours = validate_object(copy.deepcopy({**doc, "metadata": {**doc["metadata"], "namespace": kube_namespace}}))
        if server_refuses != bool(ours.errors):
            mismatches.append(f"{name}: API server {'refuses' if server_refuses else 'accepts'} ({answer[:200]}); "
                              f"canarylab says {[str(e) for e in ours.errors] or 'ok'}")
    assert not mismatches, "\n".join(mismatches)


def test_validate_warn_lets_unknown_fields_through_as_kubectl_does(lab_crds: ControlPlane,
                                                                   kube_namespace: str) -> None:
    for name in ("Canary extra analysis field", "spec.replica", "Canary metadata typo"):
        doc = CASES[name]
        assert isinstance(doc, dict)
        refused, answer = _server_refuses(lab_crds, kube_namespace, doc, validate="warn")
        ours = validate_object(copy.deepcopy(doc), "warn")
        assert not refused and "unknown field" in answer, (name, answer)
        assert not ours.errors and ours.warnings, (name, ours.findings)


def test_a_duplicate_key_is_accepted_like_kubectl_does_with_a_warning(lab_crds: ControlPlane, kube_namespace: str,
                                                                      tmp_path: Any) -> None:
    from canarylab.sim.inputs import lab_objects

    text = (bootstrap_file("workloads", "podinfo-canary.yaml").read_text()
            .replace("threshold: 5", "threshold: 5\n    threshold: 3"))
    done = lab_crds.kubectl("apply", "--dry-run=server", "--validate=strict", "-n", kube_namespace, "-f", "-",
                            input=text.replace("namespace: test", f"namespace: {kube_namespace}", 1), check=False)
    assert done.returncode == 0, done.stderr  # kubectl's YAML-to-JSON keeps the last value, silently
    path = tmp_path / "canary.yaml"
    path.write_text(text)
    warnings: list[str] = []
    objects = lab_objects([str(path)], warnings=warnings)
    canary = next(o for o in objects if o["kind"] == "Canary")
    assert canary["spec"]["analysis"]["threshold"] == 3
    assert len(warnings) == 1 and "the key 'threshold' appears twice" in warnings[0]
