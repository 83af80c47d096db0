"""Starting, stopping and describing the Docker-free lab from the command line (``up --runtime kwok``,
``down``, ``env``, ``doctor --runtime kwok``). The lab itself runs in :mod:`canarylab.kwok.daemon`.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from canarylab.errors import UserError
from canarylab.kwok import state

Print = Callable[[str], None]

UP_TIMEOUT = 300.0
"""The longest ``up`` waits for the lab (a cold start on a loaded 2-core machine takes well under a minute)."""
STOP_TIMEOUT = 30.0

_COMPONENT_NAMES = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok", "prometheus")


def not_up_error() -> UserError:
    """The one paragraph every command needing the lab prints when it is not up."""
    return UserError(f"the Docker-free lab is not up (no running lab in {state.lab_dir()}): start it with "
                     "`canarylab up --runtime kwok`, then try again.")


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def preflight(prometheus_port: int | None) -> list[str]:
    """Problems that stop ``up`` before anything starts, each with its fix (empty: good to go)."""
    from canarylab.controlplane import Binaries, MissingBinaries
    from canarylab.lab.state import kwok_bin_dir

    problems = []
    try:
        Binaries.locate([kwok_bin_dir()])
    except MissingBinaries as err:
        problems.append(f"{err} (`canarylab tools install --runtime kwok` downloads the release binaries whose "
                        "checksums are pinned; `canarylab doctor --runtime kwok` lists what is where)")
    if shutil.which("prometheus") is None:
        problems.append("the prometheus binary is not on PATH: install it (Debian/Ubuntu: `apt-get install "
                        "prometheus`; macOS: `brew install prometheus`)")
    if prometheus_port is not None and not _port_free(prometheus_port):
        problems.append(f"--prometheus-port {prometheus_port}: 127.0.0.1:{prometheus_port} is in use; choose a "
                        "free port, or leave the flag out to get one")
    return problems


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _ours(name: str, pid: int) -> bool:
    """Whether ``pid`` still runs the lab's ``name`` (a recycled pid is left alone)."""
    if not state.alive(pid):
        return False
    line = _cmdline(pid)
    if not line:  # no /proc (macOS): trust the record
        return True
    return ("canarylab.kwok.daemon" in line) if name == "lab" else (name in line)


def _kill(pids: dict[str, int], sig: int) -> None:
    for name, pid in pids.items():
        if _ours(name, pid):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)


def _wait_gone(pids: dict[str, int], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(_ours(name, pid) for name, pid in pids.items()):
            return True
        time.sleep(0.1)
    return not any(_ours(name, pid) for name, pid in pids.items())


def _keep_logs() -> None:
    """Copy the components' logs next to the lab's log before the lab directory goes."""
    source = state.lab_dir() / "controlplane" / "logs"
    if source.is_dir():
        target = state.logs_dir() / "controlplane"
        shutil.rmtree(target, ignore_errors=True)
        with contextlib.suppress(OSError):
            shutil.copytree(source, target)


def stop(out: Print = print) -> bool:
    """Stop the lab's daemon and every process it recorded, then remove the lab directory. ``False``: there
    was nothing to stop. Only processes the lab recorded (and that still run its binaries) are signalled."""
    directory = state.lab_dir()
    record = state.LabRecord.load()
    if record is None and not directory.exists():
        return False
    pids = dict(record.pids) if record else {}
    if record is not None and record.pid:
        pids.setdefault("lab", record.pid)
    lab_pid = pids.get("lab", 0)
    if _ours("lab", lab_pid):
        os.kill(lab_pid, signal.SIGTERM)  # the daemon stops Prometheus, the data plane, the control plane
        _wait_gone({"lab": lab_pid}, STOP_TIMEOUT)
    _kill(pids, signal.SIGTERM)
    if not _wait_gone(pids, 10.0):
        _kill(pids, signal.SIGKILL)
        _wait_gone(pids, 5.0)
    left = [f"{name} (pid {pid})" for name, pid in pids.items() if _ours(name, pid)]
    if left:
        raise UserError(f"could not stop {', '.join(left)}; stop them yourself (`kill PID`), then run "
                        "`canarylab down` again.")
    _keep_logs()
    shutil.rmtree(directory, ignore_errors=True)
    return True


def _spawn(prometheus_port: int | None) -> subprocess.Popen[bytes]:
    logs = state.logs_dir()
    logs.mkdir(parents=True, exist_ok=True)
    log_path = logs / "lab.log"
    if log_path.exists():
        os.replace(log_path, logs / "lab.log.1")
    argv = [sys.executable, "-m", "canarylab.kwok.daemon"]
    if prometheus_port is not None:
        argv += ["--prometheus-port", str(prometheus_port)]
    with open(log_path, "ab") as log, open(os.devnull, "rb") as devnull:
        # Its own session: the lab outlives this command and the terminal's Ctrl-C.
        return subprocess.Popen(argv, stdin=devnull, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                close_fds=True)


def start(prometheus_port: int | None, out: Print = print, *, timeout: float = UP_TIMEOUT) -> state.LabRecord:
    """Start the daemon and follow its progress until the lab is ready; a UserError (the lab stopped and
    cleaned up) when it is not."""
    problems = preflight(prometheus_port)
    if problems:
        raise UserError("the Docker-free lab cannot start:\n- " + "\n- ".join(problems))
    stop(out)  # a lab that crashed earlier leaves its directory (and maybe processes) behind
    began = time.monotonic()
    proc = _spawn(prometheus_port)
    progress = state.lab_dir() / "progress.log"
    shown = 0
    try:
        while True:
            if progress.exists():
                lines = progress.read_text().splitlines()
                for line in lines[shown:]:
                    out(line)
                shown = len(lines)
            record = state.LabRecord.load()
            if record is not None and record.pid == proc.pid and record.status == "ready":
                return record
            failed = record is not None and record.status == "failed"
            if failed or proc.poll() is not None:
                reason = record.error if record is not None and record.error else "the lab's process exited"
                proc.wait(STOP_TIMEOUT)
                stop(out)
                raise UserError(f"the Docker-free lab did not come up: {reason}\nFull log: "
                                f"{state.logs_dir() / 'lab.log'}")
            if time.monotonic() - began > timeout:
                stop(out)
                raise UserError(f"the Docker-free lab was not ready after {timeout:.0f}s; it was stopped. See "
                                f"{state.logs_dir() / 'lab.log'}")
            time.sleep(0.2)
    except KeyboardInterrupt:
        stop(out)
        raise


def env_lines(record: state.LabRecord) -> list[str]:
    """``export`` lines for a POSIX shell: the lab's kubeconfig and its pinned kubectl first on PATH."""
    kubectl_dir = str(Path(record.kubectl).parent) if record.kubectl else ""
    lines = [f"export KUBECONFIG={shlex.quote(record.kubeconfig)}"]
    if kubectl_dir:
        lines.append(f'export PATH={shlex.quote(kubectl_dir)}:"$PATH"')
    lines.append(f"# the Docker-free lab: context {record.context}, Prometheus {record.prometheus}; "
                 "`canarylab down` stops it")
    return lines


def doctor_report() -> tuple[str, bool]:
    """What the Docker-free lab needs, where each part was found, and how to get what is missing."""
    from canarylab.controlplane.binaries import NAMES, search_dirs
    from canarylab.lab.state import kwok_bin_dir

    dirs = [kwok_bin_dir(), *search_dirs()]
    lines = ["Docker-free lab (canarylab up --runtime kwok)", "---------------------------------------------"]
    ok = True
    for exe in NAMES.values():
        path = next((d / exe for d in dirs if os.access(d / exe, os.X_OK) and (d / exe).is_file()), None)
        found = str(path) if path else shutil.which(exe)
        if found:
            lines.append(f"√ {exe}: {found}")
        else:
            ok = False
            lines.append(f"× {exe}: not found\n    get it: `canarylab tools install --runtime kwok` (release "
                         "binaries, SHA-256 pinned) or, in a source checkout, `make substrate` (builds from source)")
    prom = shutil.which("prometheus")
    if prom:
        lines.append(f"√ prometheus: {prom}")
    else:
        ok = False
        lines.append("× prometheus: not on PATH\n    get it: `apt-get install prometheus` (Debian/Ubuntu) or "
                     "`brew install prometheus` (macOS)")
    record = state.running()
    if record is None:
        lines.append("· lab: not running (start it with `canarylab up --runtime kwok`)")
    else:
        lines.append(f"√ lab: {record.status} (pid {record.pid}, context {record.context}, API server "
                     f"{record.server}, Prometheus {record.prometheus})")
    lines.append("Docker is not needed.")
    return "\n".join(lines), ok
