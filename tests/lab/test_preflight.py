"""`canarylab doctor`'s checks, one situation at a time, with a scripted runner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from canarylab.lab.preflight import Check, Outcome, Probe, render, run_checks
from canarylab.lab.runner import RecordingRunner
from canarylab.lab.state import LabState
from canarylab.lab.versions import Versions, parse_version, supported
from tests.lab.conftest import HEALTHY


def healthy() -> RecordingRunner:
    runner = RecordingRunner()
    for needle, code, out in HEALTHY:
        runner.when(needle, exit_code=code, stdout=out)
    return runner


def inotify(tmp_path: Path, watches: int = 524288, instances: int = 512) -> Path:
    d = tmp_path / "inotify"
    d.mkdir(exist_ok=True)
    (d / "max_user_watches").write_text(f"{watches}\n")
    (d / "max_user_instances").write_text(f"{instances}\n")
    return d


def check(checks: list[Check], title_part: str) -> Check:
    return next(c for c in checks if title_part in c.title)


def test_a_healthy_machine_passes_every_group(versions: Versions, tmp_path: Path) -> None:
    checks = run_checks(Probe(healthy(), versions, proc_inotify=inotify(tmp_path)))
    assert all(c.outcome is Outcome.OK for c in checks), render(checks)
    assert {c.group for c in checks} == {"Docker", "Tools", "System", "Cluster"}


def test_low_docker_memory_is_fatal_and_few_cpus_a_warning(versions: Versions, tmp_path: Path) -> None:
    runner = RecordingRunner().when("docker info", stdout=json.dumps({"NCPU": 1, "MemTotal": 1024**3}))
    checks = run_checks(Probe(runner, versions, proc_inotify=inotify(tmp_path)))
    assert check(checks, "CPUs").outcome is Outcome.WARN
    memory = check(checks, "memory")
    assert memory.fatal and "Settings → Resources" in memory.hint


def test_an_old_tool_is_fatal_and_names_the_needed_version(versions: Versions, tmp_path: Path) -> None:
    runner = RecordingRunner().when("helm version", stdout="v3.8.0+g1234").when("docker info", stdout="{}")
    checks = run_checks(Probe(runner, versions, proc_inotify=inotify(tmp_path)))
    helm = check(checks, "helm v3.8.0")
    assert helm.fatal and "3.12.0 or newer" in helm.hint


def test_low_inotify_limits_warn_with_the_sysctl_fix(versions: Versions, tmp_path: Path) -> None:
    checks = run_checks(Probe(healthy(), versions, proc_inotify=inotify(tmp_path, watches=8192)))
    watches = check(checks, "max_user_watches")
    assert watches.outcome is Outcome.WARN
    assert "sudo sysctl fs.inotify.max_user_watches=524288" in watches.hint


def test_a_foreign_cluster_with_the_lab_name_is_fatal(versions: Versions, tmp_path: Path) -> None:
    runner = healthy().when("kind get clusters", stdout="canarylab\nother\n")
    clash = check(run_checks(Probe(runner, versions, proc_inotify=inotify(tmp_path))), "canarylab")
    assert clash.fatal and "canarylab did not create" in clash.hint and "--name" in clash.hint


def test_our_own_cluster_is_fine_up_resumes_it(versions: Versions, tmp_path: Path) -> None:
    LabState("canarylab", created=True).save()
    runner = healthy().when("kind get clusters", stdout="canarylab\n")
    ours = check(run_checks(Probe(runner, versions, proc_inotify=inotify(tmp_path))), "canarylab")
    assert ours.outcome is Outcome.OK and "up resumes it" in ours.title


def test_a_busy_host_port_from_the_kind_config_is_fatal(versions: Versions, tmp_path: Path) -> None:
    config = tmp_path / "kind.yaml"
    config.write_text("kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes:\n- role: control-plane\n"
                      "  extraPortMappings:\n  - {containerPort: 30080, hostPort: 8080, listenAddress: 127.0.0.1}\n")
    probe = Probe(healthy(), versions, proc_inotify=inotify(tmp_path), kind_config=config,
                  port_free=lambda address, port: port != 8080)
    busy = check(run_checks(probe), "127.0.0.1:8080")
    assert busy.fatal and "something listens" in busy.hint


def test_the_report_is_grouped_with_marks_and_a_verdict(versions: Versions, tmp_path: Path) -> None:
    runner = healthy()
    runner.rules.insert(0, ("kind version", 127, ""))  # scripted: kind answers with exit 127 like a missing tool
    text = render(run_checks(Probe(runner, versions, proc_inotify=inotify(tmp_path))))
    assert text.splitlines()[:3] == ["Docker", "------", "√ Docker daemon is reachable"]
    assert "Status check results are ×" in text.splitlines()[-1]


@pytest.mark.parametrize("tool, output, version", [
    ("kind", "kind v0.29.0 go1.24.2 linux/amd64", "v0.29.0"),
    ("kubectl", json.dumps({"clientVersion": {"gitVersion": "v1.33.13", "minor": "33+"}}), "v1.33.13"),
    ("kubectl", "Client Version: v1.32.4-dispatcher", "v1.32.4"),
    ("linkerd", "edge-25.5.2\n", "edge-25.5.2"),
    ("linkerd", "stable-2.14.10", "stable-2.14.10"),
    ("helm", "v3.18.6+gb76a950", "v3.18.6"),
    ("helm", "garbage", None),
])
def test_version_outputs_are_parsed(tool: str, output: str, version: str | None) -> None:
    assert parse_version(tool, output) == version


@pytest.mark.parametrize("tool, version, minimum, ok", [
    ("kind", "v0.29.0", "0.20.0", True),
    ("kind", "v0.19.0", "0.20.0", False),
    ("linkerd", "edge-25.5.2", "edge-25.4.1", True),
    ("linkerd", "edge-24.11.8", "edge-25.4.1", False),
    ("linkerd", "stable-2.18.0", "edge-25.4.1", True),
    ("linkerd", "stable-2.14.10", "edge-25.4.1", False),
])
def test_supported_versions(tool: str, version: str, minimum: str, ok: bool) -> None:
    assert supported(tool, version, minimum) is ok
