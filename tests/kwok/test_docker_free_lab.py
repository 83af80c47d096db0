"""The Docker-free lab as a learner uses it: `canarylab up --runtime kwok`, plain kubectl after
`eval "$(canarylab env)"`, `canarylab engine --namespace test`, the seed's `kubectl set image`, `canarylab down`.

Real parts only: the control plane binaries (``make substrate`` or ``canarylab tools install --runtime kwok``),
the ``prometheus`` binary, the lab daemon in the background. When a binary is missing the test fails naming the
fix. Every wait is bounded; on failure the lab's log is shown.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from canarylab.controlplane import Binaries, MissingBinaries
from canarylab.controlplane.binaries import substrate_cache

pytestmark = pytest.mark.timeout(420)

CANARYLAB = [sys.executable, "-m", "canarylab.cli"]

FAST_CANARY = """\
# The seed's Canary with a 10 s interval and one 50 % step, so a run takes about a minute.
apiVersion: flagger.app/v1beta1
kind: Canary
metadata: {name: podinfo, namespace: test}
spec:
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: podinfo}
  autoscalerRef: {apiVersion: autoscaling/v2beta2, kind: HorizontalPodAutoscaler, name: podinfo}
  progressDeadlineSeconds: 60
  service: {port: 9898, targetPort: 9898}
  analysis:
    interval: 10s
    threshold: 5
    maxWeight: 50
    stepWeight: 50
    metrics:
    - {name: request-success-rate, thresholdRange: {min: 99}, interval: 1m}
    - {name: request-duration, thresholdRange: {max: 500}, interval: 30s}
    webhooks:
    - name: acceptance-test
      type: pre-rollout
      url: http://flagger-loadtester.test/
      timeout: 30s
      metadata: {type: bash, cmd: "curl -sd 'test' http://podinfo-canary.test:9898/token | grep token"}
    - name: load-test
      type: rollout
      url: http://flagger-loadtester.test/
      metadata: {cmd: "hey -z 2m -q 10 -c 2 http://podinfo-canary.test:9898/"}
"""


def require_binaries() -> None:
    """Fail (never skip) naming the fix when the lab's binaries are missing."""
    try:
        Binaries.locate()
    except MissingBinaries as err:
        pytest.fail(f"the Docker-free lab test needs the control plane binaries: {err}", pytrace=False)
    if shutil.which("prometheus") is None:
        pytest.fail("the Docker-free lab test needs the prometheus binary: apt-get install prometheus",
                    pytrace=False)


class User:
    """A learner's shell: its own HOME (with a kubeconfig of their own) and canarylab cache."""

    def __init__(self, tmp_path: Path) -> None:
        self.home = tmp_path / "home"
        self.cache = tmp_path / "cache"
        (self.home / ".kube").mkdir(parents=True)
        self.own_kubeconfig = self.home / ".kube" / "config"
        self.own_kubeconfig.write_text(
            "apiVersion: v1\nkind: Config\ncurrent-context: mine\nclusters:\n- name: mine\n  cluster: {server: "
            "'https://192.0.2.1:6443'}\ncontexts:\n- name: mine\n  context: {cluster: mine, user: me}\nusers:\n"
            "- name: me\n  user: {token: secret}\n")
        self.env = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "XDG_CACHE_HOME")}
        self.env.update(HOME=str(self.home), CANARYLAB_CACHE_DIR=str(self.cache),
                        CANARYLAB_SUBSTRATE_CACHE=str(substrate_cache()), PYTHONUNBUFFERED="1")

    def run(self, *argv: str, env: dict[str, str] | None = None,
            timeout: float = 240) -> subprocess.CompletedProcess[str]:
        return subprocess.run(list(argv), env=env or self.env, capture_output=True, text=True, timeout=timeout,
                              check=False)

    def canarylab(self, *args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
        return self.run(*CANARYLAB, *args, timeout=timeout)

    def lab_env(self) -> dict[str, str]:
        """The environment after `eval "$(canarylab env)"`."""
        done = self.canarylab("env")
        assert done.returncode == 0, done.stderr
        env = dict(self.env)
        for line in done.stdout.splitlines():
            if line.startswith("export "):
                name, _, value = line.removeprefix("export ").partition("=")
                words = shlex.split(value.replace('"$PATH"', "\0PATH\0"))
                env[name] = "".join(words).replace("\0PATH\0", self.env["PATH"])
        return env

    def log_tail(self) -> str:
        log = self.cache / "kwok" / "logs" / "lab.log"
        return log.read_text()[-6000:] if log.exists() else "(no lab log)"


def wait_for(what: str, check: Callable[[], bool], timeout: float, user: User, every: float = 1.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(every)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}\n--- lab log ---\n{user.log_tail()}",
                pytrace=False)


def listening(url: str) -> bool:
    parts = urlsplit(url)
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((parts.hostname or "127.0.0.1", parts.port or 80)) == 0


@pytest.fixture
def user(tmp_path: Path) -> Iterator[User]:
    require_binaries()
    learner = User(tmp_path)
    try:
        yield learner
    finally:
        learner.canarylab("down", timeout=120)  # whatever happened, leave nothing running


def test_up_kubectl_set_image_promotes_and_down_leaves_nothing(user: User) -> None:
    # given a learner without Docker: `canarylab up --runtime kwok` starts the lab in the background
    own = user.own_kubeconfig.read_text()
    began = time.monotonic()
    up = user.canarylab("up", "--runtime", "kwok")
    assert up.returncode == 0, f"{up.stdout}\n{up.stderr}\n--- lab log ---\n{user.log_tail()}"
    assert "The Docker-free lab is up (context canarylab-kwok)" in up.stdout
    assert "installing the seed" in up.stdout
    assert time.monotonic() - began < 120
    record = json.loads((user.cache / "kwok" / "lab" / "lab.json").read_text())
    # a second `up` says it is up, and starts nothing
    again = user.canarylab("up", "--runtime", "kwok")
    assert again.returncode == 0 and "already up" in again.stdout
    # when they `eval "$(canarylab env)"`, plain kubectl talks to the lab
    env = user.lab_env()
    assert Path(env["KUBECONFIG"]).is_file() and env["KUBECONFIG"] != str(user.own_kubeconfig)
    context = user.run("kubectl", "config", "current-context", env=env)
    assert context.stdout.strip() == "canarylab-kwok"
    kubectl_path = user.run("sh", "-c", "command -v kubectl", env=env).stdout.strip()
    assert kubectl_path == record["kubectl"]

    def podinfo_running() -> bool:
        pods = user.run("kubectl", "-n", "test", "get", "pods", "-l", "app=podinfo", "--no-headers", env=env).stdout
        lines = [line.split() for line in pods.splitlines()]
        return len(lines) >= 1 and all(cols[1] == "1/1" and cols[2] == "Running" for cols in lines)

    wait_for("kubectl get pods to show podinfo Running", podinfo_running, 60, user)
    # the seed tutorial's Canary, made quick for a test
    applied = subprocess.run(["kubectl", "apply", "-f", "-"], input=FAST_CANARY, env=env, capture_output=True,
                             text=True, timeout=60)
    assert applied.returncode == 0, applied.stderr
    # the engine, as the learner starts it: no --context, it finds the lab by itself
    out = user.home / "engine.out"
    with out.open("w") as sink:
        engine = subprocess.Popen([*CANARYLAB, "engine", "--namespace", "test"], env=user.env, stdout=sink,
                                  stderr=subprocess.STDOUT, text=True)
    try:
        def phase() -> str:
            got = user.run("kubectl", "-n", "test", "get", "canary", "podinfo", "-o",
                           "jsonpath={.status.phase}", env=env)
            return got.stdout.strip()

        wait_for("the Canary to be Initialized", lambda: phase() == "Initialized", 90, user)
        services = user.run("kubectl", "-n", "test", "get", "svc", "-o", "name", env=env).stdout
        assert {"service/podinfo", "service/podinfo-canary", "service/podinfo-primary"} <= set(services.split())
        # the seed's own command
        bump = user.run("kubectl", "-n", "test", "set", "image", "deployment/podinfo",
                        "podinfod=stefanprodan/podinfo:3.1.1", env=env)
        assert bump.returncode == 0, bump.stderr
        wait_for("the Canary to be Succeeded", lambda: phase() == "Succeeded", 180, user, every=2.0)
        events = out.read_text()
        for message in ("New revision detected! Scaling up podinfo.test", "Pre-rollout check acceptance-test passed",
                        "Advance podinfo.test canary weight 50", "Copying podinfo.test template spec to "
                        "podinfo-primary.test", "Promotion completed! Scaling down podinfo.test"):
            assert message in events, f"{message!r} not in the engine's output:\n{events}"
        image = user.run("kubectl", "-n", "test", "get", "deploy", "podinfo-primary", "-o",
                         "jsonpath={.spec.template.spec.containers[0].image}", env=env).stdout
        assert image == "stefanprodan/podinfo:3.1.1"
        # the checks were answered by the lab's real Prometheus, which scrapes the simulated Linkerd metrics
        query = httpx.get(f"{record['prometheus']}/api/v1/query", params={"query": "sum(response_total)"})
        assert query.json()["data"]["result"], query.text
    finally:
        engine.send_signal(signal.SIGINT)
        try:
            engine.wait(15)
        except subprocess.TimeoutExpired:
            engine.kill()
    # when they run `canarylab down`, everything the lab started is gone
    down = user.canarylab("down", timeout=120)
    assert down.returncode == 0 and "stopped" in down.stdout, down.stdout + down.stderr
    for name, pid in record["pids"].items():
        cmdline = Path(f"/proc/{pid}/cmdline")
        assert not cmdline.exists() or name not in cmdline.read_bytes().decode(errors="replace"), name
    for url in (record["server"], record["prometheus"], record["gateway"]):
        assert not listening(url), url
    assert not (user.cache / "kwok" / "lab").exists()
    assert (user.cache / "kwok" / "logs" / "lab.log").exists()  # the logs stay for a post-mortem
    # and nothing else was touched: the learner's own kubeconfig is byte for byte as it was
    assert user.own_kubeconfig.read_text() == own
    # down is idempotent, and the lab's commands say it is not up (exit 2)
    assert user.canarylab("down").returncode == 0
    env_now = user.canarylab("env")
    assert env_now.returncode == 2 and "not up" in env_now.stderr and "canarylab up --runtime kwok" in env_now.stderr


def test_clear_errors_before_anything_starts(tmp_path: Path) -> None:
    require_binaries()
    learner = User(tmp_path)
    # the lab is not up: the engine says how to start it
    engine = learner.canarylab("engine", "--namespace", "test", timeout=30)
    assert engine.returncode == 2 and "canarylab up --runtime kwok" in engine.stderr
    # a port in use is named, with the fix
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        up = learner.canarylab("up", "--runtime", "kwok", "--prometheus-port", str(port), timeout=30)
    assert up.returncode == 2 and f"127.0.0.1:{port} is in use" in up.stderr and "Traceback" not in up.stderr
    # missing binaries: what is missing, and how to get it
    bare = dict(learner.env, CANARYLAB_SUBSTRATE_CACHE=str(tmp_path / "empty"), PATH="/usr/bin:/bin")
    (tmp_path / "empty").mkdir()
    kubectl_on_path = shutil.which("kubectl", path=bare["PATH"])
    missing = learner.run(*CANARYLAB, "up", "--runtime", "kwok", env=bare, timeout=30)
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    assert "kube-apiserver" in missing.stderr and "canarylab tools install --runtime kwok" in missing.stderr
    assert kubectl_on_path is not None or "kubectl" in missing.stderr
    doctor = learner.run(*CANARYLAB, "doctor", "--runtime", "kwok", env=bare, timeout=30)
    assert doctor.returncode == 1 and "× kube-apiserver: not found" in doctor.stdout
    assert "canarylab tools install --runtime kwok" in doctor.stdout and "Docker is not needed" in doctor.stdout
    # nothing was started or written for the lab
    assert not (learner.cache / "kwok" / "lab").exists()
