"""``canarylab engine``: the engine headless on a real cluster, for CI and terminals.

Events go to stdout, as text (``<time> <type> <name>.<ns> <message>``) or with ``--json`` as one JSON object
per line, the same shape ``canarylab simulate --json`` prints. Every write the engine makes and every
connection notice goes to stderr, one line each. It runs until Ctrl-C; an unreachable API server is retried
with backoff and reported, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TextIO

from canarylab import __version__
from canarylab.cli.output import alert_json, alert_text
from canarylab.engine.events import AlertPosted, EngineEvent, EngineNotice, KubeEvent
from canarylab.engine.flagger_metrics import FlaggerMetrics
from canarylab.engine.ports import ClusterError
from canarylab.errors import UserError
from canarylab.kube.lab import DEFAULT_METRICS_SERVER, KubeLab
from canarylab.kube.leader import LeaderElector, LeaseConfig
from canarylab.metrics_endpoint import MetricsEndpoint, parse_address


def stamp(seconds: float) -> str:
    """``2026-01-02T03:04:05Z``."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def event_json(event: KubeEvent, start: float) -> dict[str, Any]:
    """A Kubernetes Event the engine recorded, as ``canarylab simulate --json`` prints it (``time``: seconds
    since the engine started)."""
    return {"kind": "event", "time": round(event.time - start, 3), "type": event.type, "reason": event.reason,
            "namespace": event.namespace, "name": event.name, "message": event.message}


def event_text(event: KubeEvent) -> str:
    """``<time> <type> <name>.<ns> <message>``."""
    return f"{stamp(event.time)} {event.type} {event.key} {event.message}"


def printer(json_lines: bool, out: TextIO, start: float) -> Callable[[EngineEvent], None]:
    """An engine subscriber printing Kubernetes Events (and engine notices) as they happen."""

    def sink(event: EngineEvent) -> None:
        if isinstance(event, KubeEvent):
            line = json.dumps(event_json(event, start)) if json_lines else event_text(event)
        elif isinstance(event, AlertPosted):
            line = json.dumps(alert_json(event, round(event.time - start, 3))) if json_lines \
                else f"{stamp(event.time)} {alert_text(event)}"
        elif isinstance(event, EngineNotice):
            line = json.dumps({"kind": "notice", "time": round(event.time - start, 3), "level": event.level,
                               "namespace": event.namespace, "name": event.name, "message": event.message}) \
                if json_lines else f"{stamp(event.time)} {event.level} {event.key} {event.message}"
        else:
            return
        print(line, file=out, flush=True)

    return sink


def log_line(err: TextIO) -> Callable[[str], None]:
    """Writes and connection notices: ``<time> <line>`` on stderr."""

    def write(line: str) -> None:
        print(f"{stamp(time.time())} {line}", file=err, flush=True)

    return write


class Probes:
    """``/healthz`` and ``/readyz`` for ``--metrics-addr``: alive while the engine task runs; ready once it is
    connected and watching, or, with ``--leader-elect``, waiting as a follower. Not ready while the service
    account lacks a permission (``problem`` says which)."""

    def __init__(self, lab: KubeLab) -> None:
        self.lab = lab
        self.started = False
        self.problem: str | None = None
        self.elector: LeaderElector | None = None

    def healthz(self) -> tuple[bool, str]:
        failed = self.lab.failed_task()
        return (failed is None, "OK" if failed is None else f"the engine stopped: {failed}")

    def readyz(self) -> tuple[bool, str]:
        if self.problem:
            return False, self.problem
        if self.elector is not None and not self.started:
            holder = self.elector.holder or "nobody yet"
            return True, f"standby: the lease {self.elector.where} is held by {holder}"
        if not self.started:
            return False, "connecting to the API server"
        return self.healthz()


PERMISSION_RECHECK = 10.0
"""Seconds between permission checks while the service account lacks one (fixing the ClusterRole heals it)."""


async def wait_for_permissions(lab: KubeLab, lease_namespace: str | None, probes: Probes | None) -> None:
    """In a pod: check every permission the engine needs before acting; while one is missing, say which (one
    line each, once), stay unready and check again, never crash-looping."""
    from canarylab.kube import permissions

    account = lab.target.service_account if lab.target else None
    if account is None or lab.readonly:  # --readonly never writes: the table of an acting engine does not apply
        return
    who = f"service account {account.namespace}/{account.name}"
    said: list[str] = []
    while True:
        try:
            gaps = await permissions.missing(lab.cluster, lab.namespaces or None, lease_namespace)
        except ClusterError as err:
            lab.log(f"{err}; starting anyway (a forbidden request will name its verb and resource)")
            return
        lines = [gap.line(who) + f"; checking again every {PERMISSION_RECHECK:g}s" for gap in gaps]
        if not lines:
            if said:
                lab.log("the engine's permissions are complete now; starting")
            if probes is not None:
                probes.problem = None
            return
        if lines != said:
            for line in lines:
                lab.log(line)
            said = lines
        if probes is not None:
            probes.problem = lines[0] if len(lines) == 1 else f"{lines[0]} (and {len(lines) - 1} more)"
        await asyncio.sleep(PERMISSION_RECHECK)


def lease_config(args: argparse.Namespace, lab: KubeLab) -> LeaseConfig | None:
    """The Lease from the ``--leader-elect*`` flags, or ``None`` without ``--leader-elect``."""
    if not getattr(args, "leader_elect", False):
        return None
    account = lab.target.service_account if lab.target else None
    namespace = args.lease_namespace or (account.namespace if account else None) or \
        (lab.namespaces[0] if lab.namespaces else None)
    if not namespace:
        raise UserError("--leader-elect needs a namespace for its Lease: add --leader-elect-resource-namespace NS "
                        "(in a pod it defaults to the service account's namespace, elsewhere to the first -n)")
    config = LeaseConfig(namespace, args.leader_elect_resource_name, lease_duration=args.leader_elect_lease_duration,
                         renew_deadline=args.leader_elect_renew_deadline,
                         retry_period=args.leader_elect_retry_period)
    problems = config.problems()
    if problems:
        raise UserError("; ".join(problems) + " (Kubernetes' defaults are 15s, 10s and 2s)")
    return config


class LeadershipLost(UserError):
    """The leader could not renew its Lease in time: it stops, so that only one engine acts (exit code 1)."""

    exit_code = 1


async def serve(lab: KubeLab, json_lines: bool, out: TextIO, endpoint: MetricsEndpoint | None = None,
                probes: Probes | None = None, args: argparse.Namespace | None = None) -> None:
    """Connect, (in a pod) check permissions, (with ``--leader-elect``) wait for the Lease, start the engine and
    print events until cancelled or the Lease is lost; then stop the engine and release the Lease."""
    # Lab time starts now, not when the engine starts: a follower may wait minutes for the Lease, and the
    # timestamps it then writes (lastTransitionTime, Events) must be the wall clock's.
    lab.clock.pin()
    await lab.connect()
    lease = lease_config(args, lab) if args is not None else None
    await wait_for_permissions(lab, lease.namespace if lease else None, probes)
    elector = None
    if lease is not None:
        elector = LeaderElector(lab.cluster, lease, log=lab.log)
        lab.cluster.fence = elector.fence  # not the leader (or no longer): no write leaves this process
        if probes is not None:
            probes.elector = elector
        lab.log(f"campaigning for the lease {elector.where} as {elector.identity}")
        await elector.acquire()
        lab.log(f"leading: this engine ({elector.identity}) holds the lease {elector.where}; starting the engine")
    try:
        await lab.start()
        start = lab.clock.now()
        unsubscribe = lab.engine.subscribe(printer(json_lines, out, start))
        if endpoint is not None:
            recorder = FlaggerMetrics(lab.engine.facts, version=__version__, mesh_provider=lab.mesh_provider)
            lab.engine.subscribe(recorder.record)
            endpoint.sources.append(recorder.exposition)
        if probes is not None:
            probes.started = True
        try:
            if elector is None:
                await lab.join()  # the engine runs until cancelled (Ctrl-C, SIGTERM)
            else:
                await _lead(lab, elector)
        except asyncio.CancelledError:
            if json_lines:
                print(json.dumps(interrupted_result(lab, lab.clock.now() - start)), file=out, flush=True)
            raise
        finally:
            unsubscribe()
            await lab.stop()
    finally:
        if elector is not None and await elector.release():
            lab.log(f"released the lease {elector.where}")


async def _lead(lab: KubeLab, elector: LeaderElector) -> None:
    """Run the engine while renewing the Lease; a lost Lease stops the engine at once."""
    engine = asyncio.ensure_future(lab.join())
    holding = asyncio.ensure_future(elector.hold())
    try:
        done, _ = await asyncio.wait({engine, holding}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (engine, holding):
            task.cancel()
    if engine in done:
        engine.result()  # the engine failed: its error goes up
        return
    raise LeadershipLost(f"lost the leader lease {elector.where}: it could not be renewed within "
                         f"{elector.config.renew_deadline:g}s, so this engine stopped acting before another "
                         "may take over. Run it again (in a pod, Kubernetes restarts it) to campaign again.")


def _on_sigterm() -> None:
    """SIGTERM (kubectl delete pod, a rolling update) stops cleanly, releasing the Lease, like Ctrl-C."""
    task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    if task is not None:
        from canarylab.cli import note_signal

        def stop() -> None:
            note_signal(signal.SIGTERM)  # exit code 143, and the --json result line says SIGTERM
            task.cancel()

        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGTERM, stop)


def interrupted_result(lab: KubeLab, elapsed: float) -> dict[str, Any]:
    """The last ``--json`` line when a signal stops the engine: every Canary's state, marked interrupted."""
    from canarylab.cli import interrupted_by

    canaries = [{"namespace": s.namespace, "name": s.name, "phase": s.phase, "canaryWeight": s.canary_weight,
                 "failedChecks": s.failed_checks} for s in lab.engine.canary_states()]
    return {"kind": "result", "time": round(elapsed, 3), "canaries": canaries, "interrupted": True,
            "signal": interrupted_by() or "SIGINT"}


def _metrics_server(url: str) -> str:
    """``--metrics-server``: an http(s) URL, or one paragraph saying what is wrong (exit 2)."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UserError(f"--metrics-server {url!r} is not an http(s) URL; give the Prometheus address as "
                        "Flagger's -metrics-server takes it, e.g. http://prometheus.linkerd-viz:9090 or "
                        "http://127.0.0.1:9090")
    return url.rstrip("/")


def run(args: argparse.Namespace) -> int:
    """``canarylab engine [--context CTX] [--namespace NS]... [--readonly] [--json] [--in-cluster]
    [--metrics-addr HOST:PORT] [--metrics-server URL] [--mesh-provider P] [--leader-elect ...]``."""
    metrics_server = _metrics_server(args.metrics_server) if args.metrics_server else DEFAULT_METRICS_SERVER
    lab = KubeLab(args.context, args.namespaces, readonly=args.readonly, in_cluster=args.in_cluster, wait=True,
                  log=log_line(sys.stderr), metrics_server=metrics_server,
                  serviceaccount_dir=args.serviceaccount_dir, mesh_provider=args.mesh_provider)
    endpoint = probes = None
    if args.metrics_addr is not None:
        host, port = parse_address(args.metrics_addr, "--metrics-addr")
        probes = Probes(lab)
        endpoint = MetricsEndpoint(host, port, [], probes={"/healthz": probes.healthz, "/readyz": probes.readyz})
        endpoint.start()
        log_line(sys.stderr)(f"serving Flagger's metrics on http://{endpoint.target}/metrics "
                             "(and /healthz, /readyz)")

    async def main() -> None:
        _on_sigterm()
        await serve(lab, args.json, sys.stdout, endpoint, probes, args)

    try:
        asyncio.run(main())
    except asyncio.CancelledError:
        from canarylab.cli import EXIT_SIGTERM

        return EXIT_SIGTERM  # SIGTERM: stopped cleanly (the Lease released), exit 143 like every command
    except ClusterError as err:
        raise UserError(f"the engine stopped: {err}") from None
    finally:
        if endpoint is not None:
            endpoint.stop()
    return 0
