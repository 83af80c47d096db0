"""The demo in a real terminal (tmux): it draws, reacts to keys, and quits cleanly.

Textual draws on stderr, so nothing is redirected: tmux's pane is the terminal.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

SESSION = f"canarylab-ui-test-{os.getpid()}"


def tmux(*args: str) -> str:
    # A private server (-L): other tmux users on the machine cannot change its options or sizes.
    return subprocess.run(["tmux", "-L", SESSION, *args], check=True, capture_output=True, text=True,
                          timeout=10).stdout


def pane() -> str:
    return tmux("capture-pane", "-p", "-t", SESSION)


def wait_for(text: str, timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        screen = pane()
        if text in screen:
            return screen
        time.sleep(0.1)
    raise AssertionError(f"{text!r} not on screen after {timeout}s:\n{pane()}")


@pytest.fixture
def demo(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[None]:
    """``canarylab demo`` in a tmux pane of ``request.param`` (columns, rows[, speed]), 120x40 at 20x by default."""
    if shutil.which("tmux") is None:
        pytest.fail("tmux is needed for the real-terminal test (apt-get install tmux)")
    columns, rows, speed = (*getattr(request, "param", (120, 40)), 20)[:3]
    exe = Path(sys.executable).with_name("canarylab")
    # `; echo` shows the exit status once the app is gone; `sleep` keeps the pane readable for the test.
    # COLUMNS/LINES inherited from this process would override the pane's real size (shutil reads them first).
    command = (f"unset COLUMNS LINES; cd {tmp_path} && CANARYLAB_REPORTS_DIR={tmp_path}/reports {exe} demo "
               f"--speed {speed}; echo canarylab-exited=$?; sleep 30")
    tmux("new-session", "-d", "-s", SESSION, "-x", str(columns), "-y", str(rows), command)
    try:
        yield
    finally:
        subprocess.run(["tmux", "-L", SESSION, "kill-server"], capture_output=True, timeout=10)


def test_the_demo_runs_in_a_terminal_ships_on_b_and_quits_on_q(demo: None) -> None:
    # the seed's canary opens on its detail with the walkthrough hint
    wait_for("press b to ship 3.1.1")
    screen = wait_for("Initialized")
    assert tmux("display", "-p", "-t", SESSION, "#{window_width}x#{window_height}").strip() == "120x40"
    assert "canarylab" in screen and "simulated lab" in screen and "TrafficSplit podinfo" in screen
    # b opens the modal with the next tag; Enter ships it
    tmux("send-keys", "-t", SESSION, "b")
    wait_for("stefanprodan/podinfo:3.1.1", timeout=10)
    tmux("send-keys", "-t", SESSION, "Enter")
    screen = wait_for("canary weight 10")
    assert "Progressing" in screen and "podinfo:3.1.1 canary" in screen
    # ? shows the keys; Escape closes them
    tmux("send-keys", "-t", SESSION, "?")
    wait_for("canarylab keys", timeout=10)
    tmux("send-keys", "-t", SESSION, "Escape")
    deadline = time.monotonic() + 10
    while "canarylab keys" in pane():  # a key right after Escape would read as alt+key
        assert time.monotonic() < deadline, "Escape did not close the help"
        time.sleep(0.1)
    # q quits cleanly: exit status 0 and the terminal restored (no traceback)
    tmux("send-keys", "-t", SESSION, "q")
    screen = wait_for("canarylab-exited=", timeout=15)
    assert "canarylab-exited=0" in screen and "Traceback" not in screen


@pytest.mark.parametrize("demo", [(80, 24)], indirect=True)
def test_at_80x24_the_hint_and_the_footer_fit_and_events_take_one_line_each(demo: None) -> None:
    screen = wait_for("press b to ship 3.1.1, then f to break it")
    assert tmux("display", "-p", "-t", SESSION, "#{window_width}x#{window_height}").strip() == "80x24"
    footer = screen.rstrip("\n").splitlines()[-1]
    assert "b Ship" in footer and "? Help" in footer and "q Quit" in footer
    tmux("send-keys", "-t", SESSION, "b")
    wait_for("stefanprodan/podinfo:3.1.1", timeout=10)
    tmux("send-keys", "-t", SESSION, "Enter")
    screen = wait_for("Advance canary weight 10")  # the narrow log drops the repeated podinfo.test
    assert "running: f fault · p promote · r roll back · space pause" in screen
    tmux("send-keys", "-t", SESSION, "q")
    assert "canarylab-exited=0" in wait_for("canarylab-exited=", timeout=15)


@pytest.mark.timeout(180)
@pytest.mark.parametrize("demo", [(120, 40, 2)], indirect=True)
def test_b_at_the_first_frame_queues_a_fault_shows_its_badge_and_ctrl_c_quits(demo: None) -> None:
    # at 2x the Canary stays Initializing for about 15 s: b right after the first frame queues the image
    wait_for("Initializing")
    assert tmux("display", "-p", "-t", SESSION, "#{window_width}x#{window_height}").strip() == "120x40"
    tmux("send-keys", "-t", SESSION, "b")
    wait_for("Enter queues the image", timeout=10)
    tmux("send-keys", "-t", SESSION, "Enter")
    screen = wait_for("3.1.1 is queued: it ships as soon as the Canary is Initialized", timeout=10)
    assert "Initializing" in screen.splitlines()[0]
    # once Initialized, it ships and a real analysis starts (no dead state)
    wait_for("New revision detected!", timeout=60)
    wait_for("canary weight 5", timeout=60)
    # a fault shows in the header and the pods panel at once
    tmux("send-keys", "-t", SESSION, "f")
    wait_for("latency +600ms", timeout=10)
    tmux("send-keys", "-t", SESSION, "Down", "Enter")
    screen = wait_for("⚡ fault: 50% errors on 3.1.1", timeout=10)
    assert "⚡ fault: 50% errors on canary podinfo:3.1.1 since" in screen
    assert "analysis running with a fault on 3.1.1" in screen
    # ctrl+c quits, as in every terminal program
    tmux("send-keys", "-t", SESSION, "C-c")
    screen = wait_for("canarylab-exited=", timeout=15)
    assert "canarylab-exited=0" in screen and "Traceback" not in screen
