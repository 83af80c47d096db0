"""Crashes the fuzz suite found, one regression test each (issue 14). The findings of the issue itself have
their tests next to the code they exercise (tests/kube/test_kubeconfig.py, tests/sim/test_signals.py,
tests/sim/test_every_run_ends.py, tests/engine/test_bounded_reads.py)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from canarylab.cli import main


def test_an_hpa_whose_metrics_hold_a_nested_list_is_bad_input_not_a_crash(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Fuzz find (make fuzz, 40 examples): ``spec.metrics: [[{...}]]`` reached the simulated HPA controller,
    which died with ``AttributeError: 'list' object has no attribute 'get'`` (exit 70). Kubernetes refuses it:
    ``spec.metrics[0]`` must be a MetricSpec object. The validation layer of helper ``input`` rejects it."""
    monkeypatch.setenv("CANARYLAB_CACHE_DIR", str(tmp_path / "cache"))
    path = tmp_path / "hpa.yaml"
    path.write_text(textwrap.dedent("""\
        apiVersion: autoscaling/v2
        kind: HorizontalPodAutoscaler
        metadata: {name: podinfo, namespace: test}
        spec:
          scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: podinfo}
          minReplicas: 2
          maxReplicas: 4
          metrics:
          - - type: Resource
              resource: {name: cpu, target: {type: Utilization, averageUtilization: 99}}
        """))
    code = main(["simulate", "-f", str(path)])
    err = capsys.readouterr().err
    assert code == 2, err
    assert str(path) in err and "spec.metrics[0]" in err
    assert "internal error" not in err
