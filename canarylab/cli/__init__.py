"""The ``canarylab`` command: the whole command surface on one page, then a hand-over to the command's module.

One module per command family turns the parsed flags into calls on the layers:

* :mod:`canarylab.cli.demo` - ``demo`` and ``ui`` (the dashboard on the simulated lab or a real cluster);
* :mod:`canarylab.cli.simulate` - ``simulate`` (the simulated lab headless);
* :mod:`canarylab.cli.engine` - ``engine`` (the engine headless on a real cluster);
* :mod:`canarylab.cli.learn` - ``learn`` (guided lessons in the dashboard, and ``--check`` headless);
* :mod:`canarylab.cli.serve` - ``serve`` (the dashboard in browser tabs, through textual-serve);
* :mod:`canarylab.cli.lab` - ``up``, ``down``, ``doctor``, ``tools install`` (the kind lab);
* :mod:`canarylab.cli.kwok` - ``up --runtime kwok``, ``down``, ``env``, ``doctor --runtime kwok`` (the Docker-free lab).

Handlers are imported lazily, so ``canarylab simulate`` starts without loading Textual or kr8s.

Exit codes mean one thing each, for every command (:data:`EXIT_CODES`): 0 succeeded, 1 a Canary failed,
2 bad input (something the user must fix: a file, a flag, a tool, a cluster), 3 timeout, 70 an internal error
(a bug: the traceback goes to a file under the cache directory), 130 SIGINT, 143 SIGTERM. SIGTERM is handled
like SIGINT: the command's task is cancelled, so child processes stop and temporary folders go.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import signal
import sys
import textwrap
import time
import traceback
from collections.abc import Callable, Coroutine, Iterator, Sequence
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

from canarylab import __version__
from canarylab.errors import UserError

Handler = Callable[[argparse.Namespace], int]
T = TypeVar("T")

EXIT_SUCCEEDED = 0
EXIT_CANARY_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_TIMEOUT = 3
EXIT_INTERNAL_ERROR = 70  # EX_SOFTWARE in sysexits.h
EXIT_SIGINT = 128 + signal.SIGINT  # 130
EXIT_SIGTERM = 128 + signal.SIGTERM  # 143
EXIT_PIPE_CLOSED = 128 + signal.SIGPIPE  # 141

EXIT_CODES: dict[int, str] = {
    EXIT_SUCCEEDED: "succeeded",
    EXIT_CANARY_FAILED: "a Canary failed (rolled back)",
    EXIT_BAD_INPUT: "bad input: a file, flag, tool or cluster to fix (the message says which and how)",
    EXIT_TIMEOUT: "the timeout passed first",
    EXIT_INTERNAL_ERROR: "internal error: a bug in canarylab (the traceback is written to a file, named on stderr)",
    EXIT_SIGINT: "interrupted (SIGINT, Ctrl-C)",
    EXIT_PIPE_CLOSED: "stopped: the reader of stdout went away (EPIPE, e.g. `| head`)",
    EXIT_SIGTERM: "interrupted (SIGTERM)",
}
"""Every exit code any command returns, and what it means."""


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


def _epilog(examples: Sequence[str], codes: Sequence[int]) -> str:
    lines = ["example:" if len(examples) == 1 else "examples:"]
    lines += [f"  {e}" for e in examples]
    lines += ["", "exit codes:"]
    lines += [f"  {code:<4}{EXIT_CODES[code]}" for code in codes]
    return "\n".join(lines)


_ALWAYS = (EXIT_BAD_INPUT, EXIT_INTERNAL_ERROR, EXIT_SIGINT, EXIT_SIGTERM)


def _command(sub: argparse._SubParsersAction[argparse.ArgumentParser], name: str, summary: str,
             examples: Sequence[str], codes: Sequence[int]) -> argparse.ArgumentParser:
    """A subcommand whose ``--help`` gives a one-line description, examples and its exit codes."""
    return sub.add_parser(name, help=summary, description=summary[:1].upper() + summary[1:] + ".",
                          epilog=_epilog(examples, sorted({*codes, *_ALWAYS})),
                          formatter_class=argparse.RawDescriptionHelpFormatter)


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, str]]:
    """The argument parser and, per command, the ``module:function`` that runs it."""
    parser = argparse.ArgumentParser(
        prog="canarylab",
        description="Canary releases with Flagger's semantics: a simulated lab, a live dashboard, a kind lab.",
        epilog=_epilog(["canarylab simulate --json", "canarylab COMMAND --help"], sorted(EXIT_CODES)),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"canarylab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    handlers: dict[str, str] = {}

    p = _command(sub, "demo", "the dashboard on the simulated lab (the default command)",
                 ["canarylab demo --speed 10 -f my-canary.yaml"], [EXIT_SUCCEEDED])
    _add_lab_inputs(p)
    p.add_argument("--speed", type=_positive_float, default=None, metavar="X",
                   help="run the lab X times real time (default 5; 1 with --prometheus)")
    p.add_argument("--readonly", action="store_true", help="hide every key that changes anything")
    handlers["demo"] = "canarylab.cli.demo:run_demo"

    p = _command(sub, "simulate", "the simulated lab headless: a scripted scenario, events as text or JSON",
                 ["canarylab simulate -f my-canary.yaml --scenario faults.yaml --json --timeout 30m"],
                 [EXIT_SUCCEEDED, EXIT_CANARY_FAILED, EXIT_TIMEOUT, EXIT_PIPE_CLOSED])
    p.epilog = textwrap.fill(
        "supported: targets Deployment and DaemonSet; providers linkerd, smi:v1alpha2, gatewayapi:v1beta1/v1, "
        "istio and nginx; canary, Blue/Green, A/B testing (analysis.match), mirroring, session affinity "
        "(analysis.sessionAffinity on gatewayapi and istio), gates, webhooks, MetricTemplates, alerts (printed; "
        "sent with --send-alerts). Refused with the field named: other providers, sessionAffinity on linkerd, "
        "smi and nginx, Istio TCP.", 100) + "\n\n" + (p.epilog or "")
    _add_lab_inputs(p)
    p.add_argument("--scenario", metavar="FILE", help="YAML list of steps (default: set image to 3.1.1 at 0s)")
    p.add_argument("--json", action="store_true",
                   help="one JSON object per line; the last is the result (marked interrupted on a signal)")
    p.add_argument("--speed", type=_positive_float, default=None, metavar="X",
                   help="run X times real time (default: virtual time, as fast as possible)")
    p.add_argument("--timeout", default="1h", metavar="DURATION",
                   help="give up after this much lab time (default 1h), exit 3")
    p.add_argument("--send-alerts", action="store_true",
                   help="post analysis.alerts to their AlertProviders (default: print them, send nothing)")
    handlers["simulate"] = "canarylab.cli.simulate:run"

    p = _command(sub, "ui", "the dashboard and the engine on a real cluster",
                 ["canarylab ui --context kind-canarylab -n test --readonly"], [EXIT_SUCCEEDED])
    _add_cluster_inputs(p)
    add_validate_flag(p)  # the keymap file is YAML the user gives
    handlers["ui"] = "canarylab.cli.demo:run_ui"

    p = _command(sub, "engine", "the engine headless on a real cluster (events as text or JSON) until stopped",
                 ["canarylab engine --context prod --namespace team-a --json"], [])
    _add_cluster_inputs(p)
    p.add_argument("--json", action="store_true",
                   help="one JSON object per line; on SIGINT/SIGTERM a last result line marked interrupted")
    p.add_argument("--metrics-addr", metavar="HOST:PORT",
                   help="serve Flagger's metrics (flagger_canary_*) on /metrics, and /healthz and /readyz, "
                        "at HOST:PORT (:PORT binds 127.0.0.1)")
    _add_engine_flags(p)
    handlers["engine"] = "canarylab.cli.engine:run"

    p = _command(sub, "learn", "guided lessons on screen, on the simulated lab or a real one",
                 ["canarylab learn 1", "canarylab learn --list", "canarylab learn --check"],
                 [EXIT_SUCCEEDED, EXIT_CANARY_FAILED])
    p.add_argument("lesson", nargs="?", metavar="LESSON", help="start (or resume) this lesson: a number or an id")
    p.add_argument("--list", action="store_true", help="list the lessons and your progress, then exit")
    p.add_argument("--check", nargs="?", const="", default=None, metavar="LESSON",
                   help="play every lesson (or LESSON) automatically on the simulated lab; exit 0 when all complete, "
                        "1 when one fails")
    p.add_argument("--reset", action="store_true", help="forget your saved progress (every lesson starts over)")
    p.add_argument("--speed", type=_positive_float, default=None, metavar="X",
                   help="run the simulated lab X times real time (default 2)")
    p.add_argument("--workdir", metavar="DIR",
                   help="where the files you edit are written (default ./canarylab-lessons)")
    add_validate_flag(p)  # the lesson files the learner edits and applies, and the keymap
    _add_cluster_inputs(p)
    handlers["learn"] = "canarylab.cli.learn:run"

    p = _command(sub, "serve", "the dashboard in a browser, for a projector or a room (one process per tab)",
                 ["canarylab serve", "canarylab serve --learn 1 --host 0.0.0.0 --max-sessions 12",
                  "canarylab serve --shared --speed 2", "canarylab serve --context kind-canarylab -n test"],
                 [EXIT_SUCCEEDED])
    p.epilog = textwrap.fill(
        "What each tab shows: `canarylab demo` (default; -f, --speed, --prometheus as for demo), `canarylab learn "
        "[LESSON]` with --learn, `canarylab ui` with --context. Each tab has its own simulated lab and lessons "
        "progress, gone with the tab; --shared (always with --context) gives every tab one screen, where only the "
        "first tab connected acts. Binding anything but 127.0.0.1 (or ::1, localhost) needs a token, even another "
        "127.x address: one is made and printed in the URL; a request without it is answered 401.",
        100) + "\n\n" + (p.epilog or "")
    p.add_argument("--host", default="127.0.0.1", metavar="H",
                   help="address to listen on (default 127.0.0.1; any other but ::1 and localhost needs a token, made "
                        "unless --token)")
    p.add_argument("--port", type=_port, default=8000, metavar="P",
                   help="port to listen on (default 8000; 0: a free one)")
    p.add_argument("--token", default=None, metavar="T",
                   help="the token every request must carry (?token=T once, then a cookie); default: none on "
                        "127.0.0.1, a random one printed in the URL on any other address")
    p.add_argument("--max-sessions", type=int, default=10, metavar="N",
                   help="at most N tabs at once (default 10); the next one gets a page saying the room is full")
    p.add_argument("--shared", action="store_true",
                   help="one lab for every tab, drawn at the smallest tab's size; only the first tab's keys act")
    p.add_argument("--learn", nargs="?", const="", default=None, metavar="LESSON",
                   help="serve the guided lessons (from LESSON, a number or an id) instead of the demo")
    p.add_argument("--speed", type=_positive_float, default=None, metavar="X",
                   help="lab clock, X times real time (default: demo's 5, learn's 2)")
    _add_lab_inputs(p)
    _add_cluster_inputs(p)
    handlers["serve"] = "canarylab.cli.serve:run"

    p = _command(sub, "up", "build the local lab: on kind (Docker), or --runtime kwok without Docker",
                 ["canarylab up --runtime kwok", "canarylab up --router smi --no-tui"], [EXIT_SUCCEEDED])
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

    p = _command(sub, "down", "stop the Docker-free lab, or delete the kind cluster (only what canarylab made)",
                 ["canarylab down", "canarylab down --runtime kind --name lab2"], [EXIT_SUCCEEDED])
    p.add_argument("--runtime", choices=["kind", "kwok"], default=None,
                   help="which lab (default: the Docker-free lab if it is there, else the kind cluster)")
    p.add_argument("--name", default="canarylab", help="kind cluster name")
    handlers["down"] = "canarylab.cli.lab:run_down"

    p = _command(sub, "env", "shell exports for the Docker-free lab: eval \"$(canarylab env)\"",
                 ["canarylab env", 'eval "$(canarylab env)"'], [EXIT_SUCCEEDED])
    handlers["env"] = "canarylab.cli.kwok:run_env"

    p = _command(sub, "doctor", "preflight checks: what the lab needs and how to get it (exit 2 when one is fatal)",
                 ["canarylab doctor", "canarylab doctor --runtime kwok"], [EXIT_SUCCEEDED])
    p.add_argument("--runtime", choices=["kind", "kwok"], default="kind",
                   help="kind: Docker, tools, system, cluster (default); kwok: the Docker-free lab's binaries")
    p.add_argument("--name", default="canarylab", help="kind cluster name")
    handlers["doctor"] = "canarylab.cli.lab:run_doctor"

    p = _command(sub, "tools", "manage the lab's command-line tools", ["canarylab tools install"], [EXIT_SUCCEEDED])
    tools = p.add_subparsers(dest="tools_command", metavar="ACTION", required=True)
    p = tools.add_parser("install", help="download the pinned release binaries into the user cache (SHA-256 checked)",
                         description="Download the pinned release binaries into the user cache (SHA-256 checked).",
                         epilog=_epilog(["canarylab tools install", "canarylab tools install --runtime kwok"],
                                        sorted({EXIT_SUCCEEDED, *_ALWAYS})),
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runtime", choices=["kind", "kwok"], default="kind",
                   help="kind: kind, kubectl, linkerd, helm (default); kwok: kube-apiserver, "
                        "kube-controller-manager, kube-scheduler, kubectl, etcd, kwok for `up --runtime kwok`")
    handlers["tools"] = "canarylab.cli.lab:run_tools"

    return parser, handlers


def _load(spec: str) -> Handler:
    module, _, func = spec.partition(":")
    handler: Handler = getattr(importlib.import_module(module), func)
    return handler


# ------------------------------------------------------------------------------------------- signals

_signals: list[int] = []
"""The signals that interrupted the running command (SIGINT, SIGTERM), in order."""


def interrupted_by() -> str | None:
    """``"SIGTERM"`` or ``"SIGINT"`` once a signal asked the command to stop, else ``None``."""
    return signal.Signals(_signals[-1]).name if _signals else None


def note_signal(signum: int) -> None:
    """Record that ``signum`` stopped the command (for handlers installed on the event loop itself)."""
    _signals.append(signum)


_main_task: asyncio.Task[Any] | None = None
"""The task :func:`run_async` is running, which SIGTERM cancels."""


def run_async(coro: Coroutine[Any, Any, T],
              runner: Callable[[Coroutine[Any, Any, T]], T] = asyncio.run) -> T:
    """``runner(coro)`` (``asyncio.run`` or the virtual clock's) for a command: SIGTERM cancels ``coro``'s
    task on its loop, whatever SIGINT is.

    Under plain ``asyncio.run`` SIGTERM borrows asyncio's SIGINT handler, but asyncio installs none when the
    process started with SIGINT ignored (``cmd &`` in a script, nohup); SIGTERM then had to raise
    ``KeyboardInterrupt`` wherever the code happened to be, which left tasks half-done and printed tracebacks.
    """
    async def main() -> T:
        global _main_task
        _main_task = asyncio.current_task()
        try:
            return await coro
        finally:
            _main_task = None

    return runner(main())


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    """SIGTERM does what SIGINT does: under :func:`run_async` the main task is cancelled (its ``finally``
    blocks stop child processes and remove temporary folders); under plain ``asyncio.run`` asyncio's SIGINT
    handler does the same; elsewhere ``KeyboardInterrupt`` is raised."""
    _signals.append(signum)
    task = _main_task
    if task is not None and not task.done() and not task.cancelling():
        loop = task.get_loop()
        loop.call_soon_threadsafe(task.cancel)  # the signal arrived between two bytecodes: wake the loop
        return
    handler = signal.getsignal(signal.SIGINT)
    if callable(handler):
        handler(signal.SIGINT, frame)  # Python's default raises KeyboardInterrupt; asyncio's cancels the task
    else:
        raise KeyboardInterrupt


class _Signals:
    """Route SIGTERM to the SIGINT handler for the duration of a command (main thread only)."""

    def __enter__(self) -> _Signals:
        _signals.clear()
        self._previous: signal.Handlers | Callable[..., object] | int | None = None
        self._sigint = signal.getsignal(signal.SIGINT)
        try:
            self._previous = signal.signal(signal.SIGTERM, _on_sigterm)
        except ValueError:  # not the main thread (a test calling main from a worker)
            self._previous = None
        self._installed = self._previous is not None
        return self

    def __exit__(self, *exc: object) -> None:
        if self._installed:
            signal.signal(signal.SIGTERM, self._previous)

    def interrupt_code(self) -> int:
        return 128 + (_signals[-1] if _signals else signal.SIGINT)

    def note_sigint(self) -> None:
        if not _signals or _signals[-1] != signal.SIGTERM:
            _signals.append(signal.SIGINT)


# ------------------------------------------------------------------------------------------- errors

def _leaves(err: BaseException) -> Iterator[BaseException]:
    """The exceptions inside (nested) exception groups, or ``err`` itself."""
    if isinstance(err, BaseExceptionGroup):
        for inner in err.exceptions:
            yield from _leaves(inner)
    else:
        yield err


def crash_dir() -> Path:
    """Where internal errors leave their traceback: ``<cache>/crashes`` (``CANARYLAB_CACHE_DIR`` moves it)."""
    override = os.environ.get("CANARYLAB_CACHE_DIR")
    xdg = os.environ.get("XDG_CACHE_HOME")
    root = Path(override) if override else (Path(xdg) if xdg else Path.home() / ".cache") / "canarylab"
    return root / "crashes"


def _report_bug(err: BaseException, argv: Sequence[str]) -> int:
    """Write the traceback to a file and print one short line that says it is a bug and where that file is."""
    text = (f"canarylab {__version__} (Python {sys.version.split()[0]})\n"
            f"command: canarylab {' '.join(argv)}\n\n" + "".join(traceback.format_exception(err)))
    name = f"crash-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{os.getpid()}.txt"
    where: Path | None = None
    for folder in (crash_dir(), Path(os.environ.get("TMPDIR", "/tmp"))):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / name).write_text(text)
            where = folder / name
            break
        except OSError:
            continue
    summary = f"{type(err).__name__}: {err}".splitlines()[0][:200]
    place = f"the traceback is in {where}" if where else "the traceback could not be written"
    print(f"canarylab: internal error ({summary}). This is a bug in canarylab, not in your input; {place}. "
          "Please report it with that file.", file=sys.stderr, flush=True)
    return EXIT_INTERNAL_ERROR


def _silence_stdout() -> None:
    """stdout's reader is gone: point stdout at /dev/null so the interpreter's last flush cannot complain."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # stdout is not a file descriptor (tests capture it)
        pass


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``canarylab`` console script; returns one of :data:`EXIT_CODES`."""
    parser, handlers = build_parser()
    given = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(given)
    if args.command is None:  # bare `canarylab` opens the demo
        args = parser.parse_args(["demo", *given])
    with _Signals() as signals:
        try:
            code = _load(handlers[args.command])(args)
        except KeyboardInterrupt:
            signals.note_sigint()
            return signals.interrupt_code()
        except asyncio.CancelledError:  # the main task was cancelled by a signal and did not re-raise it
            signals.note_sigint()
            return signals.interrupt_code()
        except BaseException as err:  # the one place that turns any surprise into exit 70
            if isinstance(err, SystemExit):
                raise
            leaves = list(_leaves(err))
            users = [e for e in leaves if isinstance(e, UserError)]
            if users and len(users) == len(leaves):
                print(f"canarylab: {users[0]}", file=sys.stderr)
                return users[0].exit_code
            if leaves and all(isinstance(e, KeyboardInterrupt | asyncio.CancelledError) for e in leaves):
                signals.note_sigint()
                return signals.interrupt_code()
            return _report_bug(err, given)
        if code == EXIT_PIPE_CLOSED:
            _silence_stdout()
        if _signals:
            return signals.interrupt_code()  # the command stopped on a signal and returned normally
        if code not in EXIT_CODES:
            return _report_bug(RuntimeError(f"the command returned the undocumented exit code {code}"), given)
        return code
