"""``canarylab learn`` headless, as a trainer or CI runs it: --list, --check, --reset, bad input."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from canarylab.engine.clock import run_virtual
from canarylab.learn.model import find_lesson, load_lesson, load_lessons
from canarylab.learn.player import play
from canarylab.learn.progress import Progress


def learn(*args: str, home: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "XDG_STATE_HOME": str(home / "state")}
    env.pop("CANARYLAB_LEARN_PROGRESS", None)
    return subprocess.run([sys.executable, "-m", "canarylab.cli", "learn", *args], capture_output=True, text=True,
                          env=env, cwd=home, timeout=timeout)


def test_list_shows_every_lesson_and_the_progress_file(tmp_path: Path) -> None:
    done = learn("--list", home=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert [line[2:5].strip() for line in lines[:6]] == ["1", "2", "3", "4", "5", "6"]
    assert "Blue/Green with iterations" in done.stdout and "(runs a real Prometheus)" in lines[4]
    assert lines[-1] == f"progress on the simulated lab: {tmp_path / 'state' / 'canarylab' / 'learn.json'}"


def test_list_marks_progress_and_reset_forgets_it(tmp_path: Path) -> None:
    progress = Progress(tmp_path / "state" / "canarylab" / "learn.json")
    progress.record("simulated lab", "seed", 5, completed=True)
    progress.record("simulated lab", "break", 2)
    listing = learn("--list", home=tmp_path).stdout
    assert "seed" in listing and "[done]" in listing.splitlines()[0]
    assert listing.splitlines()[1].startswith("▸ 2") and "[step 3/4]" in listing.splitlines()[1]
    reset = learn("--reset", home=tmp_path)
    assert reset.returncode == 0 and "progress forgotten" in reset.stderr
    assert not progress.path.exists()
    assert "[" not in learn("--list", home=tmp_path).stdout.splitlines()[0]


def test_check_plays_lesson_1_and_prints_the_tally_last(tmp_path: Path) -> None:
    done = learn("--check", "1", home=tmp_path, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "lesson 1 seed: The seed tutorial: ship podinfo 3.1.1"
    assert sum(" ok (lab +" in line for line in lines) == 5
    assert lines[-1] == "1 passed, 0 failed"


def test_check_plays_all_six_lessons(tmp_path: Path) -> None:
    """The headless proof: every lesson completes, and no wrong action completes a step (lesson 5 runs the real
    Prometheus binary in real time, about 45 s; the other five take a second together on virtual time)."""
    done = learn("--check", home=tmp_path, timeout=400)
    assert done.stdout.splitlines()[-1] == "6 passed, 0 failed", done.stdout + done.stderr
    assert done.returncode == 0
    assert "FAILED" not in done.stdout


def test_an_unknown_lesson_is_exit_2_with_the_known_ones(tmp_path: Path) -> None:
    done = learn("--check", "9", home=tmp_path)
    assert done.returncode == 2
    assert "no lesson '9': give a number or an id (1 seed, 2 break, 3 gates" in done.stderr
    assert "Traceback" not in done.stderr


def test_check_fails_a_lesson_whose_wrong_action_passes_the_check(tmp_path: Path) -> None:
    # A step that "ships" but whose check is satisfied by the wrong action too: --check must say so.
    seed = find_lesson(load_lessons(), "seed")
    text = seed.source.read_text().replace(
        'contains: "podinfo:3.1.1"}\n        - event: "New revision detected! Scaling up podinfo.test"',
        'contains: "podinfo:3.1"}\n        - exists: {kind: Deployment, name: podinfo}')
    broken = tmp_path / "01-seed.yaml"
    broken.write_text(text)
    lesson = load_lesson(broken)
    result = run_virtual(play(lesson))
    assert not result.ok
    assert any("step 2/5 Ship podinfo 3.1.1: FAILED: the check passed after the wrong action setImage" in line
               for line in result.lines)


def test_check_fails_a_lesson_that_never_completes(tmp_path: Path) -> None:
    seed = find_lesson(load_lessons(), "seed")
    text = seed.source.read_text().replace('auto: [{setImage: {image: "stefanprodan/podinfo:3.1.1"}}]',
                                           'auto: [{wait: 1s}]\n    within: 3m')
    broken = tmp_path / "01-seed.yaml"
    broken.write_text(text)
    result = run_virtual(play(load_lesson(broken)))
    assert not result.ok
    assert "not done after 3m00s of lab time: still waiting for podinfo runs podinfo:3.1.1" in result.lines[-1]


@pytest.mark.parametrize("flags", [["--check", "--context", "kind-canarylab"]])
def test_check_refuses_a_real_lab(tmp_path: Path, flags: list[str]) -> None:
    done = learn(*flags, home=tmp_path)
    assert done.returncode == 2 and "--check plays the lessons on the simulated lab" in done.stderr
