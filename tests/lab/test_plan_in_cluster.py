"""`canarylab up --engine in-cluster` as a plan: the seed lab, then the engine image from the wheel and deploy/base."""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

from canarylab import __version__
from canarylab.cli import build_parser
from canarylab.cli.lab import run_up
from canarylab.lab.installer import Installer
from canarylab.lab.versions import Versions
from canarylab.manifests import DEPLOY
from tests.lab.conftest import fresh_lab_runner
from tests.lab.test_plan import ensure_commands


def test_in_cluster_engine_plan_builds_the_image_from_the_wheel_and_applies_deploy_base(
        versions: Versions, cache: Path) -> None:
    # given a machine with Docker and the tools, when the lab is built with the engine in the cluster
    runner = fresh_lab_runner()
    Installer("canarylab", "gatewayapi", runner, versions, engine="in-cluster").run()
    plan = ensure_commands(runner)
    # then, after the seed's Canary, the wheel, the image, kind load, and deploy/base on the lab's context
    tail = plan[plan.index(next(line for line in plan if line.endswith("podinfo-canary.gatewayapi.yaml"))) + 1:]
    image = f"canarylab:{__version__}"
    assert tail == [
        f"{sys.executable} -m pip wheel --no-deps --quiet --wheel-dir {cache}/canarylab/engine-image "
        f"{DEPLOY.parent}",
        f"docker build --file {DEPLOY}/Containerfile --tag {image} {cache}/canarylab/engine-image",
        f"kind load docker-image {image} --name canarylab",
        f"kubectl --context kind-canarylab apply --kustomize {DEPLOY}/base",
        "kubectl --context kind-canarylab --namespace canarylab rollout status deployment/canarylab-engine "
        "--timeout 300s",
    ]
    # and the image the plan builds is the one deploy/base runs
    kustomization = yaml.safe_load((DEPLOY / "base" / "kustomization.yaml").read_text())
    assert kustomization["images"] == [{"name": "canarylab", "newTag": __version__}]


def test_the_host_engine_plan_has_no_engine_steps(versions: Versions, cache: Path) -> None:
    runner = fresh_lab_runner()
    Installer("canarylab", "gatewayapi", runner, versions).run()
    assert not [line for line in ensure_commands(runner) if "canarylab-engine" in line or "docker build" in line]


def test_up_in_cluster_points_the_dashboard_at_the_engine_read_only(versions: Versions, cache: Path) -> None:
    lines: list[str] = []
    args = build_parser()[0].parse_args(["up", "--engine", "in-cluster", "--no-tui"])
    assert run_up(args, runner=fresh_lab_runner(), out=lines.append) == 0
    assert any(line.endswith("The engine in the cluster (deploy/base: 2 replicas, leader election)"
                             [:0]) and "The engine in the cluster" in line for line in lines)
    # two acting engines would fight over the Canary: the dashboard only follows the one in the cluster
    assert lines[-1] == "Open the dashboard with: canarylab ui --context kind-canarylab --readonly"
