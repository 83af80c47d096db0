"""Shared helpers: run ``canarylab simulate`` in-process as a user would, and write scenario files."""

from __future__ import annotations

import json
import re
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from canarylab.cli import main

SET_IMAGE = "setImage: {namespace: test, deployment: podinfo, container: podinfod, image: stefanprodan/podinfo:3.1.1}"


@dataclass
class Run:
    """What one ``canarylab simulate`` run printed and returned."""

    code: int
    out: str
    err: str

    @property
    def lines(self) -> list[str]:
        return self.out.splitlines()

    @property
    def messages(self) -> list[str]:
        """Event messages of a text run, without time, type and canary."""
        return [line.split(" ", 3)[3] for line in self.lines if re.match(r"^\+\d\d:\d\d ", line)]

    @property
    def objects(self) -> list[dict[str, Any]]:
        """The JSON objects of a ``--json`` run."""
        return [json.loads(line) for line in self.lines]

    def weights(self) -> list[int]:
        return [int(m.rsplit(" ", 1)[1]) for m in self.messages if " canary weight " in m]


@pytest.fixture
def simulate(capsys: pytest.CaptureFixture[str]) -> Callable[..., Run]:
    """``simulate("--scenario", path)`` runs ``canarylab simulate ...`` in this process."""

    def run(*args: str) -> Run:
        capsys.readouterr()
        code = main(["simulate", *args])
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err)

    return run


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str, str], str]:
    """``write("scenario.yaml", text)`` writes a dedented file in a temporary folder and returns its path."""

    def put(name: str, text: str) -> str:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text).lstrip("\n"))
        return str(path)

    return put
