"""bootstrap/ on a real API server: the lab's CRDs and the seed's manifests apply cleanly with the real kubectl
(server-side apply: schema validation, structural pruning, admission), and what they make comes up."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import yaml

from canarylab.controlplane import ControlPlane
from canarylab.controlplane.binaries import gateway_api_crds
from canarylab.manifests import BOOTSTRAP

pytestmark = pytest.mark.timeout(120)

SEED_FILES = ["workloads/namespace.yaml", "workloads/podinfo.yaml", "workloads/loadtester.yaml",
              "workloads/podinfo-canary.yaml"]


def test_the_lab_crds_are_established_with_flaggers_columns(lab_crds: ControlPlane) -> None:
    crds = json.loads(lab_crds.kubectl("get", "crds", "-o", "json").stdout)["items"]
    by_name = {c["metadata"]["name"]: c for c in crds}
    for name in ("canaries.flagger.app", "metrictemplates.flagger.app", "alertproviders.flagger.app",
                 "trafficsplits.split.smi-spec.io", "httproutes.gateway.networking.k8s.io",
                 "gateways.gateway.networking.k8s.io"):
        conditions = {c["type"]: c["status"] for c in by_name[name]["status"]["conditions"]}
        assert conditions.get("Established") == "True" and conditions.get("NamesAccepted") == "True", name
        # a structural schema: no NonStructuralSchema condition
        assert "NonStructuralSchema" not in conditions, name
    served = {v["name"] for v in by_name["httproutes.gateway.networking.k8s.io"]["spec"]["versions"] if v["served"]}
    assert {"v1", "v1beta1"} <= served  # Flagger's gatewayapi:v1beta1 router writes v1beta1
    # re-applying is a no-op, not a conflict
    again = lab_crds.kubectl("apply", "--server-side", "-f", str(BOOTSTRAP / "crds" / "flagger.yaml"),
                             "-f", str(BOOTSTRAP / "crds" / "smi-trafficsplit.yaml"),
                             "-f", str(gateway_api_crds() / "gateway.networking.k8s.io_httproutes.yaml"))
    assert "serverside-applied" in again.stdout


def test_the_seed_manifests_apply_unchanged_and_come_up(lab_crds: ControlPlane) -> None:
    # Given the lab's CRDs, when the seed's files are applied exactly as the tutorial does (namespace test)
    args = ["apply", "--server-side"]
    for rel in SEED_FILES:
        args += ["-f", str(BOOTSTRAP / rel)]
    try:
        out = lab_crds.kubectl(*args).stdout
        for what in ("namespace/test", "deployment.apps/podinfo", "horizontalpodautoscaler.autoscaling/podinfo",
                     "deployment.apps/flagger-loadtester", "service/flagger-loadtester", "canary.flagger.app/podinfo"):
            assert f"{what} serverside-applied" in out, out
        # then nothing was pruned from the seed's Canary (the CRD keeps every field the seed sets)
        stored = json.loads(lab_crds.kubectl("-n", "test", "get", "canary", "podinfo", "-o", "json").stdout)
        seed = next(d for d in yaml.safe_load_all((BOOTSTRAP / "workloads/podinfo-canary.yaml").read_text()) if d)
        assert stored["spec"] == seed["spec"]
        # and podinfo and the loadtester roll out: pods scheduled on KWOK nodes, Running and Ready
        for deployment in ("podinfo", "flagger-loadtester"):
            lab_crds.kubectl("-n", "test", "rollout", "status", f"deployment/{deployment}", "--timeout=60s",
                             timeout=70)
        # and the real HPA controller scales podinfo to the seed HPA's minimum of 2
        end = time.monotonic() + 30
        while True:
            pods = json.loads(lab_crds.kubectl("-n", "test", "get", "pods", "-l", "app=podinfo", "-o",
                                               "json").stdout)["items"]
            running = [p for p in pods if p["status"].get("phase") == "Running"]
            if len(running) >= 2:
                break
            assert time.monotonic() < end, f"podinfo has {len(running)} Running pods, the HPA wants 2"
            time.sleep(0.5)
        # and `kubectl get canaries` prints Flagger's columns (the CRD's additionalPrinterColumns)
        header = lab_crds.kubectl("-n", "test", "get", "canaries").stdout.splitlines()[0].split()
        assert header == ["NAME", "STATUS", "WEIGHT", "LASTTRANSITIONTIME"]
        wide = lab_crds.kubectl("-n", "test", "get", "canaries", "-o", "wide").stdout.splitlines()[0].split()
        assert wide[:9] == ["NAME", "STATUS", "WEIGHT", "SUSPENDED", "FAILEDCHECKS", "INTERVAL", "MIRROR",
                            "STEPWEIGHT", "STEPWEIGHTS"]
    finally:
        for rel in reversed(SEED_FILES[1:]):
            lab_crds.kubectl("delete", "--ignore-not-found", "--wait=false", "-f", str(BOOTSTRAP / rel), check=False)


def test_a_bad_canary_is_refused_by_the_crd_schema(lab_crds: ControlPlane, kube_namespace: str,
                                                   tmp_path: Path) -> None:
    bad = {"apiVersion": "flagger.app/v1beta1", "kind": "Canary",
           "metadata": {"name": "bad", "namespace": kube_namespace},
           "spec": {"service": {"port": 9898}, "analysis": {"interval": "1m"}}}  # no targetRef
    done = lab_crds.kubectl("apply", "--server-side", "-f", "-", input=json.dumps(bad), check=False)
    assert done.returncode != 0 and "targetRef" in done.stderr, done.stderr
