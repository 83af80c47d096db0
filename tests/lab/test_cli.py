"""The commands end to end: `up --dry-run`, `up --no-tui` through the real sh runner with fake tools on PATH,
`down` safety, and `doctor` both with fakes and on this very machine."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from canarylab.cli import build_parser, main
from canarylab.cli.lab import run_down
from canarylab.errors import UserError
from canarylab.lab.state import LabState, created_contexts
from tests.lab.conftest import calls, existing_lab_runner


def test_dry_run_prints_exactly_the_commands_one_per_line(capsys: pytest.CaptureFixture[str], cache: Path) -> None:
    assert main(["up", "--dry-run", "--router", "smi"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("kind create cluster --name canarylab --config ")
    assert lines[-1].endswith("bootstrap/workloads/podinfo-canary.yaml")
    assert len(lines) == 22
    assert all(line.split()[0] in ("kind", "kubectl", "linkerd", "helm") for line in lines)
    # and a dry run leaves no record: no state, no created context
    assert not (cache / "canarylab" / "state.json").exists()
    assert created_contexts() == set()


def test_dry_run_needs_no_tools(tmp_path: Path) -> None:
    # this machine has no kind, linkerd or helm; the plan is printed anyway
    env = {**os.environ, "CANARYLAB_CACHE_DIR": str(tmp_path), "PATH": "/nonexistent"}
    out = subprocess.run([sys.executable, "-m", "canarylab.cli", "up", "--dry-run", "--name", "demo"],
                         capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "kubectl --context kind-demo apply -f " in out.stdout
    assert "linkerd-smi" not in out.stdout  # gatewayapi is the default router


def test_up_no_tui_runs_the_real_runner_against_fake_tools(fake_path: Path, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    # given fake kind/kubectl/linkerd/helm/docker scripts on PATH
    # when the lab is built without the TUI
    assert main(["up", "--no-tui", "--name", "fake", "--router", "smi"]) == 0
    out = capsys.readouterr().out
    # then each step is reported as a plain line and the lab is ready
    assert "[ 1/15] ✓ Preflight checks" in out
    assert "[15/15] ✓ The seed's Canary" in out
    assert "The lab is ready: kube context kind-fake" in out
    assert "canarylab ui --context kind-fake" in out
    # and the tools received the commands in order, every kubectl with the lab's context
    received = calls(tmp_path)
    assert "kind create cluster --name fake --config" in "\n".join(received)
    kubectl_calls = [c for c in received if c.startswith("kubectl ") and "version" not in c]
    assert kubectl_calls and all(c.startswith("kubectl --context kind-fake ") for c in kubectl_calls)
    assert created_contexts() == {"kind-fake"}


def test_a_failing_tool_stops_up_with_output_and_hint_then_up_resumes(
        fake_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    # given helm fails to install linkerd-smi (no internet)
    monkeypatch.setenv("FAKE_FAIL", "upgrade --install linkerd-smi")
    assert main(["up", "--no-tui", "--name", "fake", "--router", "smi"]) == 2
    captured = capsys.readouterr()
    # then the error names the step, shows the tool's output, a hint, and how to resume
    assert "step 'linkerd-smi (TrafficSplit)' failed" in captured.err
    assert "helm: simulated failure of: --kube-context kind-fake upgrade --install linkerd-smi" in captured.err
    assert "hint: the chart comes from linkerd.github.io/linkerd-smi" in captured.err
    assert "resumes at this step" in captured.err
    assert "✗ linkerd-smi (TrafficSplit)" in captured.out
    # when the network is back and up runs again
    monkeypatch.setenv("FAKE_FAIL", "")
    before = len(calls(tmp_path))
    assert main(["up", "--no-tui", "--name", "fake", "--router", "smi"]) == 0
    # then the finished steps are skipped and it continues at linkerd-smi
    again = calls(tmp_path)[before:]
    assert not any("create cluster" in c or "install --crds" in c for c in again)
    assert any("upgrade --install linkerd-smi" in c for c in again)
    assert "· Linkerd control plane (done earlier)" in capsys.readouterr().out


def test_a_missing_tool_points_at_tools_install(fake_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (fake_path / "helm").unlink()
    assert main(["up", "--no-tui", "--name", "fake", "--router", "smi"]) == 2
    err = capsys.readouterr().err
    assert "helm" in err and "canarylab tools install" in err


def test_down_refuses_a_cluster_canarylab_did_not_create(capsys: pytest.CaptureFixture[str]) -> None:
    runner = existing_lab_runner("someones-cluster")
    args = build_parser()[0].parse_args(["down", "--name", "someones-cluster"])
    with pytest.raises(UserError) as refused:
        run_down(args, runner=runner)
    assert "canarylab did not create a kind cluster named 'someones-cluster'" in str(refused.value)
    assert runner.commands == [], "nothing was run, let alone deleted"


def test_down_deletes_only_the_lab_cluster_and_forgets_it(fake_path: Path, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["up", "--no-tui", "--name", "fake"]) == 0
    assert main(["down", "--name", "other"]) == 2  # never created: refused
    assert "did not create" in capsys.readouterr().err
    before = len(calls(tmp_path))
    assert main(["down", "--name", "fake"]) == 0
    assert calls(tmp_path)[before:] == ["kind delete cluster --name fake"]
    assert created_contexts() == set()
    assert not LabState.load("fake").created


def test_doctor_with_everything_present_passes(fake_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["doctor"])
    out = capsys.readouterr().out
    assert "√ Docker daemon is reachable" in out
    assert "√ kind v0.29.0 is supported" in out and "√ helm v3.18.6 is supported" in out
    assert "Status check results are √" in out
    assert code == 0


def test_doctor_without_docker_daemon_or_kind_is_clear_and_fails(fake_path: Path, tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    (fake_path / "docker").write_text("#!/bin/sh\necho 'Cannot connect to the Docker daemon at "
                                      "unix:///var/run/docker.sock. Is the docker daemon running?' >&2\nexit 1\n")
    (fake_path / "kind").unlink()
    code = main(["doctor"])
    out = capsys.readouterr().out
    assert code == 2
    assert "× Docker daemon is reachable" in out and "Is the docker daemon running?" in out
    assert "× kind is installed" in out and "canarylab tools install" in out
    assert "Status check results are ×" in out


def test_real_doctor_on_this_machine_gives_a_clear_answer(tmp_path: Path) -> None:
    # this machine: a docker client without a daemon, no kind, linkerd or helm
    env = {**os.environ, "CANARYLAB_CACHE_DIR": str(tmp_path)}
    out = subprocess.run([sys.executable, "-m", "canarylab.cli", "doctor"], capture_output=True, text=True,
                         env=env, timeout=120)
    assert out.returncode == 2
    assert "Traceback" not in out.stdout + out.stderr
    assert "× Docker daemon is reachable" in out.stdout or "× docker CLI is installed" in out.stdout
    assert "× kind is installed" in out.stdout
    assert "Status check results are ×" in out.stdout
