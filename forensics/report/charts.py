"""Charts for the report: PNG files in case/charts/, drawn with matplotlib's Agg renderer.

Every chart is computed as an aggregate in polars first (per day, per hour, per 2-D bin) and only the
aggregate is plotted, so drawing costs the same for ten thousand events as for ten million. Figures are
made with :class:`matplotlib.figure.Figure` directly (no pyplot, no global backend switch), all dates are
UTC, and text from the evidence is drawn with math parsing off (a ``$`` in a user agent is a dollar).

Charts (each returns its path, or None when the case has nothing to draw for it):

* ``exfiltration_per_day.png``: records and bytes taken per day by each actor, windows shaded, against
  what every other client received;
* ``cumulative_records.png``: distinct records exposed to each actor over time;
* ``id_walk_<actor>.png``: object id against time on the actor's endpoint (a colour per address when
  there are few, a 2-D density when there are many), next to everyone else's requests;
* ``top_clients.png``: the heaviest clients, a linked actor's addresses combined and highlighted;
* ``activity_<actor>.png``: hour-of-day by day heatmap of an actor's requests;
* ``coverage.png``: events per hour of every source/observer, coverage gaps marked.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import matplotlib as mpl
import matplotlib.dates as mdates
import numpy as np
import polars as pl
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

from ..passes import ok_with_body
from .data import ReportData, parse_ts

#: Per-actor charts are drawn for at most this many actors (the ones that took records, A1 first).
MAX_ACTORS = 3
#: Up to this many addresses an id walk gets one colour per address; beyond it, a density.
MAX_ADDRESS_COLOURS = 8
#: Scatter at most this many points per address; beyond that, the walk is drawn as a density.
MAX_SCATTER_POINTS = 20_000
ACTOR_COLOURS = ("#c0392b", "#7d3c98", "#d35400")
OTHER = "#7f8c8d"
SCAN = "#e67e22"
DPI = 110

RC = {
    "text.parse_math": False,
    "font.family": "DejaVu Sans",
    "font.size": 10,
    "axes.titlesize": 12,
    "axes.titleweight": "bold",
    "axes.labelsize": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.25,
    "legend.fontsize": 9,
    "legend.framealpha": 0.9,
    "timezone": "UTC",
}


@dataclass(frozen=True)
class Chart:
    name: str
    title: str
    caption: str
    path: Path


# --------------------------------------------------------------------------------------------------
# Helpers


def _naive(frame: pl.DataFrame, col: str) -> np.ndarray:
    """A UTC datetime column as naive datetime64 (matplotlib's UTC)."""
    return frame.get_column(col).dt.replace_time_zone(None).to_numpy()


def _num(t: datetime) -> float:
    return mdates.date2num(t.astimezone(UTC).replace(tzinfo=None))


def _date_axis(ax: Any, label: str = "Date (UTC)") -> None:
    locator = mdates.AutoDateLocator(minticks=4, maxticks=10)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, show_offset=False))
    ax.set_xlabel(label)


def _thousands(ax: Any, axis: str = "y") -> None:
    fmt = FuncFormatter(lambda v, _p: f"{v:,.0f}")
    (ax.yaxis if axis == "y" else ax.xaxis).set_major_formatter(fmt)


def _plain(v: float, _pos: object = None) -> str:
    """Tick labels as plain numbers (math text is off, so no 10^n)."""
    if v >= 1:
        return f"{v:,.0f}"
    return f"{v:.3g}"


def _compact(v: float, _pos: object = None) -> str:
    """Axis numbers that never run into each other: 150k, 1.2M."""
    if abs(v) >= 1e6:
        return f"{v / 1e6:,.3g}M"
    if abs(v) >= 1e4:
        return f"{v / 1e3:,.0f}k"
    return f"{v:,.4g}"


def _count_norm(peak: float) -> Any:
    """Colours for counts: linear for a few per cell (1, 2, 3 read better than a log scale), else log."""
    from matplotlib.colors import Normalize

    if peak <= 10:
        return Normalize(vmin=0, vmax=max(peak, 2))
    return LogNorm(vmin=1, vmax=peak)


def _plain_colorbar(cb: Any) -> None:
    from matplotlib.ticker import NullFormatter

    cb.ax.yaxis.set_major_formatter(FuncFormatter(_plain))
    cb.ax.yaxis.set_minor_formatter(NullFormatter())


def _bytes_unit(max_bytes: float) -> tuple[float, str]:
    for scale, unit in ((1e9, "GB"), (1e6, "MB"), (1e3, "kB")):
        if max_bytes >= scale:
            return scale, unit
    return 1.0, "bytes"


def _short(text: object, n: int = 48) -> str:
    s = "" if text is None else str(text)
    s = "".join(ch if ch.isprintable() else "?" for ch in s)
    return s if len(s) <= n else s[: n - 1] + "…"


def _save(fig: Figure, path: Path) -> Path:
    tmp = path.with_name(path.stem + ".tmp.png")
    fig.savefig(tmp, dpi=DPI, format="png", metadata={"Software": None})
    tmp.replace(path)
    return path


def _shade_windows(
    ax: Any, windows: list[tuple[datetime, datetime, str, str]], label: bool, whole_days: bool = False
) -> None:
    """Shade each window (exact to the request, or the whole UTC days it touches for per-day bars)."""
    for start, end, colour, name in windows:
        lo, hi = start, end
        if whole_days:
            lo = datetime(start.year, start.month, start.day, tzinfo=UTC)
            hi = datetime(end.year, end.month, end.day, tzinfo=UTC) + timedelta(days=1)
        ax.axvspan(
            _num(lo),
            _num(hi),
            color=colour,
            alpha=0.10,
            lw=0,
            label=f"exfiltration window {name}: {start:%Y-%m-%d %H:%M} → {end:%Y-%m-%d %H:%M} UTC"
            if label
            else None,
            zorder=0,
        )


def _windows(data: ReportData, actors: list[dict[str, Any]]) -> list[tuple[datetime, datetime, str, str]]:
    out = []
    for i, a in enumerate(actors):
        for f in a["findings"]:
            if f["kind"] == "exfiltration_window" and f["start"] and f["end"]:
                out.append((parse_ts(f["start"]), parse_ts(f["end"]), ACTOR_COLOURS[i], a["id"]))
    return out


def _taking_finding(actor: dict[str, Any]) -> dict[str, Any] | None:
    """The finding whose events are the actor's taking: its exfiltration window, else its enumeration."""
    for kind in ("exfiltration_window", "enumeration"):
        for f in actor["findings"]:
            if f["kind"] == kind:
                return f
    return None


def _taking_events(data: ReportData, actor: dict[str, Any]) -> pl.DataFrame:
    frames = [data.finding_events(f) for f in actor["findings"] if f["kind"] == "exfiltration_window"] or [
        data.finding_events(f) for f in actor["findings"] if f["kind"] == "enumeration"
    ][:1]
    if not frames:
        return data.events.head(0)
    return pl.concat(frames).unique(subset=["source_file", "source_line"], maintain_order=True)


def _label(actor: dict[str, Any]) -> str:
    n = len(actor["client_ips"])
    return f"{actor['id']} ({n:,} address{'es' if n != 1 else ''})"


def _endpoint(f: dict[str, Any] | None) -> str:
    if not f:
        return ""
    return _short(f"{f.get('method') or ''} {f.get('endpoint') or ''}".strip(), 60)


def _day_range(data: ReportData) -> tuple[datetime, datetime]:
    lo, hi, _outside = data.charted_period()
    if lo is None or hi is None:
        now = datetime(1970, 1, 1, tzinfo=UTC)
        return now, now + timedelta(days=1)
    lo = datetime(lo.year, lo.month, lo.day, tzinfo=UTC)
    hi = datetime(hi.year, hi.month, hi.day, tzinfo=UTC) + timedelta(days=1)
    return lo, hi


# --------------------------------------------------------------------------------------------------
# Charts


def exfiltration_per_day(data: ReportData, out: Path) -> Chart | None:
    actors = data.main_actors()[:MAX_ACTORS]
    if not actors:
        return None
    lo, hi = _day_range(data)
    days = pl.datetime_range(lo, hi - timedelta(days=1), "1d", eager=True, time_zone="UTC").alias("day")
    grid = days.to_frame()
    taken_rows = []
    series = []
    for a in actors:
        taken_rows.append(_taking_events(data, a).select("source_file", "source_line"))
        series.append(taken_per_day(data, a))
    f0 = _taking_finding(actors[0])
    endpoint = (f0 or {}).get("endpoint")
    taken = pl.concat(taken_rows).unique()
    others = data.events.join(taken, on=["source_file", "source_line"], how="anti")
    other_daily = (
        others.with_columns(
            ok_with_body().alias("_ok"), (pl.col("endpoint_key").cast(pl.String) == endpoint).alias("_ep")
        )
        .group_by(pl.col("ts").dt.truncate("1d").alias("day"))
        .agg(
            pl.col("object_id").filter(pl.col("_ok") & pl.col("_ep")).n_unique().alias("records"),
            pl.col("bytes_out").sum().alias("bytes"),
        )
    )
    other_daily = grid.join(other_daily, on="day", how="left").fill_null(0).sort("day")
    x = mdates.date2num(_naive(grid, "day")) + 0.5  # bar centred on its day
    with mpl.rc_context(RC):
        fig = Figure(figsize=(12, 7.2), layout="constrained")
        ax1, ax2 = fig.subplots(2, 1, sharex=True, height_ratios=[1, 1])
        windows = _windows(data, actors)
        _shade_windows(ax1, windows, label=True, whole_days=True)
        _shade_windows(ax2, windows, label=False, whole_days=True)
        width = 0.8 / len(actors)
        peak_bytes = max(
            [float(s.get_column("bytes").max() or 0) for s in series]
            + [float(other_daily.get_column("bytes").max() or 0)]
        )
        scale, unit = _bytes_unit(peak_bytes)
        for i, (a, s) in enumerate(zip(actors, series, strict=True)):
            offset = (i - (len(actors) - 1) / 2) * width
            total = int(
                sum((g["distinct_objects"] or 0) for g in a["findings"] if g["kind"] == "exfiltration_window")
            )
            ax1.bar(
                x + offset,
                s.get_column("records").to_numpy(),
                width=width,
                color=ACTOR_COLOURS[i],
                label=f"{_label(a)}: {total or int(s.get_column('records').sum()):,} records taken",
                zorder=3,
            )
            ax2.bar(
                x + offset,
                s.get_column("bytes").to_numpy() / scale,
                width=width,
                color=ACTOR_COLOURS[i],
                label=f"{a['id']}: {float(s.get_column('bytes').sum()) / scale:,.1f} {unit} in total",
                zorder=3,
            )
        ax1.step(
            x,
            other_daily.get_column("records").to_numpy(),
            where="mid",
            color=OTHER,
            lw=1.4,
            label="all other clients: records they received from the same endpoint",
            zorder=2,
        )
        ax2.step(
            x,
            other_daily.get_column("bytes").to_numpy() / scale,
            where="mid",
            color=OTHER,
            lw=1.4,
            label="all other traffic (every client, every endpoint)",
            zorder=2,
        )
        ax2.set_yscale("log")
        ax1.set_ylabel("records per day\n(distinct ids returned with data)")
        ax2.set_ylabel(f"{unit} sent per day (log scale)")
        _thousands(ax1)
        ax2.yaxis.set_major_formatter(FuncFormatter(_plain))
        ax1.set_title(f"Records taken per day through {_endpoint(f0)}")
        ax2.set_title("Bytes sent per day: the actor against all other traffic")
        ax1.legend(loc="upper left", ncols=1)
        ax2.legend(loc="upper left", ncols=2)
        ax1.set_ylim(0, max(ax1.get_ylim()[1], 1) * 1.35)  # room for the legend above the bars
        lo_b, hi_b = ax2.get_ylim()
        ax2.set_ylim(lo_b, hi_b * 30)
        ax2.set_xlim(_num(lo), _num(hi))
        _date_axis(ax2)
        fig.suptitle(
            "Exfiltration per day (UTC days; shaded: the days of the exfiltration window)",
            fontsize=14,
            weight="bold",
        )
        path = _save(fig, out / "exfiltration_per_day.png")
    return Chart(
        "exfiltration_per_day",
        "Records and bytes taken per day",
        "Bars: what each actor received per UTC day (top: distinct records returned with data; bottom: bytes, "
        "log scale). Grey: every other client. Shaded: the exfiltration window.",
        path,
    )


def cumulative(data: ReportData, actor: dict[str, Any]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Per hour, the running count of distinct records the actor received with data, and of distinct ids
    it asked for (columns hour, len, cum): each object counts once, at its first request."""
    ev = _taking_events(data, actor).filter(pl.col("object_id").is_not_null())

    def running(frame: pl.DataFrame) -> pl.DataFrame:
        return (
            frame.group_by("object_id")
            .agg(pl.col("ts").min().alias("first"))
            .group_by(pl.col("first").dt.truncate("1h").alias("hour"))
            .len()
            .sort("hour")
            .with_columns(pl.col("len").cum_sum().alias("cum"))
        )

    return running(ev.filter(ok_with_body())), running(ev)


def taken_per_day(data: ReportData, actor: dict[str, Any]) -> pl.DataFrame:
    """Per UTC day (every day of the evidence): distinct records the actor received with data, and bytes."""
    lo, hi = _day_range(data)
    grid = (
        pl.datetime_range(lo, hi - timedelta(days=1), "1d", eager=True, time_zone="UTC")
        .alias("day")
        .to_frame()
    )
    daily = (
        _taking_events(data, actor)
        .with_columns(ok_with_body().alias("_ok"))
        .group_by(pl.col("ts").dt.truncate("1d").alias("day"))
        .agg(
            pl.col("object_id").filter(pl.col("_ok")).n_unique().alias("records"),
            pl.col("bytes_out").sum().alias("bytes"),
        )
    )
    return grid.join(daily, on="day", how="left").fill_null(0).sort("day")


def cumulative_records(data: ReportData, out: Path) -> Chart | None:
    actors = data.main_actors()[:MAX_ACTORS]
    if not actors:
        return None
    lo, hi = _day_range(data)
    with mpl.rc_context(RC):
        fig = Figure(figsize=(12, 5.2), layout="constrained")
        ax = fig.subplots()
        _shade_windows(ax, _windows(data, actors), label=True)
        top = 0
        for i, a in enumerate(actors):
            returned, asked = cumulative(data, a)
            for hourly, style, what in (
                (returned, "-", "records returned with data"),
                (asked, ":", "ids requested"),
            ):
                if hourly.height == 0:
                    continue
                xs = np.concatenate([[_num(lo)], mdates.date2num(_naive(hourly, "hour")), [_num(hi)]])
                ys = np.concatenate(
                    [[0], hourly.get_column("cum").to_numpy(), [hourly.get_column("cum")[-1]]]
                )
                final = int(ys[-1])
                top = max(top, final)
                ax.step(
                    xs,
                    ys,
                    where="post",
                    color=ACTOR_COLOURS[i],
                    ls=style,
                    lw=2.2 if style == "-" else 1.4,
                    label=f"{_label(a)}: {final:,} {what}",
                )
                if style == "-":
                    ax.annotate(
                        f"{final:,} records",
                        xy=(xs[-2], final),
                        xytext=(6, -6),
                        textcoords="offset points",
                        ha="left",
                        va="top",
                        color=ACTOR_COLOURS[i],
                        weight="bold",
                    )
        ax.set_ylim(0, max(top, 1) * 1.25)
        ax.set_xlim(_num(lo), _num(hi))
        ax.set_ylabel("records (distinct ids, cumulative)")
        _thousands(ax)
        _date_axis(ax)
        ax.legend(loc="upper left")
        ax.set_title("Cumulative records exposed (UTC; shaded: the exfiltration window)", fontsize=14)
        path = _save(fig, out / "cumulative_records.png")
    return Chart(
        "cumulative_records",
        "Cumulative records exposed",
        "Distinct records each actor received with data (solid) and distinct ids it asked for (dotted), "
        "accumulated over time.",
        path,
    )


def _robust_range(frame: pl.DataFrame) -> tuple[float, float]:
    """The smallest and largest id within 3 IQRs of the quartiles."""
    q1, q3 = frame.select(
        pl.col("_id").quantile(0.25).alias("q1"), pl.col("_id").quantile(0.75).alias("q3")
    ).row(0)
    iqr = max(q3 - q1, 1.0)
    inside = frame.filter(pl.col("_id").is_between(q1 - 3 * iqr, q3 + 3 * iqr)).get_column("_id")
    return float(inside.min()), float(inside.max())


def _numeric_ids() -> pl.Expr:
    """Object ids as numbers (ids that are not numbers are left out of the id walk)."""
    return pl.col("object_id").cast(pl.Int64, strict=False)


def _hist2d(frame: pl.DataFrame, t0: float, t1: float, y0: float, y1: float, nx: int, ny: int) -> np.ndarray:
    """Counts of (time, id) in an ny × nx grid, computed in polars."""
    if frame.height == 0:
        return np.zeros((ny, nx))
    t = pl.col("ts").dt.replace_time_zone(None).dt.epoch("us").cast(pl.Float64) / 86_400e6 + mdates.date2num(
        np.datetime64("1970-01-01T00:00:00")
    )
    binned = (
        frame.select(
            ((t - t0) / (t1 - t0) * nx).floor().cast(pl.Int64).alias("bx"),
            ((pl.col("_id").cast(pl.Float64) - y0) / (y1 - y0) * ny).floor().cast(pl.Int64).alias("by"),
        )
        .filter(pl.col("bx").is_between(0, nx - 1) & pl.col("by").is_between(0, ny - 1))
        .group_by("bx", "by")
        .len()
    )
    grid = np.zeros((ny, nx))
    grid[binned.get_column("by").to_numpy(), binned.get_column("bx").to_numpy()] = binned.get_column(
        "len"
    ).to_numpy()
    return grid


def id_walk(data: ReportData, out: Path, index: int, actor: dict[str, Any]) -> Chart | None:
    f = _taking_finding(actor)
    if f is None:
        return None
    mine = (
        _taking_events(data, actor)
        .with_columns(_numeric_ids().alias("_id"))
        .filter(pl.col("_id").is_not_null())
    )
    if mine.height == 0:
        return None
    endpoint_ids = mine.get_column("endpoint_key").cast(pl.String).unique().to_list()
    taken = mine.select("source_file", "source_line")
    others = (
        data.events.filter(
            pl.col("endpoint_key").cast(pl.String).is_in(endpoint_ids)
            & (pl.col("method").cast(pl.String) == (f.get("method") or ""))
        )
        .join(taken, on=["source_file", "source_line"], how="anti")
        .with_columns(_numeric_ids().alias("_id"))
        .filter(pl.col("_id").is_not_null())
    )
    # The id axis: everyone's ids within 3 IQRs of the quartiles (a scanner probing id 1 would squash the
    # whole space into a line), and the actor's own ids likewise.
    both = pl.concat([mine.select("_id"), others.select("_id")])
    y0, y1 = _robust_range(both)
    m0, m1 = _robust_range(mine.select("_id"))
    y0, y1 = min(y0, m0), max(y1, m1)
    if y1 <= y0:
        y1 = y0 + 1
    pad = (y1 - y0) * 0.03
    y0, y1 = y0 - pad, y1 + pad
    hidden = both.filter((pl.col("_id") < y0) | (pl.col("_id") > y1)).height
    lo, hi = _day_range(data)
    t0, t1 = _num(lo), _num(hi)
    colour = ACTOR_COLOURS[index]
    addresses = mine.get_column("client").cast(pl.String).unique().sort().to_list()
    per_address = len(addresses) <= MAX_ADDRESS_COLOURS and mine.height <= MAX_SCATTER_POINTS * len(addresses)
    ws, we = parse_ts(f["start"]), parse_ts(f["end"])
    with mpl.rc_context(RC):
        fig = Figure(figsize=(12, 6.4), layout="constrained")
        ax_all, ax_zoom = fig.subplots(1, 2, width_ratios=[1.25, 1])
        # Zoom: the actor's own id range and window.
        z_y0, z_y1 = m0, m1
        z_pad = max((z_y1 - z_y0) * 0.05, 1)
        z_t0 = _num(ws) - 1 if ws else t0
        z_t1 = _num(we) + 1 if we else t1
        for ax, (a0, a1, b0, b1), title in (
            (
                ax_all,
                (t0, t1, y0, y1),
                "All requests to the endpoint"
                + (f" ({hidden:,} with outlying ids not shown)" if hidden else ""),
            ),
            (ax_zoom, (z_t0, z_t1, z_y0 - z_pad, z_y1 + z_pad), f"Zoom: {actor['id']}'s id range and window"),
        ):
            nx, ny = 240, 160
            bg = _hist2d(others, a0, a1, b0, b1, nx, ny)
            extent = (a0, a1, b0, b1)
            if bg.any():
                ax.imshow(
                    np.ma.masked_equal(bg, 0),
                    origin="lower",
                    aspect="auto",
                    extent=extent,
                    cmap="Greys",
                    norm=LogNorm(vmin=1, vmax=max(bg.max(), 2)),
                    alpha=0.75,
                    interpolation="nearest",
                    zorder=1,
                )
            if per_address:
                tab = mpl.colormaps["tab10"]
                palette = [colour] + [tab(k) for k in (0, 1, 2, 4, 5, 6, 8, 9)]  # no red, no grey
                for k, ip in enumerate(addresses):
                    pts = mine.filter(pl.col("client").cast(pl.String) == ip)
                    ax.scatter(
                        mdates.date2num(_naive(pts, "ts")),
                        pts.get_column("_id").to_numpy(),
                        s=6,
                        color=palette[k % len(palette)],
                        label=_short(ip, 40) if ax is ax_all else None,
                        zorder=3,
                        linewidths=0,
                    )
            else:
                fg = _hist2d(mine, a0, a1, b0, b1, nx, ny)
                im = ax.imshow(
                    np.ma.masked_equal(fg, 0),
                    origin="lower",
                    aspect="auto",
                    extent=extent,
                    cmap="Reds",
                    norm=_count_norm(fg.max()),
                    interpolation="nearest",
                    zorder=2,
                )
                if ax is ax_zoom:
                    cb = fig.colorbar(im, ax=ax, pad=0.01)
                    cb.set_label(f"{actor['id']} requests per cell")
                    _plain_colorbar(cb)
                    if fg.max() <= 10:
                        cb.ax.yaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_xlim(a0, a1)
            ax.set_ylim(b0, b1)
            ax.set_title(title)
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _p: f"{v:,.0f}"))
            ax.yaxis.set_major_locator(MaxNLocator(8))
            _date_axis(ax)
        ax_all.set_ylabel("object id (from the request path)")
        from matplotlib.patches import Patch

        handles, labels = ax_all.get_legend_handles_labels()
        handles.append(Patch(color="#9a9a9a", label="every other client (density)"))
        if not per_address:
            handles.append(Patch(color=colour, label=f"{_label(actor)} (density)"))
        ax_all.legend(handles=handles, loc="upper left", ncols=2 if per_address else 1, markerscale=2.5)
        fig.suptitle(
            f"Id walk of {_label(actor)} on {_endpoint(f)}",
            fontsize=14,
            weight="bold",
        )
        path = _save(fig, out / f"id_walk_{actor['id']}.png")
    return Chart(
        f"id_walk_{actor['id']}",
        f"Id walk of {actor['id']}",
        "Each request's object id against its time. Enumeration shows as a dense band or diagonal that "
        "ordinary clients (grey) never draw. Right: the actor's own id range during its window.",
        path,
    )


def top_clients(data: ReportData, out: Path, n: int = 15) -> Chart | None:
    ev = data.events
    if ev.height == 0:
        return None
    actor_of: dict[str, str] = {}
    colour_of: dict[str, str] = {}
    main = data.main_actors()
    for i, a in enumerate(main[:MAX_ACTORS]):
        colour_of[a["id"]] = ACTOR_COLOURS[i]
    for a in data.actors():
        for ip in a["client_ips"]:
            actor_of.setdefault(ip, a["id"])
        colour_of.setdefault(a["id"], SCAN)
    cleared = {ip: c["actor"]["id"] for c in data.doc.get("cleared", []) for ip in c["actor"]["client_ips"]}
    per_client = ev.group_by(pl.col("client").cast(pl.String)).agg(
        pl.len().alias("requests"), pl.col("bytes_out").sum().alias("bytes")
    )
    mapping = pl.DataFrame(
        {"client": list(actor_of), "actor": list(actor_of.values())},
        schema={"client": pl.String, "actor": pl.String},
    )
    grouped = (
        per_client.join(mapping, on="client", how="left")
        .with_columns(pl.coalesce("actor", "client").alias("who"))
        .group_by("who")
        .agg(
            pl.col("requests").sum(),
            pl.col("bytes").sum(),
            pl.len().alias("addresses"),
            pl.col("requests").max().alias("largest"),
            pl.col("actor").first(),
        )
        .sort(["requests", "who"], descending=[True, False])
        .head(n)
    )
    rows = grouped.to_dicts()[::-1]  # largest at the top
    labels, colours = [], []
    for r in rows:
        if r["actor"]:
            extra = f": {r['addresses']:,} addresses combined" if r["addresses"] > 1 else ": 1 address"
            labels.append(f"{r['actor']} (flagged){extra}")
            colours.append(colour_of.get(r["actor"], SCAN))
        else:
            tag = f" (cleared, {cleared[r['who']]})" if r["who"] in cleared else ""
            labels.append(_short(r["who"], 40) + tag)
            colours.append(OTHER)
    y = np.arange(len(rows))
    req = np.array([r["requests"] for r in rows], dtype=float)
    byt = np.array([r["bytes"] or 0 for r in rows], dtype=float)
    scale, unit = _bytes_unit(float(byt.max() if len(byt) else 0))
    with mpl.rc_context(RC):
        fig = Figure(figsize=(12, 0.42 * len(rows) + 2.2), layout="constrained")
        ax1, ax2 = fig.subplots(1, 2, sharey=True, width_ratios=[1.2, 1])
        ax1.barh(y, req, color=colours, zorder=3)
        ax2.barh(y, byt / scale, color=colours, zorder=3)
        multi = [
            (yi, r["largest"]) for yi, r in zip(y, rows, strict=True) if r["actor"] and r["addresses"] > 1
        ]
        if multi:
            ax1.scatter(
                [m[1] for m in multi],
                [m[0] for m in multi],
                marker="|",
                s=260,
                linewidths=2.2,
                color="black",
                zorder=4,
                label="the actor's busiest single address",
            )
        for ax, vals, fmt in ((ax1, req, "{:,.0f}"), (ax2, byt / scale, "{:,.1f}")):
            for yi, v in zip(y, vals, strict=True):
                ax.annotate(
                    fmt.format(v), (v, yi), xytext=(3, 0), textcoords="offset points", va="center", fontsize=8
                )
            ax.set_xlim(0, (vals.max() if len(vals) else 1) * 1.18)
            ax.grid(axis="y", visible=False)
        ax1.set_yticks(y, labels)
        ax1.set_xlabel("requests (whole evidence, de-duplicated)")
        ax2.set_xlabel(f"{unit} sent")
        for ax in (ax1, ax2):
            ax.xaxis.set_major_locator(MaxNLocator(5))
            ax.xaxis.set_major_formatter(FuncFormatter(_compact))
        from matplotlib.patches import Patch

        shown = {r["actor"] for r in rows if r["actor"]}
        legend = [
            Patch(color=colour_of[a["id"]], label=f"{_label(a)}: addresses combined")
            for a in main[:MAX_ACTORS]
            if a["id"] in shown
        ]
        if any(colour_of.get(a) == SCAN for a in shown):
            legend.append(Patch(color=SCAN, label="other flagged actor"))
        legend.append(Patch(color=OTHER, label="other client (one address)"))
        if multi:
            from matplotlib.lines import Line2D

            legend.append(
                Line2D(
                    [],
                    [],
                    marker="|",
                    ls="",
                    ms=14,
                    mew=2.2,
                    color="black",
                    label="busiest single address of the actor",
                )
            )
        ax2.legend(handles=legend, loc="lower right")
        ax1.set_title("By requests")
        ax2.set_title("By bytes")
        fig.suptitle(
            f"Top {len(rows)} clients by volume (a linked actor's addresses combined into one bar)",
            fontsize=14,
            weight="bold",
        )
        path = _save(fig, out / "top_clients.png")
    return Chart(
        "top_clients",
        "Top clients by volume",
        "The heaviest clients over the whole evidence. A flagged actor's addresses are combined into one bar "
        "(coloured); single addresses are grey, those examined and cleared are marked.",
        path,
    )


def activity_heatmap(data: ReportData, out: Path, index: int, actor: dict[str, Any]) -> Chart | None:
    ev = data.actor_events(actor)
    if ev.height == 0:
        return None
    lo, hi = _day_range(data)
    n_days = (hi - lo).days
    cells = ev.group_by(
        ((pl.col("ts") - lo).dt.total_days()).cast(pl.Int64).alias("d"), pl.col("ts").dt.hour().alias("h")
    ).len()
    grid = np.zeros((24, n_days))
    grid[cells.get_column("h").to_numpy(), cells.get_column("d").clip(0, n_days - 1).to_numpy()] = (
        cells.get_column("len").to_numpy()
    )
    f = _taking_finding(actor)
    with mpl.rc_context(RC):
        fig = Figure(figsize=(12, 5.2), layout="constrained")
        ax = fig.subplots()
        cmap = mpl.colormaps["YlOrRd"].with_extremes(bad="#f4f6f7")
        im = ax.imshow(
            np.ma.masked_equal(grid, 0),
            origin="lower",
            aspect="auto",
            extent=(_num(lo), _num(hi), 0, 24),
            cmap=cmap,
            vmin=1,
            vmax=max(grid.max(), 2),
            interpolation="nearest",
        )
        if f and f["start"] and f["end"]:
            for t in (parse_ts(f["start"]), parse_ts(f["end"])):
                ax.axvline(_num(t), color="#2c3e50", lw=1.2, ls="--")
        cb = fig.colorbar(im, ax=ax, pad=0.01)
        cb.set_label("requests in the hour")
        cb.ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_yticks([h + 0.5 for h in range(0, 24, 3)], [f"{h:02d}:00" for h in range(0, 24, 3)])
        ax.set_ylabel("hour of day (UTC)")
        ax.grid(False)
        _date_axis(ax)
        active = grid[grid > 0]
        ax.set_title(
            f"Activity of {_label(actor)}: requests per hour, every endpoint"
            + (" (dashed: start and end of the window)" if f and f["kind"] == "exfiltration_window" else ""),
            fontsize=13,
            pad=20,
        )
        ax.text(
            0.005,
            1.005,
            f"{int(active.size):,} active hours on {int((grid.sum(axis=0) > 0).sum())} days; median "
            f"{float(np.median(active)):,.0f} requests per active hour; busiest hour {int(active.max()):,}",
            transform=ax.transAxes,
            fontsize=9,
            color="#5d6d7e",
            va="bottom",
        )
        path = _save(fig, out / f"activity_{actor['id']}.png")
    return Chart(
        f"activity_{actor['id']}",
        f"Hour-by-day activity of {actor['id']}",
        "Requests of all the actor's addresses per hour of the day (UTC) and day: working hours, pauses and "
        "the start and end of the operation.",
        path,
    )


def coverage(data: ReportData, out: Path) -> Chart | None:
    hourly = data.hourly
    if hourly.height == 0:
        return None
    lo, hi = _day_range(data)
    first_hour = min(lo, hourly.get_column("hour").min())
    last_hour = max(hi, hourly.get_column("hour").max() + timedelta(hours=1))
    n_hours = int((last_hour - first_hour).total_seconds() // 3600)
    # Bins of whole hours, at most ~1 bin per pixel column, so no hour is dropped by resampling.
    bin_h = max(1, -(-n_hours // 900))
    n = -(-n_hours // bin_h)
    obs = data.observers.to_dicts()
    grid = np.zeros((len(obs), n))
    for i, o in enumerate(obs):
        sub = hourly.filter(
            (pl.col("observer") == o["observer"]) & (pl.col("source_format") == o["source_format"])
        )
        idx = (((sub.get_column("hour") - first_hour).dt.total_hours()) // bin_h).to_numpy().astype(int)
        np.add.at(grid[i], np.clip(idx, 0, n - 1), sub.get_column("events").to_numpy() / bin_h)
    gaps = data.coverage_gaps()
    labels = [
        f"{o['source_format']}: {_short(o['observer'], 32)}\n{o['events']:,} events"
        + (", reference" if o["role"] == "reference" else "")
        for o in obs
    ]
    with mpl.rc_context(RC):
        fig = Figure(figsize=(12, max(3.8, 0.62 * len(obs) + 2.4)), layout="constrained")
        ax = fig.subplots()
        cmap = mpl.colormaps["viridis"].with_extremes(bad="#ffffff")
        im = ax.imshow(
            np.ma.masked_equal(grid, 0),
            aspect="auto",
            extent=(_num(first_hour), _num(first_hour + timedelta(hours=n * bin_h)), len(obs) - 0.5, -0.5),
            cmap=cmap,
            norm=LogNorm(vmin=max(min(grid[grid > 0].min(initial=1), 1), 0.1), vmax=max(grid.max(), 2)),
            interpolation="nearest",
        )
        ax.set_facecolor("#ffffff")
        for g in gaps.iter_rows(named=True):
            row = next(
                i
                for i, o in enumerate(obs)
                if o["observer"] == g["observer"] and o["source_format"] == g["source_format"]
            )
            ax.add_patch(
                mpl.patches.Rectangle(
                    (_num(g["start"]), row - 0.48),
                    max(_num(g["end"]) - _num(g["start"]), bin_h / 24),
                    0.96,
                    fill=False,
                    edgecolor="#c0392b",
                    lw=1.8,
                    zorder=4,
                )
            )
        ax.set_yticks(range(len(obs)), labels)
        for i in range(1, len(obs)):
            ax.axhline(i - 0.5, color="#d5d8dc", lw=0.8)
        ax.grid(False)
        ax.set_xlim(_num(first_hour), _num(last_hour))
        _date_axis(ax)
        cb = fig.colorbar(im, ax=ax, pad=0.01, fraction=0.03)
        cb.set_label("events per hour (log scale)")
        _plain_colorbar(cb)
        # A source with a handful of busy hours (a reference capture) would be a hairline: mark them.
        for i in range(len(obs)):
            busy = np.flatnonzero(grid[i])
            if 0 < len(busy) <= 30:
                xs = _num(first_hour) + (busy + 0.5) * bin_h / 24
                ax.scatter(xs, np.full(len(busy), i), marker="v", s=70, color="#1f618d", zorder=5)
        resolution = "hour" if bin_h == 1 else f"{bin_h} hours"
        ax.set_xlabel(f"Date (UTC); one column = {resolution}")
        title = "Evidence coverage per source: events per hour (white: nothing logged"
        n_gaps = gaps.height
        title += (
            f"; red: {n_gaps} coverage gap{'s' if n_gaps != 1 else ''})" if n_gaps else "; no coverage gaps)"
        )
        ax.set_title(title, fontsize=13)
        path = _save(fig, out / "coverage.png")
    return Chart(
        "coverage",
        "Evidence coverage per source",
        "Events per hour logged by each source and observer over the whole evidence (all events, before "
        "de-duplication). White hours logged nothing; red boxes are gaps where plenty was expected.",
        path,
    )


# --------------------------------------------------------------------------------------------------
def draw_all(data: ReportData, out_dir: Path) -> list[Chart]:
    """Every chart of the case into ``out_dir`` (created), in report order."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob("*.png"):  # a previous run's charts of actors that no longer exist
        old.unlink()
    steps: list[Callable[[], Chart | None]] = [
        lambda: exfiltration_per_day(data, out_dir),
        lambda: cumulative_records(data, out_dir),
    ]
    actors = data.main_actors()[:MAX_ACTORS]
    for i, a in enumerate(actors):
        steps.append(lambda i=i, a=a: id_walk(data, out_dir, i, a))
    steps.append(lambda: top_clients(data, out_dir))
    for i, a in enumerate(actors):
        steps.append(lambda i=i, a=a: activity_heatmap(data, out_dir, i, a))
    steps.append(lambda: coverage(data, out_dir))
    return [c for c in (step() for step in steps) if c is not None]
