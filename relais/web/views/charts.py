"""The landing page's and the rejects page's charts: pure functions returning inline SVG markup (no
script, no library), to be put as they are in a page (relais/web/views/dashboard.py wraps them in
``markupsafe.Markup``).

Each chart is an image for assistive technologies: ``role="img"``, a ``<title>`` and a ``<desc>`` that
says every number it shows, both named by ``aria-labelledby``. Numbers are written on the bars, and
series never differ by colour alone: each has its fill pattern (solid, hatched, cross-hatched,
dotted) and its symbol (the status badges' ✔ ◐ ✖), shown in the legend and in the bars' labels.
Colours are those of static/app.css (ok, warn, bad, accent). All text is escaped; `ident` (which
makes the ids of a chart unique in its page) is reduced to letters, digits and dashes.

>>> svg = stacked_bars([("2024-05-01", {"ok": 3, "rejected": 1})], STATUS_GROUPS, title="Flows", ident="f")
>>> svg.startswith('<svg') and 'role="img"' in svg and "<title id=\\"f-t\\">Flows</title>" in svg
True
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import html
import re
from collections.abc import Callable, Mapping, Sequence

OK, WARN, BAD, ACCENT, MUTED, LINE, FG = "#18753c", "#8a5300", "#b3261e", "#000091", "#555555", "#cccccc", "#1b1b1b"
FONT = "system-ui, sans-serif"


@dataclasses.dataclass(frozen=True, slots=True)
class Series:
    """One series of a stacked bar chart: its key in the data, its label, colour, pattern and symbol."""

    key: str
    label: str
    colour: str
    pattern: str = "solid"  # "solid" | "hatch" | "cross" | "dots"
    symbol: str = ""


#: The flow status groups (labels in French: relais/web/views/dashboard.py gives translated ones).
STATUS_GROUPS = (
    Series("ok", "intégré", OK, "solid", "✔"),
    Series("partial", "intégré partiellement", WARN, "hatch", "◐"),
    Series("rejected", "rejeté", BAD, "cross", "✖"),
    Series("other", "autre (en cours, incident)", MUTED, "dots", "…"),
)

_GROUP_OF = {"IN_INTEGRE": "ok", "IN_INTEGRE_PARTIEL": "partial", "IN_REJETE": "rejected"}


def status_group(status: str) -> str:
    """The group of a flow status in `STATUS_GROUPS`.

    >>> status_group("IN_INTEGRE"), status_group("IN_REJETE"), status_group("IN_INCIDENTE")
    ('ok', 'rejected', 'other')
    """
    return _GROUP_OF.get(status, "other")


def group_statuses(counts: Mapping[str, int]) -> dict[str, int]:
    """{status: count} summed by `status_group`.

    >>> group_statuses({"IN_INTEGRE": 4, "IN_RECU": 1, "IN_INCIDENTE": 2})
    {'ok': 4, 'partial': 0, 'rejected': 0, 'other': 3}
    """
    out = {s.key: 0 for s in STATUS_GROUPS}
    for status, n in counts.items():
        out[status_group(status)] += n
    return out


# ---- the charts ---------------------------------------------------------------------------------


def stacked_bars(
    days: Sequence[tuple[dt.date | str, Mapping[str, int]]],
    series: Sequence[Series],
    *,
    title: str,
    ident: str = "bars",
    total_label: str = "total",
    height: int = 260,
) -> str:
    """A bar per day, stacked by series (bottom to top in `series` order), its total above it and each
    segment tall enough its symbol and count; a legend with each series' total.

    >>> svg = stacked_bars(
    ...     [("2024-05-01", {"ok": 10, "partial": 2}), ("2024-05-02", {"rejected": 1})],
    ...     STATUS_GROUPS, title="Flux par jour", ident="fpd", total_label="total")
    >>> "2024-05-01 : intégré 10, intégré partiellement 2, rejeté 0, autre (en cours, incident) 0 ; total 12" in svg
    True
    >>> ">✔ 10<" in svg, ">12<" in svg, 'fill="url(#fpd-hatch)"' in svg, 'class="label-bg"' in svg
    (True, True, True, True)
    """
    ident = _ident(ident)
    n = max(1, len(days))
    slot = max(32, min(60, 960 // n))
    left, right, top, legend_h, bottom = 44, 12, 18, 22 * ((len(series) + 1) // 2), 34
    width = max(640, left + slot * n + right)
    plot_top = top + legend_h
    plot_h = height - plot_top - bottom
    totals = [sum(int(c.get(s.key, 0)) for s in series) for _, c in days]
    peak = _nice(max(totals, default=0))
    scale = plot_h / peak if peak else 0.0
    desc = " ; ".join(
        f"{_day(d)} : " + ", ".join(f"{s.label} {int(c.get(s.key, 0))}" for s in series) + f" ; {total_label} {tot}"
        for (d, c), tot in zip(days, totals, strict=True)
    )
    parts = [_open(ident, width, height, title, desc), _patterns(ident, series)]
    parts.append(_y_axis(left, plot_top, plot_h, width - right, peak, lambda v: _compact(int(v))))
    bar_w = slot * 0.75
    for k, ((d, counts), tot) in enumerate(zip(days, totals, strict=True)):
        x = left + k * slot + (slot - bar_w) / 2
        y: float = plot_top + plot_h
        for s in series:
            value = int(counts.get(s.key, 0))
            if value <= 0:
                continue
            h = value * scale
            y -= h
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" fill="{_fill(ident, s)}"'
                f' stroke="{s.colour}" stroke-width="1"><title>{_e(f"{_day(d)} {s.label} : {value}")}</title></rect>'
            )
            if h >= 17 and bar_w >= 18:
                parts.append(_boxed(x + bar_w / 2, y + h / 2, s.symbol, _compact(value), slot - 2))
        if tot:
            parts.append(_text(x + bar_w / 2, y - 3, _compact(tot), 10, weight="600"))
        if _tick(k, n):
            parts.append(_text(x + bar_w / 2, plot_top + plot_h + 14, _short_day(d), 10, fill=MUTED))
    for j, s in enumerate(series):
        lx, ly = left + (j % 2) * 300, top + (j // 2) * 22
        total = sum(int(c.get(s.key, 0)) for _, c in days)
        parts.append(
            f'<rect x="{lx}" y="{ly - 11}" width="16" height="14" fill="{_fill(ident, s)}" stroke="{s.colour}"/>'
        )
        parts.append(_text(lx + 22, ly, f"{s.symbol} {s.label} : {total}".strip(), 12, anchor="start"))
    parts.append("</svg>")
    return "".join(parts)


def line_chart(
    points: Sequence[tuple[dt.date | str, float | None]],
    *,
    title: str,
    ident: str = "line",
    colour: str = BAD,
    decimal: str = ",",
    height: int = 220,
) -> str:
    """A line with the area under it, of rates (0..1) shown in %: a dot per day that has one (None: no
    point, the line breaks), the latest and the highest value written next to their dot.

    >>> svg = line_chart([("2024-05-01", 0.1), ("2024-05-02", None), ("2024-05-03", 0.25)],
    ...                  title="Taux de rejet", ident="rr")
    >>> "2024-05-01 : 10 % ; 2024-05-02 : — ; 2024-05-03 : 25 %" in svg, ">25 %<" in svg
    (True, True)
    """
    ident = _ident(ident)
    n = max(1, len(points))
    slot = max(24, min(60, 960 // n))
    left, right, top, bottom = 52, 40, 18, 34
    width = max(640, left + slot * n + right)
    plot_h = height - top - bottom
    values = [p for _, p in points if p is not None]
    peak = _nice(max(values, default=0.0) * 100, floor=5)
    desc = " ; ".join(f"{_day(d)} : {_pct(p, decimal)}" for d, p in points)
    parts = [_open(ident, width, height, title, desc)]
    parts.append(_y_axis(left, top, plot_h, width - right, peak, lambda v: _pct(v / 100, decimal)))

    def xy(k: int, p: float) -> tuple[float, float]:
        return left + k * slot + slot / 2, top + plot_h - (p * 100 / peak) * plot_h

    runs: list[list[tuple[float, float]]] = [[]]
    for k, (_, p) in enumerate(points):
        if p is None:
            if runs[-1]:
                runs.append([])
            continue
        runs[-1].append(xy(k, p))
    base = top + plot_h
    for run in (r for r in runs if r):
        coords = " ".join(f"{x:.1f},{y:.1f}" for x, y in run)
        area = f"{run[0][0]:.1f},{base:.1f} {coords} {run[-1][0]:.1f},{base:.1f}"
        parts.append(f'<polygon points="{area}" fill="{colour}" fill-opacity="0.12" stroke="none"/>')
        parts.append(f'<polyline points="{coords}" fill="none" stroke="{colour}" stroke-width="2"/>')
    defined = [(k, p) for k, (_, p) in enumerate(points) if p is not None]
    labelled = set()
    if defined:
        labelled = {defined[-1][0], max(defined, key=lambda kp: (kp[1], kp[0]))[0]}
    for k, (d, p) in enumerate(points):
        if p is None:
            continue
        x, y = xy(k, p)
        parts.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}"><title>{_e(f"{_day(d)} : {_pct(p, decimal)}")}'
            "</title></circle>"
        )
        if k in labelled:
            parts.append(_text(x, y - 7, _pct(p, decimal), 11, weight="600", halo=True))
    for k, (d, _) in enumerate(points):
        if _tick(k, n):
            parts.append(_text(left + k * slot + slot / 2, base + 14, _short_day(d), 10, fill=MUTED))
    parts.append("</svg>")
    return "".join(parts)


@dataclasses.dataclass(frozen=True, slots=True)
class Bar:
    """One horizontal bar: its label (linked to `href` when given), value and a note after the value."""

    label: str
    value: int
    note: str = ""
    href: str | None = None


def hbars(bars: Sequence[Bar], *, title: str, ident: str = "hbars", colour: str = BAD, width: int = 640) -> str:
    """Horizontal bars, one per row, largest first as given: the label at the left, the value (and the
    note) written at the end of the bar.

    >>> svg = hbars([Bar("BR-FR-12", 40, "(8 flux)", "/rejects/BR-FR-12"), Bar("BR-05", 3)], title="Règles")
    >>> "BR-FR-12 : 40 (8 flux) ; BR-05 : 3" in svg, '<a href="/rejects/BR-FR-12">' in svg, ">40 (8 flux)<" in svg
    (True, True, True)
    """
    ident = _ident(ident)
    row, label_w, top = 24, 150, 8
    height = top * 2 + row * max(1, len(bars))
    bar_max = width - label_w - 230  # room for the value and its note after the longest bar
    peak = max((b.value for b in bars), default=0)
    desc = " ; ".join(f"{b.label} : {b.value}{' ' + b.note if b.note else ''}" for b in bars)
    parts = [_open(ident, width, height, title, desc)]
    for k, b in enumerate(bars):
        y = top + k * row
        w = (b.value / peak) * bar_max if peak else 0.0
        label = _text(label_w - 8, y + 16, _clip(b.label, 22), 12, anchor="end", fill=ACCENT if b.href else FG)
        if b.href:
            label = f'<a href="{_e(b.href)}">{label}</a>'
        parts.append(label)
        parts.append(f'<rect x="{label_w}" y="{y + 4}" width="{max(w, 1):.1f}" height="{row - 8}" fill="{colour}"/>')
        parts.append(_text(label_w + w + 6, y + 16, f"{b.value} {b.note}".strip(), 12, anchor="start"))
    parts.append("</svg>")
    return "".join(parts)


def sparkline(
    values: Sequence[int],
    *,
    title: str,
    ident: str = "spark",
    width: int = 180,
    height: int = 40,
    peak_label: str = "max",
    days: Sequence[dt.date | str] = (),
) -> str:
    """A small chart of counts per day (oldest first), at its natural size (never shrunk by its table
    cell: ``class="chart spark"``): its axis from 0 to the peak, written at the right ("max 5", "0"), a
    dot per day with a tooltip (its day, when `days` are given, and its count), the latest dot marked.

    >>> svg = sparkline([0, 2, 5, 1], title="BR-FR-12 par jour", ident="s1")
    >>> "0, 2, 5, 1" in svg and "<polyline" in svg and ">max 5<" in svg and 'class="chart spark"' in svg
    True
    """
    ident = _ident(ident)
    peak = max(values, default=0)
    plot_w, top, bottom = width - 52, 6, height - 6
    n = len(values)
    desc = ", ".join(str(v) for v in values)
    parts = [_open(ident, width, height, title, desc, extra_class="spark")]
    for edge in (top, bottom):
        parts.append(f'<line x1="0" y1="{edge}" x2="{plot_w}" y2="{edge}" stroke="{LINE}" stroke-width="1"/>')
    if n:
        step = plot_w / max(1, n - 1)
        pts = [(k * step, bottom - ((v / peak) * (bottom - top) if peak else 0.0)) for k, v in enumerate(values)]
        coords = " ".join(f"{x:.1f},{y:.1f}" for x, y in pts)
        parts.append(f'<polyline points="{coords}" fill="none" stroke="{ACCENT}" stroke-width="1.5"/>')
        for k, ((x, y), v) in enumerate(zip(pts, values, strict=True)):
            when = f"{_day(days[k])} : " if k < len(days) else ""
            radius = 2.5 if k == n - 1 else 1.5
            parts.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{radius}" fill="{ACCENT}">'
                f"<title>{_e(when + str(v))}</title></circle>"
            )
    parts.append(_text(plot_w + 4, top + 8, f"{peak_label} {_compact(peak)}", 11, anchor="start", fill=FG))
    parts.append(_text(plot_w + 4, bottom + 2, "0", 11, anchor="start", fill=MUTED))
    parts.append("</svg>")
    return "".join(parts)


# ---- pieces -------------------------------------------------------------------------------------


def _open(ident: str, width: int, height: int, title: str, desc: str, extra_class: str = "") -> str:
    """The ``<svg>`` with its title and desc. Its size is its natural one: a stylesheet may let it shrink
    with its container (``svg.chart { max-width: 100%; height: auto }``, the viewBox keeps its shape)."""
    size = f'width="{width}" height="{height}"'
    classes = f"chart {extra_class}".strip()
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-labelledby="{ident}-t {ident}-d"'
        f' class="{classes}" {size} viewBox="0 0 {width} {height}"'
        f' preserveAspectRatio="xMinYMin meet" font-family="{FONT}">'
        f'<title id="{ident}-t">{_e(title)}</title><desc id="{ident}-d">{_e(desc)}</desc>'
    )


def _patterns(ident: str, series: Sequence[Series]) -> str:
    out = ["<defs>"]
    for s in series:
        pid = f"{ident}-{s.pattern}"
        if s.pattern == "hatch":
            body = f'<rect width="6" height="6" fill="#fff"/><rect width="3" height="6" fill="{s.colour}"/>'
            out.append(
                f'<pattern id="{pid}" width="6" height="6" patternUnits="userSpaceOnUse"'
                f' patternTransform="rotate(45)">{body}</pattern>'
            )
        elif s.pattern == "cross":
            body = (
                f'<rect width="8" height="8" fill="{s.colour}"/>'
                '<path d="M0,0 L8,8 M8,0 L0,8" stroke="#fff" stroke-width="1.5"/>'
            )
            out.append(f'<pattern id="{pid}" width="8" height="8" patternUnits="userSpaceOnUse">{body}</pattern>')
        elif s.pattern == "dots":
            body = f'<rect width="6" height="6" fill="#fff"/><circle cx="3" cy="3" r="1.6" fill="{s.colour}"/>'
            out.append(f'<pattern id="{pid}" width="6" height="6" patternUnits="userSpaceOnUse">{body}</pattern>')
    out.append("</defs>")
    return "".join(out)


def _fill(ident: str, s: Series) -> str:
    return s.colour if s.pattern == "solid" else f"url(#{ident}-{s.pattern})"


def _y_axis(left: int, top: int, plot_h: int, right: int, peak: float, fmt: Callable[[float], str]) -> str:
    """Grid lines and their values, at whole steps of the axis (`_steps`)."""
    out = []
    steps = _steps(peak)
    for j in range(steps + 1):
        v = peak * j / steps
        y = top + plot_h - plot_h * j / steps
        out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{right}" y2="{y:.1f}" stroke="{LINE}" stroke-width="1"/>')
        if peak:
            out.append(_text(left - 4, y + 4, fmt(v), 10, anchor="end", fill=MUTED))
    return "".join(out)


def _text(
    x: float,
    y: float,
    text: str,
    size: int,
    *,
    anchor: str = "middle",
    fill: str = FG,
    weight: str = "400",
    halo: bool = False,
) -> str:
    extra = ' stroke="#fff" stroke-width="3" paint-order="stroke"' if halo else ""
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" fill="{fill}"'
        f' font-weight="{weight}"{extra}>{_e(text)}</text>'
    )


def _boxed(x: float, y: float, symbol: str, value: str, room: float, size: int = 10) -> str:
    """A label centred on (x, y), dark on a white box (``rect.label-bg``): legible on any fill or pattern
    of the bar under it (contrast of the page's text on white); the series' symbol before the value when
    the day's slot (`room`) has the width for both."""
    text = f"{symbol} {value}".strip()
    if len(text) * size * 0.62 + 6 > room:
        text = value
    w = len(text) * size * 0.62 + 6
    h = size + 6
    box = (
        f'<rect class="label-bg" x="{x - w / 2:.1f}" y="{y - h / 2:.1f}" width="{w:.1f}" height="{h}" rx="2"'
        ' fill="#fff" fill-opacity="0.95" stroke="none"/>'
    )
    label = (
        f'<text class="seg-label" x="{x:.1f}" y="{y + size * 0.36:.1f}" font-size="{size}" text-anchor="middle"'
        f' fill="{FG}" font-weight="600">{_e(text)}</text>'
    )
    return box + label


def _nice(value: float, floor: float = 1) -> float:
    """The smallest 1, 2, 2.5 or 5 × 10ⁿ at least `value` (and `floor`): the top of an axis."""
    value = max(value, floor)
    power = 1.0
    while power * 10 < value:
        power *= 10
    while power > value:
        power /= 10
    for m in (1, 2, 2.5, 5, 10):
        if m * power >= value:
            return m * power
    return 10 * power  # pragma: no cover - the loop always returns


def _steps(peak: float) -> int:
    """Into how many equal whole steps the axis up to `peak` (a `_nice` value) is cut.

    >>> [_steps(p) for p in (1, 2, 5, 10, 20, 25, 100, 0)]
    [1, 2, 5, 5, 4, 5, 4, 4]
    """
    for steps in (4, 5, 2, 1):
        if peak >= steps and abs(peak / steps - round(peak / steps)) < 1e-9:
            return steps
    return 4


def _tick(k: int, n: int) -> bool:
    """Whether the k-th of n days gets its date written (about 8 at most, and always the last)."""
    every = max(1, -(-n // 8))
    return k == n - 1 or (k % every == 0 and n - 1 - k >= every / 2)


def _day(d: dt.date | str) -> str:
    return d.isoformat() if isinstance(d, dt.date) else str(d)


def _short_day(d: dt.date | str) -> str:
    text = _day(d)
    return f"{text[8:10]}/{text[5:7]}" if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text) else text


def _pct(p: float | None, decimal: str = ",") -> str:
    if p is None:
        return "—"
    text = f"{p * 100:.1f}".removesuffix(".0")
    return text.replace(".", decimal) + " %"


def _compact(n: int) -> str:
    if n < 10_000:
        return str(n)
    if n < 1_000_000:
        return f"{n // 1000}k"
    return f"{n // 1_000_000}M"


def _clip(text: str, size: int) -> str:
    return text if len(text) <= size else text[: size - 1] + "…"


def _ident(ident: str) -> str:
    return re.sub(r"[^A-Za-z0-9-]", "-", ident) or "chart"


def _e(text: str) -> str:
    return html.escape(str(text), quote=True)
