"""``canarylab up --runtime kwok``, ``down``, ``env`` and ``doctor --runtime kwok``: the Docker-free lab."""

from __future__ import annotations

import argparse

from canarylab.errors import UserError
from canarylab.kwok import control, state


def run_up(args: argparse.Namespace) -> int:
    """Start the lab in the background and return once it is ready (a second ``up`` says it is up)."""
    record = state.running()
    if record is not None:
        print(f"The Docker-free lab is already up ({record.status}; context {record.context}, pid {record.pid}). "
              '`eval "$(canarylab env)"` to use it, `canarylab down` to stop it.')
        return 0
    print("Starting the Docker-free lab (context canarylab-kwok) in the background…", flush=True)
    record = control.start(args.prometheus_port, lambda line: print(f"  {line}", flush=True))
    print(f"""The Docker-free lab is up (context {record.context}) after {record.ready_after:.1f}s.

  eval "$(canarylab env)"                 # plain kubectl now talks to the lab
  kubectl -n test get pods
  canarylab engine --namespace test       # the engine (or: canarylab ui --namespace test)
  kubectl -n test set image deployment/podinfo podinfod=stefanprodan/podinfo:3.1.1
  canarylab down                          # stop it; removes everything it started

Prometheus: {record.prometheus}   Logs: {state.logs_dir()}""")
    return 0


def run_down(args: argparse.Namespace) -> int:
    """Stop the lab and remove what it started; a lab that is not up is not an error."""
    if control.stop():
        print(f"The Docker-free lab is stopped and its files removed. Logs stay in {state.logs_dir()}.")
    else:
        print("No canarylab lab is up (neither the Docker-free lab nor a kind lab canarylab created); nothing to stop.")
    return 0


def run_env(args: argparse.Namespace) -> int:
    """``eval "$(canarylab env)"``: KUBECONFIG and PATH for the running lab."""
    record = state.ready()
    if record is None:
        raise control.not_up_error()
    print("\n".join(control.env_lines(record)))
    return 0


def run_doctor(args: argparse.Namespace) -> int:
    """What the Docker-free lab needs, found or missing, with how to get it; exit 1 when something is missing."""
    report, ok = control.doctor_report()
    print(report)
    return 0 if ok else 1


__all__ = ["UserError", "run_doctor", "run_down", "run_env", "run_up"]
