"""Server-side SVG bar charts for the console's analytics page (no JavaScript, no CDN).

Line charts over time reuse ``jobs.charts.line_chart_svg``; this adds the one
other shape the page needs: labelled horizontal bars, optionally with an
interval drawn over each bar (the impact page's 95 % intervals). Every text
goes through ``escape``: labels are tenant data (categories, item ids).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.utils.html import escape

BAR_COLOR = "#2563eb"
INTERVAL_COLOR = "#111827"


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    interval: tuple[float, float] | None = None  # drawn as a whisker over the bar
    note: str = ""  # shown after the value, e.g. "42 users"


def bar_chart_svg(bars: Sequence[Bar], *, title: str, width: int = 760, value_format: str = "{:.3g}") -> str:
    """Horizontal bars, one per row, scaled to the largest value (or interval end); an SVG string."""
    if not bars:
        return f'<svg width="{width}" height="40" role="img"><text x="10" y="25">{escape(title)}: no data</text></svg>'
    row, top, left, right = 22, 28, 220, 150
    height = top + row * len(bars) + 10
    ends = [b.value for b in bars] + [b.interval[1] for b in bars if b.interval]
    lows = [0.0] + [b.value for b in bars] + [b.interval[0] for b in bars if b.interval]
    lo, hi = min(lows), max(ends)
    span = (hi - lo) or 1.0

    def x(value: float) -> float:
        return left + (value - lo) / span * (width - left - right)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
        f'aria-label="{escape(title)}" style="background:#fff;font:12px sans-serif">',
        f'<text x="4" y="16" font-weight="bold">{escape(title)}</text>',
        f'<line x1="{x(0):.1f}" y1="{top - 4}" x2="{x(0):.1f}" y2="{height - 6}" stroke="#999"/>',
    ]
    for i, bar in enumerate(bars):
        y = top + i * row
        label = bar.label if len(bar.label) <= 34 else bar.label[:33] + "…"
        x0, x1 = sorted((x(0), x(bar.value)))
        parts.append(f'<text x="{left - 6}" y="{y + 13}" text-anchor="end">{escape(label)}</text>')
        parts.append(
            f'<rect x="{x0:.1f}" y="{y + 2}" width="{max(x1 - x0, 1):.1f}" height="{row - 6}" fill="{BAR_COLOR}">'
            f"<title>{escape(bar.label)}: {escape(value_format.format(bar.value))}</title></rect>"
        )
        if bar.interval:
            a, b = x(bar.interval[0]), x(bar.interval[1])
            mid = y + row / 2
            parts.append(
                f'<line x1="{a:.1f}" y1="{mid:.1f}" x2="{b:.1f}" y2="{mid:.1f}" stroke="{INTERVAL_COLOR}" stroke-width="2"/>'
                f'<line x1="{a:.1f}" y1="{mid - 5:.1f}" x2="{a:.1f}" y2="{mid + 5:.1f}" stroke="{INTERVAL_COLOR}"/>'
                f'<line x1="{b:.1f}" y1="{mid - 5:.1f}" x2="{b:.1f}" y2="{mid + 5:.1f}" stroke="{INTERVAL_COLOR}"/>'
            )
        text = value_format.format(bar.value) + (f"  {bar.note}" if bar.note else "")
        parts.append(f'<text x="{width - right + 6}" y="{y + 13}">{escape(text)}</text>')
    parts.append("</svg>")
    return "".join(parts)
