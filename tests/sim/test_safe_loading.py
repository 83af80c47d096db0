"""Safe loading (issue 14): hostile YAML through ``canarylab simulate`` as a user runs it (a subprocess), with
exit code 2, one paragraph naming the file and the limit, in bounded time and memory; and big legitimate files
load in seconds."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from canarylab.manifests import bootstrap_file

SEED_CANARY = bootstrap_file("workloads", "podinfo-canary.yaml").read_text()
PODINFO = bootstrap_file("workloads", "podinfo.yaml").read_text()


def canarylab(*args: str, timeout: float = 60) -> tuple[subprocess.CompletedProcess[str], float]:
    start = time.monotonic()
    run = subprocess.run([sys.executable, "-m", "canarylab.cli", *args], capture_output=True, text=True,
                         timeout=timeout, env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    return run, time.monotonic() - start


def peak_child_mb() -> float:
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def refused(run: subprocess.CompletedProcess[str], *words: str) -> bool:
    err = run.stderr
    return (run.returncode == 2 and err.count("\n") == 1 and "Traceback" not in err
            and all(w in err for w in words))


def test_500_levels_of_nested_lists_in_a_manifest(tmp_path: Path) -> None:
    path = tmp_path / "deep.yaml"
    path.write_text(SEED_CANARY + "  extra: " + "[" * 500 + "]" * 500 + "\n")
    run, _ = canarylab("simulate", "-f", str(path))
    assert refused(run, str(path), "nested deeper than 100 levels (nesting depth limit)"), run.stderr


def test_500_levels_of_nested_lists_in_a_scenario(tmp_path: Path) -> None:
    path = tmp_path / "scenario.yaml"
    path.write_text("- at: 0s\n  abort: {canary: podinfo, x: " + "[" * 500 + "]" * 500 + "}\n")
    run, _ = canarylab("simulate", "--scenario", str(path))
    assert refused(run, str(path), "nesting depth limit"), run.stderr


def test_a_million_levels_fail_as_fast(tmp_path: Path) -> None:
    path = tmp_path / "deeper.yaml"
    path.write_text("- " * 1_000_000 + "x\n")
    run, seconds = canarylab("simulate", "-f", str(path))
    assert refused(run, "nesting depth limit") and seconds < 20, (seconds, run.stderr)


def test_the_seed_canary_with_an_alias_bomb_under_an_unknown_key_fails_fast(tmp_path: Path) -> None:
    bomb = '    l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    for i in range(1, 9):
        bomb += f"    l{i}: &l{i} [" + ",".join([f"*l{i - 1}"] * 10) + "]\n"
    path = tmp_path / "bomb.yaml"
    path.write_text(SEED_CANARY.replace("spec:\n", "spec:\n  surprise:\n" + bomb, 1))
    assert path.stat().st_size < 2600  # the finding's 2.3 KB file: expands to 10^9 strings
    run, seconds = canarylab("simulate", "-f", str(path))
    assert refused(run, str(path), "alias expansion limit"), run.stderr
    assert seconds < 20 and peak_child_mb() < 400, (seconds, peak_child_mb())


def test_a_recursive_alias_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "loop.yaml"
    path.write_text(SEED_CANARY.replace("spec:\n", "spec:\n  loop: &loop [*loop]\n", 1))
    run, _ = canarylab("simulate", "-f", str(path))
    assert refused(run, "refers to a node that contains it"), run.stderr


def test_an_8_mb_file_of_one_document_repeated_loads_in_seconds(tmp_path: Path) -> None:
    document = "---\n" + PODINFO
    path = tmp_path / "big.yaml"
    path.write_text(document * (8_000_000 // len(document) + 1))
    assert path.stat().st_size >= 8_000_000
    run, seconds = canarylab("simulate", "-f", str(path), timeout=120)
    assert run.returncode == 0, run.stderr
    assert "Promotion completed!" in run.stdout
    assert seconds < 45, seconds  # about 4 s on an idle 2-core machine (bench/bench_load.py)


def test_too_many_documents_is_refused_naming_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "many.yaml"
    path.write_text("---\n{kind: ConfigMap}\n" * 10_001)
    run, _ = canarylab("simulate", "-f", str(path))
    assert refused(run, str(path), "more than 10,000 YAML documents in one file (document count limit)"), run.stderr


def test_a_file_over_the_size_limit_is_refused_before_it_is_read(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    with path.open("wb") as handle:
        handle.truncate(17 * 1024 * 1024)  # sparse: nothing to read until canarylab would
    run, seconds = canarylab("simulate", "-f", str(path))
    assert refused(run, str(path), "the file is 17 MiB, more than the limit of 16 MiB", "(size limit)"), run.stderr
    assert seconds < 10
