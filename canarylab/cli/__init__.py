"""The ``canarylab`` command: the whole command surface on one page, then a hand-over to the command's module.

One module per command family turns the parsed flags into calls on the layers:

* :mod:`canarylab.cli.demo` - ``demo`` and ``ui`` (the dashboard on the simulated lab or a real cluster);
* :mod:`canarylab.cli.simulate` - ``simulate`` (the simulated lab headless);
* :mod:`canarylab.cli.engine` - ``engine`` (the engine headless on a real cluster);
* :mod:`canarylab.cli.lab` - ``up``, ``down``, ``doctor``, ``tools install`` (the kind lab).

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


def _add_lab_inputs(p: argparse.ArgumentParser) -> None:
    p.add_argument("-f", "--filename", dest="files", action="append", default=[], metavar="FILE",
                   help="manifests to apply on top of the seed lab (multi-document YAML); repeatable")
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
    handlers["ui"] = "canarylab.cli.demo:run_ui"

    p = sub.add_parser("engine", help="the engine headless on a real cluster (events as text or JSON)")
    _add_cluster_inputs(p)
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument("--metrics-addr", metavar="HOST:PORT",
                   help="serve Flagger's metrics (flagger_canary_*) on /metrics, and /healthz and /readyz, "
                        "at HOST:PORT (:PORT binds 127.0.0.1)")
    p.add_argument("--metrics-server", metavar="URL", default=None,
                   help="Prometheus for the built-in checks, as Flagger's -metrics-server "
                        "(default http://prometheus.linkerd-viz:9090)")
    handlers["engine"] = "canarylab.cli.engine:run"

    p = sub.add_parser("up", help="build the local lab on kind: Linkerd, Prometheus, loadtester, podinfo")
    p.add_argument("--name", default="canarylab", help="kind cluster name (context kind-NAME)")
    p.add_argument("--router", choices=["smi", "gatewayapi"], default="gatewayapi",
                   help="route with an SMI TrafficSplit or a Gateway API HTTPRoute (default)")
    p.add_argument("--dry-run", action="store_true", help="print the commands it would run, one per line")
    p.add_argument("--no-tui", action="store_true", help="plain progress lines, and do not open the dashboard")
    handlers["up"] = "canarylab.cli.lab:run_up"

    p = sub.add_parser("down", help="delete the lab's kind cluster (and nothing else)")
    p.add_argument("--name", default="canarylab", help="kind cluster name")
    handlers["down"] = "canarylab.cli.lab:run_down"

    p = sub.add_parser("doctor", help="preflight checks for the kind lab")
    p.add_argument("--name", default="canarylab", help="kind cluster name")
    handlers["doctor"] = "canarylab.cli.lab:run_doctor"

    p = sub.add_parser("tools", help="manage the lab's command-line tools")
    tools = p.add_subparsers(dest="tools_command", metavar="ACTION", required=True)
    tools.add_parser("install", help="download pinned kind, kubectl, linkerd and helm into the user cache")
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

