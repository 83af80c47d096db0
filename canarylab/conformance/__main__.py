"""``python -m canarylab.conformance``: every scenario under the real Flagger and under ``canarylab engine``.

Starts a real control plane (the launcher in :mod:`canarylab.controlplane`), Prometheus, the scripted exporter and
webhook receiver, runs the scenarios a few at a time, prints one line per scenario, writes
``docs/conformance.md`` and prints ``N matched, M differ`` last. Exit code 0 when every difference is a
deliberate one, 1 otherwise, 2 when something it needs is missing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

from canarylab.conformance.compare import Verdict, compare
from canarylab.conformance.harness import (
    HarnessError,
    Recording,
    Substrate,
    find_binary,
    run_scenario,
    start_substrate,
    stop_substrate,
)  # fmt: skip
from canarylab.conformance.report import render, summary
from canarylab.conformance.scenarios import BY_NAME, SCENARIOS, Scenario
from canarylab.errors import UserError


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m canarylab.conformance", description=__doc__.splitlines()[0])
    p.add_argument("--only", action="append", default=[], metavar="SCENARIO",
                   help="run only this scenario (repeatable); names: " + ", ".join(BY_NAME))
    p.add_argument("--quick", action="store_true", help="only the quick subset `make test` runs")
    p.add_argument("-j", "--jobs", type=int, default=7, help="scenarios at a time (each runs two controllers)")
    p.add_argument("--out", default="docs/conformance.md", help="the report to write ('' for none)")
    p.add_argument("--json", dest="json_out", default="", metavar="FILE", help="also write the recordings as JSON")
    p.add_argument("--logs", default="", metavar="DIR", help="keep controller and control-plane logs here")
    return p.parse_args(argv)


def select(args: argparse.Namespace) -> list[Scenario]:
    unknown = [n for n in args.only if n not in BY_NAME]
    if unknown:
        raise UserError(f"--only {', '.join(unknown)}: no such scenario; the scenarios are {', '.join(BY_NAME)}")
    chosen = [BY_NAME[n] for n in args.only] if args.only else list(SCENARIOS)
    return [s for s in chosen if s.quick] if args.quick else chosen


async def run_all(sub: Substrate, scenarios: list[Scenario], jobs: int,
                  prefix: str) -> list[dict[str, Recording]]:
    gate = asyncio.Semaphore(max(1, jobs))

    async def one(s: Scenario) -> dict[str, Recording]:
        async with gate:
            pair = await run_scenario(sub, s, prefix)
            v = compare(pair["flagger"], pair["engine"])
            print(f"{v.label:18} {s.name:26} {v.first}", flush=True)
            return pair

    return list(await asyncio.gather(*(one(s) for s in scenarios)))


async def main_async(args: argparse.Namespace, scenarios: list[Scenario], logs: Path) -> int:
    from canarylab.controlplane import ControlPlane

    started = time.monotonic()
    find_binary("flagger")  # before minutes of setup: say at once if Flagger is missing
    kubectl = find_binary("kubectl")
    plane = ControlPlane(logs / "control-plane")
    await asyncio.to_thread(plane.start)
    try:
        sub = await start_substrate(Path(plane.kubeconfig), plane.context, kubectl, logs / "runs")
        try:
            prefix = "cf" + format(int(time.time()) % 46656, "x")
            pairs = await run_all(sub, scenarios, args.jobs, prefix)
        finally:
            await stop_substrate(sub)
    finally:
        await asyncio.to_thread(plane.stop)
    verdicts: list[Verdict] = [compare(p["flagger"], p["engine"]) for p in pairs]
    seconds = time.monotonic() - started
    if args.out:
        header = ("Each scenario ran once under Flagger (`flagger -kubeconfig ... -mesh-provider linkerd` or "
                  "`gatewayapi:v1`, `-metrics-server` a real Prometheus, `-namespace`, "
                  "`-enable-leader-election=false`) and once under `canarylab engine --context ... --namespace "
                  "... --in-cluster --metrics-server ...`, on the same real API server with the same "
                  "scripted Linkerd metrics and webhook answers. Analysis interval 10 s (Flagger's floor).")
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(render(scenarios, verdicts, pairs, header=header, seconds=seconds))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps([{k: r.to_json() for k, r in p.items()} for p in pairs], indent=1))
    print(f"logs: {logs}", flush=True)
    print(summary(verdicts), flush=True)
    return 0 if all(v.match or v.deliberate for v in verdicts) else 1


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    try:
        scenarios = select(args)
        logs = Path(args.logs) if args.logs else Path(tempfile.mkdtemp(prefix="canarylab-conformance-"))
        return asyncio.run(main_async(args, scenarios, logs))
    except (UserError, HarnessError) as err:
        print(f"conformance: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
