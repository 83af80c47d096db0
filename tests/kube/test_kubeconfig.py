"""Malformed kubeconfigs (issue 14): one clear paragraph naming the file, the entry and the fix, exit 2.

Each case is a kubeconfig a user could really have (binary junk, wrong types, a context naming a missing
cluster, broken certificates), given to ``canarylab engine``/``ui`` as a user runs them. The certificates of the
valid parts are real (generated with ``cryptography``), so only the broken part is broken.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from canarylab.cli import main
from canarylab.kube.config import resolve
from canarylab.kube.lab import KubeLab
from tests.kube.apiserver import ApiServer


def _cert(name: str, key: ec.EllipticCurvePrivateKey, issuer_key: ec.EllipticCurvePrivateKey | None = None,
          ca: bool = False) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test-ca")]) if issuer_key else subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=30)))
    if ca:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    return builder.sign(issuer_key or key, hashes.SHA256())


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


CA_KEY = ec.generate_private_key(ec.SECP256R1())
CA_PEM = _cert("test-ca", CA_KEY, ca=True).public_bytes(serialization.Encoding.PEM)
CLIENT_KEY = ec.generate_private_key(ec.SECP256R1())
CLIENT_CERT_PEM = _cert("admin", CLIENT_KEY, CA_KEY).public_bytes(serialization.Encoding.PEM)
CLIENT_KEY_PEM = CLIENT_KEY.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption())
OTHER_KEY_PEM = ec.generate_private_key(ec.SECP256R1()).private_bytes(
    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())

GOOD: dict[str, Any] = {
    "apiVersion": "v1", "kind": "Config", "current-context": "prod",
    "clusters": [{"name": "prod", "cluster": {"server": "https://127.0.0.1:1",
                                              "certificate-authority-data": _b64(CA_PEM)}}],
    "users": [{"name": "admin", "user": {"client-certificate-data": _b64(CLIENT_CERT_PEM),
                                         "client-key-data": _b64(CLIENT_KEY_PEM)}}],
    "contexts": [{"name": "prod", "context": {"cluster": "prod", "user": "admin"}}],
}


def _edit(change: Callable[[dict[str, Any]], object]) -> str:
    config = copy.deepcopy(GOOD)
    change(config)
    return json.dumps(config)


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def apply(config: dict[str, Any]) -> None:
        node: Any = config
        keys = path.split("/")
        for k in keys[:-1]:
            node = node[int(k)] if isinstance(node, list) else node[k]
        if value is _DELETE:
            del node[keys[-1]]
        else:
            node[int(keys[-1]) if isinstance(node, list) else keys[-1]] = value

    return apply


_DELETE = object()

# (id, file content, words the message must hold besides the file name)
CASES: list[tuple[str, str | bytes, list[str]]] = [
    ("random-bytes", bytes(range(256)) * 4, ["not UTF-8", "KUBECONFIG"]),
    ("clusters-42", _edit(_set("clusters", 42)), ["clusters must be a list", "a number (42)"]),
    ("contexts-a-string", _edit(_set("contexts", "prod")), ["contexts must be a list"]),
    ("a-context-that-is-a-number", _edit(_set("contexts/0", 7)), ["contexts[0]", "Fix or remove"]),
    ("a-context-without-name", _edit(_set("contexts/0/name", _DELETE)), ["contexts[0]", "without a name"]),
    ("top-level-list", json.dumps([GOOD]), ["top level is a list"]),
    ("invalid-yaml", "clusters: [\n  - name: prod\n  cluster: {", ["not valid YAML", "line"]),
    ("current-context-a-list", _edit(_set("current-context", ["prod"])), ["current-context", "use-context"]),
    ("context-without-cluster", _edit(_set("contexts/0/context/cluster", _DELETE)),
     ["context 'prod' names no cluster", "kubectl config set-context prod"]),
    ("context-without-user", _edit(_set("contexts/0/context/user", _DELETE)), ["context 'prod' names no user"]),
    ("context-names-a-missing-cluster", _edit(_set("contexts/0/context/cluster", "staging")),
     ["names the cluster 'staging', which is not in your kubeconfig", "clusters: prod"]),
    ("context-names-a-missing-user", _edit(_set("contexts/0/context/user", "root")),
     ["names the user 'root'", "users: admin"]),
    ("no-users-at-all", _edit(_set("users", _DELETE)), ["names the user 'admin'", "users: none"]),
    ("cluster-without-server", _edit(_set("clusters/0/cluster/server", _DELETE)),
     ["cluster 'prod' has no server URL", "kubectl config set-cluster prod"]),
    ("server-not-a-url", _edit(_set("clusters/0/cluster/server", "prod.example:6443")), ["not an http(s) URL"]),
    ("cluster-a-string", _edit(_set("clusters/0/cluster", "https://x")), ["clusters[0]", "must be a mapping"]),
    ("ca-not-base64", _edit(_set("clusters/0/cluster/certificate-authority-data", "%%%not base64%%%")),
     ["certificate-authority-data is not valid base64"]),
    ("ca-not-pem", _edit(_set("clusters/0/cluster/certificate-authority-data", _b64(b"hello"))),
     ["does not hold PEM data"]),
    ("ca-pem-garbage", _edit(_set("clusters/0/cluster/certificate-authority-data",
                                  _b64(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"))),
     ["certificate-authority-data is not a usable certificate"]),
    ("ca-a-number", _edit(_set("clusters/0/cluster/certificate-authority-data", 12)), ["must be base64 text"]),
    ("ca-file-missing", _edit(lambda c: c["clusters"][0]["cluster"].update({"certificate-authority-data": None,
                                                         "certificate-authority": "/nonexistent/ca.crt"})),
     ["certificate-authority '/nonexistent/ca.crt' is not a file"]),
    ("client-cert-without-key", _edit(_set("users/0/user/client-key-data", _DELETE)),
     ["user 'admin' has one half of a client certificate", "client-key-data is missing"]),
    ("client-key-of-another-cert", _edit(_set("users/0/user/client-key-data", _b64(OTHER_KEY_PEM))),
     ["not a usable certificate and key", "kubectl config set-credentials admin"]),
    ("client-cert-garbage", _edit(_set("users/0/user/client-certificate-data", _b64(b"-----BEGIN x\n"))),
     ["not a usable certificate and key"]),
    ("token-a-mapping", _edit(lambda c: c["users"][0].update(user={"token": {"a": 1}})), ["token must be text"]),
    ("exec-without-command", _edit(lambda c: c["users"][0].update(user={"exec": {"args": []}})),
     ["exec must be a mapping with a command"]),
]


@pytest.fixture
def kubeconfig_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str | bytes], Path]:
    monkeypatch.setenv("CANARYLAB_CACHE_DIR", str(tmp_path / "cache"))

    def write(content: str | bytes) -> Path:
        path = tmp_path / "kubeconfig"
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
        monkeypatch.setenv("KUBECONFIG", str(path))
        return path

    return write


@pytest.mark.parametrize(("content", "words"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_malformed_kubeconfig_is_one_paragraph_naming_file_entry_and_fix(
        kubeconfig_env: Callable[[str | bytes], Path], capsys: pytest.CaptureFixture[str],
        content: str | bytes, words: list[str]) -> None:
    path = kubeconfig_env(content)
    assert main(["engine", "--context", "prod", "--namespace", "test"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.count("\n") == 1, f"one paragraph, got: {err!r}"
    assert str(path) in err
    for word in words:
        assert word in err


def test_the_good_kubeconfig_of_these_cases_passes_the_checks(kubeconfig_env: Callable[[str | bytes], Path]) -> None:
    """The cases differ from a usable kubeconfig only in what they break."""
    kubeconfig_env(json.dumps(GOOD))
    assert resolve("prod").server == "https://127.0.0.1:1"


@pytest.mark.parametrize("command", [["ui", "--context", "prod", "-n", "test"], ["engine", "--json"]])
def test_ui_and_engine_without_context_report_a_broken_file_too(
        kubeconfig_env: Callable[[str | bytes], Path], capsys: pytest.CaptureFixture[str], command: list[str]) -> None:
    path = kubeconfig_env(_edit(_set("clusters", 42)))
    assert main(command) == 2
    err = capsys.readouterr().err
    assert str(path) in err and "clusters must be a list" in err and "Traceback" not in err


def test_a_second_file_in_kubeconfig_is_named_when_it_holds_the_broken_entry(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("CANARYLAB_CACHE_DIR", str(tmp_path / "cache"))
    first, second = tmp_path / "a.yaml", tmp_path / "b.yaml"
    first.write_text(_edit(lambda c: c.update(clusters=[], users=[])))
    second.write_text(_edit(_set("clusters/0/cluster/server", "not a url")))
    monkeypatch.setenv("KUBECONFIG", f"{first}{os.pathsep}{second}")
    assert main(["engine", "--context", "prod", "-n", "test"]) == 2
    err = capsys.readouterr().err
    assert f"the kubeconfig {second}: cluster 'prod'" in err


async def test_a_kubeconfig_without_current_context_works_with_context(
        apiserver: ApiServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No current-context is fine when --context names one (kubectl agrees); it used to fail with only
    ``'current-context'``."""
    monkeypatch.setenv("CANARYLAB_CACHE_DIR", str(tmp_path / "cache"))
    path = tmp_path / "kubeconfig"
    path.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "kmock", "cluster": {"server": str(apiserver.url).rstrip("/")}}],
        "users": [{"name": "kmock", "user": {"token": "kmock-token"}}],
        "contexts": [{"name": "kmock", "context": {"cluster": "kmock", "user": "kmock"}}],
    }))
    monkeypatch.setenv("KUBECONFIG", str(path))
    lab = KubeLab("kmock", ["test"])
    cluster = await lab.connect()
    assert cluster.context == "kmock"


def test_a_kubeconfig_without_current_context_and_no_context_says_what_to_do(
        kubeconfig_env: Callable[[str | bytes], Path]) -> None:
    kubeconfig_env(_edit(_set("current-context", _DELETE)))
    env = {**os.environ}
    out = subprocess.run([sys.executable, "-m", "canarylab.cli", "engine"], capture_output=True, text=True,
                         env=env, timeout=60)
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    assert "canarylab up" in out.stderr and "--context CTX --namespace NS" in out.stderr
