"""Safety: the engine never acts on a kube context canarylab did not create unless the user names it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from canarylab.cli import main
from canarylab.errors import UserError
from canarylab.kube import config
from canarylab.kube.lab import KubeLab
from tests.kube.apiserver import free_port


def kubeconfig_with(path: Path, *contexts: str, current: str = "") -> Path:
    path.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": current,
        "clusters": [{"name": c, "cluster": {"server": f"https://{c}.example:6443"}} for c in contexts],
        "users": [{"name": c, "user": {"token": "t"}} for c in contexts],
        "contexts": [{"name": c, "context": {"cluster": c, "user": c}} for c in contexts],
    }))
    return path


@pytest.fixture
def lab_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty canarylab cache: no lab was created."""
    monkeypatch.setenv("CANARYLAB_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def created_lab(cache: Path) -> None:
    (cache / "canarylab").mkdir(parents=True)
    (cache / "canarylab" / "state.json").write_text(json.dumps({"name": "canarylab", "created": True}))


def test_without_context_and_without_a_lab_nothing_is_touched(lab_cache: Path, tmp_path: Path) -> None:
    # Given a kubeconfig whose current context is someone's production cluster, and no lab
    kc = kubeconfig_with(tmp_path / "kc", "prod", "kind-canarylab", current="prod")
    # when the engine starts without --context, then it refuses and says what to do
    with pytest.raises(UserError) as caught:
        config.resolve(None, str(kc))
    message = str(caught.value)
    assert "did not create the context 'kind-canarylab'" in message
    assert "'prod'" in message and "canarylab up" in message and "--context CTX --namespace NS" in message


def test_without_context_the_lab_context_is_used_when_canarylab_created_it(lab_cache: Path, tmp_path: Path) -> None:
    created_lab(lab_cache)
    kc = kubeconfig_with(tmp_path / "kc", "prod", "kind-canarylab", current="prod")
    target = config.resolve(None, str(kc))
    assert (target.context, target.created_by_canarylab) == ("kind-canarylab", True)
    assert target.server == "https://kind-canarylab.example:6443"
    config.check_namespaces(target, [], readonly=False)  # the lab's own cluster: every namespace


def test_a_named_foreign_context_needs_namespaces_unless_readonly(lab_cache: Path, tmp_path: Path) -> None:
    kc = kubeconfig_with(tmp_path / "kc", "prod")
    target = config.resolve("prod", str(kc))
    assert not target.created_by_canarylab
    with pytest.raises(UserError, match="--namespace NS"):
        config.check_namespaces(target, [], readonly=False)
    config.check_namespaces(target, ["team-a"], readonly=False)
    config.check_namespaces(target, [], readonly=True)


def test_an_unknown_context_lists_the_known_ones(lab_cache: Path, tmp_path: Path) -> None:
    kc = kubeconfig_with(tmp_path / "kc", "prod", "staging")
    with pytest.raises(UserError, match=r"'nope' is not in your kubeconfig .* contexts there: prod, staging"):
        config.resolve("nope", str(kc))


def test_the_lab_limits_writes_to_the_named_namespaces(lab_cache: Path, tmp_path: Path) -> None:
    lab = KubeLab("prod", ["team-a", "team-a"], kubeconfig=str(kubeconfig_with(tmp_path / "kc", "prod")))
    assert lab.namespaces == ["team-a"]
    assert lab.supports_faults is False


def test_the_engine_command_refuses_a_foreign_context_without_namespaces(
        lab_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig_with(tmp_path / "kc", "prod")))
    code = main(["engine", "--context", "prod"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("canarylab: context 'prod' was not created by canarylab")
    assert "Traceback" not in err


def test_the_engine_command_without_any_lab_explains_itself(
        lab_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing-kubeconfig"))
    assert main(["engine"]) == 2
    assert "canarylab up" in capsys.readouterr().err


@pytest.mark.timeout(20)
async def test_the_ui_lab_reports_an_unreachable_server_at_start(lab_cache: Path, tmp_path: Path) -> None:
    port = free_port()
    kc = tmp_path / "kc"
    kc.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "lab",
        "clusters": [{"name": "lab", "cluster": {"server": f"http://127.0.0.1:{port}"}}],
        "users": [{"name": "lab", "user": {"token": "t"}}],
        "contexts": [{"name": "lab", "context": {"cluster": "lab", "user": "lab"}}],
    }))
    lab = KubeLab("lab", ["test"], kubeconfig=str(kc))
    with pytest.raises(UserError, match=f"context 'lab' at http://127.0.0.1:{port} \\(connection refused\\)"):
        await lab.start()
    await lab.stop()
