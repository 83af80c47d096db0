"""``canarylab simulate --prometheus ...`` errors as a user sees them: one line, exit code 2, no traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def simulate(*args: str, path: str | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if path is not None:
        env["PATH"] = path
    return subprocess.run([sys.executable, "-m", "canarylab.cli", "simulate", *args], capture_output=True,
                          text=True, env=env, timeout=60, check=False)


def test_prometheus_local_without_the_binary_says_how_to_get_it(tmp_path: Path) -> None:
    # Given a PATH without prometheus, when the user asks for a local Prometheus
    result = simulate("--prometheus", "local", path=str(tmp_path))
    # Then one clear error, exit 2
    assert result.returncode == 2
    assert result.stderr == (
        "canarylab: the prometheus binary is not on PATH: install the Debian package prometheus "
        "(apt-get install prometheus), or pass --prometheus URL to use a running Prometheus\n"
    )


def test_a_prometheus_value_that_is_not_a_url_is_refused() -> None:
    result = simulate("--prometheus", "prometheus:9090")
    assert result.returncode == 2
    assert result.stderr == ("canarylab: --prometheus: expected 'local' or a URL like http://127.0.0.1:9090, "
                             "got 'prometheus:9090'\n")
    assert "Traceback" not in result.stderr
