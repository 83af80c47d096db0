"""The steps of ``canarylab up``, in order. Each step checks first, then ensures; the data lives in ``bootstrap/``.

Every cluster command is built by :meth:`StepContext.kubectl`, :meth:`StepContext.linkerd` or
:meth:`StepContext.helm`, which put the lab's context first: nothing depends on the user's current context.
"""

from __future__ import annotations

import copy
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from canarylab import __version__
from canarylab.errors import UserError
from canarylab.lab import preflight
from canarylab.lab.runner import Command, LineSink, Result, Runner, cmd, pipe
from canarylab.lab.state import context_of
from canarylab.lab.versions import Versions
from canarylab.manifests import DEPLOY, bootstrap_documents, bootstrap_file

ROUTERS = ("smi", "gatewayapi")
ENGINES = ("host", "in-cluster")
"""Where the engine runs: on the host (the dashboard's own engine) or in the lab as ``deploy/base``."""
GATEWAY_PROVIDER = "gatewayapi:v1beta1"


class StepError(Exception):
    """A step could not finish; ``output`` is what the user needs to see (command output, doctor report)."""

    def __init__(self, message: str, output: str = "") -> None:
        super().__init__(message)
        self.output = output


@dataclass
class StepContext:
    """What a step works with: the lab's name and router, the runner, and where to log."""

    name: str
    router: str
    runner: Runner
    versions: Versions
    work_dir: Path
    log: LineSink = lambda line: None
    engine: str = "host"

    @property
    def context(self) -> str:
        """``kind-<name>``: named in every kubectl, linkerd and helm call."""
        return context_of(self.name)

    def kubectl(self, *args: str) -> Command:
        """``kubectl --context kind-<name> ...``."""
        return cmd("kubectl", "--context", self.context, *args)

    def linkerd(self, *args: str) -> Command:
        """``linkerd --context kind-<name> ...``."""
        return cmd("linkerd", "--context", self.context, *args)

    def helm(self, *args: str) -> Command:
        """``helm --kube-context kind-<name> ...``."""
        return cmd("helm", "--kube-context", self.context, *args)

    def run(self, command: Command, *, timeout: float | None = None) -> Result:
        """Run a command that must succeed; its line and output go to the log."""
        self.log(f"$ {command.display()}")
        return self.runner.run(command, check=True, on_line=self.log, timeout=timeout)

    def succeeds(self, command: Command) -> bool:
        """Run a read-only check; True when it exits 0."""
        self.log(f"$ {command.display()}")
        return self.runner.run(command, check=False, on_line=self.log, timeout=60).ok

    def file(self, *parts: str) -> str:
        """A ``bootstrap/`` path as a command argument."""
        return str(bootstrap_file(*parts))


@dataclass(frozen=True)
class Step:
    """One idempotent step: ``check`` says whether it is already there (None: ``ensure`` is itself idempotent)."""

    key: str
    title: str
    ensure: Callable[[StepContext], None]
    hint: str
    check: Callable[[StepContext], bool] | None = None
    routers: tuple[str, ...] = ROUTERS
    engines: tuple[str, ...] = ENGINES
    always: bool = False
    """Run even when a previous ``up`` finished it (preflight)."""
    always_check: bool = False
    """Check even when a previous ``up`` finished it (the cluster: it may have been deleted by hand)."""
    in_dry_run: bool = True
    """Part of the ``--dry-run`` plan (preflight is not: it only reads)."""


# ------------------------------------------------------------------------------------------------------------
# The Gateway API variant of the seed Canary (generated, never hand-copied).

def gatewayapi_canary(seed: dict[str, Any]) -> dict[str, Any]:
    """The seed Canary for ``--router gatewayapi``: ``provider: gatewayapi:v1beta1`` and ``service.gatewayRefs``
    pointing at the apex Service (Linkerd's GAMMA mesh routing, flagger-spec 4.3). Everything else is the seed's."""
    canary = copy.deepcopy(seed)
    spec = canary.setdefault("spec", {})
    namespace = canary.get("metadata", {}).get("namespace", "default")
    apex = spec.get("service", {}).get("name") or spec["targetRef"]["name"]
    new_spec: dict[str, Any] = {"provider": GATEWAY_PROVIDER}
    new_spec.update(spec)  # provider first, for the reader
    new_spec["provider"] = GATEWAY_PROVIDER
    service = dict(new_spec.get("service", {}))
    service["gatewayRefs"] = [{"group": "core", "kind": "Service", "name": apex, "namespace": namespace,
                               "port": service.get("port")}]
    new_spec["service"] = service
    canary["spec"] = new_spec
    return canary


def seed_canary() -> dict[str, Any]:
    """The seed tutorial's Canary from ``bootstrap/workloads/podinfo-canary.yaml``."""
    docs = [d for d in bootstrap_documents("workloads", "podinfo-canary.yaml") if d.get("kind") == "Canary"]
    if len(docs) != 1:
        raise UserError("bootstrap/workloads/podinfo-canary.yaml must hold exactly one Canary.")
    return docs[0]


def canary_manifest(router: str, work_dir: Path) -> Path:
    """The Canary file ``up`` applies: the seed file itself for SMI, a generated variant for Gateway API."""
    if router == "smi":
        return bootstrap_file("workloads", "podinfo-canary.yaml")
    path = work_dir / "podinfo-canary.gatewayapi.yaml"
    header = ("# Generated by `canarylab up --router gatewayapi` from bootstrap/workloads/podinfo-canary.yaml:\n"
              "# the seed Canary with provider gatewayapi:v1beta1 and service.gatewayRefs to the apex Service.\n")
    work_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(header + yaml.safe_dump(gatewayapi_canary(seed_canary()), sort_keys=False))
    return path


# ------------------------------------------------------------------------------------------------------------
# The steps.

def _preflight(ctx: StepContext) -> None:
    checks = preflight.run_checks(preflight.Probe(ctx.runner, ctx.versions, name=ctx.name))
    report = preflight.render(checks)
    for line in report.splitlines():
        ctx.log(line)
    if any(c.fatal for c in checks):
        raise StepError("preflight found fatal problems", report)


def _cluster_exists(ctx: StepContext) -> bool:
    result = ctx.runner.run(cmd("kind", "get", "clusters"), check=False, on_line=ctx.log, timeout=60)
    return result.ok and ctx.name in result.stdout.split()


def current_kube_context() -> str | None:
    """The ``current-context`` of the user's kubeconfig (first file of ``KUBECONFIG``), if any."""
    paths = [p for p in os.environ.get("KUBECONFIG", "").split(os.pathsep) if p]
    path = Path(paths[0]) if paths else Path.home() / ".kube" / "config"
    try:
        config = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return None
    current = config.get("current-context") if isinstance(config, dict) else None
    return current if isinstance(current, str) and current else None


def _cluster(ctx: StepContext) -> None:
    cluster = ctx.versions.section("cluster")
    argv = ["kind", "create", "cluster", "--name", ctx.name, "--config", ctx.file("kind.yaml")]
    if cluster.get("node_image"):
        argv += ["--image", str(cluster["node_image"])]
    argv += ["--wait", str(cluster.get("wait", "120s"))]
    previous = current_kube_context()
    ctx.run(cmd(*argv), timeout=900)
    # kind makes its new context the current one; the lab never relies on it, so give the user theirs back.
    if previous and previous != ctx.context:
        ctx.run(cmd("kubectl", "config", "use-context", previous))


def _gateway_api(ctx: StepContext) -> None:
    url = str(ctx.versions.section("gateway_api")["url"])
    # Server-side apply: the CRDs are larger than the client-side last-applied annotation allows.
    ctx.run(ctx.kubectl("apply", "--server-side", "-f", url))


def _metrics_server(ctx: StepContext) -> None:
    ms = ctx.versions.section("metrics_server")
    ctx.run(ctx.kubectl("apply", "-f", str(ms["url"])))
    patch = [{"op": "add", "path": "/spec/template/spec/containers/0/args/-", "value": str(arg)}
             for arg in ms.get("extra_args") or []]
    if patch:
        ctx.run(ctx.kubectl("--namespace", "kube-system", "patch", "deployment", "metrics-server", "--type", "json",
                            "-p", json.dumps(patch)))
    ctx.run(ctx.kubectl("--namespace", "kube-system", "rollout", "status", "deployment/metrics-server",
                        "--timeout", "300s"), timeout=360)


def _linkerd_crds(ctx: StepContext) -> None:
    ctx.run(pipe(ctx.linkerd("install", "--crds"), ctx.kubectl("apply", "-f", "-")))


def _linkerd_control_plane(ctx: StepContext) -> None:
    # `linkerd install` generates the trust anchor and issuer certificates; that is why the check above
    # must skip this step once the control plane exists (a second install would rotate them).
    ctx.run(pipe(ctx.linkerd("install"), ctx.kubectl("apply", "-f", "-")))


def _linkerd_check(ctx: StepContext) -> None:
    ctx.run(ctx.linkerd("check", "--wait", "5m0s"), timeout=420)


def _viz(ctx: StepContext) -> None:
    ctx.run(pipe(ctx.linkerd("viz", "install"), ctx.kubectl("apply", "-f", "-")))
    ctx.run(ctx.kubectl("--namespace", "linkerd-viz", "rollout", "status", "deployment/prometheus",
                        "--timeout", "300s"), timeout=360)
    # The engine runs on the host and reaches Prometheus through the API server: admit it (lab only).
    ctx.run(ctx.kubectl("apply", "-f", ctx.file("linkerd", "prometheus-access.yaml")))


def _viz_slim(ctx: StepContext) -> None:
    viz = ctx.versions.section("viz")
    parts = [str(p) for p in viz.get("scale_down") or []]
    if parts:
        ctx.run(ctx.kubectl("--namespace", "linkerd-viz", "scale", "deployment", *parts, "--replicas", "0"))
    if viz.get("tap_apiservice"):
        ctx.run(ctx.kubectl("delete", "apiservice", str(viz["tap_apiservice"]), "--ignore-not-found"))


def _smi(ctx: StepContext) -> None:
    smi = ctx.versions.section("linkerd_smi")
    argv = ["upgrade", "--install", "linkerd-smi", str(smi.get("chart", "linkerd-smi")),
            "--repo", str(smi["repo"]), "--namespace", "linkerd-smi", "--create-namespace", "--wait",
            "--timeout", "5m0s"]
    if smi.get("chart_version"):
        argv += ["--version", str(smi["chart_version"])]
    ctx.run(ctx.helm(*argv), timeout=420)


def _flagger_crds(ctx: StepContext) -> None:
    ctx.run(ctx.kubectl("apply", "-f", ctx.file("crds", "flagger.yaml")))
    ctx.run(ctx.kubectl("wait", "--for", "condition=established", "--timeout", "60s",
                        "crd/canaries.flagger.app", "crd/metrictemplates.flagger.app"), timeout=90)


def _namespace(ctx: StepContext) -> None:
    ctx.run(ctx.kubectl("apply", "-f", ctx.file("workloads", "namespace.yaml")))


def _loadtester(ctx: StepContext) -> None:
    ctx.run(ctx.kubectl("apply", "-f", ctx.file("workloads", "loadtester.yaml")))
    ctx.run(ctx.kubectl("--namespace", "test", "rollout", "status", "deployment/flagger-loadtester",
                        "--timeout", "300s"), timeout=360)


def _podinfo(ctx: StepContext) -> None:
    ctx.run(ctx.kubectl("apply", "-f", ctx.file("workloads", "podinfo.yaml")))
    ctx.run(ctx.kubectl("--namespace", "test", "rollout", "status", "deployment/podinfo", "--timeout", "300s"),
            timeout=360)


def _canary(ctx: StepContext) -> None:
    ctx.run(ctx.kubectl("apply", "-f", str(canary_manifest(ctx.router, ctx.work_dir))))


ENGINE_IMAGE = f"canarylab:{__version__}"
"""The image ``deploy/base`` runs (its kustomization pins this tag)."""


def source_tree() -> Path:
    """The checkout the engine image is built from (its wheel); a :class:`StepError` when installed from a wheel."""
    root = Path(__file__).resolve().parents[2]
    if not (root / "pyproject.toml").is_file():
        raise StepError("--engine in-cluster builds the engine image from a source checkout of canarylab, and this "
                        f"one is installed from a wheel ({root}). Run `canarylab up --engine in-cluster` from a "
                        "checkout, or build and push the image yourself (deploy/Containerfile) and "
                        f"`kubectl --context kind-<name> apply -k {DEPLOY / 'base'}`.")
    return root


def _engine_wheel(ctx: StepContext) -> None:
    image_dir = ctx.work_dir / "engine-image"
    ctx.run(cmd(sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet",
                "--wheel-dir", str(image_dir), str(source_tree())), timeout=300)


def _engine_image(ctx: StepContext) -> None:
    ctx.run(cmd("docker", "build", "--file", str(DEPLOY / "Containerfile"), "--tag", ENGINE_IMAGE,
                str(ctx.work_dir / "engine-image")), timeout=900)
    ctx.run(cmd("kind", "load", "docker-image", ENGINE_IMAGE, "--name", ctx.name), timeout=300)


def _engine(ctx: StepContext) -> None:
    ctx.run(ctx.kubectl("apply", "--kustomize", str(DEPLOY / "base")))
    ctx.run(ctx.kubectl("--namespace", "canarylab", "rollout", "status", "deployment/canarylab-engine",
                        "--timeout", "300s"), timeout=360)


STEPS: tuple[Step, ...] = (
    Step("preflight", "Preflight checks", _preflight, always=True, in_dry_run=False,
         hint="fix the × lines of the report (`canarylab doctor` shows it again)"),
    Step("cluster", "kind cluster", _cluster, check=_cluster_exists, always_check=True,
         hint="is Docker running with enough memory? `kind create cluster` output above says why"),
    Step("gateway-api", "Gateway API CRDs", _gateway_api,
         check=lambda c: c.succeeds(c.kubectl("get", "crd", "httproutes.gateway.networking.k8s.io")),
         hint="the CRDs are downloaded from GitHub: check the internet connection"),
    Step("metrics-server", "metrics-server (for the HPA)", _metrics_server,
         check=lambda c: c.succeeds(c.kubectl("--namespace", "kube-system", "get", "deployment", "metrics-server")),
         hint="the manifest is downloaded from GitHub; see `kubectl -n kube-system describe deployment "
              "metrics-server`"),
    Step("linkerd-crds", "Linkerd CRDs", _linkerd_crds,
         check=lambda c: c.succeeds(c.kubectl("get", "crd", "serviceprofiles.linkerd.io")),
         hint="`linkerd install --crds` must match the linkerd CLI version; try `canarylab tools install`"),
    Step("linkerd", "Linkerd control plane", _linkerd_control_plane,
         check=lambda c: c.succeeds(c.kubectl("--namespace", "linkerd", "get", "deployment", "linkerd-destination")),
         hint="see `linkerd check` on the lab's context; images are pulled from cr.l5d.io"),
    Step("linkerd-check", "linkerd check", _linkerd_check,
         hint="the control plane is not healthy yet; slow image pulls are the usual cause: run `up` again"),
    Step("viz", "linkerd-viz (Prometheus)", _viz,
         check=lambda c: c.succeeds(c.kubectl("--namespace", "linkerd-viz", "get", "deployment", "prometheus")),
         hint="`linkerd viz install` failed or Prometheus did not become ready"),
    Step("viz-slim", "Scale down unused linkerd-viz parts", _viz_slim,
         hint="only saves CPU; safe to ignore by running `up` again"),
    Step("smi", "linkerd-smi (TrafficSplit)", _smi, routers=("smi",),
         check=lambda c: c.succeeds(c.helm("status", "linkerd-smi", "--namespace", "linkerd-smi")),
         hint="the chart comes from linkerd.github.io/linkerd-smi: check the internet connection"),
    Step("flagger-crds", "Flagger CRDs (Canary, MetricTemplate)", _flagger_crds,
         hint="bootstrap/crds/flagger.yaml was rejected by the API server"),
    Step("namespace", "Namespace test (linkerd.io/inject=enabled)", _namespace,
         hint="bootstrap/workloads/namespace.yaml was rejected"),
    Step("loadtester", "Flagger loadtester", _loadtester,
         hint="ghcr.io/fluxcd/flagger-loadtester must be pullable; see `kubectl -n test describe pods`"),
    Step("podinfo", "podinfo + HPA", _podinfo,
         hint="podinfo pods did not become ready; see `kubectl -n test describe pods`"),
    Step("canary", "The seed's Canary", _canary,
         hint="the Canary was rejected: check it against bootstrap/crds/flagger.yaml"),
    Step("engine-wheel", "canarylab's wheel (for the engine image)", _engine_wheel, engines=("in-cluster",),
         hint="`pip wheel` of the checkout failed; its output is above"),
    Step("engine-image", "Engine image canarylab (docker build, kind load)", _engine_image, engines=("in-cluster",),
         hint="the image is built from deploy/Containerfile on python:3.12-slim (pulled from Docker Hub)"),
    Step("engine", "The engine in the cluster (deploy/base: 2 replicas, leader election)", _engine,
         engines=("in-cluster",),
         hint="see `kubectl --context kind-<name> -n canarylab describe pods` and the pods' logs"),
)


def plan(router: str, engine: str = "host") -> list[Step]:
    """The steps for ``router`` and ``engine`` in order."""
    if router not in ROUTERS:
        raise UserError(f"--router {router!r} is not supported: use one of {', '.join(ROUTERS)}.")
    if engine not in ENGINES:
        raise UserError(f"--engine {engine!r} is not supported: use one of {', '.join(ENGINES)}.")
    return [s for s in STEPS if router in s.routers and engine in s.engines]
