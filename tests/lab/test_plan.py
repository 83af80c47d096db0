"""`canarylab up` as a plan: a recording runner answers like a machine with Docker and the tools."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from canarylab.lab.installer import Installer, LabFailed, StepEvent
from canarylab.lab.runner import RecordingRunner
from canarylab.lab.state import LabState, created_contexts
from canarylab.lab.steps import gatewayapi_canary, seed_canary
from canarylab.lab.versions import Versions
from tests.lab.conftest import existing_lab_runner, fresh_lab_runner

CLUSTER_TOOLS = ("kubectl", "linkerd", "helm")


def ensure_commands(runner: RecordingRunner) -> list[str]:
    """The commands that change something (not the preflight probes nor the checks)."""
    probes = ("version", "docker info", "kind get clusters", " get crd ", " get deployment ", " status linkerd-smi")
    return [line for line in runner.lines() if not any(p in line for p in probes)]


def events_of(installer: Installer) -> list[StepEvent]:
    seen: list[StepEvent] = []
    installer.on_event = lambda e: seen.append(e) if isinstance(e, StepEvent) else None
    return seen


def test_full_smi_plan_runs_every_step_in_order(versions: Versions) -> None:
    # given a machine with Docker and the tools, and no lab yet
    runner = fresh_lab_runner()
    installer = Installer("canarylab", "smi", runner, versions)
    seen = events_of(installer)
    # when the lab is built with the SMI router
    installer.run()
    # then the commands are the seed tutorial's, in order, each naming the lab's context
    plan = ensure_commands(runner)
    expected_prefixes = [
        "kind create cluster --name canarylab --config",
        "kubectl --context kind-canarylab apply --server-side -f https://github.com/kubernetes-sigs/gateway-api/",
        "kubectl --context kind-canarylab apply -f https://github.com/kubernetes-sigs/metrics-server/releases/",
        "kubectl --context kind-canarylab --namespace kube-system patch deployment metrics-server --type json -p "
        """'[{"op": "add", "path": "/spec/template/spec/containers/0/args/-", "value": "--kubelet-insecure-tls"}]'""",
        "kubectl --context kind-canarylab --namespace kube-system rollout status deployment/metrics-server",
        "linkerd --context kind-canarylab install --crds | kubectl --context kind-canarylab apply -f -",
        "linkerd --context kind-canarylab install | kubectl --context kind-canarylab apply -f -",
        "linkerd --context kind-canarylab check",
        "linkerd --context kind-canarylab viz install | kubectl --context kind-canarylab apply -f -",
        "kubectl --context kind-canarylab --namespace linkerd-viz rollout status deployment/prometheus",
        "kubectl --context kind-canarylab apply -f ",  # Prometheus access for the engine
        "kubectl --context kind-canarylab --namespace linkerd-viz scale deployment web tap tap-injector metrics-api",
        "kubectl --context kind-canarylab delete apiservice v1alpha1.tap.linkerd.io",
        "helm --kube-context kind-canarylab upgrade --install linkerd-smi",
        "kubectl --context kind-canarylab apply -f ",  # flagger CRDs
        "kubectl --context kind-canarylab wait --for condition=established",
        "kubectl --context kind-canarylab apply -f ",  # namespace
        "kubectl --context kind-canarylab apply -f ",  # loadtester
        "kubectl --context kind-canarylab --namespace test rollout status deployment/flagger-loadtester",
        "kubectl --context kind-canarylab apply -f ",  # podinfo
        "kubectl --context kind-canarylab --namespace test rollout status deployment/podinfo",
        "kubectl --context kind-canarylab apply -f ",  # canary
    ]
    assert len(plan) == len(expected_prefixes), "\n".join(plan)
    for line, prefix in zip(plan, expected_prefixes, strict=True):
        assert line.startswith(prefix), f"{line!r} should start with {prefix!r}"
    applied = [line.rsplit(" ", 1)[-1] for line in plan if " apply -f /" in line]
    assert [Path(p).name for p in applied] == ["prometheus-access.yaml", "flagger.yaml", "namespace.yaml",
                                               "loadtester.yaml", "podinfo.yaml", "podinfo-canary.yaml"]
    # and every step ended done, and the state remembers them and the created context
    assert [e.key for e in seen if e.status == "done"] == [s.key for s in installer.steps]
    state = LabState.load("canarylab")
    assert state.created and state.router == "smi"
    assert state.done == [s.key for s in installer.steps]
    assert created_contexts() == {"kind-canarylab"}


def test_gatewayapi_plan_has_no_smi_and_applies_the_generated_canary(versions: Versions, cache: Path) -> None:
    runner = fresh_lab_runner()
    Installer("canarylab", "gatewayapi", runner, versions).run()
    plan = ensure_commands(runner)
    assert not any("linkerd-smi" in line for line in plan)
    canary_file = Path(plan[-1].rsplit(" ", 1)[-1])
    assert canary_file == cache / "canarylab" / "podinfo-canary.gatewayapi.yaml"
    generated = yaml.safe_load(canary_file.read_text())
    assert generated == gatewayapi_canary(seed_canary())
    assert generated["spec"]["provider"] == "gatewayapi:v1beta1"


def test_the_gatewayapi_canary_is_the_seed_plus_provider_and_gateway_refs() -> None:
    seed = seed_canary()
    variant = gatewayapi_canary(seed)
    assert variant["spec"]["service"]["gatewayRefs"] == [
        {"group": "core", "kind": "Service", "name": "podinfo", "namespace": "test", "port": 9898}]
    # everything else is exactly the seed's
    trimmed = {**variant, "spec": {k: v for k, v in variant["spec"].items() if k != "provider"}}
    trimmed["spec"]["service"] = {k: v for k, v in variant["spec"]["service"].items() if k != "gatewayRefs"}
    assert trimmed == seed
    assert "provider" not in seed["spec"], "the seed itself is not modified"


@pytest.mark.parametrize("router", ["smi", "gatewayapi"])
def test_every_cluster_command_names_the_lab_context(versions: Versions, router: str) -> None:
    runner = fresh_lab_runner()
    Installer("lab2", router, runner, versions).run()
    for command in runner.commands:
        for stage in command.commands():
            text = " ".join(stage.argv)
            if stage.tool == "helm" and "version" not in stage.argv:
                assert stage.argv[1:3] == ("--kube-context", "kind-lab2"), text
            elif stage.tool in ("kubectl", "linkerd") and "version" not in stage.argv:
                assert stage.argv[1:3] == ("--context", "kind-lab2"), text
            elif stage.tool == "kind" and "create" in stage.argv:
                assert "--name" in stage.argv and "lab2" in stage.argv
        assert "kind-canarylab" not in command.display()


def test_a_rerun_skips_finished_steps(versions: Versions) -> None:
    # given a lab that was built completely
    Installer("canarylab", "smi", fresh_lab_runner(), versions).run()
    # when `up` runs again
    runner = existing_lab_runner()
    installer = Installer("canarylab", "smi", runner, versions)
    seen = events_of(installer)
    installer.run()
    # then nothing is installed again: only preflight and the cluster check run
    assert ensure_commands(runner) == []
    statuses = {e.key: e.status for e in seen if e.status != "running"}
    assert statuses["preflight"] == "done"
    assert statuses["cluster"] == "done"
    assert {k for k, s in statuses.items() if s == "skipped"} == {s.key for s in installer.steps} - {"preflight",
                                                                                                    "cluster"}


def test_existing_parts_are_checked_not_reinstalled(versions: Versions) -> None:
    # given a cluster where the control plane already runs but canarylab has no record of the later steps
    runner = existing_lab_runner()
    LabState("canarylab", created=True, done=["preflight", "cluster"]).save()
    installer = Installer("canarylab", "gatewayapi", runner, versions)
    seen = events_of(installer)
    installer.run()
    # then `linkerd install` is never run a second time (it would rotate the certificates)
    assert not any("linkerd --context kind-canarylab install" in line for line in runner.lines())
    notes = {e.key: e.note for e in seen if e.status == "done"}
    assert notes["linkerd"] == "already there"


def test_a_failing_step_stops_with_its_output_and_a_hint_then_up_resumes_there(versions: Versions) -> None:
    # given linkerd check fails (slow image pulls)
    runner = fresh_lab_runner().when("linkerd --context kind-canarylab check", exit_code=1,
                                     stdout="× control plane pods are ready\n    pod/linkerd-destination is Pending")
    installer = Installer("canarylab", "smi", runner, versions)
    seen = events_of(installer)
    with pytest.raises(LabFailed) as failure:
        installer.run()
    # then up stops at that step, shows the output and a hint, and says how to resume
    message = str(failure.value)
    assert failure.value.step == "linkerd-check" and failure.value.exit_code == 2
    assert "pod/linkerd-destination is Pending" in message
    assert "hint: the control plane is not healthy yet" in message
    assert "resumes at this step" in message
    assert seen[-1].key == "linkerd-check" and seen[-1].status == "failed"
    assert not any("viz install" in line for line in runner.lines()), "nothing after the failed step ran"
    state = LabState.load("canarylab")
    assert state.done == ["preflight", "cluster", "gateway-api", "metrics-server", "linkerd-crds", "linkerd"]
    # and the log file has the command and its output
    log = (installer.log_path).read_text()
    assert "$ linkerd --context kind-canarylab check --wait 5m0s" in log and "linkerd-destination is Pending" in log

    # when up runs again (the pods came up meanwhile)
    runner2 = existing_lab_runner()
    for check in ("get crd", "get deployment", "helm --kube-context kind-canarylab status"):
        runner2.when(check, exit_code=1)
    Installer("canarylab", "smi", runner2, versions).run()
    # then it resumes at linkerd check: earlier steps are not repeated
    plan = ensure_commands(runner2)
    assert plan[0] == "linkerd --context kind-canarylab check --wait 5m0s"
    assert not any("install --crds" in line or "kind create" in line for line in plan)
    assert LabState.load("canarylab").done[-1] == "canary"


def test_switching_router_redoes_the_router_steps(versions: Versions) -> None:
    Installer("canarylab", "gatewayapi", fresh_lab_runner(), versions).run()
    runner = existing_lab_runner().when("helm --kube-context kind-canarylab status", exit_code=1)
    Installer("canarylab", "smi", runner, versions).run()
    plan = ensure_commands(runner)
    assert plan[0].startswith("helm --kube-context kind-canarylab upgrade --install linkerd-smi")
    assert plan[-1].endswith("bootstrap/workloads/podinfo-canary.yaml")


def test_a_cluster_deleted_by_hand_is_rebuilt_from_scratch(versions: Versions) -> None:
    Installer("canarylab", "smi", fresh_lab_runner(), versions).run()
    # the user ran `kind delete cluster` themselves; canarylab's record says the lab is done
    runner = fresh_lab_runner()
    Installer("canarylab", "smi", runner, versions).run()
    plan = ensure_commands(runner)
    assert plan[0].startswith("kind create cluster --name canarylab")
    assert any("install --crds" in line for line in plan)


def test_preflight_failure_stops_before_anything_is_created(versions: Versions) -> None:
    runner = fresh_lab_runner()
    runner.rules.insert(0, ("docker info", 1, "Cannot connect to the Docker daemon at unix:///var/run/docker.sock"))
    with pytest.raises(LabFailed) as failure:
        Installer("canarylab", "smi", runner, versions).run()
    assert failure.value.step == "preflight"
    assert "× Docker daemon is reachable" in str(failure.value)
    assert ensure_commands(runner) == []
    assert created_contexts() == set()


def test_kind_does_not_steal_the_users_current_context(
    versions: Versions, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a user whose kubeconfig points at their own cluster
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\ncurrent-context: prod\ncontexts: []\n")
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    runner = fresh_lab_runner()
    # when the lab is built (kind switches the current context to kind-canarylab as it creates the cluster)
    Installer("canarylab", "smi", runner, versions).run()
    plan = ensure_commands(runner)
    # then the very next command gives the user their context back, and no other command relies on it
    created = next(i for i, line in enumerate(plan) if line.startswith("kind create cluster"))
    assert plan[created + 1] == "kubectl config use-context prod"
    assert all("--context kind-canarylab" in line or line.startswith(("kind ", "helm "))
               for i, line in enumerate(plan) if i != created + 1)
