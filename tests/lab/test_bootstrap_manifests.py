"""The lab as data: every manifest in bootstrap/ is valid for the pinned Kubernetes, and the Canaries are valid
against the Flagger CRD schema that `up` installs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from canarylab.lab.steps import gatewayapi_canary, seed_canary
from canarylab.lab.versions import load_versions
from canarylab.manifests import BOOTSTRAP, seed_lab

# The Kubernetes minor of the pinned kind node image (bootstrap/versions.yaml cluster.node_image).
K8S = "1.33.0"
BUILTIN_FILES = ["workloads/namespace.yaml", "workloads/loadtester.yaml", "workloads/podinfo.yaml", "crds/flagger.yaml"]


def docs(rel: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((BOOTSTRAP / rel).read_text()) if d]


def crd_schema(plural: str) -> dict[str, Any]:
    crd = next(d for d in docs("crds/flagger.yaml") if d["metadata"]["name"] == f"{plural}.flagger.app")
    schema: dict[str, Any] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def test_the_pinned_node_image_is_the_kubernetes_version_we_validate_against() -> None:
    image = load_versions().section("cluster")["node_image"]
    assert image.startswith("kindest/node:v1.33.") and "@sha256:" in image


@pytest.mark.parametrize("rel", BUILTIN_FILES)
def test_builtin_objects_are_valid_kubernetes(rel: str) -> None:
    for doc in docs(rel):
        kubernetes_validate.validate(doc, K8S, strict=True)  # raises ValidationError with the field path


def test_the_crds_are_flaggers_own_with_status_and_printer_columns() -> None:
    crds = {d["spec"]["names"]["kind"]: d for d in docs("crds/flagger.yaml")}
    assert set(crds) == {"Canary", "MetricTemplate", "AlertProvider"}
    canary = crds["Canary"]["spec"]
    assert canary["group"] == "flagger.app" and canary["scope"] == "Namespaced"
    version = canary["versions"][0]
    assert version["name"] == "v1beta1" and version["subresources"] == {"status": {}}
    columns = [c["name"] for c in version["additionalPrinterColumns"] if "priority" not in c]
    assert columns == ["Status", "Weight", "LastTransitionTime"]  # `kubectl get canaries`, flagger-spec 1.2


@pytest.mark.parametrize("variant", ["seed", "gatewayapi"])
def test_the_canaries_up_applies_are_valid_against_the_crd_schema(variant: str) -> None:
    canary = seed_canary() if variant == "seed" else gatewayapi_canary(seed_canary())
    jsonschema.Draft4Validator(crd_schema("canaries")).validate(canary)


@pytest.mark.parametrize("break_it, field", [
    (lambda c: c["spec"]["analysis"].update(interval="30"), "interval"),
    (lambda c: c["spec"].pop("targetRef"), "targetRef"),
    (lambda c: c["spec"]["targetRef"].update(kind="StatefulSet"), "StatefulSet"),
    (lambda c: c["spec"]["analysis"]["webhooks"][0].update(type="pre-rolout"), "pre-rolout"),
])
def test_the_crd_schema_rejects_broken_canaries(break_it: Any, field: str) -> None:
    canary = seed_canary()
    break_it(canary)
    with pytest.raises(jsonschema.ValidationError) as rejected:
        jsonschema.Draft4Validator(crd_schema("canaries")).validate(canary)
    assert field in str(rejected.value)


def test_a_metric_template_validates() -> None:
    template = {"apiVersion": "flagger.app/v1beta1", "kind": "MetricTemplate",
                "metadata": {"name": "success-rate", "namespace": "linkerd"},
                "spec": {"provider": {"type": "prometheus", "address": "http://prometheus.linkerd-viz:9090"},
                         "query": "sum(rate(response_total[{{ interval }}]))"}}
    jsonschema.Draft4Validator(crd_schema("metrictemplates")).validate(template)


def test_the_kind_config_is_a_kind_cluster_with_the_api_server_on_loopback() -> None:
    (config,) = docs("kind.yaml")
    assert config["kind"] == "Cluster" and config["apiVersion"] == "kind.x-k8s.io/v1alpha4"
    assert config["networking"]["apiServerAddress"] == "127.0.0.1"
    assert config["nodes"][0]["role"] == "control-plane"


def test_every_tool_is_pinned_with_a_linux_amd64_checksum() -> None:
    versions = load_versions()
    for name in ("kind", "kubectl", "linkerd", "helm"):
        sha = versions.tools[name].sha256.get("linux-amd64", "")
        assert len(sha) == 64 and int(sha, 16) >= 0, name


def test_seed_lab_still_loads_from_bootstrap() -> None:
    kinds = [d["kind"] for d in seed_lab()]
    assert kinds == ["Namespace", "Deployment", "Service", "Deployment", "HorizontalPodAutoscaler", "Canary"]
    assert Path(BOOTSTRAP, "workloads", "podinfo-canary.yaml").read_text().startswith("# The seed tutorial's Canary")


def test_the_prometheus_access_policy_targets_viz_prometheus_admin() -> None:
    auth, policy = docs("linkerd/prometheus-access.yaml")
    assert auth["kind"] == "NetworkAuthentication" and policy["kind"] == "AuthorizationPolicy"
    assert {auth["metadata"]["namespace"], policy["metadata"]["namespace"]} == {"linkerd-viz"}
    assert policy["spec"]["targetRef"] == {"group": "policy.linkerd.io", "kind": "Server", "name": "prometheus-admin"}
    assert policy["spec"]["requiredAuthenticationRefs"][0]["name"] == auth["metadata"]["name"]


def test_the_trafficsplit_crd_validates_what_the_linkerd_router_writes() -> None:
    # (tests/realapi applies it to a real API server; here its schema meets a TrafficSplit as Flagger writes it)
    (crd,) = docs("crds/smi-trafficsplit.yaml")
    assert crd["metadata"]["name"] == "trafficsplits.split.smi-spec.io"
    versions = {v["name"]: v for v in crd["spec"]["versions"]}
    version = versions["v1alpha2"]
    assert version["served"] and version["storage"]
    # the real Flagger's linkerd router reads and writes v1alpha1 (weights as quantities): served, not stored
    assert versions["v1alpha1"]["served"] and not versions["v1alpha1"]["storage"]
    split = {"apiVersion": "split.smi-spec.io/v1alpha2", "kind": "TrafficSplit", "metadata": {"name": "podinfo"},
             "spec": {"service": "podinfo", "backends": [{"service": "podinfo-canary", "weight": 5},
                                                         {"service": "podinfo-primary", "weight": 95}]}}
    schema = version["schema"]["openAPIV3Schema"]
    jsonschema.Draft4Validator(schema).validate(split)
    split["spec"]["backends"][0]["weight"] = -1
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft4Validator(schema).validate(split)


def test_every_bootstrap_file_is_covered_by_these_tests() -> None:
    covered = {*BUILTIN_FILES, "workloads/podinfo-canary.yaml", "kind.yaml", "versions.yaml",
               "linkerd/prometheus-access.yaml", "crds/smi-trafficsplit.yaml"}
    present = {str(p.relative_to(BOOTSTRAP)) for p in BOOTSTRAP.rglob("*.yaml")}
    assert present == covered


@pytest.mark.parametrize("variant", ["seed", "gatewayapi"])
def test_the_engine_accepts_the_canaries_up_applies(variant: str) -> None:
    from canarylab.engine.spec import parse_canary

    canary = parse_canary(seed_canary() if variant == "seed" else gatewayapi_canary(seed_canary()))
    if variant == "gatewayapi":
        assert canary.spec.provider == "gatewayapi:v1beta1"
        assert canary.spec.service.gateway_refs[0]["name"] == "podinfo"


def test_the_trafficsplit_crd_is_the_schema_canarylab_validates_against() -> None:
    from canarylab.validation import accepted_versions, validate_object

    (crd,) = docs("crds/smi-trafficsplit.yaml")
    assert crd["spec"]["names"]["kind"] == "TrafficSplit" and accepted_versions("TrafficSplit") == (
        "split.smi-spec.io/v1alpha1", "split.smi-spec.io/v1alpha2")  # v1alpha1: what Flagger's linkerd router writes
    split = {"apiVersion": "split.smi-spec.io/v1alpha2", "kind": "TrafficSplit",
             "metadata": {"name": "podinfo", "namespace": "test"},
             "spec": {"service": "podinfo", "backends": [{"service": "podinfo-primary", "weight": -1}]}}
    assert [str(f) for f in validate_object(split).findings] == ["spec.backends[0].weight: must be at least 0 (got -1)"]
