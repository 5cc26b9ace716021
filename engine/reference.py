"""A plain-loop reference solver, written for checking the engine, not for speed.

It solves the same game as ``engine.dynamic.DynamicSolver`` and
``engine.solve.Solver`` with ordinary Python loops over columns (strictness
values), clock positions, phases, environment states and candidate profiles.
It uses no numpy arithmetic, its own clock and phase bookkeeping and its own
interpolation, so that an indexing or broadcasting slip in the vectorised
engine shows up as a disagreement.

Three algorithms are covered:

* ``method="iteration"`` (the default) for treaties without a sunset clause:
  value iteration from an upper bound over the augmented state (clock
  position, phase, environment state), with no shortcut.  Each period it
  evaluates the candidate profiles in the engine's order (everyone complies,
  party ``j`` gives notice, party ``j`` escapes, with the parties in the order
  of ``Game.tie_order``), keeps those in which no strategic party gains by
  breaching or by another legal action, and selects the one with the largest
  weighted joint value.
* For a treaty with a duration provision (sunset clause), ``method`` is
  ignored: backward induction over the term for every column, with the
  value at an expiry node given by a renegotiation value ``V`` (party,
  state).  Renegotiation bargains, in each state, over lotteries of the
  acceptable terms (``engine.reference_bargaining``), and ``V`` is found by
  plain, undamped fixed-point iteration from the engine's upper bound.  An
  iteration that does not settle raises ``RuntimeError``: the limit is
  ``MAX_NODE_ITERATIONS`` plus twice the steps that a contraction with
  modulus ``max_i delta_i ** (term + delay)`` needs, and past it the value
  is taken to flip between outcomes, which the engine settles with damping,
  extension lotteries or public draws that the reference does not have.
  Extensions are covered: at the end
  of a segment with an extension left, the parties extend where every
  party's value of the next segment is at least its renegotiation value.
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

Reviews are decided as the engine decides them: the treaty is first solved
without amendments, then at each review position, for each column, normal
phase and state, the parties adopt the target column that every party gains
from by more than the tie tolerance after paying the amendment cost, picked
by the bargaining rule.  The treaty is then solved again with those choices
fixed.  An amendment gives a column the target column's values at that
position, before the target's own amendment.  With a sunset clause the
renegotiation value is iterated again from the upper bound for that second
solve.

Values are computed under each party's own beliefs about the environment, as
the engine's ``own`` results are.  The engine's evaluation of the policy under
the declared chain is not reproduced.

NOTE: the reference sweeps every position from the previous sweep's values,
while the engine sweeps backwards and uses the values of the same sweep.
The two paths reach the same values where the selection settles on both.
Where the engine's selection cycles, the engine settles on an equilibrium
by dropping the choices that fail by the most and reports it in its notes,
and the reference may return another equilibrium without a warning.  The
reference's own path can also cycle where the engine's settles; it then
raises ("may be cycling").  Compare the two only where the engine reports
no cycling, and read a raised cycle as a limit of the reference.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from engine.game import Game
from engine.reference_bargaining import nash_lottery

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

# The renegotiation value iteration stops once the same bound, with the
# discount over the shortest way to an expiry node as the modulus, falls below
# this relative amount.  It is tighter than the engine's default tolerance, so
# that a disagreement reflects the engine's accuracy rather than this one's.
NODE_TOLERANCE = 1e-12
MAX_NODE_ITERATIONS = 1000


@dataclass
class ReferenceResult:
    """Values and decisions at clock position 0 in the start phase.

    ``start_values[i][g]`` is party ``i``'s value at column ``g`` in the start
    state.  ``codes[g][s]`` is the profile chosen at column ``g`` in state
    ``s``.  ``phase_codes[g]`` maps ``(position, phase key, state)`` to the
    profile code for every augmented state; positions are those of the
    reference's own clock (``RepeatingClock`` or ``SunsetClock``).
    ``sweeps[g]`` counts value iteration sweeps (deletion rounds for the rigid
    treaty, joint sweeps of every column with reviews, and the final solve's
    backward passes over the term with a sunset clause).

    With a sunset clause, ``renegotiation_values[i][s]`` is party ``i``'s
    value of reaching an expiry node in state ``s`` (the fixed point),
    ``agreements[s]`` the lottery agreed there as ``(column, probability)``
    pairs, largest probability first, and empty where the treaty lapses, and
    ``node_iterations`` the number of renegotiation value iterations of the
    final solve.  With reviews, ``amendments[position][g]`` maps
    ``(phase key, state)`` of each normal phase to the adopted column, or -1
    for the status quo.
    """

    gammas: list[float]
    start_values: list[list[float]]
    codes: list[list[int]]
    phase_codes: list[dict]
    sweeps: list[int]
    renegotiation_values: list[list[float]] | None = None
    agreements: list[list[tuple[int, float]]] | None = None
    node_iterations: int = 0
    amendments: dict[int, list[dict]] | None = None


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


def converged(residual: float, delta: float, scale: float, tolerance: float = VALUE_TOLERANCE) -> bool:
    """Return True when a contraction with modulus ``delta`` is within ``tolerance * scale`` of its fixed point."""
    if delta <= 0.0:
        return residual == 0.0 or residual <= tolerance * scale
    return residual * delta / (1.0 - delta) <= tolerance * scale


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
    """Normalised bargaining weights: ``1 / -ln(delta)`` under nash-patience, else equal."""
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
        self.tie_order = list(game.tie_order)

        self.no_treaty = [no_treaty_values(self.delta[i], self.defection[i], self.transition[i])
                          for i in range(self.n)]
        self.expected_no_treaty = [
            [expectation(self.transition[i][s], self.no_treaty[i]) for s in range(self.states)]
            for i in range(self.n)
        ]

        # The bargaining rule weighs every party, but the selection among
        # equilibria weighs only the strategic ones.
        self.rule = game.settings.bargaining
        weights = bargaining_weights(self.delta, self.rule)
        self.weights = weights
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


# -------------------------------------------------------------------- clocks


class RepeatingClock:
    """Clock of a treaty without a sunset clause, as a list of positions.

    A position stands for the pair (elapsed, offset): the periods since entry
    into force, capped once the waiting period before notice has passed, and
    the periods since the last review, modulo the review interval.  With
    reviews the cap is at least 1, so that entry into force is not taken for
    a review.  Positions are numbered in the order the treaty first reaches
    them, and the last one leads back to an earlier one.  Without reviews,
    position ``k`` stands for ``k`` elapsed periods, and the last position
    for ``earliest`` or more.
    """

    def __init__(self, earliest: int, review_every: int):
        cycle = review_every if review_every > 0 else 1
        cap = max(earliest, 1) if review_every > 0 else earliest

        index = {}
        pairs = []
        pair = (0, 0)
        while pair not in index:
            index[pair] = len(pairs)
            pairs.append(pair)
            pair = (min(pair[0] + 1, cap), (pair[1] + 1) % cycle)

        self.size = len(pairs)
        self.following = [index[(min(elapsed + 1, cap), (offset + 1) % cycle)] for elapsed, offset in pairs]
        self.notice_open = [elapsed >= earliest for elapsed, _ in pairs]
        self.review = [review_every > 0 and elapsed >= 1 and offset == 0 for elapsed, offset in pairs]


class SunsetClock:
    """Clock of a treaty with a sunset clause: the term, then each extension, as consecutive segments.

    ``following[k]`` is the next position, or None where a segment ends at an
    expiry node.  Notice is open from the end of the waiting period in the
    first segment and throughout extensions.  Reviews fall every
    ``review_every`` periods, counted from the start of each segment.
    """

    def __init__(self, duration, earliest: int, review_every: int):
        lengths = [duration.term] + [duration.extension_length] * duration.extension_max
        lengths = [length for length in lengths if length > 0]

        self.following = []
        self.segment = []
        self.segment_starts = []
        self.notice_open = []
        self.review = []
        for index, length in enumerate(lengths):
            self.segment_starts.append(len(self.following))
            for offset in range(length):
                last = offset == length - 1
                self.following.append(None if last else len(self.following) + 1)
                self.segment.append(index)
                self.notice_open.append(index > 0 or offset >= earliest)
                self.review.append(review_every > 0 and offset > 0 and offset % review_every == 0)
        self.size = len(self.following)
        self.segments = len(lengths)


# -------------------------------------------------------------------- phases


class Augmented:
    """Phases of a treaty with withdrawal and/or an escape hatch.

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
        self.normal_phases = [phase for phase in phases if phase[0] == "normal"]
        self.start_phase = ("normal", self.top_uses, 0)

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


# ---------------------------------------------------------------- one period


class Continuation:
    """Each party's expected value next period, by the phase that follows and today's state.

    ``ahead(i, phase, t)`` is party ``i``'s value next period in ``phase`` and
    state ``t``; the end of the treaty (phase None) is worth the no-treaty
    value.  Expectations are computed when first needed and then kept.
    """

    def __init__(self, prim: Primitives, ahead):
        self.prim = prim
        self.ahead = ahead
        self.known = {}

    def value(self, i: int, phase, s: int) -> float:
        if phase is None:
            return self.prim.expected_no_treaty[i][s]
        key = (i, phase, s)
        found = self.known.get(key)
        if found is None:
            row = self.prim.transition[i][s]
            found = 0.0
            for t in range(self.prim.states):
                found += row[t] * self.ahead(i, phase, t)
            self.known[key] = found
        return found


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


def decide(prim: Primitives, aug: Augmented, z, cont: Continuation, notice_open: bool, phase, s: int):
    """Select the profile at one augmented state; return its code and every party's value."""
    n = prim.n
    breakdown = [prim.no_treaty[i][s] for i in range(n)]

    if phase[0] == "suspended":
        invoker = phase[1]
        after = aug.after_comply(phase)
        payoff = [suspension_stage(prim, aug, z, invoker, i, s) + prim.delta[i] * cont.value(i, after, s)
                  for i in range(n)]
        for i in range(n):
            if i != invoker and prim.strategic[i] and not holds(payoff[i], partner_breach(prim, aug, i, s)):
                return BREAKDOWN, breakdown
        return COMPLY, payoff

    if phase[0] == "notice":
        after = aug.after_comply(phase)
        payoff = [z[i] + prim.delta[i] * cont.value(i, after, s) for i in range(n)]
        for i in range(n):
            if prim.strategic[i] and not holds(payoff[i], prim.bound_breach(i, s)):
                return BREAKDOWN, breakdown
        return COMPLY, payoff

    candidates = normal_candidates(prim, aug, z, cont, notice_open, phase, s)
    best_code, best_payoff, best_score = BREAKDOWN, breakdown, -math.inf
    for code, kind, actor, payoff in candidates:
        if not is_equilibrium(prim, aug, candidates, kind, actor, payoff, s):
            continue
        score = sum(prim.select_weights[i] * payoff[i] for i in range(n))
        if score > best_score + TIE_TOLERANCE * (1.0 + abs(score)):
            best_code, best_payoff, best_score = code, payoff, score
    return best_code, best_payoff


def normal_candidates(prim: Primitives, aug: Augmented, z, cont: Continuation, notice_open: bool,
                      phase, s: int):
    """Candidate profiles in a normal phase, in the engine's order, as (code, kind, actor, values)."""
    n = prim.n
    after = aug.after_comply(phase)
    comply = [z[i] + prim.delta[i] * cont.value(i, after, s) for i in range(n)]
    candidates = [(COMPLY, "comply", -1, comply)]

    withdrawal = aug.withdrawal
    if withdrawal is not None and notice_open:
        for j in prim.tie_order:
            if not prim.strategic[j]:
                continue
            if withdrawal.notice == 0:
                payoff = [prim.no_treaty[i][s] for i in range(n)]
            else:
                target = aug.after_notice()
                payoff = [z[i] + prim.delta[i] * cont.value(i, target, s) for i in range(n)]
            payoff[j] -= withdrawal.cost
            candidates.append((1 + j, "notice", j, payoff))

    escape = aug.escape
    if escape is not None:
        for j in prim.tie_order:
            if not prim.strategic[j] or not bool(escape.trigger[j][s]):
                continue
            target = aug.after_escape(phase, j)
            if target is False:
                continue
            payoff = []
            for i in range(n):
                value = suspension_stage(prim, aug, z, j, i, s) + prim.delta[i] * cont.value(i, target, s)
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


def solve_layer(prim: Primitives, aug: Augmented, z, cont: Continuation, notice_open: bool):
    """Decide every phase and state at one clock position, and return the values and codes.

    ``values[i]`` and ``codes`` are keyed by ``(phase, s)``.
    """
    values = [dict() for _ in range(prim.n)]
    codes = {}
    for phase in aug.phases:
        for s in range(prim.states):
            code, payoff = decide(prim, aug, z, cont, notice_open, phase, s)
            codes[(phase, s)] = code
            for i in range(prim.n):
                values[i][(phase, s)] = payoff[i]
    return values, codes


# ------------------------------------------------------------ repeating clock


def sweep_column(prim: Primitives, aug: Augmented, clock: RepeatingClock, z, values):
    """Run one sweep of value iteration for one column, every position from the previous sweep's values.

    ``values[i]`` is keyed by ``(position, phase, s)``.  Returns the new
    values, keyed the same way, and the profile codes.
    """
    updated = [dict() for _ in range(prim.n)]
    codes = {}
    for position in range(clock.size):
        following = clock.following[position]
        notice_open = clock.notice_open[position]
        cont = Continuation(prim, lambda i, phase, t: values[i][(following, phase, t)])
        for phase in aug.phases:
            for s in range(prim.states):
                code, payoff = decide(prim, aug, z, cont, notice_open, phase, s)
                key = (position, phase, s)
                codes[key] = code
                for i in range(prim.n):
                    updated[i][key] = payoff[i]
    return updated, codes


def largest_change(prim: Primitives, updated, values) -> float:
    residual = 0.0
    for i in range(prim.n):
        for key, value in updated[i].items():
            residual = max(residual, abs(value - values[i][key]))
    return residual


def solve_flexible_column(prim: Primitives, aug: Augmented, clock: RepeatingClock, z: list[float],
                          upper: list[float]):
    """Value iteration from ``upper`` over (position, phase, state) for one strictness.

    Returns ``(values, codes, sweeps)``; ``values[i][(position, phase, s)]``
    and ``codes[(position, phase, s)]``.
    """
    keys = [(k, phase, s) for k in range(clock.size) for phase in aug.phases for s in range(prim.states)]
    values = [{key: upper[i] for key in keys} for i in range(prim.n)]
    scale = 1.0 + max(abs(u) for u in upper)
    delta_max = max(prim.delta)

    for sweep in range(1, MAX_SWEEPS + 1):
        updated, codes = sweep_column(prim, aug, clock, z, values)
        residual = largest_change(prim, updated, values)
        values = updated
        if converged(residual, delta_max, scale):
            return values, codes, sweep
    raise RuntimeError(f"values with provisions did not converge in {MAX_SWEEPS} sweeps "
                       f"(residual {residual:.3g}); the selected profiles may be cycling")


def solve_amended_columns(prim: Primitives, aug: Augmented, clock: RepeatingClock, regime, upper,
                          amendments: dict, cost: float):
    """Value iteration from ``upper`` for every column at once, with the amendments fixed.

    Columns are solved together because an amendment at a review position
    gives a column the target column's values there.  Returns per-column
    lists of values and codes, and the number of sweeps.
    """
    columns = len(regime)
    keys = [(k, phase, s) for k in range(clock.size) for phase in aug.phases for s in range(prim.states)]
    values = [[{key: upper[i] for key in keys} for i in range(prim.n)] for _ in range(columns)]
    scale = 1.0 + max(abs(u) for u in upper)
    delta_max = max(prim.delta)

    for sweep in range(1, MAX_SWEEPS + 1):
        updated, codes = [], []
        for g in range(columns):
            column_values, column_codes = sweep_column(prim, aug, clock, regime[g], values[g])
            updated.append(column_values)
            codes.append(column_codes)

        for position, choices in amendments.items():
            apply_amendments(updated, choices, cost, lambda phase, s: (position, phase, s))

        residual = max(largest_change(prim, updated[g], values[g]) for g in range(columns))
        values = updated
        if converged(residual, delta_max, scale):
            return values, codes, sweep
    raise RuntimeError(f"values with amendments did not converge in {MAX_SWEEPS} sweeps "
                       f"(residual {residual:.3g}); the selected profiles may be cycling")


# ------------------------------------------------------------------ reviews


def bargaining_score(gains, weights, rule: str) -> float:
    """Return the bargaining rule's score of positive gains: the weighted log-Nash product, or the sum."""
    if rule == "utilitarian":
        return sum(gains)
    return sum(weight * math.log(gain) for weight, gain in zip(weights, gains) if weight > 0.0)


def amendment_choices(prim: Primitives, aug: Augmented, layers, cost: float, key_of) -> list[dict]:
    """Decide the amendment of every column at one review position.

    ``layers[g][i]`` contains the values of column ``g`` at the position, found
    by ``key_of(phase, s)``.  In each normal phase and state, a target column
    is acceptable when every party gains more than the tie tolerance from its
    values minus the amendment cost.  The bargaining rule picks among the
    acceptable ones, the first of equal scores.  Returns, per column, a map
    from ``(phase, s)`` to the target column, or -1 for the status quo.
    """
    columns = len(layers)
    choices = []
    for g in range(columns):
        choice = {}
        for phase in aug.normal_phases:
            for s in range(prim.states):
                key = key_of(phase, s)
                current = [layers[g][i][key] for i in range(prim.n)]
                best, best_score = -1, -math.inf
                for h in range(columns):
                    gains = [layers[h][i][key] - cost - current[i] for i in range(prim.n)]
                    if not all(gain > TIE_TOLERANCE for gain in gains):
                        continue
                    score = bargaining_score(gains, prim.weights, prim.rule)
                    if score > best_score:
                        best, best_score = h, score
                choice[(phase, s)] = best
        choices.append(choice)
    return choices


def apply_amendments(layers, choices: list[dict], cost: float, key_of) -> None:
    """Give each amended column its target's values minus the cost, in place.

    Every target value is read before any is written, so a column takes its
    target's values from before the target's own amendment.
    """
    changes = []
    for g, choice in enumerate(choices):
        for (phase, s), target in choice.items():
            if target < 0:
                continue
            key = key_of(phase, s)
            changes.append((g, key, [party[key] - cost for party in layers[target]]))
    for g, key, amended in changes:
        for i, value in enumerate(amended):
            layers[g][i][key] = value


# -------------------------------------------------------------- sunset clause


@dataclass
class SunsetPass:
    """One backward pass over the sunset clock, for every column.

    ``values[k][g][i]`` (keyed by ``(phase, s)``) is kept for the positions
    in ``kept`` only; ``codes[k][g]`` for every position.  ``fresh[g][i][s]``
    and ``starts[g][s]`` are the value and profile code of a treaty at column
    ``g`` that starts in state ``s``.
    """

    values: dict
    codes: list
    fresh: list
    starts: list


def expiry_values(prim: Primitives, aug: Augmented, clock: SunsetClock, stored, position: int, g: int,
                  node_value):
    """Return each party's value at the expiry node that ends ``position``, by the state there, for column ``g``.

    With an extension left the parties extend where every party values the
    next segment at least at its renegotiation value; otherwise they reach
    renegotiation.
    """
    segment = clock.segment[position]
    if segment + 1 >= clock.segments:
        return node_value
    extended = stored[clock.segment_starts[segment + 1]][g]
    at_expiry = [list(row) for row in node_value]
    for t in range(prim.states):
        key = (aug.start_phase, t)
        if all(extended[i][key] >= node_value[i][t] for i in range(prim.n)):
            for i in range(prim.n):
                at_expiry[i][t] = extended[i][key]
    return at_expiry


def sunset_pass(prim: Primitives, aug: Augmented, clock: SunsetClock, regime, node_value,
                amendments: dict | None = None, cost: float = 0.0, kept=()) -> SunsetPass:
    """Run backward induction over the sunset clock for every column, given the renegotiation value."""
    columns = len(regime)
    # Values of segment starts feed the extension choice, and position 0 the renegotiation.
    keep = set(kept) | set(clock.segment_starts)
    stored = {}
    codes = [None] * clock.size
    following_layers = None

    for position in range(clock.size - 1, -1, -1):
        layers, layer_codes = [], []
        for g in range(columns):
            if clock.following[position] is None:
                at_expiry = expiry_values(prim, aug, clock, stored, position, g, node_value)
                # Every phase, a suspension or notice still running included, reaches the node.
                cont = Continuation(prim, lambda i, phase, t: at_expiry[i][t])
            else:
                ahead = following_layers[g]
                cont = Continuation(prim, lambda i, phase, t: ahead[i][(phase, t)])
            values, column_codes = solve_layer(prim, aug, regime[g], cont, clock.notice_open[position])
            layers.append(values)
            layer_codes.append(column_codes)

        if amendments and position in amendments:
            apply_amendments(layers, amendments[position], cost, lambda phase, s: (phase, s))
        if position in keep:
            stored[position] = layers
        codes[position] = layer_codes
        following_layers = layers

    start = aug.start_phase
    fresh = [[[stored[0][g][i][(start, s)] for s in range(prim.states)] for i in range(prim.n)]
             for g in range(columns)]
    starts = [[codes[0][g][(start, s)] for s in range(prim.states)] for g in range(columns)]
    return SunsetPass(values=stored, codes=codes, fresh=fresh, starts=starts)


def offered_values(prim: Primitives, duration, fresh):
    """Return the value at the node of agreeing each column, ``offered[g][i][s]``.

    Each party pays the renegotiation cost, acts unregulated through the
    delay, and then receives the fresh treaty's value in the state the chain
    has reached by then.
    """
    n, states = prim.n, prim.states
    delay = duration.delay
    flows = [[0.0] * states for _ in range(n)]
    reach = [[None] * states for _ in range(n)]
    for i in range(n):
        for s in range(states):
            distribution = [1.0 if t == s else 0.0 for t in range(states)]
            for step in range(delay):
                flows[i][s] += prim.delta[i] ** step * expectation(distribution, prim.defection[i])
                distribution = [sum(distribution[u] * prim.transition[i][u][t] for u in range(states))
                                for t in range(states)]
            reach[i][s] = distribution

    offered = []
    for column_fresh in fresh:
        column = []
        for i in range(n):
            later = prim.delta[i] ** delay
            column.append([-duration.renegotiation_cost + flows[i][s]
                           + later * expectation(reach[i][s], column_fresh[i])
                           for s in range(states)])
        offered.append(column)
    return offered


def renegotiate(prim: Primitives, duration, run: SunsetPass, hints=None):
    """Bargain at the expiry node in each state over the columns, against the treaty lapsing.

    A column is acceptable when no party loses against the no-treaty value
    and, without a delay, the fresh treaty starts with everyone complying.
    Under a Nash rule, where every weighted party gains from some acceptable
    column, the parties agree the lottery of acceptable columns with the
    largest weighted Nash product.  Otherwise (and always under the
    utilitarian rule) they agree the acceptable column with the largest sum of
    gains, the first of equal sums.  Returns the node value ``value[i][s]``
    and the lottery in each state, empty where the treaty lapses.
    """
    n, states = prim.n, prim.states
    offered = offered_values(prim, duration, run.fresh)
    # NOTE: as in the engine, a party with bargaining weight 0 (discount 0
    # under nash-patience) is left out of the Nash objective.  Its value can
    # then differ between equally optimal lotteries, and this search need not
    # pick the engine's.
    weighted = [i for i in range(n) if prim.weights[i] > 0.0]
    value = [[prim.no_treaty[i][s] for s in range(states)] for i in range(n)]
    agreements = []

    for s in range(states):
        gains = {}
        for g, column in enumerate(offered):
            column_gains = [column[i][s] - prim.no_treaty[i][s] for i in range(n)]
            starts_complying = duration.delay > 0 or run.starts[g][s] == COMPLY
            # As in the engine, terms that leave every party where the lapse would are no agreement.
            someone_gains = any(gain > TIE_TOLERANCE * (1.0 + abs(prim.no_treaty[i][s]))
                                for i, gain in enumerate(column_gains))
            if starts_complying and someone_gains and all(gain >= 0.0 for gain in column_gains):
                gains[g] = column_gains
        if not gains:
            agreements.append([])
            continue

        nash = prim.rule != "utilitarian"
        everyone_gains = all(any(column_gains[i] > 0.0 for column_gains in gains.values()) for i in weighted)
        if nash and everyone_gains:
            weighted_gains = {g: [column_gains[i] for i in weighted] for g, column_gains in gains.items()}
            hint = hints[s] if hints is not None else ()
            support, probabilities = nash_lottery(weighted_gains, [prim.weights[i] for i in weighted], hint)
            lottery = list(zip(support, probabilities))
        else:
            best = max(gains, key=lambda g: (sum(gains[g]), -g))
            lottery = [(best, 1.0)]

        for i in range(n):
            value[i][s] = sum(chance * offered[g][i][s] for g, chance in lottery)
        agreements.append(lottery)
    return value, agreements


def solve_renegotiation_value(prim: Primitives, aug: Augmented, clock: SunsetClock, regime, duration,
                              upper, scale: float, amendments=None, cost: float = 0.0):
    """Iterate the renegotiation value from ``upper`` without damping until it settles.

    Returns the value and the number of iterations.  The modulus in the
    stopping rule is the largest discount over the term and the delay,
    because no path from one node reaches the next sooner.  So it bounds
    the distance to the fixed point while the selected profiles and the
    agreed terms stay the same.

    Raises
    ------
    RuntimeError
        If the value has not settled after ``MAX_NODE_ITERATIONS`` iterations
        plus twice the number a contraction with the modulus needs.
    """
    node_value = [[upper[i]] * prim.states for i in range(prim.n)]
    modulus = max(delta ** (duration.term + duration.delay) for delta in prim.delta)
    # A contraction needs about log(NODE_TOLERANCE (1 - c)) / log(c) steps, which
    # is far more than MAX_NODE_ITERATIONS when c is close to 1; allow twice that.
    limit = MAX_NODE_ITERATIONS
    if 0.0 < modulus < 1.0:
        limit += math.ceil(2.0 * math.log(NODE_TOLERANCE * (1.0 - modulus)) / math.log(modulus))
    hints = None
    residual = math.inf
    for iteration in range(1, limit + 1):
        run = sunset_pass(prim, aug, clock, regime, node_value, amendments, cost)
        value, agreements = renegotiate(prim, duration, run, hints)
        hints = [[g for g, _ in lottery] for lottery in agreements]
        residual = max(abs(value[i][s] - node_value[i][s]) for i in range(prim.n) for s in range(prim.states))
        node_value = value
        if converged(residual, modulus, scale, NODE_TOLERANCE):
            return node_value, iteration
    raise RuntimeError(f"the renegotiation value did not settle in {limit} undamped iterations "
                       f"(last change {residual:.3g}, contraction modulus {modulus:.6g}), so the "
                       "reference gives no result; it has none of the engine's damping, extension "
                       "lotteries or public draws for values that flip between outcomes")


def engine_bounds(prim: Primitives, aug: Augmented, regime):
    """Return the engine's upper bound of every party's value and its payoff scale.

    See ``DynamicSolver.value_bounds``: the best stage payoff over the
    columns, plus an escape transfer where the escape cost is shared.
    """
    upper, largest = [], 0.0
    bonus = 0.0
    if aug.escape is not None and aug.escape.cost_type == "transfer":
        bonus = aug.escape.cost / (prim.n - 1)
    for i in range(prim.n):
        best = max(max(z[i] for z in regime), 2.0 * max(prim.defection[i]))
        upper.append((best + bonus) / (1.0 - prim.delta[i]))
        largest = max(largest, best / (1.0 - prim.delta[i]))
    return upper, 1.0 + largest


def solve_sunset(game: Game, prim: Primitives, regime, result: ReferenceResult) -> ReferenceResult:
    """Solve a treaty with a sunset clause, and with reviews when it has them."""
    rules = game.rules
    aug = Augmented(game)
    earliest = rules.withdrawal.earliest if rules.withdrawal is not None else 0
    review_every = rules.review.every if rules.review is not None else 0
    clock = SunsetClock(rules.duration, earliest, review_every)
    upper, scale = engine_bounds(prim, aug, regime)
    reviews = [k for k in range(clock.size) if clock.review[k]]

    # Amendments are decided against the treaty without reviews, so that is solved first.
    amendments, cost = None, 0.0
    if reviews:
        cost = rules.review.amendment_cost
        node_value, _ = solve_renegotiation_value(prim, aug, clock, regime, rules.duration, upper, scale)
        unreviewed = sunset_pass(prim, aug, clock, regime, node_value, kept=reviews)
        amendments = {k: amendment_choices(prim, aug, unreviewed.values[k], cost, lambda phase, s: (phase, s))
                      for k in reviews}

    node_value, iterations = solve_renegotiation_value(prim, aug, clock, regime, rules.duration, upper,
                                                       scale, amendments, cost)
    run = sunset_pass(prim, aug, clock, regime, node_value, amendments, cost)
    value, agreements = renegotiate(prim, rules.duration, run)

    for g in range(len(regime)):
        for i in range(prim.n):
            result.start_values[i].append(run.fresh[g][i][prim.start])
        result.codes.append(list(run.starts[g]))
        result.phase_codes.append({(k, phase, s): code for k in range(clock.size)
                                   for (phase, s), code in run.codes[k][g].items()})
        result.sweeps.append(iterations + 1)
    result.renegotiation_values = value
    result.agreements = agreements
    result.node_iterations = iterations
    result.amendments = amendments
    return result


# ------------------------------------------------------------ policy check


def policy_values(game: Game, gamma: float, codes, strategic=None, tolerance: float = 1e-13):
    """Value a given stationary policy by plain iteration of its own Bellman equation.

    ``codes`` maps ``(position, phase, s)`` (phase keys as in ``Augmented``,
    positions as in ``RepeatingClock``, which for a treaty without reviews
    are the engine's) to a profile code.  A fixed policy makes the Bellman
    equation a contraction, so iteration from the no-treaty values converges.
    Returns ``(values, ok)``: ``values[i][key]`` is party ``i``'s value and
    ``ok[key]`` whether the chosen profile is an equilibrium there, checked
    against every strategic party's breach and legal switches.  Breakdown is
    always an equilibrium.

    Raises
    ------
    ValueError
        If the treaty has a duration or review provision, which this check
        does not model.
    """
    rules = game.rules
    if rules.duration is not None or rules.review is not None:
        raise ValueError(f"{game.name}: the policy check covers treaties without duration and "
                         "review provisions")
    prim = Primitives(game, strategic)
    aug = Augmented(game)
    clock = RepeatingClock(rules.withdrawal.earliest if rules.withdrawal is not None else 0, 0)
    n, states = prim.n, prim.states
    z = [interpolate(prim.curves[i], float(gamma)) for i in range(n)]
    keys = [(k, phase, s) for k in range(clock.size) for phase in aug.phases for s in range(states)]

    def chosen(cont, key):
        position, phase, s = key
        code = codes[key]
        if code == BREAKDOWN:
            return [prim.no_treaty[i][s] for i in range(n)], True
        if phase[0] == "suspended":
            invoker = phase[1]
            after = aug.after_comply(phase)
            payoff = [suspension_stage(prim, aug, z, invoker, i, s) + prim.delta[i] * cont.value(i, after, s)
                      for i in range(n)]
            ok = all(holds(payoff[i], partner_breach(prim, aug, i, s))
                     for i in range(n) if i != invoker and prim.strategic[i])
            return payoff, ok
        if phase[0] == "notice":
            after = aug.after_comply(phase)
            payoff = [z[i] + prim.delta[i] * cont.value(i, after, s) for i in range(n)]
            ok = all(holds(payoff[i], prim.bound_breach(i, s)) for i in range(n) if prim.strategic[i])
            return payoff, ok
        candidates = normal_candidates(prim, aug, z, cont, clock.notice_open[position], phase, s)
        for candidate_code, kind, actor, payoff in candidates:
            if candidate_code == code:
                return payoff, is_equilibrium(prim, aug, candidates, kind, actor, payoff, s)
        raise ValueError(f"profile code {code} is not available at {key}")

    def evaluate(values):
        """Return every key's chosen payoff and equilibrium flag at the given next-period values."""
        outcome = {}
        for position in range(clock.size):
            following = clock.following[position]
            cont = Continuation(prim, lambda i, phase, t: values[i][(following, phase, t)])
            for key in keys:
                if key[0] == position:
                    outcome[key] = chosen(cont, key)
        return outcome

    values = [{key: prim.no_treaty[i][key[2]] for key in keys} for i in range(n)]
    delta_max = max(prim.delta)
    scale = 1.0 + max(abs(v) for row in values for v in row.values())
    for _ in range(MAX_SWEEPS):
        outcome = evaluate(values)
        updated = [{key: outcome[key][0][i] for key in keys} for i in range(n)]
        residual = max(abs(updated[i][key] - values[i][key]) for i in range(n) for key in keys)
        values = updated
        if residual * delta_max / (1.0 - delta_max) <= tolerance * scale:
            outcome = evaluate(values)
            return values, {key: outcome[key][1] for key in keys}
    raise RuntimeError(f"the values of the given policy did not converge in {MAX_SWEEPS} sweeps")


# -------------------------------------------------------------------- entry


def solve_reference(game: Game, gammas=None, strategic=None, method: str = "iteration") -> ReferenceResult:
    """Solve ``game`` at the strictness values ``gammas``.

    Parameters
    ----------
    game : Game
        A compiled treaty.
    gammas : sequence of float, optional
        Strictness values; the game's grid ``linspace(0, 1, grid)`` by default.
        With a sunset clause they are also the terms the parties can
        renegotiate, as the grid is in the engine.
    strategic : sequence of bool, optional
        Parties whose incentives are checked; all parties by default.  With a
        sunset clause the renegotiation is solved with these parties
        strategic too, as ``engine.solve.Solver(game, strategic)`` does
        without a joint solve to take it from.
    method : {"iteration", "deletion"}
        Value iteration over the augmented state, or state deletion (rigid
        treaties only).  Ignored with a sunset clause, which is solved by
        backward induction.

    Raises
    ------
    ValueError
        If ``method`` is unknown, or "deletion" for a treaty with provisions.
    RuntimeError
        If an iteration does not converge, such as the renegotiation value of
        a sunset clause.
    """
    rules = game.rules
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

    if rules.duration is not None:
        return solve_sunset(game, prim, regime, result)

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
    earliest = rules.withdrawal.earliest if rules.withdrawal is not None else 0
    review_every = rules.review.every if rules.review is not None else 0
    clock = RepeatingClock(earliest, review_every)
    # An upper bound on every value, the same for all columns as in the engine,
    # so that iteration descends to the most cooperative fixed point.
    escape_cost = aug.escape.cost if aug.escape is not None else 0.0
    upper = []
    for i in range(n):
        best_flow = max(max(z[i] for z in regime), 2.0 * max(prim.defection[i]))
        upper.append((best_flow + escape_cost) / (1.0 - prim.delta[i]))

    solutions = [solve_flexible_column(prim, aug, clock, z, upper) for z in regime]
    if review_every > 0:
        # Amendments are decided against the treaty without reviews, then fixed.
        cost = rules.review.amendment_cost
        reviews = [k for k in range(clock.size) if clock.review[k]]
        unreviewed = [values for values, _, _ in solutions]
        result.amendments = {
            k: amendment_choices(prim, aug, unreviewed, cost, lambda phase, s, k=k: (k, phase, s))
            for k in reviews}
        values, codes, sweeps = solve_amended_columns(prim, aug, clock, regime, upper, result.amendments,
                                                      cost)
        solutions = [(values[g], codes[g], sweeps) for g in range(len(regime))]

    start = (0, aug.start_phase)
    for values, codes, sweeps in solutions:
        for i in range(n):
            result.start_values[i].append(values[i][start + (prim.start,)])
        result.codes.append([codes[start + (s,)] for s in range(states)])
        result.phase_codes.append(codes)
        result.sweeps.append(sweeps)
    return result
