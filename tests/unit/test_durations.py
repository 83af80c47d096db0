"""Durations read and written as Flagger and Go do."""

import pytest

from canarylab.engine.durations import format_go_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("1m", 60), ("2m", 120), ("1m30s", 90), ("500ms", 0.5), ("1h", 3600), ("0", 0), ("1.5s", 1.5)],
)
def test_parse(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "30", "s", "1x", "1m 30s", "-5s", "30s5"])
def test_parse_refuses_malformed_durations_with_a_hint(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(1.2, "1.2s"), (0.5, "500ms"), (90, "1m30s"), (0, "0s"), (3600, "1h0m0s"), (0.001, "1ms"), (30, "30s")],
)
def test_format_like_go(seconds: float, text: str) -> None:
    assert format_go_duration(seconds) == text
