"""Uncertain calibration: score a treaty over random draws of some of its fields.

``treaty score FILE --vary PATH=DIST`` draws each named field from a
distribution, scores the treaty at every draw and reports

* the probability of agreement among the valid draws, with its standard error;
* the distribution of the terms over the draws that reach agreement;
* for each varied field, how much it moves the verdict: the agreement rate
  among the draws in the top third of that field's values minus the rate in
  the bottom third, with the standard error of that difference.  A positive
  difference means that larger values make agreement more likely.

PATH names a field as in ``treaty sweep`` (see ``engine.sweep_axes``).  The
distributions are ``uniform(a,b)``, ``beta(a,b)``, ``normal(mean,sd)`` and
``triangular(low,mode,high)``.  A draw that makes the file invalid (for
example a discount factor of 1.2 from a wide normal) is not scored.  Such
draws are counted and reported by their first problem, one line per field
and rule.  A duration field (a term, a notice) cannot be varied, because a
continuous draw is a whole number of model periods with probability zero.
Nor can a whole-number field (``model.grid``, ``max_uses``), for the same
reason.
"""

from __future__ import annotations

import math
import re
import shlex
import sys
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np

from engine.durations import YEARS_PER_UNIT, Duration, DurationError, parse_duration
from engine.errors import NO_VALUE, Problem, SolverError, SpecError, format_value
from engine.heartbeat import ProgressNotes
from engine.loader import schema_nodes
from engine.spec_fields import DURATION_PATTERN, did_you_mean
from engine.sweep_axes import (
    Axis,
    SweepError,
    Target,
    apply_values,
    format_is_integer,
    named_path,
    resolve_path,
)
from engine.worker_pool import WorkerPool, worker_count_problem

_DISTRIBUTION = re.compile(r"^\s*([a-z]+)\s*\((.*)\)\s*$")
_ARITY = {"uniform": 2, "beta": 2, "normal": 2, "triangular": 3}


class VaryError(Exception):
    """A ``--vary`` request that cannot run: a bad path, distribution or option."""


@dataclass(frozen=True)
class Distribution:
    """One named distribution with its parameters, as written on the command line."""

    name: str
    parameters: tuple[float, ...]

    @property
    def text(self) -> str:
        return f"{self.name}({', '.join(f'{value:g}' for value in self.parameters)})"

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """Return ``size`` independent draws."""
        a, b, *rest = self.parameters
        if self.name == "uniform":
            return rng.uniform(a, b, size)
        if self.name == "beta":
            return rng.beta(a, b, size)
        if self.name == "normal":
            return rng.normal(a, b, size)
        return rng.triangular(a, b, rest[0], size)


@dataclass(frozen=True)
class VariedField:
    """A ``PATH=DIST`` option: the path as written, the fields it sets and its distribution."""

    path: str
    targets: tuple[Target, ...]
    distribution: Distribution


# Each draw is a full score (milliseconds to seconds), so 100,000 draws can take
# hours; more would run for days with no output.
MAX_DRAWS = 100_000

def parse_distribution(text: str) -> Distribution:
    """Parse ``name(p1, p2[, p3])`` and check its parameters.

    Raises
    ------
    VaryError
        When the name is unknown, the count of parameters is wrong or a
        parameter is out of range.
    """
    match = _DISTRIBUTION.match(text)
    if match is None:
        raise VaryError(f"invalid distribution {text!r}: expected a form such as uniform(0.8, 0.95)")
    name = match.group(1)
    if name not in _ARITY:
        raise VaryError(f"unknown distribution {name!r}: use one of {', '.join(_ARITY)}")
    try:
        parameters = tuple(float(item) for item in match.group(2).split(","))
    except ValueError:
        raise VaryError(f"invalid distribution {text!r}: its parameters must be numbers") from None
    if len(parameters) != _ARITY[name] or not all(math.isfinite(value) for value in parameters):
        raise VaryError(f"invalid distribution {text!r}: {name} takes {_ARITY[name]} finite numbers")

    if name == "uniform" and not parameters[0] < parameters[1]:
        raise VaryError(f"invalid distribution {text!r}: uniform(a, b) needs a < b")
    if name == "beta" and not (parameters[0] > 0 and parameters[1] > 0):
        raise VaryError(f"invalid distribution {text!r}: beta(a, b) needs a > 0 and b > 0")
    if name == "normal" and not parameters[1] > 0:
        raise VaryError(f"invalid distribution {text!r}: normal(mean, sd) needs sd > 0")
    if name == "triangular":
        low, mode, high = parameters
        if not (low <= mode <= high and low < high):
            raise VaryError(f"invalid distribution {text!r}: triangular(low, mode, high) needs "
                            "low <= mode <= high and low < high")
    return Distribution(name, parameters)


def parse_varied(data: dict, texts: list[str], filename: str = "FILE") -> list[VariedField]:
    """Parse every ``PATH=DIST`` option and resolve its path in the treaty mapping.

    ``filename`` only appears in the ``treaty sweep`` command that the error
    for a duration field suggests.

    Raises
    ------
    VaryError
        When an option is malformed, its path names nothing, two options set
        the same field or a path names a duration or whole-number field.
    """
    fields = []
    seen: dict[tuple, str] = {}
    for text in texts:
        path, separator, distribution = text.rpartition("=")
        if not separator or not path.strip():
            raise VaryError(f"invalid --vary {text!r}: expected PATH=DIST, e.g. "
                            "environment.persistence=uniform(0.8,0.95)")
        try:
            targets = resolve_path(data, path.strip())
        except SweepError as error:
            raise VaryError(str(error)) from None
        for target in targets:
            if target.keys in seen:
                earlier = seen[target.keys]
                if earlier == path.strip():
                    raise VaryError(f"--vary {earlier} is given twice; vary each field once")
                raise VaryError(f"--vary {earlier} and --vary {path.strip()} both set "
                                f"{named_path(data, target.keys)}; vary each field once")
            seen[target.keys] = path.strip()
        parsed = parse_distribution(distribution)
        for target in targets:
            if target.missing and not schema_nodes(target.keys):
                raise VaryError(_unknown_field_message(data, path.strip(), target))
            if _is_duration_field(target):
                raise VaryError(_duration_message(data, path.strip(), target, parsed, filename))
            if _is_whole_number_field(target):
                raise VaryError(
                    f"--vary {path.strip()} names a whole-number field, so every draw would be "
                    "invalid, because the distributions are continuous and a draw is a whole "
                    "number with probability zero. Sweep whole numbers instead, with treaty sweep "
                    f"{shlex.quote(filename)} --x {shlex.quote(path.strip() + '=START:STOP:N')} "
                    "where (STOP - START) / (N - 1) is a whole number")
        fields.append(VariedField(path.strip(), targets, parsed))
    return fields


def _unknown_field_message(data: dict, path: str, target: Target) -> str:
    """Explain that ``target`` names a field the treaty format does not have, with a suggestion."""
    parent, name = target.keys[:-1], str(target.keys[-1])
    known = sorted({key for node in schema_nodes(parent) for key in node.get("properties", {})})
    where = named_path(data, parent) or "the top level"
    return (f"invalid path {path!r}: {where} has no field {name!r} in the treaty format, so every "
            f"draw would be invalid{did_you_mean(name, known)}")


# ------------------------------------------------------------------ duration fields

# At most this many points in the sweep that the error for a duration field suggests.
_EXAMPLE_SWEEP_POINTS = 21


def _is_duration_field(target: Target) -> bool:
    """Return True when ``target`` is a duration that must be a whole number of model periods.

    A field counts when the file writes a duration there, or when the format
    declares a duration for it (a field the file leaves out, such as an
    escape hatch's ``cooldown``).  The model period ``period`` itself does not.
    """
    if target.keys == ("period",):
        return False
    if target.unit is not None:
        return True
    return any(node.get("pattern") == DURATION_PATTERN for node in schema_nodes(target.keys))


def _is_whole_number_field(target: Target) -> bool:
    """Return True when the format allows only whole numbers at ``target``, such as ``model.grid``."""
    return format_is_integer(target.keys)


def _duration_message(data: dict, path: str, target: Target, distribution: Distribution,
                      filename: str) -> str:
    """Explain why a duration field cannot be varied, and suggest a sweep over whole periods."""
    period = _file_period(data)
    period_text = f" (period: {period.text})" if period is not None else ""
    message = (f"--vary {path} names a duration, so every draw would be invalid, because a duration "
               f"must be a whole number of model periods{period_text} and a continuous draw is one "
               "with probability zero.")

    sweep = f"treaty sweep {shlex.quote(filename)} --x"
    generic = f"{sweep} {shlex.quote(path + '=START:STOP:N')}"
    if target.missing:
        # A sweep writes bare numbers into a field that the file leaves out,
        # and a duration needs a unit.
        example = period.text if period is not None else "1 year"
        return (f"{message} To study it, write `{target.keys[-1]}: {example}` into the file and "
                f"sweep whole periods with {generic}")
    grid = _whole_period_grid(distribution, target.unit, period)
    if grid is None:
        return (f"{message} Sweep whole periods instead, with {generic} where "
                "(STOP - START) / (N - 1) is a whole number of periods")
    axis, step = grid
    return (f"{message} Sweep whole periods instead, for example {sweep} "
            f"{shlex.quote(f'{path}={axis}')} (steps of {step})")


def _file_period(data: dict) -> Duration | None:
    """Return the model period of the file (1 year when left out), or None when it is unreadable."""
    try:
        return parse_duration(data.get("period", "1 year"))
    except DurationError:
        return None


def _whole_period_grid(distribution: Distribution, unit: str | None,
                       period: Duration | None) -> tuple[str, str] | None:
    """Return ``START:STOP:N`` and its step for a sweep of whole periods in the file's unit.

    The grid covers the likely range of the draws: the support of a bounded
    distribution, and the mean plus or minus two standard deviations of a
    normal one.  When every period would give more than
    ``_EXAMPLE_SWEEP_POINTS`` points, the step is a multiple of the period,
    preferably a whole number of units (1 year rather than 0.75 years).
    Returns None when no grid of at least two exact decimals fits.
    """
    if unit is None or period is None or unit[:-1] not in YEARS_PER_UNIT:
        return None
    period_step = period.years / YEARS_PER_UNIT[unit[:-1]]
    low, high = (Fraction(bound) for bound in _likely_range(distribution))

    stride = max(1, math.ceil((high - low) / period_step / (_EXAMPLE_SWEEP_POINTS - 1)))
    if stride > 1:
        whole = [multiple for multiple in range(stride, stride * period_step.denominator + 1)
                 if (multiple * period_step).denominator == 1]
        stride = whole[0] if whole else stride
    step = stride * period_step

    first = max(math.ceil(low / step), 1)
    last = math.floor(high / step)
    if last <= first:
        return None
    texts = [_exact_decimal(first * step), _exact_decimal(last * step), _exact_decimal(step)]
    if None in texts:
        return None
    start, stop, step_text = texts
    step_unit = unit[:-1] if step == 1 else unit
    return f"{start}:{stop}:{last - first + 1}", f"{step_text} {step_unit}"


def _likely_range(distribution: Distribution) -> tuple[float, float]:
    """Return the interval that contains almost every draw of ``distribution``."""
    parameters = distribution.parameters
    if distribution.name == "normal":
        mean, deviation = parameters
        return mean - 2 * deviation, mean + 2 * deviation
    if distribution.name == "beta":
        return 0.0, 1.0
    return parameters[0], parameters[-1]


def _exact_decimal(value: Fraction) -> str | None:
    """Return ``value`` as a decimal of at most nine places, or None when it has no such form."""
    text = f"{float(value):.9f}".rstrip("0").rstrip(".")
    return text if Fraction(text) == value else None


def draw_values(fields: list[VariedField], draws: int, seed: int) -> np.ndarray:
    """Return the drawn values, shape (draws, field); each field has its own child seed."""
    children = np.random.SeedSequence(seed).spawn(len(fields))
    columns = [field.distribution.sample(np.random.default_rng(child), draws)
               for field, child in zip(fields, children)]
    return np.stack(columns, axis=1)


# ------------------------------------------------------------------ scoring draws

_STATE: dict[str, Any] = {}


def _init_worker(data, positions, filename, fields) -> None:
    _STATE.update(data=data, positions=positions, filename=filename, fields=fields)


def _score_draw(values: np.ndarray) -> dict:
    return score_draw(_STATE["data"], _STATE["positions"], _STATE["filename"], _STATE["fields"],
                      values)


def score_draw(data: dict, positions, filename: str, fields: list[VariedField],
               values: np.ndarray) -> dict:
    """Score the treaty with each field set to its drawn value; return the outcome of the draw."""
    from engine.build import build_game
    from engine.loader import validate_treaty_data
    from engine.score import score_game

    edited = apply_values(data, [(field.targets, float(value)) for field, value in zip(fields, values)])
    try:
        game = build_game(validate_treaty_data(edited, filename, positions))
    except SpecError as error:
        first = error.problems[0]
        problem = {"file": first.file, "line": first.line, "column": first.column,
                   "path": first.path, "message": first.message, "allowed": first.allowed}
        # NO_VALUE is compared by identity, which a worker process cannot
        # keep, so a problem without a value has no "value" key.
        if first.value is not NO_VALUE:
            problem["value"] = first.value
        return {"status": "invalid", "message": first.format(), "problem": problem}
    try:
        score = score_game(game)
    except SolverError as error:
        return {"status": "failed", "message": str(error).strip().splitlines()[0]}
    return {"status": "ok", "agreement": score.agreement, "terms": score.terms,
            "zone": None if score.zone is None else list(score.zone)}


@dataclass
class VaryResult:
    """The outcome of every draw, with the drawn values."""

    filename: str
    name: str
    seed: int
    fields: list[VariedField]
    values: np.ndarray
    outcomes: list[dict]

    def to_dict(self) -> dict:
        ok = np.array([outcome["status"] == "ok" for outcome in self.outcomes])
        agreed = np.array([outcome.get("agreement", False) for outcome in self.outcomes])
        valid = int(ok.sum())
        rate = float(agreed[ok].mean()) if valid else None
        terms = np.array([outcome["terms"] for outcome in self.outcomes
                          if outcome.get("agreement")], dtype=float)

        return {
            # As in a score, "treaty" is the treaty's name; the file is named apart.
            "treaty": self.name,
            "file": self.filename,
            "seed": self.seed,
            "draws": len(self.outcomes),
            "varied": [{"path": field.path, "distribution": field.distribution.text}
                       for field in self.fields],
            "valid_draws": valid,
            "invalid_draws": sum(outcome["status"] == "invalid" for outcome in self.outcomes),
            "failed_draws": sum(outcome["status"] == "failed" for outcome in self.outcomes),
            "problems": group_problems(self.outcomes),
            "p_agreement": rate,
            "p_agreement_standard_error": None if not valid else math.sqrt(rate * (1 - rate) / valid),
            "terms": _summary(terms),
            "sensitivity": self.sensitivity(ok, agreed),
        }

    def sensitivity(self, ok: np.ndarray, agreed: np.ndarray) -> list[dict]:
        """Agreement rate in the top third of each field's draws minus the bottom third.

        The thirds are cut at the 1/3 and 2/3 quantiles of the field's valid
        draws.  Rows are sorted by the size of the difference, largest first.
        """
        rows = []
        for index, field in enumerate(self.fields):
            values = self.values[ok, index]
            outcome = agreed[ok].astype(float)
            row = {"path": field.path, "difference": None, "standard_error": None}
            if values.size >= 3 and np.ptp(values) > 0:
                low_cut, high_cut = np.quantile(values, [1 / 3, 2 / 3])
                bottom, top = outcome[values <= low_cut], outcome[values >= high_cut]
                if bottom.size and top.size:
                    rate_top, rate_bottom = top.mean(), bottom.mean()
                    row["difference"] = float(rate_top - rate_bottom)
                    row["standard_error"] = float(math.sqrt(
                        rate_top * (1 - rate_top) / top.size
                        + rate_bottom * (1 - rate_bottom) / bottom.size))
                    row["p_agreement_top_third"] = float(rate_top)
                    row["p_agreement_bottom_third"] = float(rate_bottom)
            rows.append(row)
        return sorted(rows, key=lambda row: -abs(row["difference"] or 0.0))


# A number inside a problem message, such as the sum in "row sums to 1.03".
_NUMBER_IN_MESSAGE = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")


def group_problems(outcomes: list[dict]) -> list[dict]:
    """Group the draws left out by field and rule, most frequent first.

    Two draws share a group when their first problems are at the same field
    and differ at most in the numbers of their messages, as in "row sums to
    1.03" and "row sums to 0.98".  Each group is one entry with its
    ``status`` (``invalid`` or ``failed``), the ``field`` (None for a solver
    failure), the count of ``draws`` and one ``message`` for all of them.
    In that message a number that differs between the draws is shown as the
    interval ``[min, max]``, and the offending values as their range.
    """
    groups: dict[tuple, list[dict]] = {}
    for outcome in outcomes:
        if outcome["status"] == "ok":
            continue
        problem = outcome.get("problem")
        if problem is None:
            key = (outcome["status"], _NUMBER_IN_MESSAGE.sub("#", outcome["message"]))
        else:
            key = (outcome["status"], problem["file"], problem["line"], problem["column"],
                   problem["path"], _NUMBER_IN_MESSAGE.sub("#", problem["message"]), problem["allowed"])
        groups.setdefault(key, []).append(outcome)

    entries = []
    for members in groups.values():
        problem = members[0].get("problem")
        entries.append({
            "status": members[0]["status"],
            "field": None if problem is None else problem["path"],
            "draws": len(members),
            "message": _group_message(members),
        })
    return sorted(entries, key=lambda entry: -entry["draws"])


def _group_message(members: list[dict]) -> str:
    """Return one message for draws that share a field and rule."""
    problem = members[0].get("problem")
    if problem is None:
        return _merge_numbers([member["message"] for member in members])

    message = _merge_numbers([member["problem"]["message"] for member in members])
    text = Problem(problem["file"], problem["line"], problem["column"], problem["path"],
                   message).format()
    details = []
    values = [member["problem"]["value"] for member in members if "value" in member["problem"]]
    if values:
        details.append(f"got {_value_range(values)}")
    if problem["allowed"]:
        details.append(f"allowed: {problem['allowed']}")
    return text + (f" ({'; '.join(details)})" if details else "")


def _merge_numbers(messages: list[str]) -> str:
    """Merge messages that differ only in their numbers, writing each number that differs as [min, max]."""
    pieces = [_NUMBER_IN_MESSAGE.split(message) for message in messages]
    numbers = [_NUMBER_IN_MESSAGE.findall(message) for message in messages]
    merged = pieces[0][0]
    for position, text in enumerate(pieces[0][1:]):
        distinct = {message_numbers[position] for message_numbers in numbers}
        if len(distinct) == 1:
            merged += distinct.pop()
        else:
            values = [float(number) for number in distinct]
            merged += f"[{min(values):.6g}, {max(values):.6g}]"
        merged += text
    return merged


def _value_range(values: list) -> str:
    """Return the offending values of a group compactly: one value, a range, or the first three."""
    distinct = list(dict.fromkeys(format_value(value) for value in values))
    if len(distinct) == 1:
        return distinct[0]
    if all(isinstance(value, (int, float)) and not isinstance(value, bool) for value in values):
        return f"{len(values)} values in [{min(values):.6g}, {max(values):.6g}]"
    more = f" and {len(distinct) - 3} more" if len(distinct) > 3 else ""
    return ", ".join(distinct[:3]) + more


def _summary(sample: np.ndarray) -> dict | None:
    if sample.size == 0:
        return None
    low, middle, high = np.percentile(sample, [5, 50, 95])
    return {"mean": float(sample.mean()),
            "standard_deviation": float(sample.std(ddof=1)) if sample.size > 1 else 0.0,
            "p5": float(low), "p50": float(middle), "p95": float(high)}


class VaryInterrupted(KeyboardInterrupt):
    """Ctrl-C during the draws of ``run_vary``, with the draws finished by then in ``result``.

    It is a ``KeyboardInterrupt``, so a caller that does not look for it still
    stops as on any Ctrl-C.
    """

    def __init__(self, result: VaryResult, requested: int) -> None:
        super().__init__()
        self.result = result
        self.requested = requested


def run_vary(filename: str, texts: list[str], draws: int, seed: int, workers: int = 1,
             progress: bool = False) -> VaryResult:
    """Draw the varied fields, score the treaty at every draw and collect the outcomes.

    With ``progress``, a run that takes longer than ``FIRST_NOTE_SECONDS``
    writes the draws done to stderr (``ProgressNotes``).

    Raises
    ------
    VaryInterrupted
        On Ctrl-C, after any worker processes have stopped.
    """
    from engine.sweep import check_missing_fields, read_treaty_mapping

    if draws < 3:
        raise VaryError(f"--draws must be at least 3, got {draws}")
    if draws > MAX_DRAWS:
        raise VaryError(f"--draws must be at most {MAX_DRAWS:,}, got {draws:,}; each draw is a "
                        "full score, so more would run for days")
    problem = worker_count_problem(workers)
    if problem is not None:
        raise VaryError(problem)
    loaded = read_treaty_mapping(filename)
    fields = parse_varied(loaded.data, texts, filename)
    values = draw_values(fields, draws, seed)

    # A field that the file leaves out may not accept a number at all, such
    # as a state the environment lacks. As in a sweep, that is an error in the
    # request rather than a run of invalid draws. The check stops at the first
    # draw that passes, and every draw would be validated anyway.
    added = [Axis(field.path, values[:, column], field.targets) for column, field in enumerate(fields)
             if any(target.missing for target in field.targets)]
    if added:
        check_missing_fields(loaded.data, filename, loaded.positions, added, values_name="drawn value")

    outcomes: list[dict] = []
    try:
        with ProgressNotes("score --vary", draws, "draws", enabled=progress) as notes:
            _score_draws(loaded, filename, fields, values, workers, outcomes, notes)
    except KeyboardInterrupt as interrupt:
        # The draws arrive in order, so the finished ones are the first
        # len(outcomes) rows of values: a smaller sample of the same distribution.
        finished = _vary_result(filename, loaded, seed, fields, values[:len(outcomes)], outcomes)
        raise VaryInterrupted(finished, draws) from interrupt
    return _vary_result(filename, loaded, seed, fields, values, outcomes)


def _score_draws(loaded, filename: str, fields: list[VariedField], values: np.ndarray, workers: int,
                 outcomes: list[dict], notes: ProgressNotes) -> None:
    """Score every row of ``values``, appending each outcome to ``outcomes`` as it arrives.

    The outcomes go into the caller's list so that the draws finished before
    an interrupt remain there.
    """
    if workers <= 1:
        for row in values:
            outcomes.append(score_draw(loaded.data, loaded.positions, filename, fields, row))
            notes.advance(1)
        return

    # One draw per task, so that results arrive draw by draw for the progress
    # notes and for the report after Ctrl-C. A task costs the pool about 0.4 ms
    # (measured on 2 vCPUs), while a draw is a full score of milliseconds to minutes.
    with WorkerPool(workers, _init_worker, (loaded.data, loaded.positions, filename, fields)) as pool:
        for outcome in pool.map(_score_draw, values, chunksize=1):
            outcomes.append(outcome)
            notes.advance(1)


def _vary_result(filename: str, loaded, seed: int, fields: list[VariedField], values: np.ndarray,
                 outcomes: list[dict]) -> VaryResult:
    return VaryResult(filename=filename, name=str(loaded.data.get("name", "")), seed=seed,
                      fields=fields, values=values, outcomes=outcomes)


def format_vary(result: dict) -> str:
    """Return the text report of a ``--vary`` run."""
    lines = [f"{result['file']} ({result['treaty']}): {result['draws']} draws, seed {result['seed']}"]
    if result.get("interrupted"):
        lines[0] += (f" (partial: interrupted after {result['draws']} of "
                     f"{result['draws_requested']} draws)")
    for field in result["varied"]:
        lines.append(f"  {field['path']} ~ {field['distribution']}")
    skipped = result["invalid_draws"] + result["failed_draws"]
    if skipped:
        lines.append(f"  draws left out: {result['invalid_draws']} invalid, "
                     f"{result['failed_draws']} failed to solve")
        for problem in result["problems"]:
            lines.append(f"    {problem['draws']} x {problem['message']}")
    if result["p_agreement"] is None:
        lines.append("no valid draw")
        return "\n".join(lines)
    lines.append(f"P(agreement) = {result['p_agreement']:.3f} +- "
                 f"{result['p_agreement_standard_error']:.3f} over {result['valid_draws']} valid draws")
    terms = result["terms"]
    if terms is not None:
        lines.append(f"terms: mean {terms['mean']:.4f}, 5% {terms['p5']:.4f}, "
                     f"median {terms['p50']:.4f}, 95% {terms['p95']:.4f}")
    lines.append("effect on agreement (top third minus bottom third of the draws):")
    for row in result["sensitivity"]:
        if row["difference"] is None:
            lines.append(f"  {row['path']}: not enough distinct draws")
        else:
            lines.append(f"  {row['path']}: {row['difference']:+.3f} +- {row['standard_error']:.3f}")
    return "\n".join(lines)


def run_vary_command(arguments) -> int:
    """Run ``treaty score --vary``; return the exit code."""
    import json

    from engine.simulate import draw_seed

    seed = arguments.seed if arguments.seed is not None else draw_seed()
    try:
        result = run_vary(arguments.file, arguments.vary, arguments.draws, seed, arguments.workers,
                          progress=True)
    except VaryInterrupted as interrupt:
        return report_interrupted(interrupt, arguments.json)
    except SpecError as error:
        for problem in error.problems:
            print(problem.format(), file=sys.stderr)
        return 2
    except (VaryError, SweepError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    report = result.to_dict()
    if report["valid_draws"] == 0 and report["failed_draws"] == 0:
        # Every draw was invalid. When the file itself is invalid, that is the
        # error to report, as a plain score of the file would.
        problems = _file_problems(arguments.file)
        if problems:
            for problem in problems:
                print(problem.format(), file=sys.stderr)
            return 2
    print(json.dumps(report, indent=2) if arguments.json else format_vary(report))
    return 0


def report_interrupted(interrupt: VaryInterrupted, as_json: bool) -> int:
    """Print the report of the draws finished before Ctrl-C, marked partial, and return 130.

    The report goes to stdout like a complete one, and one ``interrupted``
    line with the count of finished draws goes to stderr.
    """
    import json

    from engine.cli import EXIT_INTERRUPTED

    finished = len(interrupt.result.outcomes)
    counted = f"interrupted after {finished:,} of {interrupt.requested:,} draws"
    if finished == 0:
        print(f"{counted}; there is no result to report", file=sys.stderr)
        return EXIT_INTERRUPTED

    report = interrupt.result.to_dict()
    report["interrupted"] = True
    report["draws_requested"] = interrupt.requested
    print(json.dumps(report, indent=2) if as_json else format_vary(report))
    print(f"{counted}; the report covers only those draws and is marked partial", file=sys.stderr)
    return EXIT_INTERRUPTED


def _file_problems(filename: str) -> list:
    """Return the validation problems of the file as written (empty when it is valid)."""
    from engine.loader import load_treaty

    try:
        load_treaty(filename)
    except SpecError as error:
        return list(error.problems)
    return []
