"""``canarylab learn --validate``: a lesson file the learner edited with an unknown field is refused under strict
(the default), applied with a kubectl-style warning under warn, and applied silently under ignore."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from canarylab.engine.clock import run_virtual
from canarylab.engine.kinds import CANARY
from canarylab.errors import UserError
from canarylab.learn.apply import apply_file
from canarylab.sim.lab import SimLab

SEED = Path(__file__).parents[2] / "canarylab" / "learn" / "lessons" / "files" / "seed-canary.yaml"


def edited(tmp_path: Path) -> Path:
    """The seed Canary as a learner edited it: stepWeight 10, and a typo, ``stepWieght``, next to it."""
    text = SEED.read_text().replace("    stepWeight: 5\n", "    stepWeight: 10\n    stepWieght: 20\n", 1)
    assert "stepWieght" in text
    path = tmp_path / "seed-canary.yaml"
    path.write_text(text)
    return path


def apply(path: Path, validate: str) -> tuple[list[str], dict]:
    async def main() -> tuple[list[str], dict]:
        lab = SimLab(speed=None)
        await lab.start()
        try:
            lines = await apply_file(lab.cluster, path, "test", validate=validate)
            return lines, lab.cluster.get_now(CANARY, "test", "podinfo") or {}
        finally:
            await lab.stop()

    return run_virtual(main)


def test_strict_refuses_the_unknown_field_naming_it(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"seed-canary\.yaml: document 1 \(Canary podinfo\): .*stepWieght"):
        apply(edited(tmp_path), "strict")


def test_warn_applies_the_file_without_the_field_and_says_so(tmp_path: Path) -> None:
    lines, canary = apply(edited(tmp_path), "warn")
    assert lines[0].startswith("Warning: seed-canary.yaml: document 1 (Canary podinfo): ") and "stepWieght" in lines[0]
    assert lines[-1] == "canary.flagger.app/podinfo configured"
    assert "stepWieght" not in canary["spec"]["analysis"] and canary["spec"]["analysis"]["stepWeight"] == 10


def test_ignore_applies_it_silently(tmp_path: Path) -> None:
    lines, _ = apply(edited(tmp_path), "ignore")
    assert lines == ["canary.flagger.app/podinfo configured"]


def test_the_learn_command_takes_the_flag_with_kubectls_values(tmp_path: Path) -> None:
    env = {**os.environ, "XDG_STATE_HOME": str(tmp_path / "state")}
    env.pop("CANARYLAB_LEARN_PROGRESS", None)

    def learn(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "canarylab.cli", "learn", *args], capture_output=True,
                              text=True, env=env, cwd=tmp_path, timeout=60)

    listed = learn("--validate", "warn", "--list")
    assert listed.returncode == 0, listed.stderr
    bad = learn("--validate", "loose", "--list")
    assert bad.returncode == 2 and "invalid choice: 'loose' (choose from 'strict', 'warn', 'ignore')" in bad.stderr
