"""Fixtures of the browser tests: a real headless Chromium whose logs stay in the test's folder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.serve.browser import Browser, chromium


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Browser]:
    with chromium(tmp_path) as b:
        yield b
    # Shown by pytest only when the test failed: where the server's, Chromium's and chromedriver's logs are.
    print(f"logs and screenshots kept in {tmp_path}")
