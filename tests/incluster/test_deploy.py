"""``deploy/``: the kustomize base is valid Kubernetes v1.34 (the pinned control plane), its ClusterRole is exactly
the engine's permission table, the container's arguments are flags the engine accepts, and the Containerfile
installs the wheel (which ships deploy/)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from canarylab.cli import build_parser
from canarylab.controlplane import ControlPlane
from canarylab.kube.permissions import CLUSTER_RULES, LEASE_RULES, Rule
from tests.incluster.pod import DEPLOY, REPO, apply, render

K8S = "1.34.0"  # substrate/versions.env pins Kubernetes v1.34.12
FILES = sorted(p.name for p in DEPLOY.glob("*.yaml") if p.name != "kustomization.yaml")


def docs(name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((DEPLOY / name).read_text()) if d]


def by_kind(kind: str) -> dict[str, Any]:
    return next(d for f in FILES for d in docs(f) if d["kind"] == kind)


def rules(role: dict[str, Any]) -> set[tuple[str, str, tuple[str, ...]]]:
    return {(g, r, tuple(rule["verbs"])) for rule in role["rules"] for g in rule["apiGroups"]
            for r in rule["resources"]}


def table(entries: tuple[Rule, ...]) -> set[tuple[str, str, tuple[str, ...]]]:
    return {(r.group, r.resource, r.verbs) for r in entries}


@pytest.mark.parametrize("name", FILES)
def test_every_manifest_is_valid_kubernetes_1_34(name: str) -> None:
    for doc in docs(name):
        kubernetes_validate.validate(doc, K8S, strict=True)


def test_the_clusterrole_grants_exactly_the_permission_table_and_the_lease_only_in_a_role() -> None:
    assert rules(by_kind("ClusterRole")) == table(CLUSTER_RULES)
    assert rules(by_kind("Role")) == table(LEASE_RULES)
    verbs = {v for _, _, vs in rules(by_kind("ClusterRole")) for v in vs}
    assert "delete" not in verbs and "*" not in verbs  # garbage collection removes what the engine made


def test_the_deployment_runs_two_leader_elected_replicas_with_probes_requests_and_the_metrics_port() -> None:
    deployment = by_kind("Deployment")
    assert deployment["spec"]["replicas"] == 2
    pod = deployment["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == by_kind("ServiceAccount")["metadata"]["name"]
    [container] = pod["containers"]
    args = build_parser()[0].parse_args(container["args"])  # flags the engine really has
    assert args.command == "engine" and args.leader_elect and args.metrics_addr == "0.0.0.0:8080"
    assert args.leader_elect_lease_duration == 15 and args.leader_elect_renew_deadline == 10
    assert args.leader_elect_retry_period == 2
    [port] = container["ports"]
    assert port["containerPort"] == 8080
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": port["name"]}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": port["name"]}
    assert {"cpu", "memory"} <= set(container["resources"]["requests"])
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert by_kind("Service")["spec"]["ports"][0]["targetPort"] == port["name"]


def test_the_rendered_base_is_valid_1_34_and_the_real_api_server_accepts_it(
        control_plane: ControlPlane, kube_namespace: str, tmp_path: Path) -> None:
    rendered = render(control_plane, kube_namespace, tmp_path)
    assert {d["kind"] for d in rendered} == {"Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding",
                                             "Role", "RoleBinding", "Deployment", "Service"}
    for doc in rendered:
        kubernetes_validate.validate(doc, K8S, strict=True)
    binding = next(d for d in rendered if d["kind"] == "ClusterRoleBinding")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": f"canarylab-engine-{kube_namespace}",
                                    "namespace": kube_namespace}]
    out = apply(control_plane, [d for d in rendered if d["kind"] != "Namespace"], "--dry-run=server")
    assert f"deployment.apps/canarylab-engine-{kube_namespace} created (server dry run)" in out


def test_the_wheel_ships_deploy_and_the_containerfile_installs_that_wheel(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                           "--wheel-dir", str(tmp_path), str(REPO)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    [wheel] = tmp_path.glob("canarylab-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    data = [n for n in names if ".data/data/share/canarylab/deploy/" in n]
    assert {n.rsplit("/deploy/", 1)[1] for n in data} >= {"Containerfile", "base/kustomization.yaml",
                                                          "base/rbac.yaml", "base/deployment.yaml"}
    assert "canarylab/kube/leader.py" in names
    containerfile = (DEPLOY.parent / "Containerfile").read_text()
    assert "COPY canarylab-*.whl /tmp/wheels/" in containerfile
    assert 'ENTRYPOINT ["canarylab"]' in containerfile and "USER 10001:10001" in containerfile
    assert by_kind("Deployment")["spec"]["template"]["spec"]["securityContext"]["runAsUser"] == 10001
