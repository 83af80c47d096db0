"""The validation layer on its own: the vendored Kubernetes schemas are current, and kinds the CLI does not
simulate yet (DaemonSet, AlertProvider) are checked by the same schemas and rules."""

from __future__ import annotations

import copy

from canarylab.manifests import seed_lab
from canarylab.validation import accepted_versions, validate_object
from canarylab.validation.generate import OUTPUT, generate, render


def messages(obj: dict, mode: str = "strict") -> list[str]:  # type: ignore[type-arg]
    return [str(f) for f in validate_object(obj, mode).findings]


def test_the_vendored_kubernetes_schemas_match_a_fresh_generation() -> None:
    assert OUTPUT.read_text() == render(generate()), "run: python -m canarylab.validation.generate"


def test_the_seed_lab_is_valid() -> None:
    assert {d["kind"]: messages(d) for d in seed_lab()} == {k: [] for k in (d["kind"] for d in seed_lab())}


def test_accepted_versions_come_from_the_schemas() -> None:
    assert accepted_versions("Canary") == ("flagger.app/v1beta1",)
    assert accepted_versions("Deployment") == ("apps/v1",)
    assert accepted_versions("HTTPRoute") == ("gateway.networking.k8s.io/v1", "gateway.networking.k8s.io/v1beta1")
    assert accepted_versions("AlertProvider") == ("flagger.app/v1beta1",)


def test_a_daemonset_is_validated_like_a_deployment() -> None:
    deployment = next(d for d in seed_lab() if d["kind"] == "Deployment" and d["metadata"]["name"] == "podinfo")
    daemon = copy.deepcopy(deployment)
    daemon["kind"] = "DaemonSet"
    for key in ("replicas", "strategy", "progressDeadlineSeconds"):
        daemon["spec"].pop(key, None)
    daemon["spec"]["updateStrategy"] = {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0}}
    assert messages(daemon) == ["spec.updateStrategy.rollingUpdate.maxUnavailable: may not be 0 when `maxSurge` is 0"]
    daemon["spec"]["replicas"] = 3
    assert messages(daemon) == ["spec.replicas: unknown field"]


def test_an_alert_provider_is_checked_against_flaggers_crd() -> None:
    provider = {"apiVersion": "flagger.app/v1beta1", "kind": "AlertProvider",
                "metadata": {"name": "on-call", "namespace": "test"},
                "spec": {"type": "pagerduty", "chanel": "#deploys"}}
    found = messages(provider)
    assert any(m.startswith('spec.type: must be one of') and '(got "pagerduty")' in m for m in found), found
    assert "spec.chanel: unknown field; did you mean channel?" in found


def test_warn_prunes_unknown_fields_as_the_api_server_does() -> None:
    canary = copy.deepcopy(next(d for d in seed_lab() if d["kind"] == "Canary"))
    canary["spec"]["analysis"]["owner"] = "team-a"
    result = validate_object(canary, "warn")
    assert [str(w) for w in result.warnings] == ["spec.analysis.owner: unknown field (ignored: --validate=warn)"]
    assert not result.errors and "owner" not in result.obj["spec"]["analysis"]
