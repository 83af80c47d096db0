"""NGINX ingress: Flagger's canary Ingress (a copy of the user's, backend the canary Service) and its annotations."""

from __future__ import annotations

from typing import Any

import pytest

from canarylab.engine.kinds import INGRESS, Obj
from canarylab.engine.routing import weights_of
from canarylab.engine.spec import SpecError, parse_canary
from tests.engine.conftest import Lab, canary

A = "nginx.ingress.kubernetes.io"


def user_ingress(backend: str = "podinfo") -> Obj:
    return INGRESS.new("test", "podinfo", spec={"ingressClassName": "nginx", "rules": [{
        "host": "app.example.com", "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": {
            "service": {"name": backend, "port": {"number": 9898}}}}]}}]}) | {
        "metadata": {"name": "podinfo", "namespace": "test", "annotations": {
            "kubernetes.io/ingress.class": "nginx", "kubectl.kubernetes.io/last-applied-configuration": "{}"}}}


def nginx(**analysis: Any) -> Obj:
    obj = canary(**analysis)
    obj["spec"]["provider"] = "nginx"
    obj["spec"]["ingressRef"] = {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "name": "podinfo"}
    return obj


def canary_ingress(lab: Lab) -> Obj:
    obj = lab.cluster.get_now(INGRESS, "test", "podinfo-canary")
    assert obj is not None
    return obj


async def test_the_canary_ingress_copies_the_users_and_steps_the_weight_annotation() -> None:
    lab = Lab(nginx(), extra=[user_ingress()])
    await lab.initialized()
    ing = canary_ingress(lab)
    backend = ing["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": "podinfo-canary", "port": {"number": 9898}}
    assert ing["metadata"]["annotations"] == {"kubernetes.io/ingress.class": "nginx", f"{A}/canary": "true",
                                              f"{A}/canary-weight": "0"}
    await lab.set_image("ghcr.io/stefanprodan/podinfo:6.0.1")
    await lab.tick(3)  # scale up, first step, second step
    assert canary_ingress(lab)["metadata"]["annotations"][f"{A}/canary-weight"] == "20"
    assert weights_of(canary_ingress(lab)) == (80, 20)
    for _ in range(10):
        await lab.tick()
        if lab.phase == "Succeeded":
            break
    assert lab.phase == "Succeeded"
    assert canary_ingress(lab)["metadata"]["annotations"][f"{A}/canary-weight"] == "0"


async def test_ab_testing_on_nginx_uses_the_header_and_cookie_annotations() -> None:
    match = [{"headers": {"x-canary": {"exact": "insider"}}}, {"headers": {"cookie": {"exact": "canary"}}}]
    lab = Lab(nginx(iterations=2, stepWeight=None, maxWeight=None, match=match), extra=[user_ingress()])
    await lab.progressing()
    await lab.tick()
    annotations = canary_ingress(lab)["metadata"]["annotations"]
    assert annotations[f"{A}/canary-by-header"] == "x-canary"
    assert annotations[f"{A}/canary-by-header-value"] == "insider"
    assert annotations[f"{A}/canary-by-cookie"] == "canary"
    assert weights_of(canary_ingress(lab)) == (0, 100)


async def test_a_missing_ingress_or_backend_is_a_warning_naming_it() -> None:
    lab = Lab(nginx())
    await lab.tick()
    assert 'ingress podinfo.test get query error: ingresses.networking.k8s.io "podinfo" not found' in lab.warnings()
    other = Lab(nginx(), extra=[user_ingress(backend="frontend")])
    await other.tick()
    assert "backend podinfo not found in ingress podinfo" in other.warnings()


def test_nginx_needs_an_ingress_ref_and_cannot_mirror() -> None:
    obj = nginx(mirror=True, iterations=2, stepWeight=None, maxWeight=None)
    del obj["spec"]["ingressRef"]
    with pytest.raises(SpecError) as err:
        parse_canary(obj)
    text = str(err.value)
    assert "spec.ingressRef: is required with provider nginx" in text
    assert "spec.analysis.mirror: the NGINX ingress cannot mirror traffic" in text
