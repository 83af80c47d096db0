"""Command lines the simulated loadtester understands, PARSED and never run.

``hey -z D -q Q -c C URL`` and ``curl [options] URL [| grep [options] WORD]``: shlex splits them, the
options are read like the real tools read them, and anything else (another program, ``;``, ``&&``,
redirections, command substitution, variables) is refused with a message saying why. Nothing here ever
reaches a shell.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field

from canarylab.engine.durations import parse_duration

UNDERSTOOD = "it runs hey and curl (optionally piped to grep)"


class CommandRefused(Exception):
    """The command is not one the simulated loadtester understands; the message says why."""


@dataclass(frozen=True)
class Hey:
    """``hey``: load at ``rps`` on ``url`` for ``duration`` seconds (or ``requests`` in total)."""

    url: str
    duration: float
    rps: float
    method: str = "GET"
    requests: int | None = None
    headers: tuple[tuple[str, str], ...] = ()
    """``-H "Name: value"`` (repeatable): A/B testing routes by them."""


@dataclass(frozen=True)
class Grep:
    """``grep`` on the previous command's output."""

    pattern: str
    quiet: bool = False
    ignore_case: bool = False
    invert: bool = False
    count: bool = False
    fixed: bool = False
    extended: bool = False

    def run(self, text: str) -> tuple[int, str]:
        """Exit code and output of ``grep`` over ``text``."""
        flags = re.IGNORECASE if self.ignore_case else 0
        if self.fixed:
            regex = re.compile(re.escape(self.pattern), flags)
        else:
            regex = re.compile(self.pattern if self.extended else _bre_to_python(self.pattern), flags)
        lines = [line for line in text.splitlines() if bool(regex.search(line)) != self.invert]
        code = 0 if lines else 1
        if self.quiet:
            return code, ""
        if self.count:
            return code, f"{len(lines)}\n"
        return code, "".join(f"{line}\n" for line in lines)


@dataclass(frozen=True)
class Curl:
    """``curl``: one request; its output may be piped to ``grep``."""

    url: str
    method: str = "GET"
    data: str = ""
    fail: bool = False
    silent: bool = False
    show_error: bool = False
    head: bool = False
    include: bool = False
    output_to_file: bool = False
    write_out: str = ""
    grep: tuple[Grep, ...] = field(default_factory=tuple)


Parsed = Hey | Curl

_CURL_WITH_ARG = {
    "-d": "data", "--data": "data", "--data-raw": "data", "--data-binary": "data", "--data-ascii": "data",
    "--data-urlencode": "data", "-X": "method", "--request": "method", "-H": None, "--header": None,
    "-o": "output", "--output": "output", "-m": None, "--max-time": None, "--connect-timeout": None,
    "-u": None, "--user": None, "-A": None, "--user-agent": None, "-e": None, "--referer": None,
    "-w": "write_out", "--write-out": "write_out", "--retry": None, "--retry-delay": None,
    "--retry-max-time": None, "-b": None, "--cookie": None, "-c": None, "--cookie-jar": None,
    "-F": "data", "--form": "data", "--resolve": None, "-x": None, "--proxy": None, "--url": "url",
}  # fmt: skip
_CURL_FLAGS = {
    "-s": "silent", "--silent": "silent", "-S": "show_error", "--show-error": "show_error",
    "-f": "fail", "--fail": "fail", "--fail-with-body": "fail", "-L": None, "--location": None,
    "-k": None, "--insecure": None, "-v": None, "--verbose": None, "-i": "include", "--include": "include",
    "-I": "head", "--head": "head", "-G": None, "--get": None, "--compressed": None, "-N": None,
    "--no-buffer": None, "-4": None, "-6": None, "--http1.1": None, "--http2": None, "-q": None,
}  # fmt: skip
_GREP_FLAGS = {"q": "quiet", "i": "ignore_case", "v": "invert", "c": "count", "F": "fixed", "E": "extended",
               "s": None, "w": None, "o": None, "x": None, "h": None, "H": None, "n": None}
_HEY_WITH_ARG = {"z", "q", "c", "n", "m", "d", "D", "T", "H", "t", "A", "a", "x", "cpus", "o", "host"}
_HEY_FLAGS = {"h2", "disable-compression", "disable-keepalive", "disable-redirects"}

UNLIMITED_RPS_PER_WORKER = 50.0
"""``hey`` without ``-q`` sends as fast as it can: about 50 requests per second per worker at podinfo's speed."""


def parse_command(cmd: str) -> Parsed:
    """The parsed command, or :class:`CommandRefused` saying why it is not understood."""
    text = cmd.strip()
    if not text:
        raise CommandRefused("the command is empty: " + UNDERSTOOD)
    for marker, what in (("`", "command substitution (`...`)"), ("$(", "command substitution ($(...))"),
                         ("${", "variables"), ("\n", "several lines")):  # fmt: skip
        if marker in text:
            raise _refuse(text, f"{what} would need a shell, which it never runs")
    if re.search(r"\$[A-Za-z_]", text):
        raise _refuse(text, "variables would need a shell, which it never runs")
    try:
        lexer = shlex.shlex(text, posix=True, punctuation_chars=";&|<>()")
        lexer.whitespace_split = True
        tokens = list(lexer)
    except ValueError as err:
        raise _refuse(text, f"it cannot be split into words ({err})") from None
    stages: list[list[str]] = [[]]
    for token in tokens:
        if token == "|":
            stages.append([])
        elif token and set(token) <= set(";&|<>()"):
            raise _refuse(text, f'"{token}" needs a shell (chaining, background jobs, redirections or '
                                "subshells), which it never runs")
        else:
            stages[-1].append(token)
    if any(not stage for stage in stages):
        raise _refuse(text, "a pipe has an empty side")
    program = stages[0][0].rsplit("/", 1)[-1]
    if program == "hey":
        if len(stages) > 1:
            raise _refuse(text, "hey's output cannot be piped here")
        return _parse_hey(text, stages[0][1:])
    if program == "curl":
        greps = []
        for stage in stages[1:]:
            if stage[0].rsplit("/", 1)[-1] != "grep":
                raise _refuse(text, f'curl can only be piped to grep, not to "{stage[0]}"')
            greps.append(_parse_grep(text, stage[1:]))
        return _parse_curl(text, stages[0][1:], tuple(greps))
    raise _refuse(text, f'"{stages[0][0]}" is not a program it knows')


def _refuse(cmd: str, why: str) -> CommandRefused:
    return CommandRefused(f'command "{cmd}" is not understood by the simulated loadtester: {why}; {UNDERSTOOD}')


def _parse_hey(cmd: str, args: list[str]) -> Hey:
    values: dict[str, str] = {}
    headers: list[tuple[str, str]] = []
    url = ""
    i = 0
    while i < len(args):
        arg = args[i]
        if arg.startswith("-") and len(arg) > 1:
            name, eq, value = arg.lstrip("-").partition("=")
            if name in _HEY_FLAGS:
                i += 1
                continue
            if name not in _HEY_WITH_ARG:
                raise _refuse(cmd, f"hey has no option -{name}")
            if not eq:
                i += 1
                if i >= len(args):
                    raise _refuse(cmd, f"hey option -{name} needs a value")
                value = args[i]
            if name == "H":
                header, colon, header_value = value.partition(":")
                if not colon or not header.strip():
                    raise _refuse(cmd, f'hey -H "{value}": a header is "Name: value"')
                headers.append((header.strip(), header_value.strip()))
            values[name] = value
        elif url:
            raise _refuse(cmd, f'hey takes one URL, got "{url}" and "{arg}"')
        else:
            url = arg
        i += 1
    if not url:
        raise _refuse(cmd, "hey needs a URL")
    try:
        workers = int(values.get("c", "50"))
        rate = float(values.get("q", "0"))
        requests = int(values.get("n", "200"))
    except ValueError as err:
        raise _refuse(cmd, f"a hey option is not a number ({err})") from None
    if workers < 1:
        raise _refuse(cmd, "hey -c must be at least 1")
    rps = workers * (rate if rate > 0 else UNLIMITED_RPS_PER_WORKER)
    method = values.get("m", "GET").upper()
    if "z" in values:
        try:
            duration = parse_duration(values["z"])
        except ValueError as err:
            raise _refuse(cmd, f"hey -z {values['z']}: {err}") from None
        return Hey(url=url, duration=duration, rps=rps, method=method, headers=tuple(headers))
    return Hey(url=url, duration=requests / rps, rps=rps, method=method, requests=requests, headers=tuple(headers))


def _parse_curl(cmd: str, args: list[str], greps: tuple[Grep, ...]) -> Curl:
    found: dict[str, object] = {}
    urls: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg.startswith("--"):
            name, eq, value = arg.partition("=")
            if name in _CURL_FLAGS:
                if _CURL_FLAGS[name]:
                    found[_CURL_FLAGS[name]] = True  # type: ignore[index]
            elif name in _CURL_WITH_ARG:
                if not eq:
                    i += 1
                    if i >= len(args):
                        raise _refuse(cmd, f"curl option {name} needs a value")
                    value = args[i]
                _curl_value(found, urls, _CURL_WITH_ARG[name], value)
            else:
                raise _refuse(cmd, f"curl option {name} is not supported here")
        elif arg.startswith("-") and len(arg) > 1:
            chars = arg[1:]
            j = 0
            while j < len(chars):
                opt = "-" + chars[j]
                if opt in _CURL_FLAGS:
                    if _CURL_FLAGS[opt]:
                        found[_CURL_FLAGS[opt]] = True  # type: ignore[index]
                    j += 1
                elif opt in _CURL_WITH_ARG:
                    value = chars[j + 1:]
                    if not value:
                        i += 1
                        if i >= len(args):
                            raise _refuse(cmd, f"curl option {opt} needs a value")
                        value = args[i]
                    _curl_value(found, urls, _CURL_WITH_ARG[opt], value)
                    break
                else:
                    raise _refuse(cmd, f"curl option {opt} is not supported here")
        else:
            urls.append(arg)
        i += 1
    if len(urls) != 1:
        raise _refuse(cmd, "curl needs exactly one URL" if not urls else f"curl got several URLs: {', '.join(urls)}")
    data = str(found.get("data", ""))
    method = str(found.get("method") or ("HEAD" if found.get("head") else "POST" if "data" in found else "GET"))
    return Curl(
        url=urls[0], method=method.upper(), data=data, fail=bool(found.get("fail")),
        silent=bool(found.get("silent")), show_error=bool(found.get("show_error")),
        head=bool(found.get("head")), include=bool(found.get("include")),
        output_to_file=found.get("output") not in (None, "-"), write_out=str(found.get("write_out", "")),
        grep=greps,
    )  # fmt: skip


def _curl_value(found: dict[str, object], urls: list[str], slot: str | None, value: str) -> None:
    if slot == "url":
        urls.append(value)
    elif slot == "data" and "data" in found:
        found["data"] = f"{found['data']}&{value}"
    elif slot:
        found[slot] = value


def _parse_grep(cmd: str, args: list[str]) -> Grep:
    flags: dict[str, bool] = {}
    patterns: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in ("-e", "--regexp"):
            i += 1
            if i >= len(args):
                raise _refuse(cmd, "grep -e needs a pattern")
            patterns.append(args[i])
        elif arg.startswith("--") and len(arg) > 2:
            long = {"--quiet": "quiet", "--silent": "quiet", "--ignore-case": "ignore_case",
                    "--invert-match": "invert", "--count": "count", "--fixed-strings": "fixed",
                    "--extended-regexp": "extended"}.get(arg)  # fmt: skip
            if long is None:
                raise _refuse(cmd, f"grep option {arg} is not supported here")
            flags[long] = True
        elif arg.startswith("-") and len(arg) > 1 and not patterns:
            for ch in arg[1:]:
                if ch not in _GREP_FLAGS:
                    raise _refuse(cmd, f"grep option -{ch} is not supported here")
                if _GREP_FLAGS[ch]:
                    flags[_GREP_FLAGS[ch]] = True  # type: ignore[index]
        else:
            patterns.append(arg)
        i += 1
    if len(patterns) != 1:
        raise _refuse(cmd, "grep needs exactly one pattern (and reads the piped output, not files)")
    try:
        grep = Grep(pattern=patterns[0], **flags)
        grep.run("")
    except re.error as err:
        raise _refuse(cmd, f"grep pattern {patterns[0]!r} is not a valid regular expression ({err})") from None
    return grep


def _bre_to_python(pattern: str) -> str:
    """A POSIX basic regular expression as a Python one: ``+ ? | ( ) { }`` are literal unless escaped."""
    out = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            nxt = pattern[i + 1]
            out.append(nxt if nxt in "+?|(){}" else "\\" + nxt)
            i += 2
            continue
        out.append("\\" + ch if ch in "+?|(){}" else ch)
        i += 1
    return "".join(out)
