"""``canarylab demo -f FILE --validate=warn``: what was let through is shown in the dashboard, not only on the
terminal the dashboard then covers."""

from __future__ import annotations

from pathlib import Path

from canarylab.app import CanaryLabApp
from canarylab.manifests import bootstrap_file
from canarylab.sim.lab import SimLab
from tests.ui.conftest import FAST, until
from tests.ui.screen_text import screen_text


async def test_validate_warn_findings_are_notified_in_the_dashboard(tmp_path: Path) -> None:
    path = tmp_path / "canary.yaml"
    path.write_text(bootstrap_file("workloads", "podinfo-canary.yaml").read_text()
                    .replace("  analysis:\n", "  analysis:\n    owner: team-a\n", 1))
    lab = SimLab([str(path)], speed=FAST, validate="warn")
    assert len(lab.warnings) == 1
    app = CanaryLabApp(lab, export_dir=tmp_path)
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await until(pilot, lambda: "spec.analysis.owner: unknown field" in screen_text(app), "the notification")
        assert "your YAML" in screen_text(app)
