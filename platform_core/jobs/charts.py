"""A small inline-SVG line chart (no JavaScript, no CDN) for metrics over time."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

from django.utils.html import escape

PALETTE = ("#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2")


def line_chart_svg(
    series: Mapping[str, Sequence[tuple[dt.datetime, float]]],
    *,
    title: str,
    width: int = 760,
    height: int = 280,
    markers: Sequence[dt.datetime] = (),
) -> str:
    """``{label: [(time, value), ...]}`` → an SVG string; ``markers`` draw vertical lines (activations)."""
    points = [p for pts in series.values() for p in pts]
    if not points:
        return f'<svg width="{width}" height="60" role="img"><text x="10" y="30">{escape(title)}: no data yet</text></svg>'
    left, right, top, bottom = 60, 160, 30, 40
    t0 = min(p[0] for p in points).timestamp()
    t1 = max(p[0] for p in points).timestamp()
    v0 = min(0.0, min(p[1] for p in points))
    v1 = max(p[1] for p in points) or 1.0
    span_t = (t1 - t0) or 1.0
    span_v = (v1 - v0) or 1.0

    def x(t: dt.datetime) -> float:
        return left + (t.timestamp() - t0) / span_t * (width - left - right)

    def y(v: float) -> float:
        return height - bottom - (v - v0) / span_v * (height - top - bottom)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
        f'aria-label="{escape(title)}" style="background:#fff;font:12px sans-serif">',
        f'<text x="{left}" y="18" font-weight="bold">{escape(title)}</text>',
        f'<line x1="{left}" y1="{height - bottom}" x2="{width - right}" y2="{height - bottom}" stroke="#999"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{height - bottom}" stroke="#999"/>',
    ]
    for frac in (0.0, 0.5, 1.0):
        v = v0 + frac * span_v
        parts.append(f'<text x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{v:.3f}</text>')
        parts.append(
            f'<line x1="{left}" y1="{y(v):.1f}" x2="{width - right}" y2="{y(v):.1f}" stroke="#eee"/>'
        )
    parts.append(
        f'<text x="{left}" y="{height - 12}">{escape(min(p[0] for p in points).strftime("%Y-%m-%d %H:%M"))}</text>'
    )
    parts.append(
        f'<text x="{width - right}" y="{height - 12}" text-anchor="end">'
        f"{escape(max(p[0] for p in points).strftime('%Y-%m-%d %H:%M'))}</text>"
    )
    for m in markers:
        parts.append(
            f'<line x1="{x(m):.1f}" y1="{top}" x2="{x(m):.1f}" y2="{height - bottom}" '
            'stroke="#16a34a" stroke-dasharray="3,3"><title>activated</title></line>'
        )
    for i, (label, pts) in enumerate(sorted(series.items())):
        color = PALETTE[i % len(PALETTE)]
        ordered = sorted(pts)
        path = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in ordered)
        if len(ordered) > 1:
            parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{path}"/>')
        for t, v in ordered:
            parts.append(
                f'<circle cx="{x(t):.1f}" cy="{y(v):.1f}" r="3" fill="{color}">'
                f"<title>{escape(label)} {v:.4f} @ {t:%Y-%m-%d %H:%M}</title></circle>"
            )
        ly = top + 16 * i
        parts.append(f'<rect x="{width - right + 10}" y="{ly}" width="10" height="10" fill="{color}"/>')
        parts.append(f'<text x="{width - right + 25}" y="{ly + 9}">{escape(label)}</text>')
    parts.append("</svg>")
    return "".join(parts)
