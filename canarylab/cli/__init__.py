"""The ``canarylab`` command: the whole command surface on one page, then a hand-over to the command's module.

One module per command family turns the parsed flags into calls on the layers:

* :mod:`canarylab.cli.demo` - ``demo`` and ``ui`` (the dashboard on the simulated lab or a real cluster);
* :mod:`canarylab.cli.simulate` - ``simulate`` (the simulated lab headless);
* :mod:`canarylab.cli.engine` - ``engine`` (the engine headless on a real cluster);
* :mod:`canarylab.cli.learn` - ``learn`` (guided lessons in the dashboard, and ``--check`` headless);
* :mod:`canarylab.cli.lab` - ``up``, ``down``, ``doctor``, ``tools install`` (the kind lab);
* :mod:`canarylab.cli.kwok` - ``up --runtime kwok``, ``down``, ``env``, ``doctor --runtime kwok`` (the Docker-free lab).

Handlers are imported lazily, so ``canarylab simulate`` starts without loading Textual or kr8s.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence

from canarylab import __version__
from canarylab.errors import UserError

Handler = Callable[[argparse.Namespace], int]


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0, got {text}")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be between 0 and 65535, got {value}")
    return value


def _duration(text: str) -> float:
    from canarylab.engine.durations import parse_duration

    try:
        value = parse_duration(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a duration such as 15s or 1m, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0, got {text}")
    return value


MESH_PROVIDERS = ("linkerd", "smi:v1alpha1", "smi:v1alpha2", "smi:v1alpha3", "gatewayapi:v1beta1", "gatewayapi:v1",
                  "istio", "nginx")


def _mesh_provider(text: str) -> str:
    if text not in MESH_PROVIDERS:
        raise argparse.ArgumentTypeError(f"{text!r} is not a provider canarylab routes with; choose one of "
                                         + ", ".join(MESH_PROVIDERS))
    return text


def _add_engine_flags(p: argparse.ArgumentParser) -> None:
    """Flagger's flags where canarylab has an equivalent, in-cluster login and leader election."""
    p.add_argument("--metrics-server", metavar="URL", default=None,
                   help="Prometheus of Canaries whose MetricTemplates name none (Flagger's -metrics-server; "
                        "default http://prometheus.linkerd-viz:9090)")
    p.add_argument("--mesh-provider", type=_mesh_provider, default="linkerd", metavar="PROVIDER",
                   help="provider of Canaries without spec.provider (Flagger's -mesh-provider): "
                        + ", ".join(MESH_PROVIDERS) + " (default linkerd)")
    p.add_argument("--serviceaccount-dir", metavar="DIR", default=None,
                   help="in-cluster login: the directory of token, ca.crt and namespace (default "
                        "$CANARYLAB_SERVICEACCOUNT_DIR, else /var/run/secrets/kubernetes.io/serviceaccount)")
    p.add_argument("--leader-elect", "--enable-leader-election", dest="leader_elect", action="store_true",
                   help="act only while holding a coordination.k8s.io Lease; other replicas wait and take over")
    p.add_argument("--leader-elect-resource-name", default="canarylab-engine", metavar="NAME",
                   help="the Lease's name (default canarylab-engine)")
    p.add_argument("--leader-elect-resource-namespace", "--leader-election-namespace", dest="lease_namespace",
                   default=None, metavar="NS",
                   help="the Lease's namespace (default: the service account's in a pod, else the first -n)")
    p.add_argument("--leader-elect-lease-duration", type=_duration, default=15.0, metavar="D",
                   help="a follower takes over a Lease not renewed for this long (default 15s)")
    p.add_argument("--leader-elect-renew-deadline", type=_duration, default=10.0, metavar="D",
                   help="the leader stops acting when it could not renew for this long (default 10s)")
    p.add_argument("--leader-elect-retry-period", type=_duration, default=2.0, metavar="D",
                   help="how often the leader renews and followers try (default 2s)")


def add_validate_flag(p: argparse.ArgumentParser) -> None:
    """``--validate=strict|warn|ignore`` (kubectl's word) for every command that reads a user's YAML."""
    p.add_argument("--validate", choices=["strict", "warn", "ignore"], default="strict",
                   help="unknown fields in your YAML (manifests, scenario, keymap): strict (default) refuses "
                        "them (exit 2), warn prints a warning and drops them, ignore drops them silently; as "
                        "kubectl --validate")


def _add_lab_inputs(p: argparse.ArgumentParser) -> None:
    p.add_argument("-f", "--filename", dest="files", action="append", default=[], metavar="FILE",
                   help="manifests to apply on top of the seed lab (multi-document YAML); repeatable")
    add_validate_flag(p)
    p.add_argument("--prometheus", metavar="URL|local",
                   help="answer every metric check from this Prometheus; 'local' starts the prometheus "
                        "binary on a free 127.0.0.1 port, scraping the simulated lab (real time)")
    p.add_argument("--metrics-port", type=_port, metavar="PORT",
                   help="serve the simulated Linkerd metrics and the engine's flagger_canary_* series in "
                        "Prometheus text format on 127.0.0.1:PORT")


def _add_cluster_inputs(p: argparse.ArgumentParser) -> None:
    p.add_argument("--context", metavar="CTX", help="kube context (default: the lab's, kind-canarylab)")
    p.add_argument("-n", "--namespace", dest="namespaces", action="append", default=[], metavar="NS",
                   help="only manage Canaries in this namespace; repeatable")
    p.add_argument("--readonly", action="store_true",
                   help="watch only: never change anything (e.g. follow a run by a real Flagger)")
    p.add_argument("--in-cluster", action="store_true",
                   help="reach in-cluster URLs (webhooks, Prometheus) directly, not via the API server proxy")


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, str]]:
    """The argument parser and, per command, the ``module:function`` that runs it."""
    parser = argparse.ArgumentParser(
        prog="canarylab",
        description="Canary releases with Flagger's semantics: a simulated lab, a live dashboard, a kind lab.",
    )
    parser.add_argument("--version", action="version", version=f"canarylab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    handlers: dict[str, str] = {}

    p = sub.add_parser("demo", help="the dashboard on the simulated lab (the default command)")
    _add_lab_inputs(p)
    p.add_argument("--speed", type=_positive_float, default=None, metavar="X",
                   help="run the lab X times real time (default 5; 1 with --prometheus)")
    p.add_argument("--readonly", action="store_true", help="hide every key that changes anything")
    handlers["demo"] = "canarylab.cli.demo:run_demo"

    p = sub.add_parser("simulate", help="the simulated lab headless: a scripted scenario, events as text or JSON")
    _add_lab_inputs(p)
    p.add_argument("--scenario", metavar="FILE", help="YAML list of steps (default: set image to 3.1.1 at 0s)")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument("--speed", type=_positive_float, default=None, metavar="X",
                   help="run X times real time (default: virtual time, as fast as possible)")
    p.add_argument("--timeout", default="1h", metavar="DURATION",
                   help="give up after this much lab time (default 1h), exit 3")
    p.add_argument("--send-alerts", action="store_true",
                   help="post analysis.alerts to their AlertProviders (default: print them, send nothing)")
    handlers["simulate"] = "canarylab.cli.simulate:run"

    p = sub.add_parser("ui", help="the dashboard and the engine on a real cluster")
    _add_cluster_inputs(p)
    add_validate_flag(p)  # the keymap file is YAML the user gives
    handlers["ui"] = "canarylab.cli.demo:run_ui"

    p = sub.add_parser("engine", help="the engine headless on a real cluster (events as text or JSON)")
    _add_cluster_inputs(p)
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument("--metrics-addr", metavar="HOST:PORT",
                   help="serve Flagger's metrics (flagger_canary_*) on /metrics, and /healthz and /readyz, "
                        "at HOST:PORT (:PORT binds 127.0.0.1)")
    _add_engine_flags(p)
    handlers["engine"] = "canarylab.cli.engine:run"

    p = sub.add_parser("learn", help="guided lessons on screen, on the simulated lab or a real one",
                       description="Guided workshop lessons in the dashboard. Progress is saved; run again to "
                                   "resume where you stopped.")
    p.add_argument("lesson", nargs="?", metavar="LESSON", help="start (or resume) this lesson: a number or an id")
    p.add_argument("--list", action="store_true", help="list the lessons and your progress, then exit")
    p.add_argument("--check", nargs="?", const="", default=None, metavar="LESSON",
                   help="play every lesson (or LESSON) automatically on the simulated lab; exit 0 when all complete")
    p.add_argument("--reset", action="store_true", help="forget your saved progress (every lesson starts over)")
    p.add_argument("--speed", type=_positive_float, default=None, metavar="X",
                   help="run the simulated lab X times real time (default 2)")
    p.add_argument("--workdir", metavar="DIR",
                   help="where the files you edit are written (default ./canarylab-lessons)")
    _add_cluster_inputs(p)
    handlers["learn"] = "canarylab.cli.learn:run"

    p = sub.add_parser("up", help="build the local lab: on kind (Docker), or --runtime kwok without Docker")
    p.add_argument("--runtime", choices=["kind", "kwok"], default="kind",
                   help="kind: a kind cluster with Linkerd (needs Docker; default); kwok: a real API server on "
                        "127.0.0.1 with KWOK pods and the simulated data plane, in the background until `down`")
    p.add_argument("--prometheus-port", type=_port, default=None, metavar="PORT",
                   help="--runtime kwok: serve the lab's Prometheus on 127.0.0.1:PORT (default: a free port)")
    p.add_argument("--name", default="canarylab", help="kind cluster name (context kind-NAME)")
    p.add_argument("--router", choices=["smi", "gatewayapi"], default="gatewayapi",
                   help="route with an SMI TrafficSplit or a Gateway API HTTPRoute (default)")
    p.add_argument("--dry-run", action="store_true", help="print the commands it would run, one per line")
    p.add_argument("--no-tui", action="store_true", help="plain progress lines, and do not open the dashboard")
    p.add_argument("--engine", choices=["host", "in-cluster"], default="host",
                   help="run the engine on this machine with the dashboard (default), or install it in the lab "
                        "from deploy/base (image built from the wheel); the dashboard then only watches")
    handlers["up"] = "canarylab.cli.lab:run_up"

    p = sub.add_parser("down", help="stop the Docker-free lab, or delete the kind cluster (only what canarylab made)")
    p.add_argument("--runtime", choices=["kind", "kwok"], default=None,
                   help="which lab (default: the Docker-free lab if it is there, else the kind cluster)")
    p.add_argument("--name", default="canarylab", help="kind cluster name")
    handlers["down"] = "canarylab.cli.lab:run_down"

    p = sub.add_parser("env", help="shell exports for the Docker-free lab: eval \"$(canarylab env)\"")
    handlers["env"] = "canarylab.cli.kwok:run_env"

    p = sub.add_parser("doctor", help="preflight checks: what the lab needs and how to get it")
    p.add_argument("--runtime", choices=["kind", "kwok"], default="kind",
                   help="kind: Docker, tools, system, cluster (default); kwok: the Docker-free lab's binaries")
    p.add_argument("--name", default="canarylab", help="kind cluster name")
    handlers["doctor"] = "canarylab.cli.lab:run_doctor"

    p = sub.add_parser("tools", help="manage the lab's command-line tools")
    tools = p.add_subparsers(dest="tools_command", metavar="ACTION", required=True)
    p = tools.add_parser("install", help="download the pinned release binaries into the user cache (SHA-256 checked)")
    p.add_argument("--runtime", choices=["kind", "kwok"], default="kind",
                   help="kind: kind, kubectl, linkerd, helm (default); kwok: kube-apiserver, "
                        "kube-controller-manager, kube-scheduler, kubectl, etcd, kwok for `up --runtime kwok`")
    handlers["tools"] = "canarylab.cli.lab:run_tools"

    return parser, handlers


def _load(spec: str) -> Handler:
    module, _, func = spec.partition(":")
    handler: Handler = getattr(importlib.import_module(module), func)
    return handler


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``canarylab`` console script."""
    parser, handlers = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:  # bare `canarylab` opens the demo
        args = parser.parse_args(["demo", *(argv or [])])
    try:
        return _load(handlers[args.command])(args)
    except UserError as err:
        print(f"canarylab: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        return 130

