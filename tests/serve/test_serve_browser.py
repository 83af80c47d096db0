"""``canarylab serve`` in a real browser: Debian's Chromium, headless and off the network, driven by chromedriver.

Given ``canarylab serve`` on a free 127.0.0.1 port, a tab opens the dashboard, ships an image with ``b`` and sees the
analysis move; the tab limit, the token off 127.0.0.1 and the end of a closed tab's process are checked as a room
would meet them. The terminal's text is read from the frames the page hands to xterm.js (tests/serve/browser.py).
"""

from __future__ import annotations

import os
import signal
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from selenium.webdriver.common.keys import Keys

from canarylab.cli.serve import needs_token
from tests.serve.browser import Browser, Served, serve

pytestmark = pytest.mark.timeout(240)

DASHBOARD = "lab time"  # the header's clock: drawn once the dashboard is up


def status(url: str, cookie: str | None = None) -> tuple[int, str]:
    """The HTTP status and body of a GET (no redirects followed, errors returned rather than raised)."""
    request = urllib.request.Request(url, headers={"Cookie": cookie} if cookie else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode(errors="replace")
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode(errors="replace")


def wait_for_tabs(served: Served, count: int, timeout: float = 20.0) -> list[int]:
    """Wait until the server runs exactly ``count`` dashboard processes; returns their pids."""
    deadline = time.monotonic() + timeout
    while True:
        pids = served.tabs()
        if len(pids) == count:
            return pids
        if time.monotonic() > deadline:
            raise AssertionError(f"the server runs {len(pids)} dashboard processes after {timeout}s, expected "
                                 f"{count}; its log:\n{served.log_text()}")
        time.sleep(0.2)


def test_a_tab_shows_the_dashboard_and_b_ships_an_image_that_the_analysis_takes(
        tmp_path: Path, browser: Browser) -> None:
    with serve(tmp_path) as served:
        assert "token" not in served.url, "127.0.0.1 is served without a token"
        browser.open(served.url)
        browser.wait_for_text(DASHBOARD, timeout=60)
        browser.wait_for_text("Initialized", timeout=60)  # the seed's canary, on this tab's own simulated lab
        assert len(wait_for_tabs(served, 1)) == 1

        browser.press("b")
        browser.wait_for_text("Ship a new image", timeout=20)
        browser.press(Keys.ENTER)
        browser.wait_for_text("Progressing", timeout=60)
        browser.wait_for_text("canary weight 5", timeout=60)
        time.sleep(1.0)  # let xterm.js draw the last frame before the picture
        shot = tmp_path / "dashboard.png"
        assert browser.driver.save_screenshot(str(shot))
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000

        # Everything the page loaded (the script, xterm's CSS, the Roboto Mono fonts) came from the server itself.
        origin = served.url.rstrip("/")
        loaded = browser.driver.execute_script(
            "return performance.getEntriesByType('resource').map(e => e.name);")
        assert any("/static/fonts/RobotoMono" in name for name in loaded), loaded
        assert [name for name in loaded if not name.startswith(origin)] == []


def test_closing_a_tab_ends_its_dashboard_process(tmp_path: Path, browser: Browser) -> None:
    with serve(tmp_path) as served:
        browser.open(served.url)
        first = str(browser.driver.current_window_handle)
        browser.wait_for_text(DASHBOARD, timeout=60)
        browser.new_tab(served.url)
        browser.wait_for_text(DASHBOARD, timeout=60)
        both = wait_for_tabs(served, 2)  # each tab its own process (and its own simulated lab)

        browser.driver.close()  # the second tab
        browser.driver.switch_to.window(first)
        (left,) = wait_for_tabs(served, 1)
        assert left in both
        closed = next(pid for pid in both if pid != left)
        assert not Path(f"/proc/{closed}").exists(), "the closed tab's process is gone, not a zombie"

        browser.driver.quit()  # the whole browser goes: the last process ends too
        wait_for_tabs(served, 0)
        assert "tab closed" in served.log_text()


def test_with_max_sessions_1_the_second_tab_is_told_the_room_is_full(tmp_path: Path, browser: Browser) -> None:
    with serve(tmp_path, "--max-sessions", "1") as served:
        browser.open(served.url)
        first = str(browser.driver.current_window_handle)
        browser.wait_for_text(DASHBOARD, timeout=60)

        browser.new_tab(served.url)
        assert "The room is full" in browser.driver.title
        assert "--max-sessions 1" in browser.body_text()
        assert status(served.url)[0] == 503
        assert len(wait_for_tabs(served, 1)) == 1  # no process was started for the tab that was turned away

        # Once the first tab is closed, the second gets the dashboard on reload.
        second = str(browser.driver.current_window_handle)
        browser.driver.switch_to.window(first)
        browser.driver.close()
        browser.driver.switch_to.window(second)
        wait_for_tabs(served, 0)
        browser.driver.refresh()
        browser.wait_for_text(DASHBOARD, timeout=60)


def test_off_127_0_0_1_the_url_carries_a_token_and_a_request_without_it_gets_401(
        tmp_path: Path, browser: Browser) -> None:
    # 127.0.0.2 is still this machine (no network), but it is not 127.0.0.1: the rule says it needs a token.
    with serve(tmp_path, host="127.0.0.2") as served:
        parts = urlsplit(served.url)
        assert parts.hostname == "127.0.0.2"
        assert parts.query.startswith("token=") and len(parts.query) > len("token=") + 16, served.url
        base = f"{parts.scheme}://{parts.netloc}"

        for path in ("/", "/ws", "/static/js/textual.js", "/?token=wrong"):
            assert status(base + path)[0] == 401, path
        assert "Token needed" in status(base + "/")[1]
        assert status(served.url)[0] == 200
        token = parts.query.removeprefix("token=")
        assert status(base + "/static/js/textual.js", cookie=f"canarylab_token={token}")[0] == 200

        # In the browser: without the token a page that says so; with it the dashboard (the websocket, which has
        # no token in its URL, is let in by the cookie the first page set).
        browser.open(base + "/")
        assert "Token needed" in browser.driver.title
        assert served.tabs() == []
        browser.open(served.url)
        browser.wait_for_text(DASHBOARD, timeout=60)
        assert len(wait_for_tabs(served, 1)) == 1


@pytest.mark.parametrize(("host", "token"), [
    ("127.0.0.1", False), ("localhost", False), ("::1", False),
    ("127.0.0.2", True), ("0.0.0.0", True), ("192.168.1.20", True), ("::", True), ("trainer.local", True),
])
def test_every_address_but_127_0_0_1_needs_a_token(host: str, token: bool) -> None:
    assert needs_token(host) is token


def test_shared_every_tab_watches_one_lab_and_only_the_first_tab_acts(tmp_path: Path, browser: Browser) -> None:
    with serve(tmp_path, "--shared") as served:
        browser.open(served.url)
        projector = str(browser.driver.current_window_handle)
        browser.wait_for_text("Initialized", timeout=60)
        watcher = browser.new_tab(served.url)
        browser.wait_for_text("Initialized", timeout=60)  # the same lab, repainted for the tab that joined
        assert len(wait_for_tabs(served, 1)) == 1
        # It got the terminal modes the dashboard set at its start: no stray cursor, mouse reporting on.
        assert "\x1b[?25l" in browser.raw() and "\x1b[?1003h" in browser.raw()

        browser.press("b")  # a watcher's keys do not reach the lab
        time.sleep(2.0)
        assert "Ship a new image" not in browser.text()
        browser.driver.switch_to.window(projector)
        assert "Ship a new image" not in browser.text()

        browser.press("b")
        browser.wait_for_text("Ship a new image", timeout=20)
        browser.press(Keys.ENTER)
        browser.wait_for_text("Progressing", timeout=60)
        browser.driver.switch_to.window(watcher)
        browser.wait_for_text("Progressing", timeout=30)  # the watcher sees the projector's analysis

        # The projector's tab closes: the lab goes on, and the tab left acts now.
        browser.driver.switch_to.window(projector)
        browser.driver.close()
        browser.driver.switch_to.window(watcher)
        time.sleep(1.0)
        assert len(wait_for_tabs(served, 1)) == 1
        browser.press("b")
        browser.wait_for_text("Ship a new image", timeout=20)


def test_a_killed_server_takes_its_tabs_processes_with_it(tmp_path: Path, browser: Browser) -> None:
    with serve(tmp_path) as served:
        browser.open(served.url)
        browser.wait_for_text(DASHBOARD, timeout=60)
        (tab,) = wait_for_tabs(served, 1)
        served.process.kill()  # no clean-up at all: SIGKILL
        served.process.wait(10)
        deadline = time.monotonic() + 20
        while Path(f"/proc/{tab}").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        alive = Path(f"/proc/{tab}").exists()
        if alive:
            os.kill(tab, signal.SIGKILL)
        assert not alive, "the dashboard process of a tab outlived its SIGKILLed server by 20 s"
