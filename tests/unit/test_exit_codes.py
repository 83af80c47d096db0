"""Exit codes mean one thing each (issue 14), and every command's --help says which it returns (issue 13)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

import canarylab.cli as cli
from canarylab.cli import EXIT_CODES, build_parser, main
from canarylab.errors import UserError


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    parser, _ = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    found = dict(sub.choices)
    tools = next(a for a in found["tools"]._actions if isinstance(a, argparse._SubParsersAction))
    found.update({f"tools {k}": v for k, v in tools.choices.items()})
    return found


@pytest.mark.parametrize("name", sorted(_subcommands()))
def test_every_subcommand_help_has_a_description_an_example_and_its_exit_codes(name: str) -> None:
    text = _subcommands()[name].format_help()
    parser = _subcommands()[name]
    assert parser.description and "\n" not in parser.description.strip()
    assert "example" in text and "  canarylab " in text.split("example", 1)[1]
    codes = text.split("exit codes:", 1)[1]
    for code in (2, 70, 130, 143):
        assert f"  {code} " in codes, f"{name} --help does not list exit code {code}"


def test_simulate_help_lists_failed_and_timeout() -> None:
    codes = _subcommands()["simulate"].format_help().split("exit codes:", 1)[1]
    assert "  1   a Canary failed" in codes and "  3   the timeout passed first" in codes


def _handler(monkeypatch: pytest.MonkeyPatch, fn: object) -> None:
    monkeypatch.setattr(cli, "_load", lambda spec: fn)


def test_an_unexpected_error_exits_70_with_a_bug_line_and_the_traceback_in_the_cache(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("CANARYLAB_CACHE_DIR", str(tmp_path))

    def boom(args: argparse.Namespace) -> int:
        raise ZeroDivisionError("division by zero in the tick")

    _handler(monkeypatch, boom)
    assert main(["simulate"]) == 70
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "This is a bug in canarylab" in err and "ZeroDivisionError: division by zero in the tick" in err
    [crash] = (tmp_path / "crashes").glob("crash-*.txt")
    assert str(crash) in err
    body = crash.read_text()
    assert "Traceback (most recent call last)" in body and "in boom" in body and "command: canarylab simulate" in body


def test_a_user_error_inside_a_task_group_is_still_bad_input(monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    def grouped(args: argparse.Namespace) -> int:
        raise ExceptionGroup("tasks", [UserError("the file x.yaml: bad")])

    _handler(monkeypatch, grouped)
    assert main(["simulate"]) == 2
    assert "canarylab: the file x.yaml: bad" in capsys.readouterr().err


def test_an_undocumented_exit_code_is_reported_as_a_bug(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("CANARYLAB_CACHE_DIR", str(tmp_path))
    _handler(monkeypatch, lambda args: 5)
    assert main(["simulate"]) == 70
    assert "undocumented exit code 5" in capsys.readouterr().err


def test_keyboard_interrupt_is_130(monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(args: argparse.Namespace) -> int:
        raise KeyboardInterrupt

    _handler(monkeypatch, interrupted)
    assert main(["simulate"]) == 130


def test_the_documented_set() -> None:
    assert sorted(EXIT_CODES) == [0, 1, 2, 3, 70, 130, 141, 143]
