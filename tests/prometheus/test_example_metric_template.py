"""examples/metric-template.yaml as the README runs it: ``canarylab simulate -f ... --prometheus local``, a real
Prometheus answering the MetricTemplate's PromQL (about a minute of real time)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.prometheus.conftest import require_prometheus

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "metric-template.yaml"


@pytest.mark.timeout(300)
def test_the_metric_template_example_promotes_on_a_real_prometheus() -> None:
    require_prometheus()
    run = subprocess.run([sys.executable, "-m", "canarylab.cli", "simulate", "-f", str(EXAMPLE), "--prometheus",
                          "local", "--timeout", "5m"], capture_output=True, text=True, timeout=240)
    assert run.returncode == 0, (run.stdout, run.stderr)
    assert "Promotion completed! Scaling down podinfo.test" in run.stdout
    assert "Halt advancement" not in run.stdout and "error-rate" not in run.stdout, run.stdout
