"""The engine and the simulator must load without the UI or cluster clients (design: layers point one way)."""

import json
import subprocess
import sys

import pytest

HEAVY = ("textual", "rich", "kr8s", "sh")


def _modules_after_import(module: str) -> set[str]:
    code = f"import json, sys, {module}; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(json.loads(out.stdout))


@pytest.mark.parametrize("module", ["canarylab.engine", "canarylab.sim", "canarylab.serve.server"])
def test_core_loads_without_ui_or_cluster_clients(module: str) -> None:
    loaded = _modules_after_import(module)
    assert not {m for m in loaded if m.split(".")[0] in HEAVY}, f"{module} pulled in {sorted(loaded & set(HEAVY))}"


def test_cli_parses_without_loading_textual() -> None:
    loaded = _modules_after_import("canarylab.cli")
    assert "textual" not in loaded
