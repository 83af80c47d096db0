"""A real ``canarylab serve`` and a real headless Chromium, for tests/serve and bench/bench_serve.py.

Chromium runs Debian's build through Debian's chromedriver (Selenium), with the flags that keep it off the network:
no background or component updates, no sync, and every host name resolving nowhere except 127.0.0.1.

xterm.js draws the dashboard on a canvas, so the text is read from what the page receives: a script installed
before the page loads wraps ``WebSocket`` and keeps every binary frame (the terminal's output, exactly what the
page hands to xterm.js) with the time it arrived.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"

CHROMIUM_FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--disable-domain-reliability",
    "--disable-client-side-phishing-detection",
    "--metrics-recording-only",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE 127.0.0.2",
    "--window-size=1280,800",
]

# Installed before any script of the page: every WebSocket the page opens records its binary frames as text.
RECORDER = r"""
(() => {
  const Native = window.WebSocket;
  const rec = window.__canarylab = {chunks: [], firstFrame: null, opened: 0, closed: 0};
  const decoder = new TextDecoder();
  window.WebSocket = class extends Native {
    constructor(...args) {
      super(...args);
      this.addEventListener("open", () => { rec.opened += 1; });
      this.addEventListener("close", () => { rec.closed += 1; });
      this.addEventListener("message", (event) => {
        if (typeof event.data === "string") return;
        const bytes = new Uint8Array(event.data);
        if (rec.firstFrame === null && bytes.length > 10) rec.firstFrame = performance.now();
        rec.chunks.push([performance.now(), decoder.decode(bytes, {stream: true})]);
      });
    }
  };
})();
"""

_ESCAPES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]")


def strip_escapes(text: str) -> str:
    """The printable text of terminal output (CSI, OSC and two-byte escapes removed)."""
    return _ESCAPES.sub("", text)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def children(pid: int) -> list[int]:
    """The live child processes of ``pid`` (zombies excluded), read from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(stat[1]) == pid and stat[0] != "Z":
            found.append(int(entry.name))
    return found


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` in MB (0 when it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


@dataclass
class Served:
    """A running ``canarylab serve``: its process, the URL it printed, and its log."""

    process: subprocess.Popen[bytes]
    url: str
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def tabs(self) -> list[int]:
        """The dashboard processes it runs now (one per tab)."""
        return children(self.pid)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


@contextlib.contextmanager
def serve(folder: Path, *args: str, host: str = "127.0.0.1", timeout: float = 30.0) -> Iterator[Served]:
    """``canarylab serve --host HOST --port <free> ARGS`` until it prints its URL; stopped (SIGINT) at the end."""
    exe = Path(sys.executable).with_name("canarylab")
    log = folder / f"serve-{time.monotonic_ns()}.log"
    command = [str(exe), "serve", "--host", host, "--port", str(free_port(host)), *args]
    env = {**os.environ, "CANARYLAB_REPORTS_DIR": str(folder / "reports")}
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                   env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + timeout
        url = ""
        while not url:
            found = re.search(r"serving .* at (http://\S+)", log.read_text(errors="replace"))
            if found:
                url = found.group(1)
            elif process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"canarylab serve printed no URL (exit {process.poll()}); its log:\n"
                                     f"{log.read_text(errors='replace')}")
            else:
                time.sleep(0.05)
        yield Served(process, url, log)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(5)


@dataclass
class Browser:
    """One headless Chromium; ``text()`` is what the current tab's terminal received so far, escapes removed."""

    driver: webdriver.Chrome
    log: Path
    received: dict[str, list[tuple[float, str]]] = field(default_factory=dict, repr=False)
    """Per tab (window handle): the frames it received, with their time in ms since its navigation started."""

    def open(self, url: str) -> None:
        self.driver.get(url)

    def new_tab(self, url: str) -> str:
        self.driver.switch_to.new_window("tab")
        self.driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": RECORDER})  # per tab
        self.driver.get(url)
        return str(self.driver.current_window_handle)

    def _drain(self) -> list[list[Any]]:
        chunks = self.driver.execute_script(
            "const r = window.__canarylab; return r ? r.chunks.splice(0, r.chunks.length) : [];")
        return list(chunks or [])

    def raw(self) -> str:
        """Everything this tab's terminal received so far, escapes included."""
        handle = str(self.driver.current_window_handle)
        parts = self.received.setdefault(handle, [])
        parts.extend((float(ms), str(text)) for ms, text in self._drain())
        return "".join(text for _, text in parts)

    def text(self) -> str:
        return strip_escapes(self.raw())

    def drawn_at_ms(self, text: str) -> float | None:
        """When ``text`` had reached this tab: ms since its navigation started (None if it has not)."""
        self.text()
        received = ""
        for ms, chunk in self.received.get(str(self.driver.current_window_handle), []):
            received += chunk
            if text in strip_escapes(received):
                return ms
        return None

    def wait_for_text(self, *texts: str, timeout: float = 60.0) -> str:
        """Wait until one of ``texts`` has been drawn in this tab; returns it."""
        deadline = time.monotonic() + timeout
        while True:
            received = self.text()
            for text in texts:
                if text in received:
                    return text
            if time.monotonic() > deadline:
                raise AssertionError(f"none of {texts} reached the tab within {timeout}s; the last text it got:\n"
                                     f"{received[-3000:]}")
            time.sleep(0.2)

    def first_frame_ms(self) -> float | None:
        """Milliseconds from the navigation's start to the first terminal frame, once there was one."""
        value = self.driver.execute_script("return window.__canarylab ? window.__canarylab.firstFrame : null;")
        return None if value is None else float(value)

    def press(self, *keys: str) -> None:
        """Type into the terminal: xterm.js reads keys from its hidden textarea."""
        box = self.driver.find_element(By.CSS_SELECTOR, ".xterm-helper-textarea")
        for key in keys:
            box.send_keys(key)
            time.sleep(0.3)

    def body_text(self) -> str:
        return str(self.driver.find_element(By.TAG_NAME, "body").text)


@contextlib.contextmanager
def chromium(folder: Path) -> Iterator[Browser]:
    """A headless Chromium with its own profile under ``folder``; its and chromedriver's logs stay there."""
    for binary in (CHROMIUM, CHROMEDRIVER):
        if not Path(binary).exists():
            raise AssertionError(f"{binary} is needed for the browser tests (apt-get install chromium "
                                 "chromium-driver)")
    profile = folder / f"chromium-profile-{time.monotonic_ns()}"
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    log = folder / f"chromedriver-{time.monotonic_ns()}.log"
    service = Service(executable_path=CHROMEDRIVER, log_output=str(log),
                      service_args=["--verbose"] if os.environ.get("CANARYLAB_CHROMEDRIVER_VERBOSE") else [])
    driver = webdriver.Chrome(options=options, service=service)
    try:
        driver.set_page_load_timeout(30)
        driver.set_script_timeout(10)
        driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": RECORDER})
        yield Browser(driver, log)
    finally:
        with contextlib.suppress(Exception):
            driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
