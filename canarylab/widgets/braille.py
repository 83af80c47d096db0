"""A braille line chart with a threshold line, rasterised to cells (pure: no Textual, easy to test).

Each terminal cell holds a 2x4 grid of braille dots, so a 40x6 cell chart has 80x24 dots. One sample
takes one dot column; consecutive samples are joined vertically so the line stays continuous. The cells
return a *role* (``ok``, ``bad``, ``threshold``, ``zone``, ``blank``; ``ok+zone``/``bad+zone`` for
the line inside the shaded side) that the widget maps to theme
styles, which keeps colours out of this module.

Why our own instead of plotext/textual-plotext: the chart is ~100 lines, needs a threshold line and a
shaded failing side that plotext does not draw, follows the Textual theme, and adds no dependency.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

# Bit of each dot (dx, dy) in a braille cell, per Unicode's braille pattern layout.
_DOT_BITS = {(0, 0): 0x01, (0, 1): 0x02, (0, 2): 0x04, (1, 0): 0x08,
             (1, 1): 0x10, (1, 2): 0x20, (0, 3): 0x40, (1, 3): 0x80}  # fmt: skip
_BRAILLE = 0x2800

Cell = tuple[str, str]
"""``(character, role)``."""


@dataclass(frozen=True)
class Chart:
    """The rasterised chart: ``rows`` top to bottom, the value range and where the threshold sits."""

    rows: list[list[Cell]]
    low: float
    high: float
    threshold_row: int | None


def value_range(values: Sequence[float], bounds: Sequence[float]) -> tuple[float, float]:
    """A y range holding every value and threshold, padded so lines do not hug the border."""
    points = [*values, *bounds]
    if not points:
        return 0.0, 1.0
    low, high = min(points), max(points)
    if high - low < 1e-9:
        pad = max(abs(high) * 0.05, 1.0)
        return low - pad, high + pad
    pad = (high - low) * 0.1
    # Rates and latencies are never negative: do not pad below zero.
    return (max(0.0, low - pad) if low >= 0 else low - pad), high + pad


def _in_zone(row: int, threshold_row: int, minimum: float | None) -> bool:
    """Below a minimum, or above a maximum, is the failing side."""
    return row > threshold_row if minimum is not None else row < threshold_row


def render(
    values: Sequence[float | None],
    oks: Sequence[bool],
    *,
    width: int,
    height: int,
    minimum: float | None = None,
    maximum: float | None = None,
) -> Chart:
    """Rasterise the most recent samples that fit ``width`` cells into ``height`` rows.

    ``minimum``/``maximum`` are the check's ``thresholdRange``: the threshold line is drawn at the one
    given (``minimum`` when both) and the side that fails is marked as ``zone``.
    """
    width, height = max(1, width), max(1, height)
    dots_x, dots_y = width * 2, height * 4
    pairs = list(zip(values, oks, strict=False))
    # Few samples are spread (up to 4 dot columns apart) so a young run already reads as a line.
    spacing = max(1, min(4, (dots_x - 1) // max(1, len(pairs) - 1)))
    recent = pairs[-((dots_x - 1) // spacing + 1):]
    bounds = [b for b in (minimum, maximum) if b is not None]
    low, high = value_range([v for v, _ in recent if v is not None], bounds)
    # Leave room on the failing side of the threshold, so the shaded zone shows before anything fails.
    room = (high - low) * 0.25
    if minimum is not None:
        low = min(low, max(0.0, minimum - room) if minimum >= 0 else minimum - room)
    elif maximum is not None:
        high = max(high, maximum + room)

    def to_dot_y(value: float) -> int:
        # Row 0 is the top; clamp so out-of-range values sit on the border.
        frac = (value - low) / (high - low)
        return min(dots_y - 1, max(0, round((1 - frac) * (dots_y - 1))))

    bits = [[0] * width for _ in range(height)]
    bad = [[False] * width for _ in range(height)]

    def plot(x: int, y0: int, y1: int, ok: bool) -> None:
        for dy in range(min(y0, y1), max(y0, y1) + 1):
            row, col = dy // 4, x // 2
            bits[row][col] |= _DOT_BITS[(x % 2, dy % 4)]
            bad[row][col] = bad[row][col] or not ok

    previous: tuple[int, int] | None = None
    for i, (value, ok) in enumerate(recent):
        x = i * spacing
        if value is None:
            previous = None
            continue
        y = to_dot_y(value)
        if previous is None:
            plot(x, y, y, ok)
        else:
            px, py = previous
            for step in range(1, x - px + 1):  # straight segment from the previous sample, joined vertically
                yy = round(py + (y - py) * step / (x - px))
                yprev = round(py + (y - py) * (step - 1) / (x - px))
                plot(px + step, yprev, yy, ok)
        previous = (x, y)

    line = minimum if minimum is not None else maximum
    threshold_dot = to_dot_y(line) if line is not None else None
    threshold_row = threshold_dot // 4 if threshold_dot is not None else None
    rows: list[list[Cell]] = []
    for r in range(height):
        cells: list[Cell] = []
        for c in range(width):
            b = bits[r][c]
            if b:
                if r == threshold_row and threshold_dot is not None:
                    b |= _DOT_BITS[(0, threshold_dot % 4)] | _DOT_BITS[(1, threshold_dot % 4)]
                role = "bad" if bad[r][c] else "ok"
                if threshold_row is not None and r != threshold_row and _in_zone(r, threshold_row, minimum):
                    role += "+zone"  # the line keeps the shaded background of the failing side
                cells.append((chr(_BRAILLE + b), role))
            elif r == threshold_row and threshold_dot is not None:
                cells.append((chr(_BRAILLE + (_DOT_BITS[(0, threshold_dot % 4)] | _DOT_BITS[(1, threshold_dot % 4)])),
                              "threshold"))
            elif threshold_row is not None and r != threshold_row and _in_zone(r, threshold_row, minimum):
                cells.append((" ", "zone"))
            else:
                cells.append((" ", "blank"))
        rows.append(cells)
    return Chart(rows, low, high, threshold_row)
