"""Predict agreement, terms and survival for a compiled treaty.

The steps, for a game with parties ``i`` and start state ``s0``:

1. Solve the game on the strictness grid with every party strategic.  A
   strictness is in the zone of agreement when the selected equilibrium starts
   with everyone complying and every party's value, net of its negotiation
   cost, is at least its no-treaty value ``d_i``.
2. Solve again with only party ``i`` strategic (the others bound to comply) to
   find the strictness values party ``i`` accepts.
3. Refine every endpoint between grid points to ``ENDPOINT_TOLERANCE`` by
   k-section, with extra points at an interpolated estimate of the endpoint.
4. Pick the terms by the bargaining rule over the zone, refining the best grid
   point locally by zooming, with extra points at an estimate of the peak.
5. Propagate the treaty at the terms (or at an accepted proposal) under the
   declared chain for survival, streams and node outcomes.
"""

from __future__ import annotations

import math
from warnings import catch_warnings, simplefilter
from dataclasses import dataclass, field

import numpy as np

from engine.bargaining import bargaining_objective
from engine.dynamic import BREAKDOWN, COMPLY
from engine.game import Game
from engine.solve import Columns, Solver, combine_policies
from engine.survival import period_at_year, propagate

ENDPOINT_TOLERANCE = 1e-7
# Decimals kept for located strictness values (zone, accepted intervals, terms) in
# JSON. The engine locates none of them closer than ENDPOINT_TOLERANCE, so 8
# decimals keep every digit that carries information. Rounding to 8, inwards for
# interval ends, moves a value by less than 1e-8, a tenth of the tolerance.
STRICTNESS_DECIMALS = 8
SECTIONS = 16
# Points placed around an interpolated estimate (a zone endpoint or the peak of
# the bargaining objective) lie LADDER_STEP * ENDPOINT_TOLERANCE apart next to
# it, then at offsets growing by LADDER_GROWTH.  A solver call costs far more
# than one extra point in it, so these points buy rounds cheaply.
LADDER_STEP = 0.9
LADDER_GROWTH = 4.0
# Each round of the terms search spreads REFINE_POINTS evenly spaced points over
# the two cells next to its best point, so the cells become at least 15 times
# narrower. Even where no estimate of the peak helps (a peak at a jump of the
# objective), REFINE_ROUNDS rounds take them from 0.01 (the default grid of 101
# points) to 0.01 / 15**5 < ENDPOINT_TOLERANCE.
REFINE_ROUNDS = 6
REFINE_POINTS = 31
# Lifetimes are propagated for at least this many years before a geometric tail is added.
LIFETIME_YEARS = 400
# Largest relative change of the chance of ending per cycle between the last
# two tenths of the propagation. Past it the propagation runs twice as long,
# up to MAX_LIFETIME_PERIODS periods.
ENDING_RATE_TOLERANCE = 0.01
MAX_LIFETIME_PERIODS = 102_400


@dataclass
class PartyScore:
    """One party's position under the predicted treaty."""

    name: str
    accepts: tuple[float, float] | None
    value_with_treaty: float | None
    value_without_treaty: float
    margin: float | None
    binding: dict | None


@dataclass
class Score:
    """Everything ``treaty score`` reports for one treaty."""

    treaty: str
    schema: str
    agreement: bool
    zone: tuple[float, float] | None
    terms: float | None
    parties: list[PartyScore]
    proposal: dict | None
    streams: dict
    renegotiation_periods: list[dict]
    # survival[k - 1]: probability that the treaty is alive at the end of year k,
    # after the expiry, renegotiation, lapse or breakdown decided at that moment.
    survival: list[float]
    expected_lifetime_years: float | None
    settings: dict
    converged: bool
    solver: dict
    warnings: list[str] = field(default_factory=list)
    evaluated_strictness: float | None = None
    # With a sunset clause: per state, the lottery of terms agreed when the
    # parties renegotiate at expiry (an empty list: the treaty lapses there).
    renegotiation_terms: dict[str, list[dict]] | None = None

    def to_dict(self) -> dict:
        """Return the JSON object of the score, with the keys the format fixes.

        Located strictness values are rounded to ``STRICTNESS_DECIMALS``. Values,
        margins, slacks and probabilities keep every digit, because they come from
        the solver at its own tolerance. The attributes of the score stay unrounded.
        """
        result = {
            "treaty": self.treaty,
            "schema": self.schema,
            "agreement": self.agreement,
            "zone": rounded_interval(self.zone),
            "terms": rounded_terms(self.terms, self.zone),
        }
        if self.proposal is not None:
            result["proposal"] = _rounded_proposal(self.proposal)
        result["parties"] = [
            {
                "name": party.name,
                "accepts": rounded_interval(party.accepts),
                "value_with_treaty": party.value_with_treaty,
                "value_without_treaty": party.value_without_treaty,
                "margin": party.margin,
                "binding": _rounded_binding(party.binding),
            }
            for party in self.parties
        ]
        result["streams"] = self.streams
        result["renegotiation_periods"] = self.renegotiation_periods
        if self.renegotiation_terms is not None:
            result["renegotiation_terms"] = {
                state: [{"strictness": _rounded_strictness(item["strictness"]),
                         "probability": item["probability"]} for item in lottery]
                for state, lottery in self.renegotiation_terms.items()
            }
        result["survival"] = self.survival
        result["expected_lifetime_years"] = self.expected_lifetime_years
        result["settings"] = self.settings
        result["converged"] = self.converged
        result["solver"] = self.solver
        result["warnings"] = self.warnings
        return result


def _rounded_strictness(value: float | None) -> float | None:
    return None if value is None else round(float(value), STRICTNESS_DECIMALS)


def rounded_interval(interval: tuple[float, float] | None) -> list[float] | None:
    """Round a located interval inwards, so that both rounded ends still lie inside it.

    Nearest rounding could move an end just outside the interval, and a
    proposal at the printed end would then be rejected.
    """
    if interval is None:
        return None
    low, high = inward_rounded(interval, STRICTNESS_DECIMALS)
    if low > high:
        # Narrower than the last decimal: no rounded value lies inside.
        return [_rounded_strictness(interval[0]), _rounded_strictness(interval[1])]
    return [low, high]


def inward_rounded(interval: tuple[float, float], decimals: int) -> tuple[float, float]:
    """Round the lower end of an interval up and the upper end down to ``decimals`` decimals.

    The ends cross (low > high) when no value with that many decimals lies inside.
    """
    scale = 10.0 ** decimals
    low = math.ceil(round(float(interval[0]) * scale, 6)) / scale
    high = math.floor(round(float(interval[1]) * scale, 6)) / scale
    return low, high


def _intervals_text(intervals) -> str:
    """Format intervals for a warning, each rounded inwards as the JSON zone is, without trailing zeros."""
    texts = []
    for interval in intervals:
        low, high = rounded_interval(interval)
        texts.append(f"[{_plain_number(low)}, {_plain_number(high)}]")
    return ", ".join(texts)


def _plain_number(value: float) -> str:
    """Format a rounded strictness with its decimals and no trailing zeros: 0.418, not 0.41800000."""
    text = f"{value:.{STRICTNESS_DECIMALS}f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


def rounded_terms(terms: float | None, zone: tuple[float, float] | None) -> float | None:
    """Round located terms to ``STRICTNESS_DECIMALS`` without leaving the rounded zone."""
    rounded = _rounded_strictness(terms)
    bounds = rounded_interval(zone)
    if rounded is None or bounds is None or bounds[0] > bounds[1]:
        return rounded
    return min(max(rounded, bounds[0]), bounds[1])


def _rounded_proposal(proposal: dict) -> dict:
    # The proposed strictness is the file's own number and is echoed as written.
    # Its distance from the located terms carries the terms' precision.
    rounded = dict(proposal)
    rounded["difference_from_terms"] = _rounded_strictness(proposal["difference_from_terms"])
    return rounded


def _rounded_binding(binding: dict | None) -> dict | None:
    # A party that accepts nothing reports the grid point it came closest at.
    if binding is None or binding.get("strictness") is None:
        return binding
    return {**binding, "strictness": _rounded_strictness(binding["strictness"])}


@dataclass
class _Samples:
    """Evaluated strictness values of one bracket, with what decides feasibility there."""

    gammas: np.ndarray
    # Whether the equilibrium at each value starts with everyone complying.
    starts: np.ndarray
    # Rows: each considered margin plus its allowance, then each strategic
    # party's incentive slack in the start state (see ``_Feasibility.targets``).
    targets: np.ndarray

    def add(self, gammas: np.ndarray, starts: np.ndarray, targets: np.ndarray) -> "_Samples":
        return _Samples(np.concatenate([self.gammas, gammas]),
                        np.concatenate([self.starts, starts]),
                        np.concatenate([self.targets, targets], axis=1))


class _Feasibility:
    """Agreement test of one solver: the strictness values that meet its conditions."""

    def __init__(self, solver: Solver, considered: np.ndarray, negotiation: np.ndarray):
        self.solver = solver
        self.considered = considered
        game = solver.game
        self.start_phase = solver.core.phases.start
        self.start_state = game.start
        self.disagreement = solver.core.own.no_treaty[:, game.start] + negotiation
        # Feasibility and margins at every strictness evaluated so far.
        self._seen: dict[float, tuple[bool, np.ndarray]] = {}
        # A considered margin may fall this far below zero by rounding and still count.
        self.allowance = 1e-12 * (1.0 + np.abs(self.disagreement[considered]))

    def margins(self, columns: Columns) -> np.ndarray:
        return columns.own.start_values - self.disagreement[:, None]

    def starts(self, columns: Columns) -> np.ndarray:
        """Return whether the equilibrium of each column starts with everyone complying."""
        return columns.own.policy.codes[0][:, self.start_phase, self.start_state] == COMPLY

    def targets(self, columns: Columns) -> np.ndarray:
        """Return the quantities whose signs decide feasibility, one row each.

        Each considered margin plus its allowance must be at least zero.  The
        equilibrium can start with everyone complying only while each
        strategic party's incentive slack in the start state is at least zero,
        up to the solver's tie tolerance.
        """
        gaps = self.margins(columns)[self.considered] + self.allowance[:, None]
        strategic = np.asarray(self.solver.core.strategic, dtype=bool)
        slack = columns.own.slack[strategic][:, :, self.start_state]
        return np.concatenate([gaps, slack], axis=0)

    def mask(self, columns: Columns) -> np.ndarray:
        margins = self.margins(columns)[self.considered]
        return self.starts(columns) & np.all(margins >= -self.allowance[:, None], axis=0)

    def _remember(self, gammas: np.ndarray, columns: Columns) -> None:
        """Keep feasibility and margins at ``gammas``, so that a later search can reuse them."""
        ok, margins = self.mask(columns), self.margins(columns)
        for index, gamma in enumerate(np.asarray(gammas, dtype=float)):
            self._seen[float(gamma)] = (bool(ok[index]), margins[:, index].copy())

    def known(self, gammas: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """Return feasibility and margins at ``gammas`` if all were evaluated before, else None."""
        found = [self._seen.get(float(gamma)) for gamma in gammas]
        if any(entry is None for entry in found):
            return None
        return (np.array([entry[0] for entry in found]),
                np.stack([entry[1] for entry in found], axis=1))

    def at(self, gammas) -> tuple[np.ndarray, Columns]:
        columns = self.solver.evaluate(gammas)
        return self.mask(columns), columns

    def intervals(self) -> list[tuple[float, float]]:
        """Maximal intervals of feasible strictness, endpoints refined between grid points."""
        base = self.solver.solve()
        grid = base.gammas
        feasible = self.mask(base)
        runs = []
        index = 0
        while index < len(grid):
            if not feasible[index]:
                index += 1
                continue
            first = index
            while index + 1 < len(grid) and feasible[index + 1]:
                index += 1
            runs.append((first, index))
            index += 1

        # Every endpoint strictly inside [0, 1] lies between an infeasible and a
        # feasible grid point; refine them all together.
        brackets = []
        for first, last in runs:
            if first > 0:
                brackets.append([grid[first - 1], grid[first]])
            if last < len(grid) - 1:
                brackets.append([grid[last + 1], grid[last]])
        self._remember(grid, base)
        grid_samples = _Samples(np.asarray(grid, dtype=float), self.starts(base), self.targets(base))
        refined = iter(self._refine(brackets, grid_samples))

        found = []
        for first, last in runs:
            low = grid[first] if first == 0 else next(refined)
            high = grid[last] if last == len(grid) - 1 else next(refined)
            found.append((float(low), float(high)))
        return found

    def add_pockets(self, found: list[tuple[float, float]], seeds) -> tuple[list, list]:
        """Add the intervals around feasible ``seeds`` that ``found`` misses; return all and the new ones.

        An interval narrower than the grid spacing can contain no grid point,
        so ``intervals`` cannot see it. Each seed outside ``found`` that is
        feasible lies in such an interval, which is refined from the seed out
        to the nearest strictness evaluated as infeasible on either side.
        """
        # A seed at an end of a found interval, within rounding, is inside it.
        outside = sorted({float(seed) for seed in seeds
                          if not any(low - 1e-9 <= seed <= high + 1e-9 for low, high in found)})
        if not outside:
            return found, []
        ok, columns = self.at(outside)
        self._remember(outside, columns)
        samples = _Samples(np.asarray(outside), self.starts(columns), self.targets(columns))

        added: list[tuple[float, float]] = []
        for seed, feasible in zip(outside, ok):
            if not feasible or any(low <= seed <= high for low, high in added):
                continue
            failed = [gamma for gamma, (passed, _) in self._seen.items() if not passed]
            below = [gamma for gamma in failed if gamma < seed]
            above = [gamma for gamma in failed if gamma > seed]
            brackets = [[max(below), seed]] if below else []
            brackets += [[min(above), seed]] if above else []
            ends = iter(self._refine(brackets, samples))
            # _refine returns each bracket's inside end, in the order given.
            low = next(ends) if below else 0.0
            high = next(ends) if above else 1.0
            added.append((float(low), float(high)))

        merged: list[tuple[float, float]] = []
        for low, high in sorted(found + added):
            if merged and low <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], high))
            else:
                merged.append((low, high))
        return merged, added

    def _refine(self, brackets: list[list[float]], grid_samples: _Samples) -> list[float]:
        """Shrink each (outside, inside) bracket to at most ``ENDPOINT_TOLERANCE`` wide.

        A round evaluates the points of every open bracket in one solver call:
        ``SECTIONS - 1`` evenly spaced interior points, as plain k-section would,
        and points around an interpolated estimate of where a considered margin
        first falls below zero (see ``_crossing_estimate``).  The bracket then
        shrinks to the first change of feasibility seen from its inside end.
        So no round shrinks it less than k-section alone, and a good estimate
        closes it in that round.  Both ends of a returned bracket were
        evaluated: the outside one is infeasible and the inside one, which is
        returned, is feasible.
        """
        if not brackets:
            return []
        brackets = np.array(brackets, dtype=float)
        samples = [grid_samples] * len(brackets)
        fractions = np.linspace(0.0, 1.0, SECTIONS + 1)[1:-1]
        while True:
            widths = np.abs(brackets[:, 1] - brackets[:, 0])
            open_rows = np.flatnonzero(widths > ENDPOINT_TOLERANCE)
            if open_rows.size == 0:
                break

            # The points of all open brackets go into one call, because the
            # fixed cost of a call dominates its cost per point.
            per_row = []
            for row in open_rows:
                outside, inside = brackets[row]
                points = inside + fractions * (outside - inside)
                estimate = _crossing_estimate(outside, inside, samples[row])
                if estimate is not None:
                    points = np.concatenate([points, _ladder(estimate, outside, inside)])
                per_row.append(np.unique(points))
            gammas = np.concatenate(per_row)
            columns = self.solver.evaluate(gammas)
            self._remember(gammas, columns)
            ok, starts, targets = self.mask(columns), self.starts(columns), self.targets(columns)

            offset = 0
            for row, points in zip(open_rows, per_row):
                taken = slice(offset, offset + len(points))
                offset += len(points)
                samples[row] = samples[row].add(points, starts[taken], targets[:, taken])
                brackets[row] = _first_change(brackets[row], points, ok[taken])
        return brackets[:, 1].tolist()


def _measured_cycle(cycle: int, periods: int) -> int:
    """Return the cycle over which the survival ratio is measured: ``cycle``, or one period where it is too long."""
    # A cycle this long cannot be measured within the propagation.
    return 1 if cycle >= periods // 2 else cycle


def _survival_per_cycle(alive: np.ndarray, cycle: int, back: int) -> float:
    """Return the survival per cycle over a window of about a tenth of ``alive``, ``back`` windows from its end.

    Both ends of the window sit at the same clock position (an expiry
    every term, say), so the ratio is measured over whole cycles.
    """
    periods = len(alive)
    cycle = _measured_cycle(cycle, periods)
    cycles = max(round(periods / 10 / cycle), 1)
    window = cycles * cycle
    end = periods - 1 - back * window
    start = end - window
    if start < 0 or alive[start] <= 0:
        return 0.0
    return (float(alive[end]) / float(alive[start])) ** (1.0 / cycles)


def _ending_rate_settled(alive: np.ndarray, cycle: int) -> bool:
    """Return whether the chance of ending per cycle is the same, to 1%, in the last two windows of ``alive``."""
    last = 1.0 - _survival_per_cycle(alive, cycle, 0)
    before = 1.0 - _survival_per_cycle(alive, cycle, 1)
    return abs(last - before) <= ENDING_RATE_TOLERANCE * max(last, before, 1e-300)


def _survival_cycle(solver: Solver) -> int:
    """Return the periods after which the clock repeats: the loop of a treaty without a sunset
    clause, else every segment of the term and its extensions plus the renegotiation delay.

    NOTE: where the parties extend only in some states, cycles of different
    lengths mix, and the tail of the expected lifetime is an approximation.
    """
    clock = solver.core.clock
    if clock.cyclic:
        return int(clock.size - clock.next[-1])
    return int(clock.size + solver.game.rules.duration.delay)


def _overlap(party_intervals: list[list[tuple[float, float]]]) -> list[tuple[float, float]]:
    """Return the intervals of strictness that every party's accepted set contains."""
    common = party_intervals[0] if party_intervals else []
    for intervals in party_intervals[1:]:
        common = [(max(low, other_low), min(high, other_high))
                  for low, high in common for other_low, other_high in intervals
                  if max(low, other_low) <= min(high, other_high)]
    return common


def _first_change(bracket: np.ndarray, points: np.ndarray, ok: np.ndarray) -> list[float]:
    """Return the sub-bracket (outside, inside) where feasibility first changes from the inside end."""
    outside, inside = bracket
    distance = np.abs(points - inside)
    order = np.argsort(distance, kind="stable")
    failing = np.flatnonzero(~ok[order])
    if failing.size == 0:
        # Every new point is feasible: the change lies past the farthest one.
        return [outside, float(points[order[-1]])]
    first_fail = failing[0]
    new_inside = inside if first_fail == 0 else float(points[order[first_fail - 1]])
    return [float(points[order[first_fail]]), new_inside]


def _ladder(center: float, one_end: float, other_end: float) -> np.ndarray:
    """Return points around ``center``, strictly between the two ends.

    They lie at ``0, +-1, +-2`` steps of ``LADDER_STEP * ENDPOINT_TOLERANCE``
    and then at offsets that grow by ``LADDER_GROWTH`` up to the bracket's
    width.  When the estimate is within two steps of a change of feasibility,
    two neighbouring points less than ``ENDPOINT_TOLERANCE`` apart straddle
    it.  When it is farther off, two neighbouring points still enclose the
    change in an interval at most about three times the error of the
    estimate, where the next estimate is much closer.
    """
    low, high = min(one_end, other_end), max(one_end, other_end)
    step = LADDER_STEP * ENDPOINT_TOLERANCE
    offsets = [0.0, 1.0, 2.0]
    while offsets[-1] * step < high - low:
        offsets.append(offsets[-1] * LADDER_GROWTH)
    offsets = np.array(offsets) * step
    points = np.concatenate([center - offsets[1:], center + offsets])
    return points[(points > low) & (points < high)]


def _crossing_estimate(outside: float, inside: float, samples: _Samples) -> float | None:
    """Estimate where feasibility is lost between the inside and the outside end.

    Feasibility needs every considered gap (margin plus allowance) to be at
    least zero and the equilibrium to start with everyone complying, which
    fails where a strategic party's incentive slack in the start state turns
    negative.  These targets are continuous only while the equilibrium keeps
    its policy.  So when the outside end still starts complying, each target
    that is negative there is interpolated through both ends and the nearest
    complying point beyond each end.  When it does not, the policy changed
    inside the bracket and each target is extrapolated from the inside end
    and the two nearest complying points beyond it.  The estimate is the
    root closest to the inside end. A wrong one costs extra points in the
    round, never a wider bracket.
    """
    where_outside = np.flatnonzero(samples.gammas == outside)
    where_inside = np.flatnonzero(samples.gammas == inside)
    if where_outside.size == 0 or where_inside.size == 0:
        return None
    at_outside, at_inside = where_outside[0], where_inside[0]
    same_policy = bool(samples.starts[at_outside])

    # Position along the bracket: 0 at the inside end, 1 at the outside end.
    position = (samples.gammas - inside) / (outside - inside)
    behind = np.flatnonzero((position < 0.0) & samples.starts)
    behind = behind[np.argsort(-position[behind], kind="stable")]
    if same_policy:
        ahead = np.flatnonzero((position > 1.0) & samples.starts)
        ahead = ahead[np.argsort(position[ahead], kind="stable")]
        used = [at_inside, at_outside] + behind[:1].tolist() + ahead[:1].tolist()
    else:
        used = [at_inside] + behind[:2].tolist()
    if len(used) < 2:
        return None
    nodes = [float(position[j]) for j in used]

    first = None
    for target in samples.targets:
        values = [float(target[j]) for j in used]
        # Feasible at the inside end means nonnegative up to rounding.
        values[0] = max(values[0], 0.0)
        coefficients = _newton_coefficients(nodes, values)
        if _newton_value(coefficients, nodes, 1.0) >= 0.0:
            continue
        root = _bisect_root(coefficients, nodes)
        first = root if first is None else min(first, root)
    if first is None:
        return None
    return float(inside + first * (outside - inside))


def _newton_coefficients(nodes: list[float], values: list[float]) -> list[float]:
    """Return the divided differences of the interpolating polynomial in Newton form."""
    coefficients = list(values)
    for order in range(1, len(nodes)):
        for j in range(len(nodes) - 1, order - 1, -1):
            coefficients[j] = (coefficients[j] - coefficients[j - 1]) / (nodes[j] - nodes[j - order])
    return coefficients


def _newton_value(coefficients: list[float], nodes: list[float], x: float) -> float:
    value = coefficients[-1]
    for j in range(len(coefficients) - 2, -1, -1):
        value = coefficients[j] + (x - nodes[j]) * value
    return value


def _bisect_root(coefficients: list[float], nodes: list[float]) -> float:
    """Locate a sign change in [0, 1] of a polynomial that is >= 0 at 0 and < 0 at 1.

    Fifty halvings leave an interval below 1e-15 of the bracket, far finer
    than any ladder step.
    """
    low, high = 0.0, 1.0
    for _ in range(50):
        middle = 0.5 * (low + high)
        if _newton_value(coefficients, nodes, middle) >= 0.0:
            low = middle
        else:
            high = middle
    return 0.5 * (low + high)


def _best_terms(feasibility: _Feasibility, zone_list, weights, rule) -> tuple[float, tuple] | None:
    """Maximise the bargaining objective over the zone; return terms and their interval.

    The first round evaluates the zone's ends and the grid points inside it.
    Each later round evaluates ``REFINE_POINTS`` evenly spaced points between
    the neighbours of the best point so far, as a plain zoom would, plus
    points around a polynomial estimate of the peak and next to the best
    point itself (see ``_peak_points``).  The search stops when the best
    evaluated point's nearest evaluated neighbours both lie within
    ``ENDPOINT_TOLERANCE`` of it, so for an objective with one peak between
    them the maximiser is that close to the terms returned.  Ties go to the
    smallest strictness.

    NOTE: after ``REFINE_ROUNDS`` rounds the search stops anyway and returns
    its best point. A smooth peak takes two rounds, and with a grid of at
    least 15 points the zoom alone gets any single peak within the tolerance
    in time. An objective that is flat to rounding error, where no maximiser
    is defined, can use up every round.
    """
    best = None
    for low, high in zone_list:
        points = np.unique(np.concatenate([[low, high], feasibility.solver.grid]))
        points = points[(points >= low) & (points <= high)]
        gammas = np.zeros(0)
        objectives = np.zeros(0)
        # A peak estimate that missed the new best point by more than the zoom's
        # spacing points to a peak at a jump or kink, where no polynomial fits:
        # later rounds then place no points around estimates.
        trusted = True
        estimate = None
        for _ in range(REFINE_ROUNDS):
            # The first round's points (the zone's ends and grid points) were
            # usually all solved while locating the zone, so they cost no call.
            known = feasibility.known(points)
            if known is None:
                ok, columns = feasibility.at(points)
                margins = feasibility.margins(columns)
            else:
                ok, margins = known
            objective = bargaining_objective(margins, weights, rule)
            objective = np.where(ok, objective, -np.inf)

            # All points evaluated so far, in order of strictness.
            gammas = np.concatenate([gammas, points])
            objectives = np.concatenate([objectives, objective])
            order = np.argsort(gammas, kind="stable")
            gammas, objectives = gammas[order], objectives[order]

            pick = int(np.argmax(objectives))
            if not np.isfinite(objectives[pick]):
                # Every party gains nothing anywhere here: take the middle of the interval.
                candidate = (0.5 * (low + high), -np.inf)
            else:
                candidate = (float(gammas[pick]), float(objectives[pick]))
            if estimate is not None:
                trusted = abs(gammas[pick] - estimate) <= spacing
            left = gammas[max(pick - 1, 0)]
            right = gammas[min(pick + 1, len(gammas) - 1)]
            if max(gammas[pick] - left, right - gammas[pick]) <= ENDPOINT_TOLERANCE:
                break
            points = np.linspace(left, right, REFINE_POINTS)
            spacing = (right - left) / (REFINE_POINTS - 1)
            estimate = None
            if np.isfinite(objectives[pick]):
                extra, estimate = _peak_points(gammas, objectives, pick, trusted)
                points = np.concatenate([points, extra])
            points = np.unique(points[(points >= left) & (points <= right)])
            points = points[~np.isin(points, gammas)]
        if best is None or candidate[1] > best[0][1]:
            best = (candidate, (low, high))
    if best is None:
        return None
    return best[0][0], best[1]


def _peak_points(gammas: np.ndarray, objectives: np.ndarray, pick: int,
                 estimated: bool) -> tuple[np.ndarray, float | None]:
    """Return points next to the best point and, if ``estimated``, around an estimate of the peak.

    The estimate maximises the polynomial through the best point and up to two
    finite neighbours on each side, over the interval between its nearest
    neighbours. It is returned too, or None without one.  Points one and two
    ``LADDER_STEP`` steps from the best point settle a peak that sits on it,
    such as a kink or an end of the zone.
    """
    left = gammas[max(pick - 1, 0)]
    right = gammas[min(pick + 1, len(gammas) - 1)]
    step = LADDER_STEP * ENDPOINT_TOLERANCE
    points = [gammas[pick] + offset * step for offset in (-2.0, -1.0, 1.0, 2.0)]

    estimate = None
    first, last = pick, pick
    while first > max(pick - 2, 0) and np.isfinite(objectives[first - 1]):
        first -= 1
    while last < min(pick + 2, len(gammas) - 1) and np.isfinite(objectives[last + 1]):
        last += 1
    if estimated and first < pick < last:
        estimate = _polynomial_peak(gammas[first:last + 1], objectives[first:last + 1], left, right)
        if estimate is not None:
            points.append(_ladder(estimate, left, right))
            points.append([estimate])
    return np.concatenate([np.atleast_1d(np.asarray(item, dtype=float)) for item in points]), estimate


def _polynomial_peak(gammas: np.ndarray, objectives: np.ndarray, left: float, right: float) -> float | None:
    """Return the maximiser over [left, right] of the polynomial through the given points."""
    with catch_warnings():
        # Points a rounding error apart make the fit ill-conditioned; the
        # estimate is then poor, but the zoom points still make progress.
        simplefilter("ignore", np.exceptions.RankWarning)
        polynomial = np.polynomial.Polynomial.fit(gammas, objectives, len(gammas) - 1)
    candidates = [left, right]
    for root in polynomial.deriv().roots():
        if abs(root.imag) <= 1e-12 * (right - left) and left < root.real < right:
            candidates.append(float(root.real))
    values = polynomial(np.array(candidates))
    if not np.all(np.isfinite(values)):
        return None
    return float(candidates[int(np.argmax(values))])


def _binding(solver: Solver, columns: Columns, party: int, margin: float, states) -> dict:
    """Return the tightest constraint of ``party`` in the first period of the treaty."""
    start_phase = solver.core.phases.start
    codes = columns.own.policy.codes[0][0, start_phase, :]
    slack = columns.own.slack[party, 0, :]
    complying = codes == COMPLY
    if not complying[solver.game.start]:
        return {"state": states[solver.game.start], "constraint": "incentive", "slack": None,
                "note": "no equilibrium with compliance in the start state"}
    candidates = np.where(complying, slack, np.inf)
    state = int(np.argmin(candidates))
    if candidates[state] < margin:
        return {"state": states[state], "constraint": "incentive", "slack": float(candidates[state])}
    return {"state": states[solver.game.start], "constraint": "participation", "slack": float(margin)}


def score_game(game: Game, accepted_sets: bool = True) -> Score:
    """Solve ``game`` and assemble the full prediction.

    With ``accepted_sets=False`` and no proposal in the file, each party's
    own accepted set is not computed, which saves one solve per party.  Its
    ``accepts`` is then None, and so is its ``binding`` when there is no
    agreement.  Zone, terms, values, margins, survival and streams are the
    same.  Sweeps use this, because they report none of what it leaves out.
    """
    n = game.n_parties
    negotiation = np.array([party.negotiation_cost for party in game.parties])
    rule = game.settings.bargaining

    joint = Solver(game)
    joint_check = _Feasibility(joint, np.ones(n, dtype=bool), negotiation)
    zone_list = joint_check.intervals()
    warnings: list[str] = []

    # Each party alone: what it accepts if the others are bound to comply.
    alone_solvers = []
    party_intervals = []
    lean = not accepted_sets and game.terms is None
    for party in range(0 if lean else n):
        strategic = np.zeros(n, dtype=bool)
        strategic[party] = True
        alone = Solver(game, strategic, renegotiation=joint)
        check = _Feasibility(alone, strategic, negotiation)
        alone_solvers.append(check)
        party_intervals.append(check.intervals())

    # A zone narrower than the grid spacing may contain no grid point, so the
    # grid search cannot see it. The proposal and the middle of every overlap
    # of the accepted sets show where else to look.
    seeds = [] if game.terms is None else [game.terms]
    seeds += [0.5 * (low + high) for low, high in _overlap(party_intervals)]
    zone_list, added = joint_check.add_pockets(zone_list, seeds)
    if added:
        warnings.append(
            "the strictness values with agreement include "
            + _intervals_text(added)
            + ", found between grid points from the proposal or the overlap of the accepted "
              "sets; a finer `model.grid` shows whether there are others")

    best = _best_terms(joint_check, zone_list, joint.core.weights, rule) if zone_list else None
    terms, zone = (None, None) if best is None else best
    if len(zone_list) > 1:
        warnings.append(
            "the strictness values with agreement form several intervals: "
            + _intervals_text(zone_list)
            + "; the zone reported is the one that contains the terms")

    accepts = []
    for party, intervals in enumerate(party_intervals):
        # The terms and the proposal can lie in a part of the accepted set
        # that contains no grid point, as the zone can.
        party_seeds = [value for value in (terms, game.terms) if value is not None]
        intervals, _ = alone_solvers[party].add_pockets(intervals, party_seeds)
        chosen = None
        for interval in intervals:
            if terms is not None and interval[0] - 1e-9 <= terms <= interval[1] + 1e-9:
                chosen = interval
        if chosen is None and intervals:
            chosen = max(intervals, key=lambda item: item[1] - item[0])
        if len(intervals) > 1:
            warnings.append(
                f"{game.parties[party].name} accepts several separate intervals of strictness: "
                + _intervals_text(intervals))
        accepts.append(chosen)
    if lean:
        accepts = [None] * n

    # A concrete proposal, when the file gives one.
    proposal = None
    if game.terms is not None:
        ok, columns = joint_check.at([game.terms])
        margins = joint_check.margins(columns)[:, 0]
        per_party = []
        for party in range(n):
            alone_ok, _ = alone_solvers[party].at([game.terms])
            per_party.append({"name": game.parties[party].name, "accepts": bool(alone_ok[0]),
                              "margin": float(margins[party])})
        proposal = {
            "strictness": game.terms,
            "accepted": bool(ok[0]),
            # False where the joint equilibrium starts with a breakdown, a notice or
            # an escape. Every margin is then that of the equilibrium played instead.
            "starts_complying": bool(joint_check.starts(columns)[0]),
            "parties": per_party,
            "difference_from_terms": None if terms is None else float(game.terms - terms),
        }

    evaluated = None
    if proposal is not None and proposal["accepted"]:
        evaluated = game.terms
    elif terms is not None:
        evaluated = terms

    parties = []
    no_treaty = joint.core.own.no_treaty[:, game.start]
    evaluated_columns = joint.evaluate([evaluated]) if evaluated is not None else None
    for party in range(n):
        if evaluated_columns is not None:
            value = float(evaluated_columns.own.start_values[party, 0])
            margin = value - negotiation[party] - float(no_treaty[party])
            binding = _binding(joint, evaluated_columns, party, margin, game.states)
        elif lean:
            value, margin, binding = None, None, None
        elif accepts[party] is not None:
            # The party could live with some terms; what fails is the overlap with the others.
            value, margin = None, None
            binding = {"state": game.states[game.start], "constraint": "overlap", "slack": None,
                       "note": "accepts some strictness, but no value satisfies every party at once"}
        else:
            value, margin = None, None
            binding = _failure_binding(alone_solvers[party], party, game.states)
        parties.append(PartyScore(
            name=game.parties[party].name,
            accepts=accepts[party],
            value_with_treaty=value,
            value_without_treaty=float(no_treaty[party]),
            margin=margin,
            binding=binding,
        ))

    streams, nodes, survival, lifetime = _outlook(joint, evaluated_columns, warnings)
    stats = joint.stats
    for note in joint.notes + [note for check in alone_solvers for note in check.solver.notes]:
        if note not in warnings:
            warnings.append(note)
    settings = {
        "period_years": game.period_years,
        "bargaining": rule,
        "grid": game.settings.grid,
        "horizon_years": game.settings.horizon * game.period_years,
        "punishment": "grim reversion to no treaty",
        "equilibrium_selection": "most cooperative pure equilibrium (largest weighted joint value)",
        "after_breakdown": "no treaty for ever",
        "stage_payoffs": "linear in the share of complying partners",
        "escape_cost_type": None if game.rules.escape is None else game.rules.escape.cost_type,
        "partner_response": None if game.rules.escape is None else game.rules.escape.partner_response,
        "beliefs": "per-party" if _has_beliefs(game) else "declared chain",
        "formula": "engine",
    }
    solver_info = {
        "method": stats.method,
        "converged": stats.converged,
        "iterations": stats.iterations,
        "residual": stats.residual,
        "tolerance": game.settings.tolerance,
        "endpoint_tolerance": ENDPOINT_TOLERANCE,
    }
    return Score(
        treaty=game.name,
        schema=game.schema,
        agreement=terms is not None,
        zone=zone,
        terms=terms,
        parties=parties,
        proposal=proposal,
        streams=streams,
        renegotiation_periods=nodes,
        survival=survival,
        expected_lifetime_years=lifetime,
        settings=settings,
        converged=stats.converged,
        solver=solver_info,
        warnings=warnings,
        evaluated_strictness=evaluated,
        renegotiation_terms=_renegotiation_terms(joint),
    )


def _renegotiation_terms(joint: Solver) -> dict[str, list[dict]] | None:
    """Per state, the strictness values agreed at renegotiation and their probabilities."""
    node = joint.node_own
    if node is None:
        return None
    terms = {}
    for index, state in enumerate(joint.game.states):
        lottery = []
        for columns, probability in node.lottery():
            if columns[index] >= 0 and probability[index] > 0:
                lottery.append({"strictness": float(joint.grid[columns[index]]),
                                "probability": float(probability[index])})
        terms[state] = lottery
    return terms


def _has_beliefs(game: Game) -> bool:
    return any(not np.allclose(party.transition, game.transition) for party in game.parties)


def _failure_binding(check: _Feasibility, party: int, states) -> dict:
    """Explain why ``party`` accepts no strictness: its best grid point and what fails there."""
    base = check.solver.solve()
    margins = check.margins(base)[party]
    best = int(np.argmax(margins))
    codes = base.own.policy.codes[0][best, check.start_phase, :]
    start = check.start_state
    if codes[start] == BREAKDOWN:
        return {"state": states[start], "constraint": "incentive", "slack": None,
                "strictness": float(base.gammas[best])}
    return {"state": states[start], "constraint": "participation", "slack": float(margins[best]),
            "strictness": float(base.gammas[best])}


def _outlook(joint: Solver, evaluated: Columns | None, warnings: list[str]):
    """Streams, node outcomes, survival and lifetime of the treaty at the evaluated terms."""
    game = joint.game
    horizon = game.settings.horizon
    per_year = game.periods_per_year
    names = [party.name for party in game.parties]

    if evaluated is None:
        outlook = np.zeros(game.n_states)
        outlook[game.start] = 1.0
        without = []
        for _ in range(horizon):
            without.append(joint.core.defection @ outlook)
            outlook = outlook @ game.transition
        without = np.array(without).T if horizon else np.zeros((game.n_parties, 0))
        streams = {name: {"with_treaty": without[i].tolist(), "without_treaty": without[i].tolist()}
                   for i, name in enumerate(names)}
        return streams, [], [0.0] * int(round(horizon / per_year)), None

    base = joint.solve()
    policy = combine_policies(evaluated.own.policy, base.own.policy)
    gammas = np.concatenate([evaluated.gammas, base.gammas])
    z = joint.core.regime_values(gammas)

    # One period past the horizon, so that the curve has a value at the horizon year.
    horizon_years = int(round(horizon / per_year))
    years = max(int(math.ceil(horizon / per_year)), LIFETIME_YEARS)
    periods = max(int(round(years * per_year)), int(round(horizon_years * per_year)) + 1)
    trajectory = propagate(joint.core, z, policy, joint.node_own, periods)
    cycle = _survival_cycle(joint)
    # The tail of the lifetime assumes that the chance of ending per cycle has
    # settled. Where it still changes, as when a slow hazard takes over from a
    # faster one, the propagation runs longer before the tail is added.
    while (trajectory.tail_mass > 1e-9 and not _ending_rate_settled(trajectory.alive, cycle)
           and 2 * periods <= MAX_LIFETIME_PERIODS):
        periods *= 2
        years = int(math.ceil(periods / per_year))
        trajectory = propagate(joint.core, z, policy, joint.node_own, periods)

    streams = {
        name: {
            "with_treaty": trajectory.with_treaty[i, :horizon].tolist(),
            "without_treaty": trajectory.without_treaty[i, :horizon].tolist(),
        }
        for i, name in enumerate(names)
    }
    # survival[k - 1] is the mass alive during the period in force k years
    # after entry into force (see ``period_at_year``), at the end of year k.
    # An expiry node at the start of that period and a breakdown or immediate
    # withdrawal in it are therefore already counted.
    # Sums of many masses can pass 1 or rise by a few units of rounding, so the
    # reported probabilities are clipped to [0, 1] and the curve never rises.
    alive = np.minimum.accumulate(np.clip(trajectory.alive, 0.0, 1.0))
    survival = [float(alive[period_at_year(year, per_year)]) for year in range(1, horizon_years + 1)]

    # A node at the horizon opens the period that the last survival value describes.
    nodes = []
    for node in trajectory.nodes:
        if node["period"] > horizon or node["mass"] <= 1e-12:
            continue
        nodes.append({
            "period": node["period"],
            "year": node["period"] / per_year,
            "kind": node["kind"],
            "p_alive": min(node["mass"], 1.0),
            "p_success": min(node["success"] / node["mass"], 1.0),
        })

    # Mean time in force: each period the treaty is alive in adds one period,
    # so the lifetime is the area under the per-period survival curve.
    lifetime = float(trajectory.alive.sum()) / per_year
    tail = trajectory.tail_mass
    if tail > 1e-9:
        # Past the propagation the survival curve is taken to repeat its last
        # clock cycle of ``cycle`` periods, scaled by ``survival_per_cycle``
        # each cycle. That ratio is measured over whole cycles in about the
        # last tenth of the propagation, so that both ends sit at the same
        # clock position (an expiry every term, say). The periods after the
        # propagation then add last_cycle * r / (1 - r) with r that ratio.
        alive = trajectory.alive
        survival_per_cycle = _survival_per_cycle(alive, cycle, 0)
        ending_per_cycle = 1.0 - survival_per_cycle
        if ending_per_cycle <= 1e-9:
            lifetime = None
            if tail < 1.0 - 1e-9:
                # Some paths end, so the warning explains why the mean is still unbounded.
                warnings.append(
                    f"expected lifetime is unbounded: the treaty is still alive after {years} "
                    f"years with probability {tail:.3g}, and its chance of ending has fallen to zero")
        else:
            measured = _measured_cycle(cycle, len(alive))
            last_cycle = float(alive[-measured:].sum())
            floor = lifetime
            lifetime += last_cycle * survival_per_cycle / ending_per_cycle / per_year
            message = (f"expected lifetime includes an extrapolated tail beyond {years} years "
                       f"(probability {tail:.3g} of still being alive then)")
            if not _ending_rate_settled(alive, cycle):
                message += (f"; the chance of ending was still changing then, so the tail is only "
                            f"a rough estimate, and the lifetime is at least {floor:.1f} years")
            warnings.append(message)
    return streams, nodes, survival, lifetime
