"""Predict agreement, terms and survival for a compiled treaty.

The steps, for a game with parties ``i`` and start state ``s0``:

1. Solve the game on the strictness grid with every party strategic.  A
   strictness is in the zone of agreement when the selected equilibrium starts
   with everyone complying and every party's value, net of its negotiation
   cost, is at least its no-treaty value ``d_i``.
2. Solve again with only party ``i`` strategic (the others bound to comply) to
   find the strictness values party ``i`` accepts.
3. Refine every endpoint by bisection between grid points to ``ENDPOINT_TOLERANCE``.
4. Pick the terms by the bargaining rule over the zone, refining the best grid
   point locally.
5. Propagate the treaty at the terms (or at an accepted proposal) under the
   declared chain for survival, streams and node outcomes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from engine.bargaining import bargaining_objective
from engine.dynamic import BREAKDOWN, COMPLY
from engine.game import Game
from engine.solve import Columns, Solver, combine_policies
from engine.survival import propagate

ENDPOINT_TOLERANCE = 1e-7
# Decimals kept for located strictness values (zone, accepted intervals, terms) in
# JSON. The engine locates none of them closer than ENDPOINT_TOLERANCE, so 8
# decimals keep every digit that carries information. Rounding to 8 moves a value
# by at most 5e-9, a twentieth of the tolerance.
STRICTNESS_DECIMALS = 8
SECTIONS = 16
REFINE_ROUNDS = 6
REFINE_POINTS = 11
# Lifetimes are propagated for at least this many years before a geometric tail is added.
LIFETIME_YEARS = 400


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
            "zone": _rounded_interval(self.zone),
            "terms": _rounded_strictness(self.terms),
        }
        if self.proposal is not None:
            result["proposal"] = _rounded_proposal(self.proposal)
        result["parties"] = [
            {
                "name": party.name,
                "accepts": _rounded_interval(party.accepts),
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


def _rounded_interval(interval: tuple[float, float] | None) -> list[float] | None:
    if interval is None:
        return None
    return [_rounded_strictness(interval[0]), _rounded_strictness(interval[1])]


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


class _Feasibility:
    """Agreement test of one solver: the strictness values that meet its conditions."""

    def __init__(self, solver: Solver, considered: np.ndarray, negotiation: np.ndarray):
        self.solver = solver
        self.considered = considered
        game = solver.game
        self.start_phase = solver.core.phases.start
        self.start_state = game.start
        self.disagreement = solver.core.own.no_treaty[:, game.start] + negotiation

    def margins(self, columns: Columns) -> np.ndarray:
        return columns.own.start_values - self.disagreement[:, None]

    def mask(self, columns: Columns) -> np.ndarray:
        starts = columns.own.policy.codes[0][:, self.start_phase, self.start_state] == COMPLY
        margins = self.margins(columns)[self.considered]
        tolerance = 1e-12 * (1.0 + np.abs(self.disagreement[self.considered]))[:, None]
        return starts & np.all(margins >= -tolerance, axis=0)

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
        refined = iter(self._refine(brackets))

        found = []
        for first, last in runs:
            low = grid[first] if first == 0 else next(refined)
            high = grid[last] if last == len(grid) - 1 else next(refined)
            found.append((float(low), float(high)))
        return found

    def _refine(self, brackets: list[list[float]]) -> list[float]:
        """Shrink each (outside, inside) bracket to ``ENDPOINT_TOLERANCE`` by k-section.

        Each round evaluates ``SECTIONS - 1`` interior points of every bracket
        in one solve and keeps the sub-bracket where feasibility changes.
        """
        if not brackets:
            return []
        brackets = np.array(brackets, dtype=float)
        fractions = np.linspace(0.0, 1.0, SECTIONS + 1)[1:-1]
        while np.max(np.abs(brackets[:, 1] - brackets[:, 0])) > ENDPOINT_TOLERANCE:
            outside, inside = brackets[:, 0], brackets[:, 1]
            points = inside[:, None] + fractions[None, :] * (outside - inside)[:, None]
            ok, _ = self.at(points.ravel())
            ok = ok.reshape(points.shape)
            for row in range(len(brackets)):
                # Points run from the inside end outwards; the first infeasible one
                # closes the bracket, the one before it is the new inside end.
                failing = np.flatnonzero(~ok[row])
                first_fail = failing[0] if failing.size else len(fractions)
                new_inside = inside[row] if first_fail == 0 else points[row, first_fail - 1]
                new_outside = outside[row] if first_fail == len(fractions) else points[row, first_fail]
                brackets[row] = [new_outside, new_inside]
        return brackets[:, 1].tolist()


def _best_terms(feasibility: _Feasibility, zone_list, weights, rule) -> tuple[float, tuple] | None:
    """Maximise the bargaining objective over the zone; return terms and their interval."""
    best = None
    for low, high in zone_list:
        points = np.unique(np.concatenate([[low, high], feasibility.solver.grid]))
        points = points[(points >= low) & (points <= high)]
        left, right = low, high
        for _ in range(REFINE_ROUNDS):
            ok, columns = feasibility.at(points)
            objective = bargaining_objective(feasibility.margins(columns), weights, rule)
            objective = np.where(ok, objective, -np.inf)
            pick = int(np.argmax(objective))
            if not np.isfinite(objective[pick]):
                # Every party gains nothing anywhere here: take the middle of the interval.
                candidate = (0.5 * (low + high), -np.inf)
            else:
                candidate = (float(points[pick]), float(objective[pick]))
            left = points[max(pick - 1, 0)]
            right = points[min(pick + 1, len(points) - 1)]
            if right - left <= ENDPOINT_TOLERANCE:
                break
            points = np.linspace(left, right, REFINE_POINTS)
        if best is None or candidate[1] > best[0][1]:
            best = (candidate, (low, high))
    if best is None:
        return None
    return best[0][0], best[1]


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

    best = _best_terms(joint_check, zone_list, joint.core.weights, rule) if zone_list else None
    terms, zone = (None, None) if best is None else best
    if len(zone_list) > 1:
        warnings.append(
            "the strictness values with agreement form several intervals: "
            + ", ".join(f"[{low:.6g}, {high:.6g}]" for low, high in zone_list)
            + "; the zone reported is the one that contains the terms")

    # Each party alone: what it accepts if the others are bound to comply.
    accepts = []
    alone_solvers = []
    lean = not accepted_sets and game.terms is None
    for party in range(0 if lean else n):
        strategic = np.zeros(n, dtype=bool)
        strategic[party] = True
        alone = Solver(game, strategic, renegotiation=joint)
        check = _Feasibility(alone, strategic, negotiation)
        alone_solvers.append(check)
        intervals = check.intervals()
        chosen = None
        for interval in intervals:
            if terms is not None and interval[0] - 1e-9 <= terms <= interval[1] + 1e-9:
                chosen = interval
        if chosen is None and intervals:
            chosen = max(intervals, key=lambda item: item[1] - item[0])
        if len(intervals) > 1:
            warnings.append(
                f"{game.parties[party].name} accepts several separate intervals of strictness: "
                + ", ".join(f"[{low:.6g}, {high:.6g}]" for low, high in intervals))
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

    streams = {
        name: {
            "with_treaty": trajectory.with_treaty[i, :horizon].tolist(),
            "without_treaty": trajectory.without_treaty[i, :horizon].tolist(),
        }
        for i, name in enumerate(names)
    }
    # survival[k - 1] is the mass alive during the period that starts k years
    # after entry into force, at the end of year k. An expiry node at that
    # boundary and a breakdown or immediate withdrawal in that period are
    # therefore already counted.
    # Sums of many masses can pass 1 or rise by a few units of rounding, so the
    # reported probabilities are clipped to [0, 1] and the curve never rises.
    alive = np.minimum.accumulate(np.clip(trajectory.alive, 0.0, 1.0))
    survival = [float(alive[int(round(year * per_year))]) for year in range(1, horizon_years + 1)]

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
        # Hazard over the last tenth of the propagation, applied as a geometric tail.
        window = max(periods // 10, 1)
        earlier = trajectory.alive[-window]
        hazard = 1.0 - (tail / earlier) ** (1.0 / window) if earlier > 0 else 1.0
        if hazard <= 1e-9:
            lifetime = None
        else:
            lifetime += tail / hazard / per_year
            warnings.append(
                f"expected lifetime includes an extrapolated tail beyond {years} years "
                f"(probability {tail:.3g} of still being alive then)")
    return streams, nodes, survival, lifetime
