"""In-cluster login, the permission table, forbidden requests and the engine flags, without a real cluster.

The same behaviour on the real API server (a TokenRequest token, the shipped RBAC) is in tests/incluster.
"""

from __future__ import annotations

import argparse
import base64
import json
from pathlib import Path

import pytest

from canarylab.cli import build_parser, main
from canarylab.cli.engine import lease_config
from canarylab.engine.controller import Engine
from canarylab.engine.kinds import CANARY, DEPLOYMENT
from canarylab.errors import UserError
from canarylab.kube import config
from canarylab.kube.cluster import Forbidden, KubeCluster
from canarylab.kube.incluster import account_of, detect
from canarylab.kube.lab import KubeLab
from canarylab.kube.permissions import CLUSTER_RULES, LEASE_RULES
from tests.doubles import FakeMetrics
from tests.kube.apiserver import ApiServer
from tests.kube.test_engine_over_http import Run, bump, loadtester, phase, seeded, until

__all__ = ["loadtester", "seeded"]


def token_for(namespace: str, name: str) -> str:
    def part(data: dict[str, str]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    return f"{part({'alg': 'RS256'})}.{part({'sub': f'system:serviceaccount:{namespace}:{name}'})}.signature"


def mounted(tmp_path: Path, namespace: str = "canarylab") -> Path:
    """What the kubelet mounts for a pod of deploy/base."""
    where = tmp_path / "sa"
    where.mkdir()
    (where / "token").write_text(token_for(namespace, "canarylab-engine") + "\n")
    (where / "ca.crt").write_text("-----BEGIN CERTIFICATE-----\n")
    (where / "namespace").write_text(namespace)
    return where


def test_not_in_a_pod_there_is_no_service_account() -> None:
    assert detect({}) is None


def test_in_a_pod_the_service_account_comes_from_the_mounted_files(tmp_path: Path) -> None:
    account = detect({"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443",
                      "CANARYLAB_SERVICEACCOUNT_DIR": str(mounted(tmp_path))})
    assert account is not None
    assert account.server == "https://10.96.0.1:443"
    assert (account.namespace, account.name) == ("canarylab", "canarylab-engine")
    assert account.title == "in-cluster (service account canarylab/canarylab-engine)"
    assert detect({"KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "443"},
                  directory=str(tmp_path / "sa")).server == "https://[fd00::1]:443"  # type: ignore[union-attr]


def test_a_pod_without_a_token_is_told_which_file_is_missing_and_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(UserError) as err:
        detect({"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443",
                "CANARYLAB_SERVICEACCOUNT_DIR": str(tmp_path)})
    assert str(err.value).startswith(f"in-cluster login: no service-account token at {tmp_path}/token. In a pod, "
                                     "leave automountServiceAccountToken on")


def test_the_token_names_the_account_for_messages_only() -> None:
    assert account_of(token_for("ns", "sa")) == ("ns", "sa")
    assert account_of("not-a-jwt") == ("", "")


def test_without_any_kubeconfig_a_pod_logs_in_with_its_service_account(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    monkeypatch.setenv("CANARYLAB_SERVICEACCOUNT_DIR", str(mounted(tmp_path)))
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "none"))
    monkeypatch.setenv("CANARYLAB_CACHE_DIR", str(tmp_path / "cache"))
    target = config.resolve(None)
    assert (target.context, target.server) == ("in-cluster", "https://10.96.0.1:443")
    config.check_namespaces(target, [], readonly=False)  # RBAC decides where it acts
    # a kubeconfig, when there is one, wins (and then the lab's safety rule applies)
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(json.dumps({"apiVersion": "v1", "kind": "Config", "contexts": [], "clusters": []}))
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    with pytest.raises(UserError, match="no lab cluster"):
        config.resolve(None)


def args_for(*argv: str) -> argparse.Namespace:
    return build_parser()[0].parse_args(["engine", *argv])


def test_the_lease_defaults_to_the_service_accounts_namespace_or_the_first_namespace(tmp_path: Path) -> None:
    lab = KubeLab("kmock", ["team-a", "team-b"])
    lab.target = config.Target("kmock", "", None, False)
    lease = lease_config(args_for("--leader-elect"), lab)
    assert lease is not None
    assert (lease.namespace, lease.name) == ("team-a", "canarylab-engine")
    assert (lease.lease_duration, lease.renew_deadline, lease.retry_period) == (15, 10, 2)
    account = detect({"KUBERNETES_SERVICE_HOST": "h", "KUBERNETES_SERVICE_PORT": "1"}, str(mounted(tmp_path)))
    lab.target = config.Target("in-cluster", "", None, False, account)
    assert lease_config(args_for("--leader-elect"), lab).namespace == "canarylab"  # type: ignore[union-attr]
    assert lease_config(args_for("--enable-leader-election", "--leader-election-namespace", "ops"),
                        lab).namespace == "ops"  # type: ignore[union-attr]
    assert lease_config(args_for(), lab) is None
    lab = KubeLab(None, [])
    lab.target = config.Target(config.LAB_CONTEXT, "", None, True)
    with pytest.raises(UserError, match="--leader-elect needs a namespace for its Lease"):
        lease_config(args_for("--leader-elect"), lab)
    with pytest.raises(UserError, match="lease-duration must be greater than --leader-elect-renew-deadline"):
        lease_config(args_for("--leader-elect", "--leader-elect-resource-namespace", "x",
                              "--leader-elect-lease-duration", "5s"), lab)


def test_bad_engine_flags_are_one_clear_line_with_exit_code_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as code:
        main(["engine", "--mesh-provider", "appmesh"])
    assert code.value.code == 2
    assert "'appmesh' is not a provider canarylab routes with; choose one of linkerd, smi:v1alpha1" in \
        capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["engine", "--leader-elect-retry-period", "soon"])
    assert "expected a duration such as 15s or 1m, got 'soon'" in capsys.readouterr().err


def test_the_mesh_provider_is_the_default_provider_of_canaries_that_name_none() -> None:
    engine = Engine(None, None, None, None, mesh_provider="gatewayapi:v1beta1")  # type: ignore[arg-type]
    canary = {"kind": "Canary", "spec": {"targetRef": {"name": "podinfo"}}}
    assert engine._provided(canary)["spec"]["provider"] == "gatewayapi:v1beta1"
    own = {"kind": "Canary", "spec": {"provider": "linkerd"}}
    assert engine._provided(own) is own


async def test_a_forbidden_request_names_the_verb_and_the_resource(apiserver: ApiServer, kube: KubeCluster) -> None:
    apiserver.faults.append(lambda r: 403 if r.resource and r.resource.plural == "canaries" else None)
    with pytest.raises(Forbidden) as err:
        await kube.patch_status(CANARY, "test", "podinfo", {"phase": "Progressing"})
    assert str(err.value) == ('forbidden: canarylab\'s credentials may not "patch" canaries/status (API group '
                              "flagger.app) in namespace test; grant that verb on that resource in the engine's "
                              "ClusterRole (deploy/base/rbac.yaml) or Role")
    assert (err.value.verb, err.value.resource, err.value.group) == ("patch", "canaries/status", "flagger.app")
    with pytest.raises(Forbidden, match='may not "list" canaries'):
        await kube.list(CANARY)
    assert await kube.get(DEPLOYMENT, "test", "podinfo") is None  # other resources unaffected


async def test_every_request_of_a_whole_run_is_covered_by_the_permission_table(
        seeded: ApiServer, loadtester: object, kubeconfig: Path) -> None:
    # Given the seed lab run to promotion by the acting engine
    async with Run(kubeconfig, FakeMetrics.healthy()) as run:
        await until(lambda: phase(seeded) == "Initialized", what="Initialized")
        await bump(run)
        await until(lambda: "Promotion completed! Scaling down podinfo.test" in run.messages(), 60, "promotion")
    granted = {(r.group, r.resource, v) for r in CLUSTER_RULES + LEASE_RULES for v in r.verbs}
    used = set()
    for request in seeded.requests:
        res = request.resource
        if res is None or not res.plural or res.plural == "namespaces":
            continue  # discovery; namespaces are listed for the host's service proxy only, not in a pod
        sub = (request.subresource or "").split("/")[0]
        if sub == "proxy":
            continue  # webhooks through the API server's service proxy: on the host only (--in-cluster calls them)
        method = request.method.value if request.method else "GET"
        verb = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}.get(method) or (
            "watch" if request.params.get("watch") == "true" else "get" if request.name else "list")
        used.add((res.group or "", res.plural + (f"/{sub}" if sub else ""), verb))
    # then every verb on every resource it used is granted by deploy/base, and the run used the main ones
    assert used <= granted, used - granted
    assert {("flagger.app", "canaries/status", "patch"), ("apps", "deployments", "watch"),
            ("apps", "deployments", "create"), ("", "events", "create"),
            ("split.smi-spec.io", "trafficsplits", "patch")} <= used


async def test_a_leader_that_cannot_renew_stops_acting_and_exits_1_with_one_line(
        seeded: ApiServer, loadtester: object, kubeconfig: Path, tmp_path: Path) -> None:
    import asyncio
    import os
    import sys

    # Given an engine leading on the seed lab (short lease durations)
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "CANARYLAB_CACHE_DIR": str(tmp_path / "cache")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "canarylab.cli", "engine", "--context", "kmock", "-n", "test", "--leader-elect",
        "--leader-elect-lease-duration", "3s", "--leader-elect-renew-deadline", "2s",
        "--leader-elect-retry-period", "0.5s", env=env, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    assert proc.stderr is not None
    async with asyncio.timeout(30):
        while b"leading: this engine" not in await proc.stderr.readline():
            pass
    # when the API server stops answering for the lease
    seeded.faults.append(lambda r: 503 if r.resource and r.resource.plural == "leases" else None)
    async with asyncio.timeout(30):
        code = await proc.wait()
        err = (await proc.stderr.read()).decode()
    # then it stopped within the renew deadline and says why, in one paragraph, without a traceback
    assert code == 1
    assert "canarylab: lost the leader lease test/canarylab-engine: it could not be renewed within 2s" in err
    assert "Traceback" not in err
