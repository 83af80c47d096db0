"""The one door to the shell: every ``kind``, ``kubectl``, ``linkerd``, ``helm`` and ``docker`` call goes through a
:class:`Runner`, so tests can record the plan and ``--dry-run`` can print it.

:class:`ShRunner` runs commands with the ``sh`` library, looking in the lab's own ``bin`` directory before PATH.
:class:`RecordingRunner` answers from a script (tests), :class:`DryRunRunner` prints and pretends.
"""

from __future__ import annotations

import os
import shlex
import shutil
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from canarylab.errors import UserError

LineSink = Callable[[str], None]
"""Receives one line of a command's output as it arrives (the progress log tail and ``up.log``)."""


@dataclass(frozen=True)
class Command:
    """One command line, optionally fed by another one's standard output (``a | b``) or by text."""

    argv: tuple[str, ...]
    stdin_from: Command | None = None
    """Pipe this command's stdout into ``argv`` (``linkerd install --crds | kubectl apply -f -``)."""

    @property
    def tool(self) -> str:
        """The program name, e.g. ``kubectl``."""
        return self.argv[0]

    def display(self) -> str:
        """The command as a user would type it in a POSIX shell."""
        text = shlex.join(self.argv)
        return f"{self.stdin_from.display()} | {text}" if self.stdin_from else text

    def commands(self) -> list[Command]:
        """Every command in the pipeline, first to last."""
        return [*(self.stdin_from.commands() if self.stdin_from else []), self]


def cmd(*argv: str) -> Command:
    """``cmd("kind", "get", "clusters")``."""
    return Command(tuple(argv))


def pipe(first: Command, second: Command) -> Command:
    """``first | second``."""
    return Command(second.argv, stdin_from=first)


@dataclass(frozen=True)
class Result:
    """What a command did."""

    command: Command
    exit_code: int
    stdout: str = ""
    stderr: str = ""

    @property
    def ok(self) -> bool:
        """Exit code 0."""
        return self.exit_code == 0

    def output_tail(self, lines: int = 20) -> str:
        """The last lines of stderr and stdout, for an error message."""
        text = "\n".join(part for part in (self.stdout.rstrip(), self.stderr.rstrip()) if part)
        return "\n".join(text.splitlines()[-lines:])


class CommandFailed(Exception):
    """A command exited non-zero where success was needed."""

    def __init__(self, result: Result) -> None:
        super().__init__(f"`{result.command.display()}` exited with {result.exit_code}")
        self.result = result


class ToolMissing(UserError):
    """A command-line tool the lab needs is not installed."""

    def __init__(self, tool: str, searched: Sequence[Path]) -> None:
        where = ", ".join(str(p) for p in searched) or "PATH"
        super().__init__(
            f"`{tool}` is not installed (looked in {where} and PATH). Run `canarylab tools install` to download "
            f"the pinned kind, kubectl, linkerd and helm into the lab's bin directory, or install {tool} yourself."
        )
        self.tool = tool


class Runner(Protocol):
    """Runs commands. ``check=True`` raises :class:`CommandFailed` on a non-zero exit."""

    def run(self, command: Command, *, check: bool = True, on_line: LineSink | None = None,
            timeout: float | None = None) -> Result:
        """Run ``command`` (a pipeline runs left to right, stopping at the first failure)."""
        ...


def find_tool(name: str, bin_dirs: Sequence[Path] = ()) -> Path | None:
    """``name`` in the lab's bin directories first, then on PATH."""
    search = os.pathsep.join([*(str(d) for d in bin_dirs), os.environ.get("PATH", "")])
    found = shutil.which(name, path=search)
    return Path(found) if found else None


class ShRunner:
    """Runs commands for real with ``sh``; streams their output line by line to ``on_line``."""

    def __init__(self, bin_dirs: Sequence[Path] = (), *, default_timeout: float | None = 900.0) -> None:
        self.bin_dirs = list(bin_dirs)
        self.default_timeout = default_timeout

    def _one(self, command: Command, stdin: str | None, on_line: LineSink | None, timeout: float | None) -> Result:
        import sh  # the shell runner is the only module that needs it; keep `canarylab --help` light

        path = find_tool(command.tool, self.bin_dirs)
        if path is None:
            raise ToolMissing(command.tool, self.bin_dirs)
        out: list[str] = []
        err: list[str] = []

        def collect(into: list[str]) -> Callable[[str], None]:
            def sink(line: str) -> None:
                into.append(line)
                if on_line is not None:
                    on_line(line.rstrip("\n"))
            return sink

        program = sh.Command(str(path))
        try:
            running = program(*command.argv[1:], _in=stdin, _out=collect(out), _err=collect(err),
                              _ok_code=list(range(256)), _timeout=timeout or self.default_timeout,
                              _return_cmd=True, _tty_out=False, _env={**os.environ, "LC_ALL": "C"})
            code = int(running.exit_code or 0)
        except sh.TimeoutException:
            err.append(f"timed out after {timeout or self.default_timeout:.0f}s\n")
            code = 124
        return Result(command, code, "".join(out), "".join(err))

    def run(self, command: Command, *, check: bool = True, on_line: LineSink | None = None,
            timeout: float | None = None) -> Result:
        """Run ``command``; a pipeline passes each stage's stdout to the next and stops at a failure."""
        stdin: str | None = None
        result: Result | None = None
        for stage in command.commands():
            # Only the last stage's stdout is the pipeline's output; earlier stages feed it, not the log.
            result = self._one(stage, stdin, on_line if stage is command else None, timeout)
            if not result.ok:
                break
            stdin = result.stdout
        assert result is not None
        if check and not result.ok:
            raise CommandFailed(result)
        return result


Responder = Callable[[Command], Result | None]


@dataclass
class RecordingRunner:
    """A runner for tests: records every command and answers from ``rules`` (first match wins).

    A rule is ``(needle, exit_code, stdout)``: it matches when ``needle`` occurs in the command's display text.
    Unmatched commands succeed with empty output.
    """

    rules: list[tuple[str, int, str]] = field(default_factory=list)
    commands: list[Command] = field(default_factory=list)

    def when(self, needle: str, *, exit_code: int = 0, stdout: str = "") -> RecordingRunner:
        """Add a rule; returns self so rules chain."""
        self.rules.append((needle, exit_code, stdout))
        return self

    def run(self, command: Command, *, check: bool = True, on_line: LineSink | None = None,
            timeout: float | None = None) -> Result:
        """Record ``command`` and answer from the rules."""
        self.commands.append(command)
        text = command.display()
        result = Result(command, 0, "")
        for needle, code, stdout in self.rules:
            if needle in text:
                result = Result(command, code, stdout, "" if code == 0 else f"{command.tool}: scripted failure")
                break
        if on_line is not None:
            for line in result.stdout.splitlines():
                on_line(line)
        if check and not result.ok:
            raise CommandFailed(result)
        return result

    def lines(self) -> list[str]:
        """Every recorded command as display text."""
        return [c.display() for c in self.commands]


class DryRunRunner:
    """``--dry-run``: hands each command to ``emit`` (one line each) and reports success without running it."""

    def __init__(self, emit: Callable[[str], None]) -> None:
        self.emit = emit
        self.commands: list[Command] = []

    def run(self, command: Command, *, check: bool = True, on_line: LineSink | None = None,
            timeout: float | None = None) -> Result:
        """Print, do not run."""
        self.commands.append(command)
        self.emit(command.display())
        return Result(command, 0, "")


def tools_used(commands: Iterable[Command]) -> set[str]:
    """Program names in a list of commands (pipelines included)."""
    return {c.tool for command in commands for c in command.commands()}
