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
example a discount factor of 1.2 from a wide normal) is not scored; it is
counted and reported, with the first problem found.
"""

from __future__ import annotations

import math
import re
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.errors import SolverError, SpecError
from engine.sweep_axes import SweepError, Target, apply_values, named_path, resolve_path
from engine.worker_pool import WorkerPool

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


def parse_varied(data: dict, texts: list[str]) -> list[VariedField]:
    """Parse every ``PATH=DIST`` option and resolve its path in the treaty mapping."""
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
        fields.append(VariedField(path.strip(), targets, parse_distribution(distribution)))
    return fields


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
        return {"status": "invalid", "message": str(error).strip().splitlines()[0]}
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

        problems: dict[str, int] = {}
        for outcome in self.outcomes:
            if outcome["status"] != "ok":
                problems[outcome["message"]] = problems.get(outcome["message"], 0) + 1
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
            "problems": [{"message": message, "draws": count} for message, count in problems.items()],
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


def _summary(sample: np.ndarray) -> dict | None:
    if sample.size == 0:
        return None
    low, middle, high = np.percentile(sample, [5, 50, 95])
    return {"mean": float(sample.mean()),
            "standard_deviation": float(sample.std(ddof=1)) if sample.size > 1 else 0.0,
            "p5": float(low), "p50": float(middle), "p95": float(high)}


def run_vary(filename: str, texts: list[str], draws: int, seed: int, workers: int = 1) -> VaryResult:
    """Draw the varied fields, score the treaty at every draw and collect the outcomes."""
    from engine.sweep import read_treaty_mapping

    if draws < 3:
        raise VaryError(f"--draws must be at least 3, got {draws}")
    if draws > MAX_DRAWS:
        raise VaryError(f"--draws must be at most {MAX_DRAWS:,}, got {draws:,}; each draw is a "
                        "full score, so more would run for days")
    loaded = read_treaty_mapping(filename)
    fields = parse_varied(loaded.data, texts)
    values = draw_values(fields, draws, seed)

    if workers <= 1:
        outcomes = [score_draw(loaded.data, loaded.positions, filename, fields, row) for row in values]
    else:
        with WorkerPool(workers, _init_worker, (loaded.data, loaded.positions, filename, fields)) as pool:
            outcomes = list(pool.map(_score_draw, values, chunksize=max(1, draws // (4 * workers))))
    return VaryResult(filename=filename, name=str(loaded.data.get("name", "")), seed=seed,
                      fields=fields, values=values, outcomes=outcomes)


def format_vary(result: dict) -> str:
    """Return the text report of a ``--vary`` run."""
    lines = [f"{result['file']} ({result['treaty']}): {result['draws']} draws, seed {result['seed']}"]
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
        result = run_vary(arguments.file, arguments.vary, arguments.draws, seed, arguments.workers)
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


def _file_problems(filename: str) -> list:
    """Return the validation problems of the file as written (empty when it is valid)."""
    from engine.loader import load_treaty

    try:
        load_treaty(filename)
    except SpecError as error:
        return list(error.problems)
    return []
