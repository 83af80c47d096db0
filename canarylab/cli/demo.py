"""``canarylab demo`` and ``canarylab ui``: the dashboard on the simulated lab or on a real cluster."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping

from canarylab import keymap as keys
from canarylab.cli import run_async
from canarylab.engine.ports import ClusterError
from canarylab.errors import UserError
from canarylab.session import Lab


async def _serve(lab: Lab, keymap: Mapping[str, str]) -> None:
    """Start the lab before the TUI (so its errors are printed plainly), run the TUI, stop the lab."""
    print(f"canarylab: starting the {lab.title}…", file=sys.stderr, flush=True)
    try:
        await lab.start()
    except (ClusterError, OSError) as err:
        raise UserError(f"the lab did not start: {err}") from None
    try:
        from canarylab.app import CanaryLabApp  # Textual loads only once the lab is up

        app = CanaryLabApp(lab, start_lab=False, keymap=keymap)
        await app.run_async()
    finally:
        await lab.stop()
    for path in app.saved_reports:  # the notification is gone with the screen: say where the reports are
        print(f"canarylab: report saved: {path}", file=sys.stderr)


def run_demo(args: argparse.Namespace) -> int:
    """``canarylab`` / ``canarylab demo``: the dashboard on the simulated lab."""
    try:
        from canarylab.sim.lab import SimLab
    except ImportError as err:
        raise UserError(f"the simulated lab is not available in this build ({err}).") from None
    notes: list[str] = []
    keymap = keys.load_keymap(validate=getattr(args, "validate", "strict"), warnings=notes)
    speed = args.speed or (1.0 if args.prometheus else 5.0)
    lab = SimLab(args.files, speed=speed, prometheus=args.prometheus, metrics_port=args.metrics_port,
                 readonly=args.readonly, validate=getattr(args, "validate", "strict"))
    for note in [*notes, *lab.warnings]:
        print(f"canarylab: warning: {note}", file=sys.stderr, flush=True)
    run_async(_serve(lab, keymap))
    return 0


def run_ui(args: argparse.Namespace) -> int:
    """``canarylab ui``: the dashboard and the engine on a real cluster."""
    try:
        from canarylab.kube.lab import KubeLab
    except ImportError:
        raise UserError(
            "canarylab ui needs the cluster adapter (canarylab.kube.lab), which this build does not have yet; "
            "use `canarylab demo` for the simulated lab meanwhile."
        ) from None
    notes: list[str] = []
    keymap = keys.load_keymap(validate=getattr(args, "validate", "strict"), warnings=notes)
    for note in notes:
        print(f"canarylab: warning: {note}", file=sys.stderr, flush=True)
    lab = KubeLab(args.context, args.namespaces, readonly=args.readonly, in_cluster=args.in_cluster)
    run_async(_serve(lab, keymap))
    return 0
