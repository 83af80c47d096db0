"""The Docker-free lab's background process: ``python -m canarylab.kwok.daemon`` (started by ``canarylab up
--runtime kwok``, stopped by ``canarylab down``).

It starts, in order, and stops in reverse on SIGTERM:

1. the control plane (:mod:`canarylab.controlplane`: etcd, kube-apiserver, kube-controller-manager,
   kube-scheduler, KWOK with one node) with the admin kubeconfig and context ``canarylab-kwok``;
2. Flagger's CRDs and the SMI TrafficSplit CRD, applied with the pinned kubectl;
3. the simulated data plane attached to the API server (:class:`canarylab.sim.dataplane.AttachedDataPlane`):
   traffic, Linkerd metrics on 127.0.0.1, the loadtester, and the gateway through which the engine reaches the
   lab's Services;
4. a real Prometheus (the ``prometheus`` binary) scraping those metrics every second, reachable in the lab as
   ``http://prometheus.linkerd-viz:9090`` (a Service in namespace ``linkerd-viz`` the gateway forwards);
5. the seed's manifests (``bootstrap/workloads``: namespace ``test``, the loadtester, podinfo and its HPA, the
   Canary), then waits until podinfo and the loadtester are Available.

Progress goes to ``progress.log`` (``up`` prints it), everything to ``logs/lab.log``, and ``lab.json`` says
``ready`` (or ``failed`` with the reason) for ``up``, ``env``, ``engine`` and ``down``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from canarylab.errors import UserError
from canarylab.kwok import state
from canarylab.manifests import bootstrap_file

LINKERD_VIZ = """\
apiVersion: v1
kind: Namespace
metadata:
  name: linkerd-viz
---
# The lab's Prometheus. It runs on the host; the gateway of the simulated data plane forwards this Service to
# it, so the in-cluster URL Flagger uses with Linkerd (http://prometheus.linkerd-viz:9090) works unchanged.
apiVersion: v1
kind: Service
metadata:
  name: prometheus
  namespace: linkerd-viz
  labels: {app.kubernetes.io/managed-by: canarylab}
spec:
  ports:
  - {name: http, port: 9090, targetPort: 9090}
"""

CRDS = ("flagger.yaml", "smi-trafficsplit.yaml")
WORKLOADS = ("namespace.yaml", "loadtester.yaml", "podinfo.yaml", "podinfo-canary.yaml")
READY_TIMEOUT = 120.0

log = logging.getLogger("canarylab.kwok")


class Progress:
    """One line per step, to ``progress.log`` (which ``up`` follows) and the lab's log."""

    def __init__(self, path: Path, began: float) -> None:
        self.path = path
        self.began = began

    def __call__(self, line: str) -> None:
        text = f"[{time.monotonic() - self.began:5.1f}s] {line}"
        log.info(line)
        with self.path.open("a") as f:
            f.write(text + "\n")


def kubectl(binary: Path, kubeconfig: Path, *args: str, input: str | None = None,
            timeout: float = 120.0) -> str:
    """Run the pinned kubectl on the lab (never any other context); its output, or a UserError naming it."""
    # The discovery cache goes to the lab's directory, not ~/.kube/cache: the lab writes nothing of the user's.
    argv = [str(binary), "--kubeconfig", str(kubeconfig), "--context", state.CONTEXT,
            "--cache-dir", str(state.lab_dir() / "kube-cache"), *args]
    log.info("$ kubectl %s", " ".join(args))
    try:
        done = subprocess.run(argv, input=input, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise UserError(f"`kubectl {' '.join(args)}` did not finish within {timeout:.0f}s") from None
    if done.stdout.strip():
        log.info("%s", done.stdout.strip())
    if done.returncode != 0:
        raise UserError(f"`kubectl {' '.join(args)}` failed (exit {done.returncode}): {done.stderr.strip()}")
    return done.stdout


class Lab:
    """Everything the daemon runs, started in order and stopped in reverse."""

    def __init__(self, prometheus_port: int | None) -> None:
        self.prometheus_port = prometheus_port
        self.record = state.LabRecord(pid=os.getpid(), started=time.time())
        self.control_plane: object | None = None
        self.dataplane: object | None = None
        self.prometheus: object | None = None
        self.cluster: object | None = None

    async def start(self, say: Progress) -> None:
        """Bring the lab up; raises (a :class:`UserError` naming the part) when a part fails."""
        from canarylab.controlplane import Binaries, ControlPlane
        from canarylab.kube.cluster import KubeCluster
        from canarylab.lab.state import kwok_bin_dir
        from canarylab.prometheus.local import LocalPrometheus
        from canarylab.sim.dataplane import AttachedDataPlane

        binaries = Binaries.locate([kwok_bin_dir()])
        cp = ControlPlane(state.lab_dir() / "controlplane", binaries=binaries, context=state.CONTEXT)
        self.control_plane = cp
        say("starting the control plane: etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok")
        await asyncio.to_thread(cp.start, say)
        self.record.kubeconfig = str(cp.kubeconfig)
        self.record.server = cp.server
        self.record.kubectl = str(binaries.kubectl)
        self.record.pids = self._pids()
        self.record.save()

        say("installing Flagger's CRDs and the SMI TrafficSplit CRD")
        for name in CRDS:
            path = bootstrap_file("crds", name)
            if path.exists():
                await asyncio.to_thread(kubectl, binaries.kubectl, cp.kubeconfig, "apply", "--server-side", "-f",
                                        str(path))
        await asyncio.to_thread(kubectl, binaries.kubectl, cp.kubeconfig, "wait", "--for=condition=Established",
                                "crd", "--all", "--timeout=60s")

        say("starting the simulated data plane (traffic, Linkerd metrics, loadtester)")
        cluster = await KubeCluster.connect(state.CONTEXT, kubeconfig=str(cp.kubeconfig), server=cp.server,
                                            log=lambda line: log.info("data plane: %s", line))
        self.cluster = cluster
        dataplane = AttachedDataPlane(cluster)
        self.dataplane = dataplane
        await dataplane.start()
        self.record.gateway = dataplane.gateway_url
        self.record.metrics = f"http://{dataplane.metrics_target}/metrics"

        say("starting Prometheus (scraping the Linkerd metrics every second)")
        prometheus = LocalPrometheus([dataplane.metrics_target], port=self.prometheus_port)
        self.prometheus = prometheus
        try:
            await prometheus.start()
        except UserError:
            raise
        except OSError as err:
            raise UserError(f"Prometheus did not start: {err}") from None
        dataplane.forward("linkerd-viz", "prometheus", 9090, prometheus.url)
        self.record.prometheus = prometheus.url
        self.record.pids = self._pids()
        self.record.save()

        say("installing the seed: namespace test, the loadtester, podinfo with its HPA, the Canary")
        await asyncio.to_thread(kubectl, binaries.kubectl, cp.kubeconfig, "apply", "-f", "-", input=LINKERD_VIZ)
        for name in WORKLOADS:
            await asyncio.to_thread(kubectl, binaries.kubectl, cp.kubeconfig, "apply", "-f",
                                    str(bootstrap_file("workloads", name)))
        say("waiting for podinfo and the loadtester to be Available")
        for deployment in ("flagger-loadtester", "podinfo"):
            await asyncio.to_thread(kubectl, binaries.kubectl, cp.kubeconfig, "-n", "test", "wait",
                                    "--for=condition=Available", f"deployment/{deployment}",
                                    f"--timeout={READY_TIMEOUT:.0f}s", timeout=READY_TIMEOUT + 10)

    def _pids(self) -> dict[str, int]:
        pids = {"lab": os.getpid()}
        cp = self.control_plane
        for name, component in (getattr(cp, "components", None) or {}).items():
            proc = getattr(component, "proc", None)
            if proc is not None:
                pids[name] = int(proc.pid)
        proc = getattr(self.prometheus, "_proc", None)
        if proc is not None:
            pids["prometheus"] = int(proc.pid)
        return pids

    async def watch(self) -> None:
        """Until cancelled: say once when a part of the lab stops."""
        told: set[str] = set()
        while True:
            await asyncio.sleep(5.0)
            problems = []
            check = getattr(self.control_plane, "check", None)
            if check is not None:
                try:
                    check()
                except UserError as err:
                    problems.append(str(err))
            failed = getattr(self.dataplane, "failed_task", lambda: None)()
            if failed is not None:
                problems.append(f"the simulated data plane stopped: {failed!r}")
            for problem in problems:
                if problem not in told:
                    told.add(problem)
                    log.error("%s", problem)

    async def stop(self) -> None:
        """Stop everything in reverse order; never raises."""
        for part, how in ((self.prometheus, "close"), (self.dataplane, "stop")):
            method = getattr(part, how, None)
            if method is not None:
                with contextlib.suppress(Exception):
                    await method()
        close = getattr(getattr(self.cluster, "api", None), "close", None)
        if close is not None:
            with contextlib.suppress(Exception):
                await close()
        stop = getattr(self.control_plane, "stop", None)
        if stop is not None:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(stop)


async def serve(prometheus_port: int | None) -> int:
    """Run the lab until SIGTERM or SIGINT; 0 after a clean stop, 2 when it did not come up."""
    directory = state.lab_dir()
    directory.mkdir(parents=True, exist_ok=True)
    began = time.monotonic()
    say = Progress(directory / "progress.log", began)
    lab = Lab(prometheus_port)
    lab.record.save()
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    starting = asyncio.create_task(lab.start(say))
    stop_wait = asyncio.create_task(stopping.wait())
    await asyncio.wait({starting, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
    if not starting.done():
        starting.cancel()
        with contextlib.suppress(BaseException):
            await starting
        say("stopped before the lab was ready")
        await lab.stop()
        return 0
    error = starting.exception()
    if error is not None:
        message = str(error) if isinstance(error, UserError) else f"{type(error).__name__}: {error}"
        log.error("the lab did not come up: %s", message, exc_info=not isinstance(error, UserError))
        lab.record.status, lab.record.error = "failed", message
        lab.record.save()
        say(f"failed: {message}")
        await lab.stop()
        return 2
    lab.record.status = "ready"
    lab.record.ready_after = round(time.monotonic() - began, 1)
    lab.record.pids = lab._pids()
    lab.record.save()
    say(f"ready in {lab.record.ready_after:.1f}s")
    watcher = asyncio.create_task(lab.watch())
    await stop_wait
    say("stopping")
    watcher.cancel()
    with contextlib.suppress(BaseException):
        await watcher
    await lab.stop()
    say("stopped")
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m canarylab.kwok.daemon [--prometheus-port PORT]``."""
    parser = argparse.ArgumentParser(prog="canarylab.kwok.daemon")
    parser.add_argument("--prometheus-port", type=int, default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return asyncio.run(serve(args.prometheus_port))


if __name__ == "__main__":
    sys.exit(main())
