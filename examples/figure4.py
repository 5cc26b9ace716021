"""Redraw Figure 4 of Canfil (2018), "Dynamic Arms Control", beside a consistent version.

Each panel shows the strictness a party needs, gamma*, against the discount
factor delta (x) and the persistence p of its defection value (y). The regime
value is z(gamma) = gamma, so gamma* equals the compliance threshold itself.
Where the threshold exceeds 1, no strictness in [0, 1] makes compliance
self-enforcing, and the panel hatches that region.

Left: the threshold printed in the paper, ``b (2 - 2 delta + p) / (2 - delta)``.
Right: the permanent reading, ``b (2 - 2 delta + p delta)``, which counts the
current period once.

Usage::

    python examples/figure4.py [OUTPUT.png] [--b 0.75]
"""

from __future__ import annotations

import argparse

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from engine.closed_forms import permanent_threshold, printed_threshold

# b = 0.75 puts both panels' no-agreement regions inside the plotted square:
# the printed threshold peaks at 1.5 b = 1.125 (delta = 0, p = 1) and the
# permanent one at 2 b = 1.5 (delta = 0).
DEFAULT_B = 0.75
DELTA_MAX = 0.99
GRID_POINTS = 200


def threshold_grids(b: float) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Return the delta and p grids and each formula's threshold on them."""
    delta, persistence = np.meshgrid(
        np.linspace(0.0, DELTA_MAX, GRID_POINTS), np.linspace(0.0, 1.0, GRID_POINTS)
    )
    thresholds = {
        "Printed formula (Canfil 2018)": printed_threshold(b, delta, persistence),
        "Permanent reading (consistent)": permanent_threshold(b, delta, persistence),
    }
    return delta, persistence, thresholds


def draw_figure(b: float) -> Figure:
    """Draw the two panels side by side on one figure."""
    delta, persistence, thresholds = threshold_grids(b)
    figure = Figure(figsize=(11, 4.8), layout="constrained")
    FigureCanvasAgg(figure)
    panels = figure.subplots(1, 2, sharey=True)
    levels = np.linspace(0.0, 1.0, 11)

    for axes, (title, threshold) in zip(panels, thresholds.items()):
        # Darker means stricter terms, as in the original figure.
        reachable = np.ma.masked_greater(threshold, 1.0)
        filled = axes.contourf(delta, persistence, reachable, levels=levels, cmap="viridis_r")
        axes.contourf(
            delta,
            persistence,
            (threshold > 1.0).astype(float),
            levels=[0.5, 1.5],
            colors=["#d9d9d9"],
            hatches=["//"],
        )
        axes.contour(delta, persistence, threshold, levels=[1.0], colors="black", linewidths=1)

        axes.set_title(title)
        axes.set_xlabel(r"discount factor $\delta$")

    panels[0].set_ylabel(r"persistence $p$ of the defection value")
    figure.colorbar(filled, ax=panels, label=r"strictness needed, $\gamma^*$ (with $z(\gamma) = \gamma$)")
    panels[1].legend(
        handles=[Patch(facecolor="#d9d9d9", hatch="//", edgecolor="0.5", label=r"no $\gamma \leq 1$ suffices")],
        loc="upper right",
    )
    figure.suptitle(f"Terms against urgency and expectations, $b$ = {b:g}")
    return figure


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", nargs="?", default="figure4.png", help="PNG file to write")
    parser.add_argument(
        "--b", type=float, default=DEFAULT_B, help=f"defection value b (default {DEFAULT_B})"
    )
    args = parser.parse_args(argv)
    if args.b < 0:
        parser.error(f"--b must be >= 0, got {args.b}")

    draw_figure(args.b).savefig(args.output, dpi=120)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
