"""Browser benchmark: `canarylab serve` with 1, 5 and 10 tabs of a real headless Chromium, measured from outside.

Prints, for each tab opened: time from the page's navigation start to the first terminal frame and to the drawn
dashboard (the header's "lab time"). Then, at 1, 5 and 10 concurrent tabs, CPU seconds per minute and resident
memory per tab, summed over the server and its dashboard processes (Chromium's own cost is not counted), idle
(every canary Initialized) and while every tab runs an analysis (b, Enter in each tab).

    .venv/bin/python bench/bench_serve.py [--tabs 1,5,10] [--seconds 20]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for tests.serve (the server and the browser)

from selenium.webdriver.common.keys import Keys

from tests.serve.browser import Browser, Served, chromium, cpu_seconds, rss_mb, serve

DASHBOARD = "lab time"


def processes(served: Served) -> list[int]:
    return [served.pid, *served.tabs()]


def sample(served: Served, seconds: float) -> tuple[float, float]:
    """CPU seconds per minute and resident MB, summed over the server and its tabs' processes, over ``seconds``."""
    pids = processes(served)
    c0, t0 = sum(cpu_seconds(p) for p in pids), time.monotonic()
    time.sleep(seconds)
    cpu = sum(cpu_seconds(p) for p in pids) - c0
    rss = sum(rss_mb(p) for p in processes(served))
    return 60 * cpu / (time.monotonic() - t0), rss


def open_tab(browser: Browser, url: str, first: bool) -> tuple[str, float, float]:
    """A new tab on ``url``, once its dashboard is drawn: (handle, ms to first frame, ms to the dashboard)."""
    if first:
        browser.open(url)
    else:
        browser.new_tab(url)
    browser.wait_for_text(DASHBOARD, timeout=120)
    frame, drawn = browser.first_frame_ms(), browser.drawn_at_ms(DASHBOARD)
    assert frame is not None and drawn is not None
    return str(browser.driver.current_window_handle), frame, drawn


def ship_everywhere(browser: Browser, handles: list[str]) -> None:
    for handle in handles:
        browser.driver.switch_to.window(handle)
        browser.wait_for_text("Initialized", timeout=120)
        browser.press("b")
        browser.wait_for_text("Ship a new image", timeout=30)
        browser.press(Keys.ENTER)
    for handle in handles:
        browser.driver.switch_to.window(handle)
        browser.wait_for_text("Progressing", timeout=120)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tabs", default="1,5,10", help="comma-separated tab counts (default 1,5,10)")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each CPU sample (default 20)")
    args = parser.parse_args()
    sizes = sorted({int(n) for n in args.tabs.split(",")})
    rows: list[tuple[int, float, float, float, float]] = []
    opened: list[tuple[float, float]] = []
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as tmp:
        folder = Path(tmp)
        for n in sizes:
            # A fresh server and browser per size: the analyses of the last size must not run into this one's.
            with serve(folder, "--max-sessions", str(max(sizes))) as served, chromium(folder) as browser:
                handles = []
                for i in range(n):
                    handle, frame, drawn = open_tab(browser, served.url, first=i == 0)
                    handles.append(handle)
                    opened.append((frame, drawn))
                    print(f"tabs {n:2d}: tab {i + 1:2d} first frame {frame / 1000:5.2f} s, dashboard "
                          f"{drawn / 1000:5.2f} s", flush=True)
                for handle in handles:
                    browser.driver.switch_to.window(handle)
                    browser.wait_for_text("Initialized", timeout=120)
                time.sleep(2.0)  # start-up settles
                idle_cpu, idle_rss = sample(served, args.seconds)
                ship_everywhere(browser, handles)
                busy_cpu, busy_rss = sample(served, args.seconds)
                assert len(served.tabs()) == n, served.log_text()
                rows.append((n, idle_cpu / n, idle_rss / n, busy_cpu / n, busy_rss / n))
    print()
    for name, values in (("time to first frame  ", [f for f, _ in opened]),
                         ("time to the dashboard", [d for _, d in opened])):
        print(f"{name} first tab {values[0] / 1000:5.2f} s, median {statistics.median(values) / 1000:5.2f} s, "
              f"max {max(values) / 1000:5.2f} s over {len(values)} tabs")
    print()
    print("tabs | CPU s/min per tab, idle | RSS MB per tab, idle | CPU s/min per tab, analysing | RSS MB per tab, "
          "analysing")
    for n, ic, ir, bc, br in rows:
        print(f"{n:4d} | {ic:23.1f} | {ir:20.0f} | {bc:28.1f} | {br:24.0f}")
    print("(server + its dashboard processes; 60 CPU s/min is one core)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
