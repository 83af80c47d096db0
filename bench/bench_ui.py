"""Dashboard benchmark: the real `canarylab demo` in a real terminal (tmux), measured from outside.

Prints: time to first frame (spawn until the detail shows the canary), CPU share of one core while idle
and while an analysis runs at --speed 10, and peak memory (VmHWM). Targets: < 1.5 s, < 3 %, < 15 %, < 150 MB.

    .venv/bin/python bench/bench_ui.py [--seconds 10]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

SESSION = f"canarylab-bench-{os.getpid()}"
TICKS = os.sysconf("SC_CLK_TCK")


def tmux(*args: str) -> str:
    return subprocess.run(["tmux", "-L", SESSION, *args], check=True, capture_output=True, text=True).stdout


def screen() -> str:
    return tmux("capture-pane", "-p", "-t", SESSION)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def peak_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def wait_for(text: str, timeout: float) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if text in screen():
            return time.monotonic() - start
        time.sleep(0.02)
    raise SystemExit(f"bench: '{text}' did not appear within {timeout}s; screen:\n{screen()}")


def cpu_share(pid: int, seconds: float) -> float:
    c0, t0 = cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    return 100 * (cpu_seconds(pid) - c0) / (time.monotonic() - t0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each CPU sample")
    args = parser.parse_args()
    if not shutil.which("tmux"):
        print("bench_ui: tmux is needed (apt-get install tmux)", file=sys.stderr)
        return 2
    exe = Path(sys.executable).with_name("canarylab")
    command = f"exec {exe} demo --speed 10"
    started = time.monotonic()
    tmux("new-session", "-d", "-s", SESSION, "-x", "120", "-y", "40", command)
    try:
        pid = int(tmux("list-panes", "-t", SESSION, "-F", "#{pane_pid}").strip())  # `exec`: the app itself
        wait_for("lab time", 30)
        first_frame = time.monotonic() - started
        wait_for("Initialized", 30)
        canary_shown = time.monotonic() - started
        time.sleep(1.0)  # let the start-up settle before sampling idle
        idle = cpu_share(pid, args.seconds)
        tmux("send-keys", "-t", SESSION, "b")
        wait_for("Ship a new image", 5)
        tmux("send-keys", "-t", SESSION, "Enter")
        wait_for("Progressing", 30)
        running = cpu_share(pid, args.seconds)
        peak = peak_mb(pid)
        tmux("send-keys", "-t", SESSION, "q")
        time.sleep(0.5)
    finally:
        subprocess.run(["tmux", "-L", SESSION, "kill-server"], capture_output=True)
    print(f"time to first frame      {first_frame:6.2f} s    (target < 1.5 s)")
    print(f"canary initialized shown {canary_shown:6.2f} s")
    print(f"CPU idle                 {idle:6.1f} %    (target < 3 %)")
    print(f"CPU analysis --speed 10  {running:6.1f} %    (target < 15 %)")
    print(f"peak memory              {peak:6.1f} MB   (target < 150 MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
