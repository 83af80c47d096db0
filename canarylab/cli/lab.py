"""``canarylab up``, ``down``, ``doctor`` and ``tools install``: the kind lab (flags in ``canarylab.cli``)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from canarylab.errors import UserError
from canarylab.lab.installer import Event, Installer, LabFailed, LogLine, StepEvent
from canarylab.lab.preflight import doctor
from canarylab.lab.runner import DryRunRunner, Runner, ShRunner, cmd
from canarylab.lab.state import LabState, bin_dir, check_name, context_of, kwok_bin_dir, lab_dir
from canarylab.lab.tools import ByteMeter, install_all
from canarylab.lab.versions import KWOK_TOOLS, TOOLS, current_platform, load_versions

Print = Callable[[str], None]

_MARKS = {"done": "✓", "skipped": "·", "failed": "✗", "running": "…"}


class PlainProgress:
    """``--no-tui`` (or no terminal): one line per step change, and each command as it runs."""

    def __init__(self, keys: Sequence[str], out: Print = print) -> None:
        self.index = {key: i for i, key in enumerate(keys, 1)}
        self.total = len(keys)
        self.out = out

    def __call__(self, event: Event) -> None:
        """Print one event."""
        if isinstance(event, LogLine):
            if event.text.startswith("$ "):
                self.out(f"        {event.text}")
            return
        where = f"[{self.index.get(event.key, 0):>2}/{self.total}]"
        extra = []
        if event.status in ("done", "failed"):
            extra.append(f"{event.elapsed:.1f}s")
        if event.note and event.status != "failed":
            extra.append(event.note)
        suffix = f" ({', '.join(extra)})" if extra else ""
        self.out(f"{where} {_MARKS.get(event.status, '?')} {event.title}{suffix}")


def _default_runner() -> Runner:
    return ShRunner([bin_dir()])


def _interactive() -> bool:
    return sys.stdin.isatty() and sys.stdout.isatty()


def run_up(args: argparse.Namespace, *, runner: Runner | None = None, out: Print = print) -> int:
    """Build the lab step by step, then open the dashboard on it (unless ``--no-tui``)."""
    if getattr(args, "runtime", "kind") == "kwok":
        from canarylab.cli.kwok import run_up as run_up_kwok

        return run_up_kwok(args)
    name = check_name(args.name)
    versions = load_versions()
    engine = getattr(args, "engine", "host")
    # With the engine in the cluster, the dashboard only follows it: two acting engines would fight.
    ui_flags = " --readonly" if engine == "in-cluster" else ""
    if args.dry_run:
        # Only the commands, one per line, so the output can be read or pasted into a shell.
        Installer(name, args.router, DryRunRunner(out), versions, dry_run=True, engine=engine).run()
        return 0
    installer = Installer(name, args.router, runner or _default_runner(), versions, engine=engine)
    if not args.no_tui and _interactive():
        from canarylab.screens.lab_progress import run_progress

        failure = run_progress(installer)
        if failure is not None:
            raise failure
    else:
        installer.on_event = PlainProgress([s.key for s in installer.steps], out)
        installer.run()
    context = context_of(name)
    out(f"The lab is ready: kube context {context}. Log: {installer.log_path}")
    if args.no_tui or not _interactive():
        out(f"Open the dashboard with: canarylab ui --context {context}{ui_flags}")
        return 0
    return _open_dashboard(context, out, readonly=engine == "in-cluster")


def _open_dashboard(context: str, out: Print, readonly: bool = False) -> int:
    from canarylab.cli import build_parser

    try:
        from canarylab.cli.demo import run_ui
    except ImportError:
        out(f"The dashboard is not available in this build; run `canarylab ui --context {context}` later.")
        return 0
    parser, _ = build_parser()
    return run_ui(parser.parse_args(["ui", "--context", context, *(["--readonly"] if readonly else [])]))


def run_down(args: argparse.Namespace, *, runner: Runner | None = None, out: Print = print) -> int:
    """Stop the Docker-free lab (when it is there, or with ``--runtime kwok``), else delete the lab's kind
    cluster, and only a cluster canarylab created."""
    runtime = getattr(args, "runtime", None)
    # Without --runtime: the Docker-free lab when it is there, or when there is no kind lab of that name either
    # (then `down` says nothing is up, exit 0: it is idempotent).
    default_kwok = runtime is None and runner is None and (
        _kwok_lab_present() or (args.name == "canarylab" and not LabState.load(args.name).created))
    if runtime == "kwok" or default_kwok:
        from canarylab.cli.kwok import run_down as run_down_kwok

        return run_down_kwok(args)
    name = check_name(args.name)
    state = LabState.load(name)
    if not state.created:
        raise UserError(
            f"canarylab did not create a kind cluster named {name!r} (no record in {lab_dir(name) / 'state.json'}), "
            f"so it will not delete it. If you do mean to delete that cluster: `kind delete cluster --name {name}`.")
    run = runner or _default_runner()
    out(f"Deleting kind cluster {name!r} (context {context_of(name)})")
    result = run.run(cmd("kind", "delete", "cluster", "--name", name), check=False,
                     on_line=lambda line: out(f"  {line}"))
    if not result.ok:
        raise UserError(f"`kind delete cluster --name {name}` failed (exit {result.exit_code}):\n"
                        f"{result.output_tail()}\nIs Docker running? Try again once `docker info` works.")
    state.forget()
    out(f"Deleted. The log of the last `up` stays in {lab_dir(name) / 'up.log'}.")
    return 0


def _kwok_lab_present() -> bool:
    from canarylab.kwok import state

    return state.lab_dir().exists()


def run_doctor(args: argparse.Namespace, *, runner: Runner | None = None, out: Print = print) -> int:
    """Print the preflight report; exit 2 (something to fix) when a check is fatal."""
    if getattr(args, "runtime", "kind") == "kwok":
        from canarylab.cli.kwok import run_doctor as run_doctor_kwok

        return run_doctor_kwok(args)
    report, ok = doctor(runner or _default_runner(), load_versions(), check_name(args.name))
    out(report)
    return 0 if ok else 2


def _stderr(text: str) -> None:
    sys.stderr.write(text)
    sys.stderr.flush()


def run_tools(args: argparse.Namespace, *, out: Print = print) -> int:
    """``canarylab tools install [--runtime kind|kwok]``: the pinned tools into the lab's bin directory, every
    checksum verified before anything is installed."""
    if args.tools_command != "install":  # argparse only offers install today
        raise UserError(f"unknown tools action {args.tools_command!r}: use `canarylab tools install`.")
    versions = load_versions()
    plat = current_platform()
    runtime = getattr(args, "runtime", "kind")
    if runtime == "kwok":
        pins, dest = versions.kwok_tools, kwok_bin_dir()
        missing = [t for t in KWOK_TOOLS if t not in pins]
        if missing:
            raise UserError(f"the versions file has no kwok_tools entry for {', '.join(missing)}; restore them from "
                            "bootstrap/versions.yaml or unset CANARYLAB_VERSIONS.")
        chosen = [pins[t] for t in KWOK_TOOLS]
    else:
        dest = bin_dir()
        chosen = [versions.tools[t] for t in TOOLS]
    meter = ByteMeter(_stderr, tty=sys.stderr.isatty())
    install_all(chosen, plat, dest, progress=out, on_bytes=meter)
    if runtime == "kwok":
        out(f"Done. `canarylab up --runtime kwok` finds them in {dest}; `eval \"$(canarylab env)\"` puts its kubectl "
            "on your PATH once the lab is up.")
    else:
        out(f"Done. canarylab looks in {dest} before PATH; to use these tools in your shell too: "
            f'export PATH="{dest}:$PATH"')
    return 0


__all__ = ["LabFailed", "PlainProgress", "StepEvent", "run_doctor", "run_down", "run_tools", "run_up"]
