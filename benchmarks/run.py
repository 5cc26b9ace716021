"""Time the engine on fixed workloads and print markdown tables.

Usage: ``python benchmarks/run.py [--quick] [--repeat K] [--sweep-workers N] [--out FILE]``.

Workloads: W1 a rigid two-party treaty with one state, scored; W2
``treaties/cyber-flexible.yaml`` scored; W3 a persistence x discount sweep of
W1's parties in two states, scored point by point in this process and then
whole in worker processes as ``treaty sweep`` runs it; W4 simulation; W5 every
file in ``treaties/`` scored.  W1, the engine's side of each ratio and the
rigid scaling tables are the best of ``--repeat`` runs of
``time.perf_counter``; W2 to W5, the reference solver and the table of W2's
treaty against its period run once.  ``--quick`` shrinks the point-by-point
W3 grid and the scaling tables; the whole W3 sweep in worker processes
(``--sweep-workers 0`` skips it) and the reference on W2 still run, and they
take most of the time.  The ratio table compares the engine's grid solve with
the plain-loop reference's (``engine.reference``) on W1, ``treaties/inf.yaml``
and W2, each at the treaty's own grid.  The reference runs once, and on W2 it
takes minutes.  The scaling tables time the grid solve of rigid treaties
against states, parties, period and grid points, and of W2's treaty against
its period (6 months, 3 months and, without ``--quick``, 1 month, run once
each).  Memory is the process's maximum resident set size so far
(``resource.getrusage``). It never goes down, so it bounds each workload
from above.  With ``--tracemalloc`` memory is instead the ``tracemalloc`` peak
of one extra run, which counts Python and numpy allocations only and slows that
run down several times.  A machine check at the start and at the end times a
pure-Python loop and a numpy loop that do not depend on the engine, so that
runs on different days, or a machine that slows down during a run, can be
compared.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import resource
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.build import build_game  # noqa: E402
from engine.loader import load_treaty, parse_treaty_text  # noqa: E402
from engine.reference import solve_reference  # noqa: E402
from engine.score import score_game  # noqa: E402
from engine.solve import Solver  # noqa: E402
from engine.sweep import SweepError, check_output_path, run_sweep  # noqa: E402

W1_TEXT = """
schema: treaty/v1
name: rigid two-party folk-bound treaty
parties:
  - {name: A, discount: 0.9, defection_value: 0.3, regime_value: [[0, 0.2], [1, 0.8]]}
  - {name: B, discount: 0.9, defection_value: 0.3, regime_value: [[0, 0.8], [1, 0.2]]}
"""


def sized_text(states: int = 1, parties: int = 2, period: str = "1 year", grid: int = 101,
               persistence: float = 0.8, discount: float = 0.9) -> str:
    """Write a rigid treaty of the given size, where the defection value rises with the state index."""
    lines = ["schema: treaty/v1", "name: scaling", f"period: {period}"]
    if states > 1:
        lines += ["environment:", "  start: s0", f"  persistence: {persistence}", "  states:"]
        lines += [f"    s{k}: {1.0 / states}" for k in range(states)]
    lines.append("parties:")
    for i in range(parties):
        if states > 1:
            values = ", ".join(f"s{k}: {0.2 + 0.3 * k / (states - 1):.4f}" for k in range(states))
            defection = "{" + values + "}"
        else:
            defection = "0.3"
        rising = i % 2 == 0
        curve = "[[0, 0.2], [1, 0.8]]" if rising else "[[0, 0.8], [1, 0.2]]"
        lines.append(f"  - {{name: P{i}, discount: {discount}, defection_value: {defection}, "
                     f"regime_value: {curve}}}")
    lines.append(f"model: {{grid: {grid}}}")
    return "\n".join(lines) + "\n"


def best_time(task, repeat: int) -> float:
    best = math.inf
    for _ in range(repeat):
        start = time.perf_counter()
        task()
        best = min(best, time.perf_counter() - start)
    return best


def peak_mib(task) -> float:
    tracemalloc.start()
    task()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2**20


TRACEMALLOC = False


def max_rss_mib() -> float:
    # ru_maxrss is in KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def children_rss_mib() -> float:
    """Largest maximum resident set size of any finished child process, such as a sweep worker."""
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def measure(task, repeat: int, label: str = "") -> tuple[float, float]:
    start = time.perf_counter()
    seconds = best_time(task, repeat)
    result = seconds, (peak_mib(task) if TRACEMALLOC else max_rss_mib())
    # Progress on stderr, so that a long run shows where it is and stdout stays a table.
    print(f"measured {label or 'task'} in {time.perf_counter() - start:.1f} s wall", file=sys.stderr)
    return result


def machine_check(repeat: int) -> tuple[float, float]:
    """Time two fixed tasks that do not depend on the engine, best of ``repeat``.

    A pure-Python loop summing 2,000,000 integers, and 50 multiply-adds of
    1,000,000 doubles in numpy. Their times put runs on different days, or
    on a machine that slows down during a run, on one scale.
    """
    def python_loop():
        total = 0
        for value in range(2_000_000):
            total += value

    array = np.linspace(0.0, 1.0, 1_000_000)
    result = np.empty_like(array)

    def numpy_ops():
        for _ in range(50):
            np.multiply(array, 1.0000001, out=result)
            np.add(result, array, out=result)

    return best_time(python_loop, repeat), best_time(numpy_ops, repeat)


def game_of(text: str):
    return build_game(parse_treaty_text(text))


def slope(xs, ys) -> float:
    """Least-squares slope of log(y) on log(x): the observed growth exponent."""
    lx = [math.log(x) for x in xs]
    ly = [math.log(max(y, 1e-9)) for y in ys]
    mx, my = sum(lx) / len(lx), sum(ly) / len(ly)
    num = sum((a - mx) * (b - my) for a, b in zip(lx, ly))
    den = sum((a - mx) ** 2 for a in lx)
    return num / den


def workloads(args) -> list[tuple[str, str, str]]:
    rows = []
    repeat = args.repeat

    w1 = game_of(W1_TEXT)
    seconds, peak = measure(lambda: score_game(w1), repeat, "W1")
    rows.append(("W1 rigid 2 parties, 1 state, score", f"{seconds * 1e3:.1f} ms", f"{peak:.1f}"))

    w2 = build_game(load_treaty(ROOT / "treaties" / "cyber-flexible.yaml"))
    seconds, peak = measure(lambda: score_game(w2), 1, "W2")
    rows.append(("W2 cyber-flexible.yaml, score", f"{seconds:.2f} s", f"{peak:.1f}"))

    # W3: a two-state version of W1, because persistence has no effect with one state.
    side = 5 if args.quick else 11
    points = [(p / (side - 1), 0.5 + 0.49 * d / (side - 1)) for p in range(side) for d in range(side)]
    sweep_games = [game_of(sized_text(states=2, persistence=p, discount=d)) for p, d in points]

    # Each point is scored as `treaty sweep` scores it, without the parties'
    # own accepted sets, which a sweep does not report.
    def sweep():
        for game in sweep_games:
            score_game(game, accepted_sets=False)

    seconds, peak = measure(sweep, 1, "W3")
    estimate = seconds / len(points) * 101 * 101
    rows.append((f"W3 101 x 101 sweep, one process, extrapolated from {side} x {side}",
                 f"{estimate:.0f} s (estimate; {seconds:.1f} s measured)", f"{peak:.1f}"))

    # The whole sweep as `treaty sweep --workers N` runs it, in worker processes.
    if args.sweep_workers:
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "w3.yaml"
            path.write_text(sized_text(states=2))
            axes = ["environment.persistence=0:1:101", "parties.*.discount=0.5:0.99:101"]
            start = time.perf_counter()
            run_sweep(str(path), axes, workers=args.sweep_workers, progress=False)
            seconds = time.perf_counter() - start
        print(f"measured W3 with {args.sweep_workers} workers in {seconds:.1f} s wall", file=sys.stderr)
        rows.append((f"W3 101 x 101 sweep, {args.sweep_workers} worker processes",
                     f"{seconds:.1f} s", f"{max(max_rss_mib(), children_rss_mib()):.1f} (largest process)"))

    if importlib.util.find_spec("engine.simulate") is None:
        rows.append(("W4 simulation", "not available", "-"))
    else:
        from engine.simulate import simulate_game

        # The score is solved once outside the timing: W4 measures the paths.
        w2_score = score_game(w2)
        seconds, peak = measure(
            lambda: simulate_game(w2, w2_score, paths=100_000, years=50, seed=2026), 1, "W4")
        rows.append(("W4 100,000 paths x 50 years of W2, seed 2026", f"{seconds:.2f} s", f"{peak:.1f}"))

    catalog = [build_game(load_treaty(path)) for path in sorted((ROOT / "treaties").glob("*.yaml"))]

    def score_catalog():
        for game in catalog:
            score_game(game)

    seconds, peak = measure(score_catalog, 1, "W5")
    rows.append((f"W5 catalog, {len(catalog)} files, score", f"{seconds:.2f} s", f"{peak:.1f}"))
    return rows


def ratios(args) -> list[tuple[str, str, str, str]]:
    """Engine grid solve against the reference grid solve on the same game and grid."""
    rows = []
    cases = [("W1", game_of(W1_TEXT))]
    inf = build_game(load_treaty(ROOT / "treaties" / "inf.yaml"))
    cases.append(("inf.yaml (withdrawal, 3 states)", inf))
    w2 = build_game(load_treaty(ROOT / "treaties" / "cyber-flexible.yaml"))
    cases.append((f"W2 cyber-flexible.yaml ({w2.settings.grid} grid points)", w2))
    for name, game in cases:
        engine = best_time(lambda: Solver(game).solve(), args.repeat)
        if game is w2:
            print("running the reference solver on W2, which takes minutes", file=sys.stderr)
        reference = best_time(lambda: solve_reference(game), 1)
        print(f"measured ratio on {name}", file=sys.stderr)
        rows.append((name, f"{engine * 1e3:.1f} ms", f"{reference * 1e3:.0f} ms", f"{reference / engine:.0f}x"))
    return rows


def scaling(args) -> list[tuple[str, list]]:
    """Grid solve time and peak memory along one dimension at a time."""
    repeat = args.repeat
    grid = 21 if args.quick else 101
    tables = []
    dimensions = [
        ("environment states", [3, 10, 25] if args.quick else [3, 10, 25, 50],
         lambda v: sized_text(states=v, grid=grid)),
        ("parties", [2, 3, 4, 5], lambda v: sized_text(states=3, parties=v, grid=grid)),
        ("periods per year", [1, 4, 12],
         lambda v: sized_text(states=3, grid=grid, period={1: "1 year", 4: "3 months", 12: "1 month"}[v])),
        ("grid points", [21, 101] if args.quick else [21, 101, 401],
         lambda v: sized_text(states=3, grid=v)),
    ]
    for name, values, make in dimensions:
        rows = []
        for value in values:
            game = game_of(make(value))
            seconds, peak = measure(lambda: Solver(game).solve(), repeat, f"{name} = {value}")
            rows.append((value, seconds, peak))
        tables.append((name, rows))

    # The rigid tables above take the rigid path, on which the period hardly
    # matters. With provisions a finer period lengthens both the clock and the
    # phases, so W2's treaty shows that growth. Its solves run once each.
    flexible = (ROOT / "treaties" / "cyber-flexible.yaml").read_text()
    if "period: 3 months" not in flexible:
        raise SystemExit("error: treaties/cyber-flexible.yaml has no line `period: 3 months`, which "
                         "the period table replaces; update scaling() in benchmarks/run.py")
    periods = {2: "6 months", 4: "3 months", 12: "1 month"}
    rows = []
    for value in [2, 4] if args.quick else [2, 4, 12]:
        game = game_of(flexible.replace("period: 3 months", f"period: {periods[value]}"))
        seconds, peak = measure(lambda: Solver(game).solve(), 1, f"cyber-flexible.yaml periods per year = {value}")
        rows.append((value, seconds, peak))
    tables.append(("periods per year, cyber-flexible.yaml", rows))
    return tables


def render(args, checks, rows, ratio_rows, tables) -> str:
    memory = "tracemalloc peak MiB" if args.tracemalloc else "max RSS so far MiB"
    out = ["| machine check | pure Python loop | numpy multiply-adds |", "|---|---|---|"]
    out += [f"| {when} | {loop * 1e3:.0f} ms | {arrays * 1e3:.0f} ms |" for when, (loop, arrays) in checks]
    out += ["", f"| workload | time | {memory} |", "|---|---|---|"]
    out += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    out += ["", "| engine vs reference (grid solve) | engine | reference | ratio |", "|---|---|---|---|"]
    out += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in ratio_rows]
    for name, table in tables:
        times = [t for _, t, _ in table]
        peaks = [p for _, _, p in table]
        xs = [v for v, _, _ in table]
        out += ["", f"| {name} | grid solve ms | {memory} |", "|---|---|---|"]
        out += [f"| {v} | {t * 1e3:.1f} | {p:.1f} |" for v, t, p in table]
        # Max RSS never decreases within a process, so its slope carries no information.
        memory_slope = f"{slope(xs, peaks):.2f}" if args.tracemalloc else "-"
        out.append(f"| log-log slope | {slope(xs, times):.2f} | {memory_slope} |")
    return "\n".join(out) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller point-by-point W3 grid and scaling tables")
    parser.add_argument("--repeat", type=int, default=3, metavar="K",
                        help="runs per timing of W1, the engine's ratios and the rigid scaling "
                             "tables; the best counts (default 3)")
    parser.add_argument("--out", help="also write the markdown tables to this file")
    parser.add_argument("--sweep-workers", type=int, default=2, metavar="N",
                        help="worker processes for the whole W3 sweep; 0 skips it (default 2)")
    parser.add_argument("--tracemalloc", action="store_true",
                        help="report the tracemalloc peak of one extra run instead of max RSS")
    args = parser.parse_args(argv)
    global TRACEMALLOC
    TRACEMALLOC = args.tracemalloc
    if args.repeat < 1:
        parser.error(f"invalid --repeat {args.repeat}: expected 1 or more")
    if args.sweep_workers < 0:
        parser.error(f"invalid --sweep-workers {args.sweep_workers}: expected 0 or more")
    if args.out is not None:
        # Checked before the minutes of measuring, so that a mistyped path loses nothing.
        try:
            check_output_path("--out", args.out)
        except SweepError as error:
            parser.error(str(error))

    try:
        before = machine_check(args.repeat)
        rows, ratio_rows, tables = workloads(args), ratios(args), scaling(args)
        checks = [("start of the run", before), ("end of the run", machine_check(args.repeat))]
        text = render(args, checks, rows, ratio_rows, tables)
    except KeyboardInterrupt:
        print("interrupted; no tables written", file=sys.stderr)
        return 130
    print(text, end="")
    if args.out is not None:
        Path(args.out).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
