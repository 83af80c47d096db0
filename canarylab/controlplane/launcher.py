"""Start a real Kubernetes control plane on 127.0.0.1: etcd, kube-apiserver, kube-controller-manager,
kube-scheduler and KWOK (fake nodes whose pods become Running and Ready by KWOK's default stages).

Every component runs in its own process group with its log under ``<state_dir>/logs``; every wait is bounded,
and a component that exits or does not become healthy raises :class:`ControlPlaneError` with the tail of its
log. ``stop()`` ends every process group it started, and nothing else. The logs stay for a post-mortem.
"""

from __future__ import annotations

import base64
import contextlib
import os
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import yaml

from canarylab.controlplane.binaries import Binaries
from canarylab.controlplane.pki import SERVER_NAMES, SERVICE_IP, Authority, Pair, service_account_keys
from canarylab.errors import UserError

Progress = Callable[[str], None]

KWOK_ANNOTATION = "kwok.x-k8s.io/node"
"""Nodes with ``kwok.x-k8s.io/node=fake`` are KWOK's (and only those: it never touches another node)."""

SERVICE_CIDR = "10.96.0.0/16"
POD_CIDR = "10.244.0.0/16"


class ControlPlaneError(UserError):
    """A component failed to start or stay up: ``component`` names it, ``log_tail`` is the end of its log."""

    def __init__(self, component: str, problem: str, *, log: Path | None = None, log_tail: str = "") -> None:
        self.component = component
        self.log = log
        self.log_tail = log_tail
        where = f" (log: {log})" if log else ""
        tail = "\n--- last lines of its log ---\n" + log_tail if log_tail else ""
        super().__init__(f"{component} {problem}{where}{tail}", exit_code=1)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tail(path: Path, lines: int = 25) -> str:
    """The last ``lines`` lines of a log file ("" when it does not exist)."""
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 64 * 1024))
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


@dataclass
class Component:
    """One process of the control plane: its command line, its log, and how to tell it is healthy."""

    name: str
    argv: list[str]
    log: Path
    health: str
    """URL that answers 200 ``ok`` when the component is ready."""
    client: dict[str, Any] = field(default_factory=dict)
    """httpx client arguments for the health check (CA, client certificate)."""
    timeout: float = 60.0
    proc: subprocess.Popen[bytes] | None = None
    env: dict[str, str] | None = None

    def start(self) -> None:
        """Launch in a new session (its own process group), appending to its log."""
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            out.write(f"\n=== {time.strftime('%H:%M:%S')} {' '.join(self.argv)}\n".encode())
            out.flush()
            self.proc = subprocess.Popen(self.argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=True, env=self.env)

    def running(self) -> bool:
        """Started and not exited."""
        return self.proc is not None and self.proc.poll() is None

    def failure(self, problem: str) -> ControlPlaneError:
        """An error naming this component, with the tail of its log."""
        return ControlPlaneError(self.name, problem, log=self.log, log_tail=tail(self.log))

    def wait_healthy(self, deadline: float | None = None) -> None:
        """Poll ``health`` until it answers 200; raise if the process exits or the time runs out."""
        end = deadline if deadline is not None else time.monotonic() + self.timeout
        last = "no answer yet"
        with httpx.Client(timeout=2.0, **self.client) as http:
            while True:
                if self.proc is None or self.proc.poll() is not None:
                    code = None if self.proc is None else self.proc.returncode
                    raise self.failure(f"exited with code {code} while starting")
                try:
                    answer = http.get(self.health)
                    if answer.status_code == 200:
                        return
                    last = f"{self.health} answered {answer.status_code}: {answer.text.strip()[-300:]}"
                except httpx.HTTPError as err:
                    last = f"{self.health}: {type(err).__name__} {err}"
                if time.monotonic() > end:
                    raise self.failure(f"was not healthy after {self.timeout:g}s ({last})")
                time.sleep(0.1)

    def stop(self, grace: float = 5.0) -> None:
        """SIGTERM the process group, SIGKILL it after ``grace`` seconds; reap the process."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
        # Children the component may have left in its group.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)


def tls_context(ca: Path, client: Pair) -> ssl.SSLContext:
    """Trust ``ca`` and present ``client``'s certificate (httpx's ``cert=`` is deprecated)."""
    context = ssl.create_default_context(cafile=str(ca))
    context.load_cert_chain(str(client.cert), str(client.key))
    return context


def kubeconfig_yaml(name: str, server: str, ca: Path, client: Pair, user: str) -> str:
    """A kubeconfig with one cluster, user and context, credentials embedded (as kind writes them)."""

    def b64(path: Path) -> str:
        return base64.b64encode(path.read_bytes()).decode()

    return yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "preferences": {},
        "clusters": [{"name": name, "cluster": {"server": server, "certificate-authority-data": b64(ca)}}],
        "users": [{"name": user, "user": {"client-certificate-data": b64(client.cert),
                                          "client-key-data": b64(client.key)}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": user}}],
        "current-context": name,
    }, sort_keys=False)


def kwok_node(name: str) -> dict[str, Any]:
    """A Node for KWOK to manage (no taint: every pod in this cluster is simulated)."""
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "annotations": {KWOK_ANNOTATION: "fake", "node.alpha.kubernetes.io/ttl": "0"},
                     "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
                                "kubernetes.io/arch": "amd64", "type": "kwok"}},
        "status": {"capacity": {"cpu": "32", "memory": "256Gi", "pods": "500"},
                   "allocatable": {"cpu": "32", "memory": "256Gi", "pods": "500"},
                   "nodeInfo": {"architecture": "amd64", "operatingSystem": "linux", "kubeletVersion": "fake",
                                "kubeProxyVersion": "fake", "containerRuntimeVersion": "kwok"}},
    }


class ControlPlane:
    """A local Kubernetes control plane under ``state_dir`` (certs in ``pki/``, data in ``etcd/``, ``logs/``).

    ``binaries``: where the executables are (default :meth:`Binaries.locate`); ``nodes``: how many KWOK nodes
    to register; ``context``: the name of the context (and cluster) in the admin kubeconfig
    ``<state_dir>/kubeconfig``. Use as a context manager, or call :meth:`start` and :meth:`stop`.
    """

    def __init__(self, state_dir: Path | str, *, binaries: Binaries | None = None, nodes: int = 1,
                 context: str = "canarylab-kwok") -> None:
        self.state_dir = Path(state_dir)
        self._binaries = binaries
        self.nodes = nodes
        self.context = context
        self.logs_dir = self.state_dir / "logs"
        self.pki_dir = self.state_dir / "pki"
        self.kubeconfig = self.state_dir / "kubeconfig"
        self.server = ""
        self.components: dict[str, Component] = {}
        self.timings: dict[str, float] = {}
        """Seconds each phase took in the last :meth:`start` (``total`` included)."""
        self._admin: Pair | None = None
        self._ca: Path | None = None

    # ------------------------------------------------------------------------------- lifecycle

    def __enter__(self) -> ControlPlane:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    @property
    def binaries(self) -> Binaries:
        """The executables (located on first use)."""
        if self._binaries is None:
            self._binaries = Binaries.locate()
        return self._binaries

    def start(self, progress: Progress | None = None) -> None:
        """Start every component and register the KWOK nodes; on failure stop what started and raise
        :class:`ControlPlaneError` (or :class:`~canarylab.controlplane.binaries.MissingBinaries`)."""
        say = progress or (lambda line: None)
        began = time.monotonic()
        binaries = self.binaries
        try:
            self._prepare()
            mark = time.monotonic()
            self._start("etcd")
            self.components["etcd"].wait_healthy()
            self.timings["etcd"] = time.monotonic() - mark
            say(f"etcd ready ({self.timings['etcd']:.1f}s)")
            mark = time.monotonic()
            self._start("kube-apiserver")
            self.components["kube-apiserver"].wait_healthy()
            self.timings["kube-apiserver"] = time.monotonic() - mark
            say(f"kube-apiserver ready at {self.server} ({self.timings['kube-apiserver']:.1f}s)")
            mark = time.monotonic()
            rest = ("kube-controller-manager", "kube-scheduler", "kwok")
            for name in rest:
                self._start(name)
            for name in rest:
                self.components[name].wait_healthy()
            self.timings["controllers"] = time.monotonic() - mark
            say(f"kube-controller-manager, kube-scheduler and kwok ready ({self.timings['controllers']:.1f}s)")
            mark = time.monotonic()
            self._register_nodes()
            self.timings["nodes"] = time.monotonic() - mark
            say(f"{self.nodes} KWOK node(s) Ready ({self.timings['nodes']:.1f}s)")
        except BaseException:
            self.stop()
            raise
        self.timings["total"] = time.monotonic() - began
        del binaries

    def stop(self) -> None:
        """Stop every component (reverse start order); never raises. Logs and state stay on disk."""
        for name in reversed(list(self.components)):
            with contextlib.suppress(Exception):
                self.components[name].stop()

    def stop_component(self, name: str) -> None:
        """Stop one component (e.g. ``kube-apiserver`` to test a client riding out an outage)."""
        self._component(name).stop()

    def start_component(self, name: str, timeout: float | None = None) -> None:
        """Start a stopped component again with the same flags and ports, and wait until it is healthy."""
        component = self._component(name)
        if component.running():
            return
        component.start()
        component.wait_healthy(None if timeout is None else time.monotonic() + timeout)

    def restart_component(self, name: str) -> None:
        """Stop, then start one component."""
        self.stop_component(name)
        self.start_component(name)

    def _component(self, name: str) -> Component:
        if name not in self.components:
            raise KeyError(f"no component {name!r}; components: {', '.join(self.components)}")
        return self.components[name]

    def check(self) -> None:
        """Raise :class:`ControlPlaneError` for the first component that has exited."""
        for component in self.components.values():
            if component.proc is not None and component.proc.poll() is not None:
                raise component.failure(f"exited with code {component.proc.returncode}")

    # -------------------------------------------------------------------------------- clients

    def http(self, **kwargs: Any) -> httpx.Client:
        """An httpx client authenticated as the admin against :attr:`server` (for setup and tests)."""
        assert self._admin is not None and self._ca is not None, "start() first"
        return httpx.Client(base_url=self.server, verify=tls_context(self._ca, self._admin),
                            **{"timeout": 10.0, **kwargs})

    def kubectl(self, *args: str, input: str | None = None, timeout: float = 60.0,
                check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run the pinned kubectl against this control plane (``--kubeconfig`` and ``--context`` set)."""
        argv = [str(self.binaries.kubectl), "--kubeconfig", str(self.kubeconfig), "--context", self.context, *args]
        done = subprocess.run(argv, input=input, capture_output=True, text=True, timeout=timeout, check=False)
        if check and done.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)} failed ({done.returncode}): {done.stderr.strip()}")
        return done

    def env(self) -> dict[str, str]:
        """``KUBECONFIG`` for a child process that should talk to this control plane."""
        return {"KUBECONFIG": str(self.kubeconfig)}

    # ---------------------------------------------------------------------------------- setup

    def _prepare(self) -> None:
        for d in (self.state_dir, self.logs_dir):
            d.mkdir(parents=True, exist_ok=True)
        ca = Authority(self.pki_dir)
        self._ca = ca.pair.cert
        serving = ca.issue("kube-apiserver", "kube-apiserver", server=True,
                           ips=("127.0.0.1", SERVICE_IP), dns=SERVER_NAMES)
        self._admin = ca.issue("admin", "canarylab-admin", organization="system:masters")
        clients = {
            "kube-controller-manager": ca.issue("kube-controller-manager", "system:kube-controller-manager"),
            "kube-scheduler": ca.issue("kube-scheduler", "system:kube-scheduler"),
            # KWOK plays every kubelet; kwokctl gives it the admin's rights too.
            "kwok": self._admin,
        }
        sa = service_account_keys(self.pki_dir)
        ports = {name: free_port() for name in ("etcd", "etcd-peer", "kube-apiserver", "kube-controller-manager",
                                                "kube-scheduler", "kwok")}
        self.server = f"https://127.0.0.1:{ports['kube-apiserver']}"
        self.kubeconfig.write_text(kubeconfig_yaml(self.context, self.server, self._ca, self._admin,
                                                   f"{self.context}-admin"))
        self.kubeconfig.chmod(0o600)
        configs: dict[str, Path] = {}
        for name, pair in clients.items():
            configs[name] = self.state_dir / f"{name}.kubeconfig"
            configs[name].write_text(kubeconfig_yaml(self.context, self.server, self._ca, pair, name))
            configs[name].chmod(0o600)
        kwok_config = self.state_dir / "kwok.yaml"
        # An explicit config (no stages: KWOK then uses its default node and pod stages) keeps a user's
        # ~/.kwok/kwok.yaml out of the lab.
        kwok_config.write_text("apiVersion: config.kwok.x-k8s.io/v1alpha1\nkind: KwokConfiguration\noptions: {}\n")
        b = self.binaries
        etcd_url = f"http://127.0.0.1:{ports['etcd']}"
        peer_url = f"http://127.0.0.1:{ports['etcd-peer']}"
        admin_client = {"verify": tls_context(self._ca, self._admin)}
        self.components = {
            "etcd": Component("etcd", [
                str(b.etcd), "--name", "canarylab", "--data-dir", str(self.state_dir / "etcd"),
                "--listen-client-urls", etcd_url, "--advertise-client-urls", etcd_url,
                "--listen-peer-urls", peer_url, "--initial-advertise-peer-urls", peer_url,
                "--initial-cluster", f"canarylab={peer_url}", "--unsafe-no-fsync", "--log-level", "warn",
                "--quota-backend-bytes", str(2 * 1024**3),
            ], self.logs_dir / "etcd.log", f"{etcd_url}/health", timeout=30.0),
            "kube-apiserver": Component("kube-apiserver", [
                str(b.kube_apiserver), "--etcd-servers", etcd_url,
                "--bind-address", "127.0.0.1", "--advertise-address", "127.0.0.1",
                "--secure-port", str(ports["kube-apiserver"]),
                "--tls-cert-file", str(serving.cert), "--tls-private-key-file", str(serving.key),
                "--client-ca-file", str(self._ca),
                "--service-account-issuer", "https://kubernetes.default.svc.cluster.local",
                "--service-account-key-file", str(sa.cert), "--service-account-signing-key-file", str(sa.key),
                "--api-audiences", "https://kubernetes.default.svc.cluster.local",
                "--authorization-mode", "Node,RBAC", "--enable-admission-plugins", "NodeRestriction",
                "--service-cluster-ip-range", SERVICE_CIDR, "--allow-privileged=true",
                "--profiling=false", "--cert-dir", str(self.pki_dir / "apiserver"),
            ], self.logs_dir / "kube-apiserver.log", f"{self.server}/readyz", admin_client, timeout=90.0),
            "kube-controller-manager": Component("kube-controller-manager", [
                str(b.kube_controller_manager), "--kubeconfig", str(configs["kube-controller-manager"]),
                "--authentication-kubeconfig", str(configs["kube-controller-manager"]),
                "--authorization-kubeconfig", str(configs["kube-controller-manager"]),
                "--bind-address", "127.0.0.1", "--secure-port", str(ports["kube-controller-manager"]),
                "--cert-dir", str(self.pki_dir / "kube-controller-manager"),
                "--service-account-private-key-file", str(sa.key), "--root-ca-file", str(self._ca),
                "--use-service-account-credentials=true", "--leader-elect=false",
                "--cluster-signing-cert-file", str(ca.pair.cert), "--cluster-signing-key-file", str(ca.pair.key),
                "--service-cluster-ip-range", SERVICE_CIDR, "--allocate-node-cidrs=false",
                # HPAs act within seconds, not the default 15 s (a lab, not a production cluster)
                "--horizontal-pod-autoscaler-sync-period=3s", "--profiling=false",
            ], self.logs_dir / "kube-controller-manager.log",
                f"https://127.0.0.1:{ports['kube-controller-manager']}/healthz", {"verify": False}, timeout=60.0),
            "kube-scheduler": Component("kube-scheduler", [
                str(b.kube_scheduler), "--kubeconfig", str(configs["kube-scheduler"]),
                "--authentication-kubeconfig", str(configs["kube-scheduler"]),
                "--authorization-kubeconfig", str(configs["kube-scheduler"]),
                "--bind-address", "127.0.0.1", "--secure-port", str(ports["kube-scheduler"]),
                "--cert-dir", str(self.pki_dir / "kube-scheduler"), "--leader-elect=false", "--profiling=false",
            ], self.logs_dir / "kube-scheduler.log",
                f"https://127.0.0.1:{ports['kube-scheduler']}/readyz", {"verify": False}, timeout=60.0),
            "kwok": Component("kwok", [
                str(b.kwok), "--config", str(kwok_config), "--kubeconfig", str(configs["kwok"]),
                "--manage-all-nodes=false", f"--manage-nodes-with-annotation-selector={KWOK_ANNOTATION}=fake",
                "--cidr", POD_CIDR, "--node-ip", "127.0.0.1",
                # KWOK renews a Lease per node; without it the node-lifecycle controller sees no heartbeat
                # after its 40 s grace period, marks the nodes Unknown and every pod NotReady.
                "--node-lease-duration-seconds", "40",
                "--server-address", f"127.0.0.1:{ports['kwok']}",
            ], self.logs_dir / "kwok.log", f"http://127.0.0.1:{ports['kwok']}/healthz", timeout=30.0),
        }

    def _start(self, name: str) -> None:
        self.components[name].start()

    def _register_nodes(self, timeout: float = 30.0) -> None:
        names = [f"kwok-node-{i}" for i in range(self.nodes)]
        with self.http() as http:
            for name in names:
                answer = http.post("/api/v1/nodes", json=kwok_node(name))
                if answer.status_code not in (201, 409):
                    raise ControlPlaneError("kube-apiserver", f"refused to register node {name}: "
                                            f"{answer.status_code} {answer.text.strip()[:300]}",
                                            log=self.components["kube-apiserver"].log)
            end = time.monotonic() + timeout
            while True:
                ready = set()
                for item in http.get("/api/v1/nodes", params={"labelSelector": "type=kwok"}).json().get("items", []):
                    conditions = (item.get("status") or {}).get("conditions") or []
                    if any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions):
                        ready.add(item["metadata"]["name"])
                if ready >= set(names):
                    return
                self.check()
                if time.monotonic() > end:
                    raise self.components["kwok"].failure(
                        f"did not make node(s) {', '.join(sorted(set(names) - ready))} Ready within {timeout:g}s")
                time.sleep(0.2)
