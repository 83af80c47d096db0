"""The traffic bar: how the routing object splits traffic between primary and canary, with image tags."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.widget import Widget


def tag_of(image: str) -> str:
    """``stefanprodan/podinfo:3.1.1`` -> ``podinfo:3.1.1`` (the last path part keeps the bar short)."""
    return image.rsplit("/", 1)[-1] if image else "?"


class TrafficBar(Widget):
    """Two labelled segments, primary on the left and canary on the right, sized by their weights."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {"traffic-bar--primary", "traffic-bar--canary", "traffic-bar--label"}
    DEFAULT_CSS = """
    TrafficBar { height: 2; }
    TrafficBar > .traffic-bar--primary { color: $primary; }
    TrafficBar > .traffic-bar--canary { color: $warning; }
    TrafficBar > .traffic-bar--label { color: $foreground; text-style: bold; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._split = (100, 0, "", "")

    def show(self, primary: int, canary: int, primary_image: str, canary_image: str) -> None:
        """Redraw with new weights (from the routing object) and images; no-op when nothing changed."""
        split = (primary, canary, primary_image, canary_image)
        if split != self._split:
            self._split = split
            self.refresh()

    def render(self) -> Text:
        primary, canary, primary_image, canary_image = self._split
        width = max(10, self.size.width)
        p_style = self.get_component_rich_style("traffic-bar--primary")
        c_style = self.get_component_rich_style("traffic-bar--canary")
        label = self.get_component_rich_style("traffic-bar--label")
        left = Text.assemble(("primary ", p_style), (f"{tag_of(primary_image)} ", label), (f"{primary}%", p_style))
        right = Text.assemble((f"{canary}%", c_style), (f" {tag_of(canary_image)}", label), (" canary", c_style))
        gap = max(1, width - left.cell_len - right.cell_len)
        total = max(1, primary + canary)
        canary_cells = round(width * canary / total)
        if canary and not canary_cells:
            canary_cells = 1  # 1 % must stay visible
        bar = Text.assemble(("█" * (width - canary_cells), p_style), ("█" * canary_cells, c_style))
        return Text.assemble(left, " " * gap, right, "\n", bar)
