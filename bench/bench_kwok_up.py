"""Bench: time from `canarylab up --runtime kwok` to a ready lab (the command returns: control plane up,
CRDs and the seed installed, podinfo and the loadtester Available), cold and warm, and `canarylab down`.

Cold: the first `up` in a fresh cache directory (no lab state, certificates generated, etcd empty).
Warm: `up` again after `down` in the same directory (what a learner does every day). The binaries come from
`make substrate` or `canarylab tools install --runtime kwok`, the OS file cache is as the machine has it.
Runs as a user would, through the console entry point, with its own CANARYLAB_CACHE_DIR.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time

WARM_RUNS = 3


def canarylab(env: dict[str, str], *args: str) -> float:
    began = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "canarylab.cli", *args], env=env, capture_output=True, text=True,
                          timeout=600, check=False)
    took = time.monotonic() - began
    if done.returncode != 0:
        sys.exit(f"`canarylab {' '.join(args)}` failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return took


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="canarylab-bench-kwok-") as cache:
        env = dict(os.environ, CANARYLAB_CACHE_DIR=cache)
        env.pop("KUBECONFIG", None)
        try:
            cold = canarylab(env, "up", "--runtime", "kwok")
            downs = [canarylab(env, "down")]
            warm = []
            for _ in range(WARM_RUNS):
                warm.append(canarylab(env, "up", "--runtime", "kwok"))
                downs.append(canarylab(env, "down"))
        finally:
            subprocess.run([sys.executable, "-m", "canarylab.cli", "down"], env=env, capture_output=True,
                           timeout=120, check=False)
    print(f"canarylab up --runtime kwok, cold (fresh cache dir): {cold:.1f} s")
    print(f"canarylab up --runtime kwok, warm (again after down), median of {WARM_RUNS}: "
          f"{statistics.median(warm):.1f} s (min {min(warm):.1f}, max {max(warm):.1f})")
    print(f"canarylab down, median of {len(downs)}: {statistics.median(downs):.1f} s")


if __name__ == "__main__":
    main()
