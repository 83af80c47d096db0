"""SIGTERM is handled like SIGINT (issue 14): real ``canarylab simulate`` processes, real signals.

The child processes stop (a local Prometheus), the temporary TSDB folder is removed, the exit code is 130 or
143, and with ``--json`` the last line is the result marked interrupted.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from canarylab.prometheus.local import prometheus_available

WAIT = 60.0


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _start(tmp_path: Path, *args: str, sigint_ignored: bool = False) -> subprocess.Popen[str]:
    env = {**os.environ, "TMPDIR": str(tmp_path), "CANARYLAB_CACHE_DIR": str(tmp_path / "cache")}
    return subprocess.Popen([sys.executable, "-m", "canarylab.cli", "simulate", "--json", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            preexec_fn=_ignore_sigint if sigint_ignored else None)


def _read_until(proc: subprocess.Popen[str], word: str, timeout: float = WAIT) -> list[str]:
    """stdout lines until one contains ``word`` (bounded)."""
    assert proc.stdout is not None
    lines: list[str] = []
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not sel.select(timeout=0.5):
            if proc.poll() is not None:
                break
            continue
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if word in line:
            return lines
    proc.kill()
    raise AssertionError(f"no line with {word!r} within {timeout}s; got {lines!r}, stderr: {proc.stderr.read()!r}")


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "State:\tZ" not in status


def _finish(proc: subprocess.Popen[str], sig: int) -> tuple[int, list[str], str]:
    proc.send_signal(sig)
    try:
        out, err = proc.communicate(timeout=WAIT)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(f"canarylab did not stop within {WAIT}s of the signal; stderr: {err}") from None
    return proc.returncode, out.splitlines(), err


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_mid_run_ends_json_output_with_an_interrupted_result(tmp_path: Path, sig: int, code: int) -> None:
    proc = _start(tmp_path, "--speed", "1")
    _read_until(proc, '"kind": "event"')
    returncode, lines, err = _finish(proc, sig)
    assert returncode == code
    assert "Traceback" not in err
    result = json.loads(lines[-1])
    assert result["kind"] == "result"
    assert result["interrupted"] is True and result["signal"] == signal.Signals(sig).name
    assert result["canaries"][0]["name"] == "podinfo"


def test_sigterm_stops_cleanly_when_the_run_started_with_sigint_ignored(tmp_path: Path) -> None:
    """``canarylab simulate … &`` in a script starts with SIGINT ignored, so asyncio installs no handler for
    it; SIGTERM used to raise KeyboardInterrupt mid-tick and print "Task exception was never retrieved"."""
    for _ in range(3):  # the signal lands at a different point of the tick each time
        proc = _start(tmp_path, "--speed", "1", sigint_ignored=True)
        _read_until(proc, '"kind": "event"')
        returncode, lines, err = _finish(proc, signal.SIGTERM)
        assert returncode == 143, err
        assert "Traceback" not in err and "Task" not in err, err
        result = json.loads(lines[-1])
        assert result["interrupted"] is True and result["signal"] == "SIGTERM"


def test_sigterm_stops_the_local_prometheus_and_removes_its_tsdb(tmp_path: Path) -> None:
    if not prometheus_available():
        if os.environ.get("CANARYLAB_REQUIRE_PROMETHEUS") == "1":
            pytest.fail("the prometheus binary is missing (apt-get install prometheus)")
        pytest.skip("needs the prometheus binary (apt-get install prometheus)")
    proc = _start(tmp_path, "--prometheus", "local")
    _read_until(proc, '"kind": "event"')
    tsdb = list(tmp_path.glob("canarylab-prometheus-*"))
    children = _children(proc.pid)
    assert tsdb, "the local Prometheus keeps its TSDB under TMPDIR"
    assert children, "the local Prometheus runs as a child process"
    returncode, lines, err = _finish(proc, signal.SIGTERM)
    assert returncode == 143, err
    assert json.loads(lines[-1])["interrupted"] is True
    assert not list(tmp_path.glob("canarylab-prometheus-*")), "the temporary TSDB folder is removed"
    deadline = time.monotonic() + 10
    while any(_alive(c) for c in children) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(c) for c in children), "Prometheus is stopped"


def test_sigterm_before_the_lab_starts_exits_143_without_a_traceback(tmp_path: Path) -> None:
    proc = _start(tmp_path, "--speed", "1")
    time.sleep(0.05)  # most likely still importing
    returncode, _, err = _finish(proc, signal.SIGTERM)
    assert returncode in (143, -signal.SIGTERM)  # a signal before main() installed its handler kills outright
    assert "Traceback" not in err


def test_a_reader_that_goes_away_ends_the_run_with_141(tmp_path: Path) -> None:
    """``canarylab simulate | head -3`` used to run on, busy, until --timeout (1 h of lab time)."""
    proc = _start(tmp_path, "--timeout", "100h")
    _read_until(proc, '"kind": "event"')
    assert proc.stdout is not None
    proc.stdout.close()
    try:
        proc.wait(timeout=WAIT)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError("simulate kept running after its reader went away") from None
    assert proc.returncode == 141
    err = proc.stderr.read() if proc.stderr else ""
    assert "Traceback" not in err and "BrokenPipeError" not in err
