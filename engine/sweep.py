"""Parameter sweeps: score a treaty over a grid of values of one or two fields.

Each grid point edits a deep copy of the file's mapping (see
``engine.sweep_axes`` for the axis syntax), validates it, builds the game and
scores it, either with the engine's solver or with one of the closed forms in
``engine.closed_forms``. A point whose values the validator rejects gets
status ``invalid``, a solver error gets status ``failed`` and a solver that
stops before converging gets status ``unconverged``. None of these is
reported as "no agreement". Rows come back in grid order whatever the number
of worker processes. A sweep stopped by Ctrl-C or by a ``MemoryError`` keeps
the points finished by then and gives the others status ``not_run``.

This module runs sweeps and defines the ``treaty sweep`` command;
``engine.sweep_results`` formats the rows.
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import itertools
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from engine.cli_options import StoreOnce
from engine.closed_forms import FORMULAS, score_closed_form
from engine.errors import SpecError, count_text, format_path
from engine.output_files import os_error_reason, write_atomically
from engine.score import rounded_interval, rounded_terms
from engine.sweep_axes import (
    Axis,
    SweepError,
    Target,
    apply_values,
    build_axes,
    parse_axis,
    resolve_path,
)
from engine.sweep_results import (
    NOT_RUN,
    STATUSES,
    SweepResult,
    format_map,
    format_table,
    json_rows,
    not_run_row,
    result_columns,
    summary_line,
    write_csv,
)
from engine.worker_pool import WorkerPool, worker_count_problem
from engine.yaml_loader import LoadedYaml, load_yaml_file

__all__ = [
    "STATUSES",
    "Axis",
    "SweepError",
    "SweepInterrupted",
    "SweepOutOfMemory",
    "SweepResult",
    "Target",
    "apply_values",
    "build_axes",
    "format_map",
    "format_table",
    "json_rows",
    "parse_axis",
    "resolve_path",
    "run_sweep",
    "run_sweep_command",
    "summary_line",
    "write_csv",
]

FORMULA_CHOICES = ("engine", *FORMULAS)
PLOT_SUFFIXES = (".png", ".svg")
CSV_SUFFIX = ".csv"

# Most grid points in one task of a worker process. A point takes milliseconds
# at least, so a task of this size still costs far more than sending it.
MAX_CHUNK_POINTS = 32


def check_missing_fields(
    data: dict, filename: str, positions: dict | None, axes: list[Axis], values_name: str = "grid value"
) -> None:
    """Reject an axis that adds a field the format does not accept, such as a misspelling.

    A field left out of the file is accepted when writing some grid value into
    it passes validation. The check is skipped when the file itself is
    invalid, because every point then reports that problem anyway.

    Raises
    ------
    SweepError
        Naming the path and the validator's first problem.
    """
    from engine.loader import validate_treaty_data

    added = [axis for axis in axes if any(target.missing for target in axis.targets)]
    if not added:
        return
    try:
        validate_treaty_data(copy.deepcopy(data), filename, positions)
    except SpecError:
        return

    for axis in added:
        first_problem = None
        for value in axis.values:
            try:
                edited = apply_values(data, [(axis.targets, float(value))])
                validate_treaty_data(edited, filename, positions)
            except SpecError as error:
                first_problem = first_problem or _first_line(error)
                continue
            break
        else:
            raise SweepError(
                f"{filename}: invalid path {axis.path!r}: the file has no such field, and adding it "
                f"fails validation at every {values_name}: {first_problem}"
            )


def check_file_valid(loaded: LoadedYaml, filename: str, axis_texts: list[str]) -> None:
    """Reject a treaty file whose every grid point would be invalid for a reason of its own.

    The file as written is validated once. A problem counts against the file
    when its field does not overlap a swept field (equal to it, inside it or
    containing it) and the problem remains at every corner of the grid. A
    problem that the grid values cause or cure is left to the points, which
    report it as status ``invalid``.

    Raises
    ------
    SpecError
        With the problems that belong to the file itself.
    """
    from engine.loader import validate_treaty_data

    data, positions = loaded.data, loaded.positions
    try:
        validate_treaty_data(copy.deepcopy(data), filename, positions)
        return
    except SpecError as error:
        problems = error.problems

    axes = build_axes(data, axis_texts)
    swept = [format_path(target.keys) for axis in axes for target in axis.targets]
    remaining = [problem for problem in problems if not _overlaps_any(problem.path, swept)]

    for corner in itertools.product(*((axis.values[0], axis.values[-1]) for axis in axes)):
        if not remaining:
            return
        assignments = [(axis.targets, float(value)) for axis, value in zip(axes, corner)]
        try:
            validate_treaty_data(apply_values(data, assignments), filename, positions)
            return
        except SpecError as error:
            found = {(problem.path, problem.message) for problem in error.problems}
        remaining = [problem for problem in remaining if (problem.path, problem.message) in found]

    if remaining:
        raise SpecError(remaining)


def _overlaps_any(problem_path: str, swept_paths: list[str]) -> bool:
    """True when the problem's field is a swept field, contains one or lies inside one."""
    for swept in swept_paths:
        shorter, longer = sorted((problem_path, swept), key=len)
        if longer == shorter or (shorter and longer.startswith(shorter) and longer[len(shorter)] in ".["):
            return True
    return False


# --------------------------------------------------------------------------
# Evaluating grid points
# --------------------------------------------------------------------------


# Set once per worker process, so that each task carries only its grid index.
_WORKER_STATE: dict[str, Any] = {}


def _init_worker(
    data: dict,
    positions: dict | None,
    filename: str,
    formula: str,
    axes: list[Axis],
    parties: list[str],
) -> None:
    _WORKER_STATE.update(
        data=data,
        positions=positions,
        filename=filename,
        formula=formula,
        axes=axes,
        parties=parties,
    )


def _grid_values(axes: list[Axis], index: int) -> list[float]:
    """Return the axis values of grid point ``index`` (x varies fastest)."""
    x_count = len(axes[0].values)
    values = [float(axes[0].values[index % x_count])]
    if len(axes) == 2:
        values.append(float(axes[1].values[index // x_count]))
    return values


def _evaluate_index(index: int) -> dict:
    state = _WORKER_STATE
    return evaluate_point(
        state["data"],
        state["positions"],
        state["filename"],
        state["axes"],
        _grid_values(state["axes"], index),
        state["formula"],
        state["parties"],
    )


def evaluate_point(
    data: dict,
    positions: dict | None,
    filename: str,
    axes: list[Axis],
    values: list[float],
    formula: str,
    parties: list[str],
) -> dict:
    """Score one grid point and return its output row.

    ``positions`` are the source positions of the unedited file, so that a
    problem with a swept value names the line where the field is written.

    The validator's and builder's ``SpecError`` gives status ``invalid`` with
    the first line of its message. The solver's ``SolverError`` gives status
    ``failed``. Any other exception is a bug and propagates.
    """
    from engine.build import build_game
    from engine.errors import SolverError
    from engine.loader import validate_treaty_data

    row: dict[str, Any] = {axis.path: value for axis, value in zip(axes, values)}
    row.update({column: None for column in result_columns([], parties)})
    assignments = [(axis.targets, value) for axis, value in zip(axes, values)]
    edited = apply_values(data, assignments)

    try:
        spec = validate_treaty_data(edited, filename, positions)
        game = build_game(spec)
    except SpecError as error:
        row.update(status="invalid", message=_first_line(error))
        return row

    try:
        if formula == "engine":
            from engine.score import score_game

            score = score_game(game, accepted_sets=False)
        else:
            persistence = closed_form_persistence(edited, game)
            score = score_closed_form(game, formula, persistence)
    except SolverError as error:
        row.update(status="failed", message=_first_line(error))
        return row

    _fill_score(row, score, parties, formula)
    return row


def _fill_score(row: dict, score: Any, parties: list[str], formula: str) -> None:
    """Copy the fields of a score result into an output row."""
    zone = score.zone
    row["agreement"] = bool(score.agreement)
    # Rounded inwards as in ``treaty score --json``, so that the terms and both
    # ends of the zone written out still lie inside the located zone.
    bounds = rounded_interval(zone)
    row["zone_low"] = None if bounds is None else bounds[0]
    row["zone_high"] = None if bounds is None else bounds[1]
    row["terms"] = rounded_terms(score.terms, zone)

    margins = {party.name: party.margin for party in score.parties}
    for name in parties:
        margin = margins.get(name)
        row[f"margin_{name}"] = None if margin is None else float(margin)

    row["expected_lifetime_years"] = _lifetime_value(score, formula)
    row["evaluated_at"], row["evaluated_strictness"] = _evaluated_point(score, row["terms"])

    converged = getattr(score, "converged", True)
    row["status"] = "ok" if converged else "unconverged"
    notes = list(getattr(score, "warnings", None) or [])
    if getattr(score, "message", ""):
        notes.append(score.message)
    message = "; ".join(notes)
    if not converged and not message:
        message = "the solver stopped before converging; the numbers may be wrong"
    row["message"] = message


def _evaluated_point(score: Any, rounded_terms_value: float | None) -> tuple[str | None, float | None]:
    """Return where the margins and lifetime of ``score`` are evaluated: the kind and the strictness.

    The solver evaluates an accepted proposal, else the bargaining terms, and
    nothing without agreement. The closed forms have no proposal and evaluate
    the terms. The proposal is kept as the file writes it, and the terms as
    the ``terms`` column writes them.
    """
    proposal = getattr(score, "proposal", None)
    if proposal is not None and proposal["accepted"]:
        return "proposal", float(proposal["strictness"])
    if rounded_terms_value is None:
        return None, None
    return "terms", rounded_terms_value


def _lifetime_value(score: Any, formula: str) -> float | None:
    """Return the expected lifetime in years, ``inf`` when unbounded, None when not available.

    The solver's score has no lifetime without agreement, and a lifetime of
    None at evaluated terms means that the treaty can last for ever (``treaty score``
    prints "unbounded (the treaty can last for ever)"). The closed forms model no lifetime.
    """
    if formula != "engine":
        return None
    lifetime = score.expected_lifetime_years
    if lifetime is not None:
        return float(lifetime)
    if not score.agreement and score.evaluated_strictness is None:
        return None
    return math.inf


def _first_line(error: Exception) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def closed_form_persistence(data: dict, game: Any) -> np.ndarray:
    """Return each party's per-period persistence ``p`` for the closed forms.

    A party's own ``beliefs.persistence`` comes first, then the environment's
    ``persistence``. Both are per year in the file and become
    ``p ** period_years``. An environment given as explicit transitions uses
    the party's chance of staying in the start state. A single-state
    environment never changes, so ``p = 1``.
    """
    environment = data.get("environment") or {}
    declared = environment.get("persistence") if isinstance(environment, dict) else None
    raw_parties = data.get("parties") or []

    persistence = []
    for index, party in enumerate(game.parties):
        raw = raw_parties[index] if index < len(raw_parties) else {}
        beliefs = raw.get("beliefs") if isinstance(raw, dict) else None
        own = beliefs.get("persistence") if isinstance(beliefs, dict) else None
        yearly = own if own is not None else declared

        if yearly is not None:
            persistence.append(float(yearly) ** game.period_years)
        elif game.n_states > 1:
            persistence.append(float(party.transition[game.start, game.start]))
        else:
            persistence.append(1.0)
    return np.array(persistence)


# --------------------------------------------------------------------------
# Running a sweep
# --------------------------------------------------------------------------


class Progress:
    """Sweep progress on stderr, reported once the sweep has run a second.

    On a terminal one bar is redrawn in place with carriage returns. In a file, a
    pipe or a CI log, redrawn bars would pile up as one unreadable line. Such a
    stream gets a plain line each time the sweep passes another tenth of its points,
    and one at the end.
    """

    def __init__(self, total: int, enabled: bool, stream: TextIO | None = None) -> None:
        self.total = total
        self.enabled = enabled
        self.stream = stream if stream is not None else sys.stderr
        self.on_terminal = _is_terminal(self.stream)
        self.started = time.monotonic()
        self.last_drawn = 0.0
        self.drawn = False
        self.last_tenth = -1

    def update(self, done: int) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        elapsed = now - self.started
        if elapsed < 1.0:
            return

        if self.on_terminal:
            self._draw_bar(done, now, elapsed)
        else:
            self._write_line(done, elapsed)

    def _draw_bar(self, done: int, now: float, elapsed: float) -> None:
        # Redraw at most ten times a second, but always draw the finished bar.
        if now - self.last_drawn < 0.1 and done != self.total:
            return
        width = 30
        filled = int(width * done / self.total)
        bar = "#" * filled + "." * (width - filled)
        self._write(f"\rsweep [{bar}] {done}/{self.total} points, {elapsed:.1f} s")
        self.last_drawn = now
        self.drawn = True

    def _write_line(self, done: int, elapsed: float) -> None:
        # Write only the first update in each tenth. The last update is the only
        # one in tenth 10, so the end always gets its line.
        tenth = 10 * done // self.total
        if tenth == self.last_tenth:
            return
        self.last_tenth = tenth
        percent = 100 * done // self.total
        self._write(f"sweep: {done}/{self.total} points ({percent}%), {elapsed:.1f} s\n")

    def close(self) -> None:
        # Plain lines end with their own newline, so only the redrawn bar needs one.
        if self.drawn and self.enabled:
            self._write("\n")

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except BrokenPipeError:
            # A reader gone, as in `2>&1 | head`, stops the command (status 141).
            raise
        except (AttributeError, OSError, ValueError):
            # A closed or full stderr (None, when the shell closed it) ends the
            # progress report, not the sweep, whose rows go to stdout.
            self.enabled = False


def _is_terminal(stream: TextIO) -> bool:
    # A closed stream raises ValueError, and a stand-in stream may lack isatty().
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def read_treaty_mapping(path: str) -> LoadedYaml:
    """Read a treaty file into a plain mapping and its source positions, without validating.

    Raises
    ------
    SpecError
        When the file cannot be read or is not YAML.
    SweepError
        When the document is not a mapping.
    """
    loaded = load_yaml_file(path)
    if not isinstance(loaded.data, dict):
        raise SweepError(f"{path}: expected a mapping of treaty fields at the top level")
    return loaded


def party_names(data: dict) -> list[str]:
    parties = data.get("parties")
    if not isinstance(parties, list):
        return []
    return [str(party.get("name")) for party in parties if isinstance(party, dict)]


class StoppedSweep:
    """The rows of a sweep stopped before its last point, one ``SweepResult`` per design.

    Each result has a row for every grid point. The points not finished have
    status ``not_run``, and every finished point is one of the first points
    of its grid.
    """

    def __init__(self, results: list[SweepResult]) -> None:
        super().__init__()
        self.results = results

    @property
    def finished(self) -> int:
        return sum(result.finished_count() for result in self.results)

    @property
    def total(self) -> int:
        return sum(len(result.rows) for result in self.results)


class SweepInterrupted(StoppedSweep, KeyboardInterrupt):
    """Ctrl-C during a sweep, with the points finished by then in ``results``.

    It is a ``KeyboardInterrupt``, so a caller that does not look for it still
    stops as on any Ctrl-C.
    """


class SweepOutOfMemory(StoppedSweep, MemoryError):
    """A grid point that needed more memory than the process could get, with the points finished before it.

    It is a ``MemoryError``, so a caller that does not look for it still
    stops as on any other ``MemoryError``.
    """


def run_sweep(
    filename: str,
    axis_texts: list[str],
    formula: str = "engine",
    workers: int = 1,
    progress: bool = True,
    loaded: LoadedYaml | None = None,
) -> SweepResult:
    """Score ``filename`` at every point of the grid and return the rows in grid order.

    Parameters
    ----------
    filename : str
        Treaty file; also the name used in validation messages.
    axis_texts : list of str
        One or two ``PATH=START:STOP:N`` axes, x first.
    formula : str
        ``engine`` for the solver, or a key of ``engine.closed_forms.FORMULAS``.
    workers : int
        Worker processes. The rows do not depend on it.
    progress : bool
        Report progress on stderr when the sweep takes over a second: a redrawn bar
        on a terminal, plain lines otherwise.
    loaded : LoadedYaml, optional
        The file's mapping and source positions, when the caller has already read them.

    Raises
    ------
    SweepInterrupted
        On Ctrl-C, after any worker processes have stopped.
    SweepOutOfMemory
        When a point raises ``MemoryError``, after any worker processes have stopped.
    """
    if formula not in FORMULA_CHOICES:
        raise SweepError(f"invalid formula {formula!r}: expected one of {', '.join(FORMULA_CHOICES)}")
    if not 1 <= len(axis_texts) <= 2:
        raise SweepError("a sweep takes one or two axes (--x and optionally --y)")
    problem = worker_count_problem(workers)
    if problem is not None:
        raise SweepError(problem)

    if loaded is None:
        loaded = read_treaty_mapping(filename)
    data, positions = loaded.data, loaded.positions
    axes = build_axes(data, axis_texts)
    parties = party_names(data)
    check_formula_parties(filename, formula, parties)
    result = SweepResult(filename, formula, axes, parties)

    check_missing_fields(data, filename, positions, axes)

    total = grid_size(axes)
    bar = Progress(total, progress)
    state = (data, positions, filename, formula, axes, parties)

    stop: type[SweepInterrupted] | type[SweepOutOfMemory] | None = None
    try:
        _score_grid(state, total, workers, result.rows, bar)
    except KeyboardInterrupt:
        stop = SweepInterrupted
    except MemoryError:
        # Raised below, outside this block, so that the new exception does not
        # carry the traceback whose frames may still hold the arrays that did not fit.
        stop = SweepOutOfMemory
    finally:
        # Any worker processes have stopped by now. The progress line ends
        # before the rows or the interrupt are reported.
        bar.close()

    if stop is not None:
        result.rows.extend(not_run_rows(axes, parties, len(result.rows), total))
        raise stop([result])
    return result


def _score_grid(state: tuple, total: int, workers: int, rows: list[dict], bar: Progress) -> None:
    """Score every grid point, appending each row to ``rows`` as it arrives.

    The rows go into the caller's list, so that after Ctrl-C or a
    ``MemoryError`` it still contains the points finished by then. They arrive in
    grid order with any number of workers, so they are always the first
    ``len(rows)`` points of the grid. A worker's point that finished after an
    unfinished earlier one is not collected.
    """
    if workers == 1:
        _init_worker(*state)
        for index in range(total):
            rows.append(_evaluate_index(index))
            bar.update(index + 1)
        return

    # Several tasks per worker balance uneven points, and a bound on their size
    # keeps progress steady and limits the finished points that Ctrl-C loses.
    chunk = max(1, min(total // (workers * 4), MAX_CHUNK_POINTS))
    with WorkerPool(workers, _init_worker, state) as pool:
        for done, row in enumerate(pool.map(_evaluate_index, range(total), chunksize=chunk), 1):
            rows.append(row)
            bar.update(done)


def grid_size(axes: list[Axis]) -> int:
    """Return the number of grid points: the product of the axis lengths."""
    return math.prod(len(axis.values) for axis in axes)


def not_run_rows(axes: list[Axis], parties: list[str], start: int, total: int) -> list[dict]:
    """Return the ``not_run`` rows of grid points ``start`` to ``total - 1``."""
    return [not_run_row(axes, _grid_values(axes, index), parties) for index in range(start, total)]


# --------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------


# --------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------


def add_sweep_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``treaty sweep`` options to ``parser``.

    Every option that takes a value may be given once: a repeated ``--x`` would
    otherwise replace the first axis without a word.
    """
    parser.add_argument("file", metavar="FILE", help="treaty file to sweep")
    parser.add_argument(
        "--x",
        required=True,
        action=StoreOnce,
        hint="a sweep has one x axis, so give a second field with --y",
        metavar="PATH=START:STOP:N",
        help="field to vary along x and its grid of N points from START to STOP, both included "
        "(e.g. environment.persistence=0.5:0.95:10, parties.*.discount=..., "
        "provisions.duration.term=5:20:4 in the file's unit)",
    )
    parser.add_argument(
        "--y",
        action=StoreOnce,
        hint="a sweep has at most two axes, --x and --y",
        metavar="PATH=START:STOP:N",
        help="second field, for a 2-D grid",
    )
    parser.add_argument(
        "--out", action=StoreOnce, metavar="FILE.csv", help="write one CSV row per grid point"
    )
    parser.add_argument(
        "--json", action="store_true", help="print the rows as a JSON list on stdout"
    )
    parser.add_argument(
        "--plot",
        action=StoreOnce,
        metavar="FILE.png|FILE.svg",
        help="draw the terms and the no-agreement region (needs matplotlib)",
    )
    parser.add_argument(
        "--compare",
        action=StoreOnce,
        hint="a sweep compares FILE with one other design, so run another sweep for a third",
        metavar="OTHER.yaml",
        help="sweep a second treaty on the same grid and mark where only one agrees",
    )
    parser.add_argument(
        "--formula",
        action=StoreOnce,
        choices=FORMULA_CHOICES,
        default="engine",
        help="score with the solver (engine, the default) or a two-party closed form",
    )
    parser.add_argument(
        "--workers",
        action=StoreOnce,
        type=int,
        default=1,
        metavar="N",
        help="worker processes (default 1); the output does not depend on it",
    )
    parser.add_argument("--quiet", action="store_true", help="report no progress on stderr")


def _check_plot_request(plot_path: str) -> None:
    """Raise SweepError before any work if the plot cannot be written."""
    suffix = Path(plot_path).suffix.lower()
    if suffix not in PLOT_SUFFIXES:
        raise SweepError(
            f"invalid plot file {plot_path!r}: expected a name ending in .png or .svg"
        )
    check_output_path("--plot", plot_path)
    if importlib.util.find_spec("matplotlib") is None:
        raise SweepError(
            "--plot needs matplotlib, which is not installed; install it with "
            "pip install -e '.[plot]'"
        )


def check_output_path(option: str, path: str) -> None:
    """Raise SweepError if ``path`` cannot be created or replaced as an output file.

    The checks run before the sweep, so that a mistyped directory does not
    cost a whole sweep. A file that becomes unwritable during the sweep is
    still reported when it is written.
    """
    if not path:
        raise SweepError(f"invalid {option} file '': the name is empty; give a file name")
    target = Path(path)
    if target.is_dir():
        raise SweepError(f"invalid {option} file {path!r}: it is a directory; give a file name")

    parent = target.parent
    if parent.exists() and not parent.is_dir():
        raise SweepError(f"invalid {option} file {path!r}: {str(parent)!r} is a file, not a directory")
    if not parent.is_dir():
        raise SweepError(f"invalid {option} file {path!r}: directory {str(parent)!r} not found")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise SweepError(f"invalid {option} file {path!r}: directory {str(parent)!r} is not writable")
    if target.exists() and not os.access(target, os.W_OK):
        raise SweepError(f"invalid {option} file {path!r}: the file is not writable")


def _check_output_request(args: argparse.Namespace) -> None:
    """Raise SweepError before any work if ``--out`` or ``--plot`` cannot be written.

    An output file must not be one of the treaty files, which it would
    overwrite, and ``--out`` and ``--plot`` must name different files.
    """
    for option, value in (("--out", args.out), ("--plot", args.plot)):
        if value == "":
            raise SweepError(f"invalid {option} file '': the name is empty; give a file name")
    if args.out:
        if Path(args.out).is_dir():
            raise SweepError(f"invalid --out file {args.out!r}: it is a directory; give a file name "
                             "ending in .csv")
        if Path(args.out).suffix.lower() != CSV_SUFFIX:
            raise SweepError(
                f"invalid --out file {args.out!r}: expected a name ending in .csv "
                "(--out writes CSV; --json prints JSON on stdout)"
            )
        check_output_path("--out", args.out)
    if args.plot:
        _check_plot_request(args.plot)

    if args.compare == "":
        raise SweepError("invalid --compare file '': the name is empty; give the file of another design")
    if args.compare and _same_file(args.file, args.compare):
        raise SweepError(
            f"invalid --compare file {args.compare!r}: it is FILE itself, so both designs would be "
            "the same; give the file of another design"
        )
    inputs = {Path(name).resolve(): name for name in (args.file, args.compare) if name}
    outputs = [(option, path) for option, path in (("--out", args.out), ("--plot", args.plot)) if path]
    for option, path in outputs:
        treaty = inputs.get(Path(path).resolve())
        if treaty is not None:
            raise SweepError(
                f"invalid {option} file {path!r}: it is the treaty file {treaty!r}, "
                "which would be overwritten; choose another name"
            )
    if len(outputs) == 2 and Path(args.out).resolve() == Path(args.plot).resolve():
        raise SweepError(f"--out and --plot name the same file {args.out!r}; choose two names")


def _write_output_files(
    args: argparse.Namespace, results: list[SweepResult], plot: bool = True
) -> tuple[list[str], list[str]]:
    """Write the ``--out`` and ``--plot`` files; return the paths written and a message per failure.

    With ``plot`` false, the ``--plot`` file is not drawn.

    A failed write leaves an earlier file of that name as it was. The other
    file is still written, and the rows are still printed, so that a full
    disk or an unwritable plot does not lose the solved points.
    """
    written = []
    problems = []
    if args.out:
        try:
            write_atomically(args.out, lambda stream: write_csv(results, stream))
            written.append(args.out)
        except OSError as error:
            problems.append(f"{args.out}: cannot write the CSV file: {os_error_reason(error)}")

    if args.plot and plot:
        from engine.plotting import plot_sweep

        compare = results[1] if len(results) > 1 else None
        try:
            plot_sweep(results[0], args.plot, compare=compare)
            written.append(args.plot)
        except OSError as error:
            problems.append(f"{args.plot}: cannot write the plot: {os_error_reason(error)}")
    return written, problems


def _same_file(first: str, second: str) -> bool:
    """Return True when two names reach one file, also through a link."""
    try:
        return Path(first).samefile(second)
    except OSError:
        # A missing file is reported when it is read.
        return Path(first).resolve() == Path(second).resolve()


def run_sweep_command(args: argparse.Namespace) -> int:
    """Run ``treaty sweep`` from parsed arguments and return the exit code.

    Exit code 0 when the sweep ran, even if some points are invalid or failed
    (their rows show it). Exit code 2 for a request that cannot run, with one
    ``error:`` line on stderr, and for an output file that could not be
    written, with one ``error:`` line per such file after the printed rows.

    A sweep stopped by Ctrl-C (exit code 130) or by a point that needs more
    memory than the process can get (exit code 3) writes and prints the
    points finished by then, the others with status ``not_run``, and ends
    with a line on stderr that counts them. That exit code wins over a failed
    output file.
    """
    stop: StoppedSweep | None = None
    try:
        _check_output_request(args)
        results = _run_designs(args)
    except SweepError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except SpecError as error:
        print(_one_error_line(error), file=sys.stderr)
        return 2
    except (SweepInterrupted, SweepOutOfMemory) as stopped:
        stop = stopped
        results = stopped.results

    if stop is not None and stop.finished == 0:
        return _report_stop(stop)

    # The files come first, so that a reader who closes stdout early, as in
    # `| head`, still gets them. A plot of part of the grid would show the
    # points not run as blank, which reads as missing terms, so it is not drawn.
    written, problems = _write_output_files(args, results, plot=stop is None)
    exit_code = 2 if problems else 0
    try:
        _print_results(args, results, written)
    except BrokenPipeError:
        # The reader closed stdout early (`| head`). Point stdout at devnull so
        # that the interpreter's final flush does not fail a second time.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    finally:
        # Printed after the rows, so that they are the last lines on a terminal,
        # and also when printing the rows failed.
        for problem in problems:
            print(f"error: {problem}", file=sys.stderr)
        if stop is not None and args.plot:
            print(f"warning: {args.plot} was not written, because the sweep stopped before "
                  "its last point", file=sys.stderr)
        if stop is not None:
            exit_code = _report_stop(stop)
    return exit_code


def _report_stop(stop: StoppedSweep) -> int:
    """Write the lines on stderr that state why the sweep stopped and how far it got; return the exit code."""
    from engine.cli import EXIT_INTERRUPTED, EXIT_SOLVER, OUT_OF_MEMORY

    counted = f"after {stop.finished:,} of {stop.total:,} points"
    if stop.finished == 0:
        outcome = "there is no result to report"
    else:
        outcome = f"the output contains only those, and the other points have status {NOT_RUN}"

    if isinstance(stop, SweepInterrupted):
        print(f"interrupted {counted}; {outcome}", file=sys.stderr)
        return EXIT_INTERRUPTED
    print(OUT_OF_MEMORY, file=sys.stderr)
    print(f"stopped {counted}; {outcome}", file=sys.stderr)
    return EXIT_SOLVER


def _one_error_line(error: SpecError) -> str:
    """Return the first problem of ``error`` as one line, with a count of the rest."""
    first = error.problems[0]
    line = first.format()
    others = len(error.problems) - 1
    if others:
        line += f" (and {count_text(others, 'more problem')}; run `treaty check {first.file}` to list them)"
    return line


def _print_results(args: argparse.Namespace, results: list[SweepResult], written: list[str]) -> None:
    """Print the rows on stdout, followed in the table format by a line for each file written."""
    if args.json:
        json.dump(json_rows(results), sys.stdout, indent=2)
        sys.stdout.write("\n")
        sys.stdout.flush()
        return

    for result in results:
        sys.stdout.write(_human_output(result, wrote_csv=args.out in written))
    if len(results) > 1:
        sys.stdout.write(_difference_line(results[0], results[1]) + "\n")
    for path in written:
        print(f"wrote {path}")
    sys.stdout.flush()


def _run_designs(args: argparse.Namespace) -> list[SweepResult]:
    axis_texts = [args.x] + ([args.y] if args.y else [])
    files = [args.file] + ([args.compare] if args.compare else [])

    # Resolve every file's paths before the first solve, so that a bad path
    # in the second file fails at once.
    loaded_files = []
    for filename in files:
        loaded = read_treaty_mapping(filename)
        try:
            build_axes(loaded.data, axis_texts)
        except SweepError as error:
            raise SweepError(f"{filename}: {error}") from None
        check_file_valid(loaded, filename, axis_texts)
        loaded_files.append(loaded)

    if args.formula != "engine":
        # A file the formula cannot describe fails before any caveat is printed.
        for filename, loaded in zip(files, loaded_files):
            check_formula_parties(filename, args.formula, party_names(loaded.data))
        for filename, loaded in zip(files, loaded_files):
            for caveat in closed_form_caveats(loaded.data):
                print(f"warning: {filename}: {caveat}", file=sys.stderr)

    results: list[SweepResult] = []
    stop: type[SweepInterrupted] | type[SweepOutOfMemory] | None = None
    try:
        for filename, loaded in zip(files, loaded_files):
            results.append(
                run_sweep(
                    filename,
                    axis_texts,
                    formula=args.formula,
                    workers=args.workers,
                    progress=not args.quiet,
                    loaded=loaded,
                )
            )
    except KeyboardInterrupt as interrupt:
        # A plain KeyboardInterrupt came between two designs' grids.
        stop = SweepInterrupted
        results += getattr(interrupt, "results", [])
    except MemoryError as error:
        stop = SweepOutOfMemory
        results += getattr(error, "results", [])
    if stop is None:
        return results

    # The designs after the stopped one have not started, so none of their points has run.
    for filename, loaded in list(zip(files, loaded_files))[len(results):]:
        results.append(_not_run_result(filename, loaded, axis_texts, args.formula))
    raise stop(results)


def _not_run_result(filename: str, loaded: LoadedYaml, axis_texts: list[str], formula: str) -> SweepResult:
    """Return the result of a design whose sweep never started: every point ``not_run``."""
    axes = build_axes(loaded.data, axis_texts)
    parties = party_names(loaded.data)
    rows = not_run_rows(axes, parties, 0, grid_size(axes))
    return SweepResult(filename, formula, axes, parties, rows)


def check_formula_parties(filename: str, formula: str, parties: list[str]) -> None:
    """Raise ``SweepError`` when a closed form is asked for a file without exactly two parties."""
    if formula != "engine" and len(parties) != 2:
        raise SweepError(
            f"{filename}: --formula {formula} describes two parties, the file has {len(parties)}; "
            "use --formula engine"
        )


def closed_form_caveats(data: dict) -> list[str]:
    """List what a treaty declares that the two-party closed forms leave out."""
    caveats = []
    provisions = data.get("provisions")
    if isinstance(provisions, list) and provisions:
        kinds = ", ".join(
            str(provision.get("kind")) for provision in provisions if isinstance(provision, dict)
        )
        caveats.append(f"the closed forms ignore the provisions ({kinds})")

    parties = data.get("parties") if isinstance(data.get("parties"), list) else []
    for field_name in ("breach_cost", "negotiation_cost"):
        if any(isinstance(party, dict) and party.get(field_name) for party in parties):
            caveats.append(f"the closed forms ignore {field_name}")
    return caveats


def _human_output(result: SweepResult, wrote_csv: bool) -> str:
    if len(result.axes) == 1:
        return f"{result.filename} ({result.formula})\n" + format_table(result)
    text = format_map(result)
    if not wrote_csv:
        text += "write every row with --out FILE.csv or --json\n"
    return text


def _difference_line(first: SweepResult, second: SweepResult) -> str:
    """Count the points, scored under both designs, where only one of them agrees.

    A point that is invalid, failed or unconverged under either design is
    left out of both counts and counted separately, as in the plot.
    """
    scored = (first.statuses() == "ok") & (second.statuses() == "ok")
    first_agrees = first.agreement() & scored
    second_agrees = second.agreement() & scored
    only_first = int((first_agrees & ~second_agrees).sum())
    only_second = int((second_agrees & ~first_agrees).sum())
    line = (
        f"agreement only under {first.filename}: {count_text(only_first)}; "
        f"only under {second.filename}: {count_text(only_second)}"
    )
    unscored = int((~scored).sum())
    if unscored:
        line += f"; {count_text(unscored)} not scored under one design or both, left out"
    return line
