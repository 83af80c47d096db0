"""The launcher starts a real control plane that behaves like a cluster: RBAC on, service-account tokens,
a Deployment whose pods KWOK makes Running and Ready, garbage collection; and it fails clearly."""

from __future__ import annotations

import json
import stat
import time
from pathlib import Path

import pytest
import yaml

from canarylab.controlplane import Binaries, ControlPlane, ControlPlaneError, MissingBinaries
from canarylab.controlplane import binaries as binaries_module

ROOT = Path(__file__).resolve().parents[2]


def wait_for(what: str, probe, timeout: float = 30.0, every: float = 0.2):  # type: ignore[no-untyped-def]
    """Poll ``probe`` until it returns something truthy; fail naming ``what`` after ``timeout`` seconds."""
    end = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        assert time.monotonic() < end, f"timed out after {timeout:g}s waiting for {what}"
        time.sleep(every)


def test_pinned_versions_match_the_substrate() -> None:
    pins = dict(line.split("=", 1) for line in (ROOT / "substrate/versions.env").read_text().splitlines()
                if line and not line.startswith("#"))
    assert (pins["KUBERNETES"], pins["ETCD"], pins["KWOK"]) == \
        (binaries_module.KUBERNETES, binaries_module.ETCD, binaries_module.KWOK)


def test_clients_see_the_pinned_version_and_the_admin_context(control_plane: ControlPlane) -> None:
    done = control_plane.kubectl("version", "-o", "json")
    versions = json.loads(done.stdout)
    assert versions["serverVersion"]["gitVersion"] == binaries_module.KUBERNETES
    assert versions["clientVersion"]["gitVersion"] == binaries_module.KUBERNETES
    contexts = control_plane.kubectl("config", "get-contexts", "-o", "name").stdout.split()
    assert contexts == ["canarylab-kwok"] and control_plane.context == "canarylab-kwok"
    assert control_plane.server.startswith("https://127.0.0.1:")


def test_kwok_nodes_are_ready(control_plane: ControlPlane) -> None:
    nodes = json.loads(control_plane.kubectl("get", "nodes", "-o", "json").stdout)["items"]
    assert sorted(n["metadata"]["name"] for n in nodes) == ["kwok-node-0", "kwok-node-1"]
    for node in nodes:
        ready = [c for c in node["status"]["conditions"] if c["type"] == "Ready"]
        assert ready and ready[0]["status"] == "True"
    # KWOK heartbeats through node Leases, so the node-lifecycle controller never marks the nodes Unknown
    # (and their pods NotReady) after its 40 s grace period
    def leases() -> list[str]:
        items = json.loads(control_plane.kubectl("-n", "kube-node-lease", "get", "leases", "-o", "json").stdout)
        return sorted(lease["metadata"]["name"] for lease in items["items"] if lease["spec"].get("renewTime"))

    assert wait_for("a renewed Lease per KWOK node", lambda: len(leases()) == 2, 15)
    assert leases() == ["kwok-node-0", "kwok-node-1"]


def test_a_deployment_gets_running_ready_pods_and_garbage_collection(control_plane: ControlPlane,
                                                                      kube_namespace: str) -> None:
    # Given a namespace, when a Deployment of three replicas is applied
    manifest = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": kube_namespace},
                "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                         "template": {"metadata": {"labels": {"app": "web"}},
                                      "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}}}
    control_plane.kubectl("apply", "--server-side", "-f", "-", input=json.dumps(manifest))
    # then the Deployment controller, the scheduler and KWOK make it available
    control_plane.kubectl("-n", kube_namespace, "rollout", "status", "deployment/web", "--timeout=60s", timeout=70)
    pods = json.loads(control_plane.kubectl("-n", kube_namespace, "get", "pods", "-o", "json").stdout)["items"]
    assert len(pods) == 3
    for pod in pods:
        assert pod["status"]["phase"] == "Running"
        assert pod["spec"]["nodeName"].startswith("kwok-node-")
        assert pod["status"]["podIP"].startswith("10.244.")
        # the ServiceAccount admission mounted a token projected by the SA signing key
        assert any(v.get("projected") for v in pod["spec"]["volumes"])
    # when it is deleted, then the garbage collector removes its ReplicaSet and pods
    control_plane.kubectl("-n", kube_namespace, "delete", "deployment", "web", "--wait=false")

    def gone() -> bool:
        left = control_plane.kubectl("-n", kube_namespace, "get", "replicasets,pods", "-o", "name").stdout
        return not left.strip()

    wait_for("the ReplicaSet and pods of a deleted Deployment to be collected", gone, 60)


def test_rbac_is_enforced_for_service_account_tokens(control_plane: ControlPlane, kube_namespace: str,
                                                     tmp_path: Path) -> None:
    # Given a ServiceAccount with no role, and a kubeconfig with a token for it
    control_plane.kubectl("-n", kube_namespace, "create", "serviceaccount", "nobody")
    token = control_plane.kubectl("-n", kube_namespace, "create", "token", "nobody").stdout.strip()
    admin = yaml.safe_load(control_plane.kubeconfig.read_text())
    admin["users"] = [{"name": "nobody", "user": {"token": token}}]
    admin["contexts"][0]["context"]["user"] = "nobody"
    (tmp_path / "nobody").write_text(yaml.safe_dump(admin))
    as_nobody = ["--kubeconfig", str(tmp_path / "nobody")]
    # then the API server authenticates it, and RBAC refuses what it was not granted
    who = control_plane.kubectl("auth", "whoami", "-o", "json", *as_nobody, check=False)
    assert f"system:serviceaccount:{kube_namespace}:nobody" in who.stdout, who.stderr
    denied = control_plane.kubectl("-n", kube_namespace, "get", "pods", *as_nobody, check=False)
    assert denied.returncode != 0 and "forbidden" in denied.stderr
    # when a Role grants it, then the same request is allowed
    control_plane.kubectl("-n", kube_namespace, "create", "role", "read-pods", "--verb=list", "--resource=pods")
    control_plane.kubectl("-n", kube_namespace, "create", "rolebinding", "read-pods", "--role=read-pods",
                          f"--serviceaccount={kube_namespace}:nobody")
    wait_for("the RoleBinding to take effect", lambda: control_plane.kubectl(
        "-n", kube_namespace, "get", "pods", *as_nobody, check=False).returncode == 0, 10)


def _script(path: Path, text: str) -> Path:
    path.write_text("#!/bin/sh\n" + text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_a_component_that_fails_is_named_with_the_tail_of_its_log(control_plane: ControlPlane,
                                                                   tmp_path: Path) -> None:
    # Given a kube-apiserver that cannot start (the real etcd, a broken API server)
    broken = _script(tmp_path / "kube-apiserver", "echo 'E1203 flag provided but not defined: --nope'\nexit 3\n")
    real = control_plane.binaries
    plane = ControlPlane(tmp_path / "state", binaries=Binaries(real.etcd, broken, real.kube_controller_manager,
                                                               real.kube_scheduler, real.kubectl, real.kwok))
    # when the control plane starts, then the error names the component, its exit code and its log's tail
    with pytest.raises(ControlPlaneError) as caught:
        plane.start()
    err = caught.value
    assert err.component == "kube-apiserver"
    assert "exited with code 3" in str(err)
    assert "flag provided but not defined: --nope" in err.log_tail
    assert err.log == plane.logs_dir / "kube-apiserver.log" and err.log.exists()
    # and nothing it started is left running
    assert not any(c.running() for c in plane.components.values())


def test_missing_binaries_name_the_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CANARYLAB_SUBSTRATE_CACHE", str(tmp_path / "nothing"))
    monkeypatch.setenv("CANARYLAB_CACHE_DIR", str(tmp_path / "nothing"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(MissingBinaries) as caught:
        Binaries.locate()
    message = str(caught.value)
    assert "kube-apiserver" in message and "etcd" in message and "kwok" in message
    assert "make substrate" in message and "canarylab tools install" in message
