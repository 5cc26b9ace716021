"""A plain-loop reference solver, written for checking the engine, not for speed.

It solves the same game as ``engine.dynamic.DynamicSolver`` with ordinary
Python loops over columns (strictness values), clock positions, phases,
environment states and candidate profiles.  It uses no numpy arithmetic, its
own phase bookkeeping and its own interpolation, so that an indexing or
broadcasting slip in the vectorised engine shows up as a disagreement.

Two algorithms are covered:

* ``method="iteration"`` (the default), for rigid treaties and for withdrawal
  and escape hatch provisions: value iteration from an upper bound over the
  augmented state (clock position, phase, environment state), with no shortcut.
  Each period it evaluates the candidate profiles in the engine's order
  (everyone complies, party ``j`` gives notice, party ``j`` escapes), keeps
  those in which no strategic party gains by breaching or by another legal
  action, and selects the one with the largest weighted joint value.
* ``method="deletion"``, rigid treaties only: start with every state in the
  cooperation set, value the policy "comply inside the set, no treaty outside"
  by value iteration, delete every state where some strategic party's
  incentive constraint fails, and repeat until nothing is deleted.

NOTE: deletion finds the largest self-enforcing set only when deleting a state
cannot raise a value elsewhere, for example when every regime value is at
least the defection value in every state.  Where some state has a defection
value above the regime value, cooperating there drags the values of the other
states down, so deletion can remove a state that would hold once the bad state
is gone; the iteration keeps it.

Sunset clauses and reviews need the renegotiation and amendment fixed points
of ``engine.solve`` and are not covered: ``solve_reference`` raises
``ValueError`` for them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from engine.game import Game

# Profile codes, numbered as in engine.dynamic: 0 comply, 1 + j notice by j,
# 1 + n + j escape by j, -1 breakdown.
COMPLY = 0
BREAKDOWN = -1

# A deviation gain this small counts as a tie, as in the engine.
TIE_TOLERANCE = 1e-10

# Value iteration stops once the bound on the distance to the fixed point,
# residual * delta / (1 - delta), falls below this relative amount.
VALUE_TOLERANCE = 1e-13
MAX_SWEEPS = 100_000


@dataclass
class ReferenceResult:
    """Values and decisions at clock position 0 in the start phase.

    ``start_values[i][g]`` is party ``i``'s value at column ``g`` in the start
    state.  ``codes[g][s]`` is the profile chosen at column ``g`` in state
    ``s``.  ``phase_codes[g]`` maps ``(position, phase key, state)`` to the
    profile code for every augmented state.  ``sweeps[g]`` counts value
    iteration sweeps (or deletion rounds for the rigid treaty).
    """

    gammas: list[float]
    start_values: list[list[float]]
    codes: list[list[int]]
    phase_codes: list[dict]
    sweeps: list[int]


# ---------------------------------------------------------------- primitives


def interpolate(points, x: float) -> float:
    """Evaluate a piecewise-linear curve given as ``[[x0, y0], [x1, y1], ...]`` at ``x``.

    Outside the first and last point the curve is flat, as ``numpy.interp`` is.
    """
    xs = [float(point[0]) for point in points]
    ys = [float(point[1]) for point in points]
    if x <= xs[0]:
        return ys[0]
    if x >= xs[-1]:
        return ys[-1]
    for k in range(len(xs) - 1):
        if xs[k] <= x <= xs[k + 1]:
            width = xs[k + 1] - xs[k]
            if width == 0.0:
                return ys[k + 1]
            share = (x - xs[k]) / width
            return ys[k] + share * (ys[k + 1] - ys[k])
    return ys[-1]


def expectation(row, values) -> float:
    """Return ``sum_t row[t] * values[t]``."""
    total = 0.0
    for t in range(len(row)):
        total += row[t] * values[t]
    return total


def converged(residual: float, delta: float, scale: float) -> bool:
    """Whether a contraction with modulus ``delta`` is within tolerance of its fixed point."""
    if delta <= 0.0:
        return residual == 0.0 or residual <= VALUE_TOLERANCE * scale
    return residual * delta / (1.0 - delta) <= VALUE_TOLERANCE * scale


def no_treaty_values(delta: float, defection, transition) -> list[float]:
    """Value iteration for ``V = b + delta Q V``, the value of never having a treaty."""
    states = len(defection)
    values = [0.0] * states
    scale = 1.0 + max(abs(b) for b in defection) / (1.0 - delta)
    for _ in range(MAX_SWEEPS):
        updated = [defection[s] + delta * expectation(transition[s], values) for s in range(states)]
        residual = max(abs(updated[s] - values[s]) for s in range(states))
        values = updated
        if converged(residual, delta, scale):
            return values
    raise RuntimeError("no-treaty values did not converge")


def bargaining_weights(discounts, rule: str) -> list[float]:
    """Normalised selection weights: ``1 / -ln(delta)`` under nash-patience, else equal."""
    n = len(discounts)
    if rule != "nash-patience":
        return [1.0 / n] * n
    weights = []
    for delta in discounts:
        if 0.0 < delta < 1.0:
            weights.append(1.0 / -math.log(delta))
        else:
            weights.append(0.0)
    total = sum(weights)
    if total <= 0.0:
        return [1.0 / n] * n
    return [w / total for w in weights]


def holds(value: float, deviation: float) -> bool:
    """Incentive check with the engine's tie tolerance."""
    return value - deviation >= -TIE_TOLERANCE * (1.0 + abs(value))


class Primitives:
    """Per-party numbers of a game as plain Python lists."""

    def __init__(self, game: Game, strategic):
        self.n = game.n_parties
        self.states = game.n_states
        self.start = game.start
        self.delta = [float(party.discount) for party in game.parties]
        self.defection = [[float(b) for b in party.defection] for party in game.parties]
        self.breach_cost = [float(party.breach_cost) for party in game.parties]
        self.curves = [[[float(x), float(y)] for x, y in party.regime_points] for party in game.parties]
        self.transition = [[[float(q) for q in row] for row in party.transition] for party in game.parties]
        self.strategic = [True] * self.n if strategic is None else [bool(flag) for flag in strategic]

        self.no_treaty = [no_treaty_values(self.delta[i], self.defection[i], self.transition[i])
                          for i in range(self.n)]
        self.expected_no_treaty = [
            [expectation(self.transition[i][s], self.no_treaty[i]) for s in range(self.states)]
            for i in range(self.n)
        ]

        weights = bargaining_weights(self.delta, game.settings.bargaining)
        select = [weights[i] if self.strategic[i] else 0.0 for i in range(self.n)]
        if sum(select) <= 0.0:
            select = [1.0 if flag else 0.0 for flag in self.strategic]
        total = sum(select)
        self.select_weights = [w / total for w in select]

    def bound_breach(self, i: int, s: int) -> float:
        """Breach while every partner complies: twice the defection value, then no treaty."""
        return (2.0 * self.defection[i][s] - self.breach_cost[i]
                + self.delta[i] * self.expected_no_treaty[i][s])


# -------------------------------------------------------------- rigid treaty


def solve_rigid_column(prim: Primitives, z: list[float]):
    """Find a self-enforcing cooperation set by state deletion, and its values, for one strictness.

    Returns ``(values, cooperate, rounds)`` where ``values[i][s]`` is party
    ``i``'s value in state ``s`` and ``cooperate[s]`` is True where the treaty
    holds.
    """
    n, states = prim.n, prim.states
    cooperate = [True] * states
    rounds = 0
    while True:
        rounds += 1
        values = [cooperation_values(prim, i, z[i], cooperate) for i in range(n)]

        failing = []
        for s in range(states):
            if not cooperate[s]:
                continue
            for i in range(n):
                if prim.strategic[i] and not holds(values[i][s], prim.bound_breach(i, s)):
                    failing.append(s)
                    break
        if not failing:
            return values, cooperate, rounds
        for s in failing:
            cooperate[s] = False


def cooperation_values(prim: Primitives, i: int, z: float, cooperate) -> list[float]:
    """Value iteration for party ``i`` under "comply inside the set, no treaty outside"."""
    states = prim.states
    delta = prim.delta[i]
    no_treaty = prim.no_treaty[i]
    values = [no_treaty[s] if not cooperate[s] else 0.0 for s in range(states)]
    scale = 1.0 + (abs(z) + max(abs(b) for b in prim.defection[i])) / (1.0 - delta)
    for _ in range(MAX_SWEEPS):
        updated = []
        for s in range(states):
            if cooperate[s]:
                updated.append(z + delta * expectation(prim.transition[i][s], values))
            else:
                updated.append(no_treaty[s])
        residual = max(abs(updated[s] - values[s]) for s in range(states))
        values = updated
        if converged(residual, delta, scale):
            return values
    raise RuntimeError("cooperation values did not converge")


# ------------------------------------------------- withdrawal and escape hatch


class Augmented:
    """Clock positions and phases of a treaty with withdrawal and/or an escape hatch.

    Phase keys are tuples: ``("normal", uses_left, cooldown)``,
    ``("suspended", invoker, remaining, uses_left)`` and ``("notice", remaining)``.
    With unlimited escape uses ``uses_left`` is always 1.  ``None`` stands for
    the end of the treaty.
    """

    def __init__(self, game: Game):
        rules = game.rules
        self.n = game.n_parties
        self.withdrawal = rules.withdrawal
        self.escape = rules.escape
        earliest = self.withdrawal.earliest if self.withdrawal is not None else 0
        # Positions count periods since entry into force up to the waiting
        # period, after which the clock stays put.
        self.positions = earliest + 1
        self.earliest = earliest

        escape = self.escape
        if escape is None:
            self.top_uses, self.unlimited, self.cooldown, self.suspension = 0, False, 0, 0
        else:
            self.unlimited = escape.max_uses is None
            self.top_uses = 1 if self.unlimited else escape.max_uses
            self.cooldown = escape.cooldown
            self.suspension = escape.suspension

        # With unlimited uses a single level stands for "at least one more".
        use_levels = [1] if self.unlimited else list(range(self.top_uses, -1, -1))
        phases = []
        for uses in use_levels:
            for cooldown in range(self.cooldown + 1):
                phases.append(("normal", uses, cooldown))
        if escape is not None:
            for uses in use_levels:
                if not self.unlimited and uses == self.top_uses:
                    continue
                for invoker in range(self.n):
                    for remaining in range(1, self.suspension):
                        phases.append(("suspended", invoker, remaining, uses))
        if self.withdrawal is not None:
            for remaining in range(1, self.withdrawal.notice):
                phases.append(("notice", remaining))
        self.phases = phases
        self.start_phase = ("normal", self.top_uses, 0)

    def next_position(self, position: int) -> int:
        return min(position + 1, self.positions - 1)

    def after_comply(self, phase):
        kind = phase[0]
        if kind == "normal":
            return ("normal", phase[1], max(phase[2] - 1, 0))
        if kind == "suspended":
            _, invoker, remaining, uses = phase
            if remaining > 1:
                return ("suspended", invoker, remaining - 1, uses)
            return ("normal", uses, self.cooldown)
        remaining = phase[1]
        return ("notice", remaining - 1) if remaining > 1 else None

    def after_notice(self):
        notice = self.withdrawal.notice
        return ("notice", notice - 1) if notice > 1 else None

    def after_escape(self, phase, invoker: int):
        """Phase after ``invoker`` escapes from a normal phase, or False where it may not."""
        _, uses, cooldown = phase
        if uses == 0 or cooldown > 0:
            return False
        left = uses if self.unlimited else uses - 1
        if self.suspension > 1:
            return ("suspended", invoker, self.suspension - 1, left)
        return ("normal", left, self.cooldown)


def solve_flexible_column(prim: Primitives, aug: Augmented, z: list[float], upper: list[float]):
    """Value iteration from ``upper`` over (position, phase, state) for one strictness.

    Returns ``(values, codes, sweeps)``; ``values[i][(position, phase, s)]``
    and ``codes[(position, phase, s)]``.
    """
    n, states = prim.n, prim.states
    keys = [(k, phase, s) for k in range(aug.positions) for phase in aug.phases for s in range(states)]
    values = [{key: upper[i] for key in keys} for i in range(n)]
    codes = {}
    scale = 1.0 + max(abs(u) for u in upper)
    delta_max = max(prim.delta)

    for sweep in range(1, MAX_SWEEPS + 1):
        updated = [dict() for _ in range(n)]
        for key in keys:
            position, phase, s = key
            code, payoff = decide(prim, aug, z, values, position, phase, s)
            codes[key] = code
            for i in range(n):
                updated[i][key] = payoff[i]

        residual = 0.0
        for i in range(n):
            for key in keys:
                residual = max(residual, abs(updated[i][key] - values[i][key]))
        values = updated
        if converged(residual, delta_max, scale):
            return values, codes, sweep
    raise RuntimeError(f"values with provisions did not converge in {MAX_SWEEPS} sweeps "
                       f"(residual {residual:.3g}); the selected profiles may be cycling")


def continuation(prim: Primitives, values, i: int, position: int, phase, s: int, aug: Augmented) -> float:
    """Party ``i``'s expected next-period value when the next phase is ``phase``."""
    if phase is None:
        return prim.expected_no_treaty[i][s]
    following = aug.next_position(position)
    row = prim.transition[i][s]
    total = 0.0
    for t in range(prim.states):
        total += row[t] * values[i][(following, phase, t)]
    return total


def suspension_stage(prim: Primitives, aug: Augmented, z, invoker: int, i: int, s: int) -> float:
    """Stage payoff of party ``i`` while ``invoker`` is suspended."""
    n = prim.n
    rebalance = aug.escape.partner_response == "rebalance"
    b = prim.defection[i][s]
    if i == invoker:
        # The invoker defects against partners that still comply, unless they rebalance.
        return b if rebalance else 2.0 * b
    if rebalance:
        return b
    return z[i] * (n - 2) / (n - 1)


def partner_breach(prim: Primitives, aug: Augmented, i: int, s: int) -> float:
    """Value of breaching for a partner of a suspended party; -inf when partners rebalance."""
    if aug.escape.partner_response == "rebalance":
        return -math.inf
    n = prim.n
    share = (n - 2) / (n - 1)
    return (prim.defection[i][s] * (1.0 + share) - prim.breach_cost[i]
            + prim.delta[i] * prim.expected_no_treaty[i][s])


def decide(prim: Primitives, aug: Augmented, z, values, position: int, phase, s: int):
    """Select the profile at one augmented state; return its code and every party's value."""
    n = prim.n
    breakdown = [prim.no_treaty[i][s] for i in range(n)]

    if phase[0] == "suspended":
        invoker = phase[1]
        after = aug.after_comply(phase)
        payoff = [suspension_stage(prim, aug, z, invoker, i, s)
                  + prim.delta[i] * continuation(prim, values, i, position, after, s, aug)
                  for i in range(n)]
        for i in range(n):
            if i != invoker and prim.strategic[i] and not holds(payoff[i], partner_breach(prim, aug, i, s)):
                return BREAKDOWN, breakdown
        return COMPLY, payoff

    if phase[0] == "notice":
        after = aug.after_comply(phase)
        payoff = [z[i] + prim.delta[i] * continuation(prim, values, i, position, after, s, aug)
                  for i in range(n)]
        for i in range(n):
            if prim.strategic[i] and not holds(payoff[i], prim.bound_breach(i, s)):
                return BREAKDOWN, breakdown
        return COMPLY, payoff

    candidates = normal_candidates(prim, aug, z, values, position, phase, s)
    best_code, best_payoff, best_score = BREAKDOWN, breakdown, -math.inf
    for code, kind, actor, payoff in candidates:
        if not is_equilibrium(prim, aug, candidates, kind, actor, payoff, s):
            continue
        score = sum(prim.select_weights[i] * payoff[i] for i in range(n))
        if score > best_score + TIE_TOLERANCE * (1.0 + abs(score)):
            best_code, best_payoff, best_score = code, payoff, score
    return best_code, best_payoff


def normal_candidates(prim: Primitives, aug: Augmented, z, values, position: int, phase, s: int):
    """Candidate profiles in a normal phase, in the engine's order, as (code, kind, actor, values)."""
    n = prim.n
    after = aug.after_comply(phase)
    comply = [z[i] + prim.delta[i] * continuation(prim, values, i, position, after, s, aug)
              for i in range(n)]
    candidates = [(COMPLY, "comply", -1, comply)]

    withdrawal = aug.withdrawal
    if withdrawal is not None and position >= aug.earliest:
        for j in range(n):
            if not prim.strategic[j]:
                continue
            if withdrawal.notice == 0:
                payoff = [prim.no_treaty[i][s] for i in range(n)]
            else:
                target = aug.after_notice()
                payoff = [z[i] + prim.delta[i] * continuation(prim, values, i, position, target, s, aug)
                          for i in range(n)]
            payoff[j] -= withdrawal.cost
            candidates.append((1 + j, "notice", j, payoff))

    escape = aug.escape
    if escape is not None:
        for j in range(n):
            if not prim.strategic[j] or not bool(escape.trigger[j][s]):
                continue
            target = aug.after_escape(phase, j)
            if target is False:
                continue
            payoff = []
            for i in range(n):
                value = (suspension_stage(prim, aug, z, j, i, s)
                         + prim.delta[i] * continuation(prim, values, i, position, target, s, aug))
                if i == j:
                    value -= escape.cost
                elif escape.cost_type == "transfer":
                    value += escape.cost / (n - 1)
                payoff.append(value)
            candidates.append((1 + n + j, "escape", j, payoff))
    return candidates


def is_equilibrium(prim: Primitives, aug: Augmented, candidates, kind: str, actor: int, payoff, s: int) -> bool:
    """Check that no strategic party gains by breaching or by switching to another legal action."""
    comply = candidates[0][3]
    own = {}
    for code, other_kind, other_actor, other_payoff in candidates:
        if other_kind != "comply":
            own[(other_kind, other_actor)] = other_payoff

    for i in range(prim.n):
        if not prim.strategic[i]:
            continue
        options = []
        if kind == "comply":
            options.append(prim.bound_breach(i, s))
            if ("notice", i) in own:
                options.append(own[("notice", i)][i])
            if ("escape", i) in own:
                options.append(own[("escape", i)][i])
        elif kind == "notice":
            if aug.withdrawal.notice > 0:
                options.append(prim.bound_breach(i, s))
            if i == actor:
                options.append(comply[i])
                if ("escape", i) in own:
                    options.append(own[("escape", i)][i])
        else:
            if i == actor:
                options.append(comply[i])
                if ("notice", i) in own:
                    options.append(own[("notice", i)][i])
            else:
                options.append(partner_breach(prim, aug, i, s))
        if options and not holds(payoff[i], max(options)):
            return False
    return True


# ------------------------------------------------------------ policy check


def policy_values(game: Game, gamma: float, codes, strategic=None, tolerance: float = 1e-13):
    """Value a given stationary policy by plain iteration of its own Bellman equation.

    ``codes`` maps ``(position, phase, s)`` (phase keys as in ``Augmented``)
    to a profile code.  A fixed policy makes the Bellman equation a
    contraction, so iteration from the no-treaty values converges.  Returns
    ``(values, ok)``: ``values[i][key]`` is party ``i``'s value and ``ok[key]``
    whether the chosen profile is an equilibrium there, checked against every
    strategic party's breach and legal switches.  Breakdown is always an
    equilibrium.
    """
    prim = Primitives(game, strategic)
    aug = Augmented(game)
    n, states = prim.n, prim.states
    z = [interpolate(prim.curves[i], float(gamma)) for i in range(n)]
    keys = [(k, phase, s) for k in range(aug.positions) for phase in aug.phases for s in range(states)]

    def chosen(values, key):
        position, phase, s = key
        code = codes[key]
        if code == BREAKDOWN:
            return [prim.no_treaty[i][s] for i in range(n)], True
        if phase[0] == "suspended":
            invoker = phase[1]
            after = aug.after_comply(phase)
            payoff = [suspension_stage(prim, aug, z, invoker, i, s)
                      + prim.delta[i] * continuation(prim, values, i, position, after, s, aug)
                      for i in range(n)]
            ok = all(holds(payoff[i], partner_breach(prim, aug, i, s))
                     for i in range(n) if i != invoker and prim.strategic[i])
            return payoff, ok
        if phase[0] == "notice":
            after = aug.after_comply(phase)
            payoff = [z[i] + prim.delta[i] * continuation(prim, values, i, position, after, s, aug)
                      for i in range(n)]
            ok = all(holds(payoff[i], prim.bound_breach(i, s)) for i in range(n) if prim.strategic[i])
            return payoff, ok
        candidates = normal_candidates(prim, aug, z, values, position, phase, s)
        for candidate_code, kind, actor, payoff in candidates:
            if candidate_code == code:
                return payoff, is_equilibrium(prim, aug, candidates, kind, actor, payoff, s)
        raise ValueError(f"profile code {code} is not available at {key}")

    values = [{key: prim.no_treaty[i][key[2]] for key in keys} for i in range(n)]
    delta_max = max(prim.delta)
    scale = 1.0 + max(abs(v) for row in values for v in row.values())
    for _ in range(MAX_SWEEPS):
        updated = [dict() for _ in range(n)]
        for key in keys:
            payoff, _ = chosen(values, key)
            for i in range(n):
                updated[i][key] = payoff[i]
        residual = max(abs(updated[i][key] - values[i][key]) for i in range(n) for key in keys)
        values = updated
        if residual * delta_max / (1.0 - delta_max) <= tolerance * scale:
            return values, {key: chosen(values, key)[1] for key in keys}
    raise RuntimeError(f"the values of the given policy did not converge in {MAX_SWEEPS} sweeps")


# -------------------------------------------------------------------- entry


def solve_reference(game: Game, gammas=None, strategic=None, method: str = "iteration") -> ReferenceResult:
    """Solve ``game`` column by column at the strictness values ``gammas``.

    Parameters
    ----------
    game : Game
        A compiled treaty without a duration or review provision.
    gammas : sequence of float, optional
        Strictness values; the game's grid ``linspace(0, 1, grid)`` by default.
    strategic : sequence of bool, optional
        Parties whose incentives are checked; all parties by default.
    method : {"iteration", "deletion"}
        Value iteration over the augmented state, or state deletion (rigid
        treaties only).

    Raises
    ------
    ValueError
        If the treaty has a duration or review provision, or ``method`` is
        unknown or "deletion" for a treaty with provisions.
    """
    rules = game.rules
    if rules.duration is not None or rules.review is not None:
        raise ValueError(
            f"{game.name}: the reference solver covers treaties without duration and review "
            "provisions; solve this one with engine.solve.Solver")
    if method not in ("iteration", "deletion"):
        raise ValueError(f"invalid method {method!r}: expected 'iteration' or 'deletion'")
    if method == "deletion" and not rules.rigid:
        raise ValueError(f"{game.name}: state deletion covers rigid treaties only; use method='iteration'")
    if gammas is None:
        points = game.settings.grid
        gammas = [k / (points - 1) for k in range(points)] if points > 1 else [0.0]
    gammas = [float(g) for g in gammas]

    prim = Primitives(game, strategic)
    n, states = prim.n, prim.states
    regime = [[interpolate(prim.curves[i], g) for i in range(n)] for g in gammas]
    result = ReferenceResult(gammas=gammas, start_values=[[] for _ in range(n)], codes=[],
                             phase_codes=[], sweeps=[])

    if method == "deletion":
        for z in regime:
            values, cooperate, rounds = solve_rigid_column(prim, z)
            for i in range(n):
                result.start_values[i].append(values[i][prim.start])
            codes = [COMPLY if cooperate[s] else BREAKDOWN for s in range(states)]
            result.codes.append(codes)
            result.phase_codes.append({(0, ("normal", 0, 0), s): codes[s] for s in range(states)})
            result.sweeps.append(rounds)
        return result

    aug = Augmented(game)
    # An upper bound on every value, the same for all columns as in the engine,
    # so that iteration descends to the most cooperative fixed point.
    escape_cost = aug.escape.cost if aug.escape is not None else 0.0
    upper = []
    for i in range(n):
        best_flow = max(max(z[i] for z in regime), 2.0 * max(prim.defection[i]))
        upper.append((best_flow + escape_cost) / (1.0 - prim.delta[i]))

    for z in regime:
        values, codes, sweeps = solve_flexible_column(prim, aug, z, upper)
        for i in range(n):
            result.start_values[i].append(values[i][(0, aug.start_phase, prim.start)])
        result.codes.append([codes[(0, aug.start_phase, s)] for s in range(states)])
        result.phase_codes.append(codes)
        result.sweeps.append(sweeps)
    return result
