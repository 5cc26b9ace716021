"""Plots of sweep results (needs the optional ``plot`` extra, matplotlib).

A 2-D sweep is drawn as a filled contour of the terms over the grid, with the
points that reach no agreement as a hatched grey region. A 1-D sweep is drawn
as the terms against x with the zone of agreement as a band. Invalid, failed
and unconverged points are marked, never left blank. With a second design,
triangles mark the points where only one of the two reaches agreement. In
2-D the contour and the hatched region are the first design's and a dashed
line is the edge of the second's agreement. In 1-D both designs get a line
and a band, and only the points where neither agrees are hatched.

The figures are built on ``matplotlib.figure.Figure`` with the Agg canvas, so
plotting never opens a window and needs no display.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from engine.output_files import write_atomically
from engine.sweep_results import SweepResult

NO_AGREEMENT_LABEL = "no agreement"
NO_AGREEMENT_COLOR = "#d9d9d9"
NO_AGREEMENT_HATCH = "//"
TERMS_CMAP = "viridis"
# Smallest range of strictness that the colour bar of the terms spans.
MIN_TERMS_SPAN = 0.02

# Status -> (marker, colour, legend label) for points without a usable score.
STATUS_MARKERS = {
    "invalid": ("x", "tab:red", "invalid values"),
    "failed": ("s", "black", "solver failed"),
    "unconverged": ("d", "tab:orange", "solver did not converge"),
}


def plot_sweep(result: SweepResult, path: str | Path, compare: SweepResult | None = None) -> None:
    """Draw ``result`` (and ``compare`` over it) and save it to ``path``.

    The format follows the suffix of ``path`` (``.png`` or ``.svg``). The
    image goes to a temporary file that replaces ``path`` only when complete,
    so a failed write (``OSError``) leaves an earlier file of that name as it was.
    """
    figure = draw_sweep(result, compare)

    # The temporary file's name ends in ".partial", from which matplotlib could
    # not infer the format.
    image_format = Path(path).suffix.lstrip(".").lower() or None
    write_atomically(
        path, lambda stream: figure.savefig(stream, format=image_format, dpi=120), binary=True
    )


def draw_sweep(result: SweepResult, compare: SweepResult | None = None) -> Figure:
    """Return the figure for a 1-D or 2-D sweep without saving it."""
    figure = Figure(figsize=(7.5, 6.0), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()

    if len(result.axes) == 2:
        handles = _draw_2d(figure, axes, result, compare)
    else:
        handles = _draw_1d(axes, result, compare)

    title = _design_name(result)
    if result.formula != "engine":
        title += f" ({result.formula} closed form)"
    if compare is not None:
        title += f" against {_design_name(compare)}"
    axes.set_title(title)

    if handles:
        axes.legend(
            handles=handles,
            loc="upper center",
            bbox_to_anchor=(0.5, -0.12),
            ncol=2,
            frameon=False,
        )
    return figure


def _design_name(result: SweepResult) -> str:
    return Path(result.filename).name


def _draw_2d(figure: Figure, axes, result: SweepResult, compare: SweepResult | None) -> list:
    x_axis, y_axis = result.axes
    x_grid, y_grid = np.meshgrid(x_axis.values, y_axis.values)
    handles = []

    terms = np.ma.masked_invalid(result.grid("terms"))
    if terms.count() > 0:
        low, high = float(terms.min()), float(terms.max())
        if high - low < MIN_TERMS_SPAN:
            # Nearly constant terms (symmetric parties, say) still need a
            # range of levels; widen it around the middle.
            middle = 0.5 * (low + high)
            low, high = middle - MIN_TERMS_SPAN / 2, middle + MIN_TERMS_SPAN / 2
        levels = MaxNLocator(nbins=10).tick_values(low, high)
        filled = axes.contourf(x_grid, y_grid, terms, levels=levels, cmap=TERMS_CMAP)
        figure.colorbar(filled, ax=axes, label="terms (strictness)")

    no_agreement = _no_agreement_mask(result).reshape(x_grid.shape)
    if no_agreement.any():
        # A level just above 0 puts the edge of the hatched region next to the
        # outermost agreeing points, where the filled terms contour ends, so no
        # blank strip is left between the two.
        axes.contourf(
            x_grid,
            y_grid,
            no_agreement.astype(float),
            levels=[0.01, 1.5],
            colors=[NO_AGREEMENT_COLOR],
            hatches=[NO_AGREEMENT_HATCH],
        )
        label = NO_AGREEMENT_LABEL
        if compare is not None:
            label = f"{NO_AGREEMENT_LABEL} under {_design_name(result)}"
        handles.append(_no_agreement_patch(label))

    comparing = compare is not None
    handles.extend(
        _mark_statuses(axes, result, x_grid.ravel(), y_grid.ravel(), comparing=comparing)
    )

    if compare is not None:
        handles.extend(
            _mark_statuses(axes, compare, x_grid.ravel(), y_grid.ravel(), second=True)
        )
        handles.extend(_mark_differences(axes, result, compare, x_grid.ravel(), y_grid.ravel()))
        other = compare.agreement().reshape(x_grid.shape).astype(float)
        if 0 < other.sum() < other.size:
            axes.contour(x_grid, y_grid, other, levels=[0.5], colors="black", linestyles="--")
            handles.append(
                Line2D([], [], color="black", linestyle="--",
                       label=f"{_design_name(compare)}: edge of agreement")
            )

    axes.set_xlabel(x_axis.path)
    axes.set_ylabel(y_axis.path)
    axes.set_xlim(x_axis.values.min(), x_axis.values.max())
    axes.set_ylim(y_axis.values.min(), y_axis.values.max())
    return handles


def _draw_1d(axes, result: SweepResult, compare: SweepResult | None) -> list:
    x_values = result.axes[0].values
    handles = []

    designs = [(result, "tab:blue", "-")]
    if compare is not None:
        designs.append((compare, "tab:orange", "--"))

    for design, color, style in designs:
        name = _design_name(design) if compare is not None else ""
        agrees = design.agreement()
        low = np.nan_to_num(design.column("zone_low"))
        high = np.nan_to_num(design.column("zone_high"))
        band = axes.fill_between(
            x_values, low, high, where=agrees, color=color, alpha=0.25, linewidth=0,
            label=f"zone of agreement {name}".strip(),
        )
        # A band has no width at an isolated agreeing point, so a vertical
        # line also shows the zone at every agreeing point.
        axes.vlines(x_values[agrees], low[agrees], high[agrees], color=color, alpha=0.6)
        (line,) = axes.plot(
            x_values, design.column("terms"), color=color, linestyle=style, marker="o",
            markersize=4, label=f"terms {name}".strip(),
        )
        if agrees.any():
            handles.extend([line, band])

    # Each run of no-agreement points is shaded up to halfway to its neighbours.
    # With a second design, only the points where neither design agrees are shaded.
    no_agreement = _no_agreement_mask(result)
    if compare is not None:
        no_agreement &= _no_agreement_mask(compare)
    if no_agreement.any():
        edges = _midpoints(x_values)
        for start, stop in _runs(no_agreement):
            axes.axvspan(
                edges[start], edges[stop + 1], facecolor=NO_AGREEMENT_COLOR,
                hatch=NO_AGREEMENT_HATCH, edgecolor="0.5", linewidth=0, zorder=0,
            )
        label = NO_AGREEMENT_LABEL if compare is None else f"{NO_AGREEMENT_LABEL} under either"
        handles.append(_no_agreement_patch(label))

    # Unscored points sit on the x axis, where they cannot hide behind a band.
    bottom = np.zeros_like(x_values)
    handles.extend(
        _mark_statuses(axes, result, x_values, bottom, on_axis=True, comparing=compare is not None)
    )
    if compare is not None:
        handles.extend(_mark_statuses(axes, compare, x_values, bottom, on_axis=True, second=True))
        top = np.ones_like(x_values)
        handles.extend(_mark_differences(axes, result, compare, x_values, top, on_axis=True))

    axes.set_xlabel(result.axes[0].path)
    axes.set_ylabel("strictness (terms and zone)")
    axes.set_ylim(-0.02, 1.02)
    axes.set_xlim(x_values.min(), x_values.max())
    return handles


def _no_agreement_mask(result: SweepResult) -> np.ndarray:
    """True where the point was scored and reaches no agreement."""
    return (result.statuses() == "ok") & ~result.agreement()


def _no_agreement_patch(label: str = NO_AGREEMENT_LABEL) -> Patch:
    return Patch(
        facecolor=NO_AGREEMENT_COLOR, hatch=NO_AGREEMENT_HATCH, edgecolor="0.5", label=label
    )


def _mark_statuses(
    axes,
    result,
    x_points,
    y_points,
    on_axis: bool = False,
    comparing: bool = False,
    second: bool = False,
) -> list:
    """Scatter a marker on every unscored point; return the legend handles.

    In a comparison the labels name the design, and the second design's
    markers are grey so that they are not taken for the first design's.
    """
    statuses = result.statuses()
    transform = axes.get_xaxis_transform() if on_axis else axes.transData
    handles = []
    for status, (marker, color, label) in STATUS_MARKERS.items():
        chosen = statuses == status
        if comparing or second:
            label = f"{label} ({_design_name(result)})"
        if second:
            color = "0.45"
        if chosen.any():
            handles.append(
                axes.scatter(
                    x_points[chosen], y_points[chosen], marker=marker, color=color,
                    transform=transform, clip_on=False, zorder=5, label=label,
                )
            )
    return handles


def _mark_differences(axes, result, compare, x_points, y_points, on_axis: bool = False) -> list:
    """Mark the points, scored under both designs, where exactly one reaches agreement."""
    scored = (result.statuses() == "ok") & (compare.statuses() == "ok")
    first = result.agreement() & scored
    second = compare.agreement() & scored
    transform = axes.get_xaxis_transform() if on_axis else axes.transData
    handles = []
    for chosen, marker, name in (
        (first & ~second, "^", _design_name(result)),
        (second & ~first, "v", _design_name(compare)),
    ):
        if chosen.any():
            handles.append(
                axes.scatter(
                    x_points[chosen], y_points[chosen], marker=marker, facecolor="white",
                    edgecolor="black", transform=transform, clip_on=False, zorder=6,
                    label=f"agreement only under {name}",
                )
            )
    return handles


def _midpoints(values: np.ndarray) -> np.ndarray:
    """Return cell edges around each grid value: midpoints, plus the two ends."""
    inner = 0.5 * (values[:-1] + values[1:])
    return np.concatenate([[values[0]], inner, [values[-1]]])


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Return (first, last) index pairs of each run of True values."""
    runs = []
    start = None
    for index, flag in enumerate(mask):
        if flag and start is None:
            start = index
        if not flag and start is not None:
            runs.append((start, index - 1))
            start = None
    if start is not None:
        runs.append((start, len(mask) - 1))
    return runs
