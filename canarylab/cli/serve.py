"""``canarylab serve``: the dashboard in a browser, for a projector or a room (through textual-serve).

What each tab runs is the command a user would type: ``canarylab demo`` (the default), ``canarylab learn`` with
``--learn``, ``canarylab ui`` with ``--context``, each in its own process. Without ``--shared`` every tab gets its
own simulated lab; with it (and always on a real cluster, where a second engine would fight the first) every tab
watches one process and only the first tab connected may act.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import secrets
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from canarylab.errors import UserError

if TYPE_CHECKING:
    from canarylab.serve.server import DashboardServer

DEFAULT_PORT = 8000
DEFAULT_MAX_SESSIONS = 10
"""Concurrent tabs on a laptop: each simulated lab with its dashboard holds about 60 MB and 3 % of a core while
analysing (bench/bench_serve.py): ten take 640 MB and a third of a core."""

LOCAL_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
"""The addresses served without a token: this machine's own loopback, the default and its names."""


def needs_token(host: str) -> bool:
    """Whether binding ``host`` needs a token: every address but 127.0.0.1 (``::1``, ``localhost``) does. That is
    the rule as issue 19 states it ("any other address"); it includes other 127.x addresses, which are local too,
    because being strict costs only a token in the printed URL."""
    return host not in LOCAL_HOSTS


def tab_argv(args: argparse.Namespace, folder: Path) -> list[str]:
    """The ``canarylab`` command one tab (or the shared screen) runs; ``folder`` is its own scratch folder."""
    base = [sys.executable, "-m", "canarylab.cli"]
    cluster = ["--context", args.context, *(x for ns in args.namespaces for x in ("-n", ns))] if args.context else []
    cluster += ["--readonly"] if args.readonly else []
    cluster += ["--in-cluster"] if args.in_cluster else []
    if args.learn is not None:
        argv = [*base, "learn", *([args.learn] if args.learn else []), *cluster]
        argv += ["--speed", str(args.speed)] if args.speed else []
        if args.shared or args.context:
            return argv  # one screen for the room: the trainer's progress and lesson files
        # Each learner's tab keeps its own progress and lesson files, gone with the tab.
        return ["env", f"CANARYLAB_LEARN_PROGRESS={folder / 'progress.json'}", *argv,
                "--workdir", str(folder / "lessons")]
    if args.context:
        return [*base, "ui", *cluster, "--validate", args.validate]
    argv = [*base, "demo", "--validate", args.validate]
    argv += [x for f in args.files for x in ("-f", str(Path(f).resolve()))]
    argv += ["--speed", str(args.speed)] if args.speed else []
    argv += ["--prometheus", args.prometheus] if args.prometheus else []
    argv += ["--metrics-port", str(args.metrics_port)] if args.metrics_port is not None else []
    argv += ["--readonly"] if args.readonly else []
    return argv


def _check(args: argparse.Namespace) -> str:
    """Refuse flag combinations that cannot work, before binding; returns what each tab shows, in words."""
    if args.max_sessions < 1:
        raise UserError(f"--max-sessions must be at least 1 (got {args.max_sessions}).")
    if args.context and (args.files or args.prometheus or args.metrics_port is not None):
        raise UserError("-f, --prometheus and --metrics-port are for the simulated lab; with --context the "
                        "cluster and its Prometheus are used. Drop them, or drop --context.")
    if args.learn is not None and (args.files or args.prometheus or args.metrics_port is not None):
        raise UserError("--learn runs each lesson's own lab: drop -f, --prometheus and --metrics-port (lesson 5 "
                        "starts its own Prometheus).")
    if args.metrics_port and not args.shared:
        raise UserError(f"--metrics-port {args.metrics_port}: every tab runs its own lab and only one can serve "
                        "that port. Add --shared (one lab for every tab), or drop --metrics-port.")
    if args.learn:
        from canarylab.learn.model import find_lesson, load_lessons

        find_lesson(load_lessons(), args.learn)  # a UserError naming the lessons when it is not one
    if args.files and args.learn is None and not args.context:
        from canarylab.sim.inputs import lab_objects

        lab_objects(args.files, validate=args.validate, warnings=[])  # a bad file fails here, not in every tab
    what = "lessons" if args.learn is not None else "dashboard"
    if args.context:
        args.shared = True  # one engine on a real cluster: a second one per tab would fight it
        return f"the {what} (context {args.context}, one screen for every tab; the first tab acts)"
    if args.shared:
        return f"the {what} (one simulated lab for every tab; the first tab acts, the others watch)"
    return f"the {what} (one simulated lab per tab)"


def run(args: argparse.Namespace) -> int:
    """``canarylab serve``: serve until Ctrl-C (or SIGTERM)."""
    what = _check(args)
    token: str | None = args.token
    if token is None and needs_token(args.host):
        token = secrets.token_urlsafe(18)
    if token is not None and not token:
        raise UserError("--token must not be empty.")
    from canarylab.serve.server import DashboardServer, ServeConfig

    logging.basicConfig(level=logging.INFO, format="canarylab serve: %(message)s", stream=sys.stderr)
    config = ServeConfig(tab_command=lambda folder: tab_argv(args, folder), host=args.host, port=args.port,
                         token=token, max_sessions=args.max_sessions, shared=args.shared, title="canarylab")
    server = DashboardServer(config)
    asyncio.run(_serve(server, what))
    return 0


async def _serve(server: DashboardServer, what: str) -> None:
    config = server.config
    try:
        url = await server.start()
    except OSError as err:
        raise UserError(f"cannot listen on {config.host}:{config.port}: {err.strerror or err}. Choose another "
                        "--port (0 picks a free one) or --host.") from None
    try:
        link = url + (f"?token={config.token}" if config.token else "")
        print(f"canarylab: serving {what} at {link}", file=sys.stderr, flush=True)
        if config.host in ("0.0.0.0", "::"):
            print(f"canarylab: that is every address of this machine: in the room, use its address in place of "
                  f"{config.host}", file=sys.stderr, flush=True)
        print(f"canarylab: at most {config.max_sessions} tabs at once; ctrl+c stops", file=sys.stderr, flush=True)
        await asyncio.Event().wait()
    finally:
        await server.stop()
