"""Settle a renegotiation value that the plain iteration cannot, by a public lottery.

With a sunset clause, the value of reaching renegotiation depends on what the
parties agree there, and what they agree depends on that value.  The solver
iterates this map (see ``engine.solve``).  The map jumps wherever a discrete
choice changes with the value: whether some terms are kept or breached in a
state, whether the parties extend them, or whether a party accepts them at all.
Across such a jump there may be no value that is consistent with a single
outcome: outcome A, expected at renegotiation, makes the parties choose B, and
B makes them choose A.  The iteration then flips between the two.

What settles it is a public lottery at the renegotiation node.  Let ``V(w)``
be the value that is consistent with drawing outcome A with probability ``w``
and B otherwise, each played as it was observed.  As ``w`` moves, ``V(w)``
moves continuously, so where the parties' choice at ``V(w)`` changes from A
to B there is a probability at which both are chosen at values as close to
``V(w)`` as bisection goes.  Both are then equilibria at ``V(w)``, and so is
the lottery between them.

Each outcome alone keeps its actions and its set of acceptable terms fixed, so
its value is continuous in the renegotiation value.  The fixed point for a
given ``w`` is found by plain iteration, or by Newton's method where that
contracts slowly or not at all.  A single outcome that is consistent by
itself, which the damped iteration missed because it did not contract there,
is found the same way and needs no lottery.

The result is kept only after two checks that do not rely on the search, both
with the actions selected at the final value.  The lottery must reproduce the
value to the solver's tolerance, and every term it agrees must be acceptable
to every party.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from typing import TYPE_CHECKING, Callable

import numpy as np

from engine.dynamic import COMPLY, NodeOutcome, Policy
from engine.errors import SolverError

if TYPE_CHECKING:
    from engine.solve import Solver

# Probabilities tried, evenly spaced, before bisecting where the choice changes.
SCAN_POINTS = 21
# The scan's values are found to this many times the solver's tolerance.
SCAN_LOOSENESS = 1e3
BISECTIONS = 60
# Outcomes tried alone, and the most recent of them tried in pairs: the pairs
# grow with the square of the count, and each costs a scan and a bisection.
MAX_OUTCOMES = 16
MAX_PAIRED = 4
# Plain iterations before Newton's method takes over, and Newton steps allowed.
PLAIN_ITERATIONS = 60
NEWTON_STEPS = 30
# Residual ratio per plain step above which Newton's method takes over early.
SLOW_CONTRACTION = 0.5

LOTTERY_NOTE = (
    "no renegotiation outcome was consistent by itself: the terms agreed at renegotiation "
    "(with how they are kept) flipped between two outcomes as the value of renegotiating moved; "
    "there the parties draw one of the two with the probability that makes each consistent")


@dataclass
class Step:
    """One step of the renegotiation iteration on the whole grid.

    ``value`` is the renegotiation value the step started from, and
    ``policy`` and ``outcome`` what the parties chose against it.
    """

    value: np.ndarray
    policy: Policy
    outcome: NodeOutcome


@dataclass
class Settled:
    """A renegotiation value that the search settled, with its lottery (None for a single outcome)."""

    value: np.ndarray
    lottery: NodeOutcome | None
    evaluations: int
    residual: float


class OutcomeLottery:
    """Search, for one solver, a consistent renegotiation value among the outcomes seen."""

    def __init__(self, solver: "Solver", reviews, scale: float):
        self.solver = solver
        self.reviews = reviews
        self.tolerance = solver.core.tolerance * scale
        # A fixed point must meet the solver's own stopping rule, which is
        # tighter where the renegotiation map contracts slowly.
        self.settled = solver.node_tolerance(scale)
        self.evaluations = 0
        # The terms whose actions and acceptability tell outcomes apart (see ``settle``).
        self.columns = np.zeros(0, dtype=np.int64)

    def settle(self, recent: list[Step]) -> Settled | None:
        """Try each outcome alone, then each pair, among the outcomes of ``recent``.

        An outcome that the parties choose instead, where one outcome alone is
        consistent or where a lottery of two is drawn, joins the outcomes
        tried: the iteration may have been held off it.  The search stops when
        a round adds no outcome.
        """
        if not recent:
            return None

        # Outcomes differ where the actions or the acceptable terms at any
        # term agreed in the recent steps differ.
        agreed = np.concatenate([step.outcome.support[step.outcome.probability > 0] for step in recent])
        amend = recent[-1].policy.amend or None
        self.columns = self.solver.reduced_columns(np.unique(agreed[agreed >= 0]), amend, 0)
        outcomes: dict[bytes, Step] = {}
        # The latest step of each outcome, most recent outcome first.
        for step in reversed(recent):
            outcomes.setdefault(self.key(step), step)

        def add(step: Step | None) -> None:
            if step is not None and len(outcomes) < MAX_OUTCOMES:
                outcomes.setdefault(self.key(step), step)

        tried_alone: set[bytes] = set()
        tried_pairs: set[tuple[bytes, bytes]] = set()
        while True:
            known = len(outcomes)
            # Alone first, because that is far cheaper than a pair.
            while len(tried_alone) < len(outcomes):
                key, step = next((key, step) for key, step in outcomes.items() if key not in tried_alone)
                tried_alone.add(key)
                found, instead = self._attempt(self._alone, step)
                if found is not None:
                    return found
                add(instead)
            paired = list(outcomes.items())[:MAX_PAIRED]
            for (first_key, first), (second_key, second) in combinations(paired, 2):
                if (first_key, second_key) in tried_pairs:
                    continue
                tried_pairs.add((first_key, second_key))
                found, instead = self._attempt(self._pair, first, second)
                if found is not None:
                    return found
                add(instead)
            if len(outcomes) == known:
                return None

    @staticmethod
    def _attempt(search, *steps: Step) -> tuple[Settled | None, Step | None]:
        """Run one search; a solver failure inside it fails that search only."""
        try:
            return search(*steps)
        except SolverError:
            return None, None

    # ------------------------------------------------------------ outcomes

    def key(self, step: Step) -> bytes:
        """Identify an outcome by the actions and acceptable terms at the terms that matter."""
        return outcome_key(step.policy, step.outcome, self.columns)

    def _under(self, value: np.ndarray, step: Step) -> NodeOutcome:
        """Renegotiate at ``value`` with the step's actions and acceptable terms held fixed.

        A term that gives some party less than no treaty at ``value`` is
        dropped all the same, because the bargaining is defined only over
        terms that every party accepts.
        """
        solver = self.solver
        core = solver.core
        self.evaluations += 1
        own = core.run_pass(solver.grid, core.own, value, keep_values=True, reviews=self.reviews,
                            fixed=step.policy)[0]
        fresh = own.values[0][:, :, core.phases.start, :]
        feasible = step.outcome.feasible & np.all(self._gains(fresh) >= 0.0, axis=0)
        return solver.renegotiate(fresh, None, core.own, feasible=feasible)

    def _chosen(self, value: np.ndarray, candidates: list[NodeOutcome]) -> tuple[int | None, Step]:
        """Return the index of the candidate whose value the parties' choice at ``value`` gives.

        The index is None when the choice gives none of them; the step taken
        at ``value`` comes with it.  Choices that differ only where they leave
        the renegotiation value unchanged, such as actions at terms that are
        never agreed, count as the same outcome.
        """
        self.evaluations += 1
        own, node = self.solver.node_step(value, self.reviews, None, None)
        step = Step(value=value, policy=own.policy, outcome=node)
        for index, candidate in enumerate(candidates):
            if float(np.max(np.abs(node.value - candidate.value))) <= self.tolerance:
                return index, step
        return None, step

    # -------------------------------------------------------------- searches

    def _alone(self, step: Step) -> tuple[Settled | None, Step | None]:
        """Find a value consistent with ``step``'s outcome alone, if the parties choose it there.

        Otherwise returns what they choose at that value instead, if a value was found.
        """
        value, outcomes = self._mixed(1.0, [step], step.value)
        if value is None:
            return None, None
        pick, chosen = self._chosen(value, outcomes)
        if pick == 0:
            return self._checked(value, outcomes[0], lottery=False), None
        return None, chosen

    def _pair(self, first: Step, second: Step) -> tuple[Settled | None, Step | None]:
        """Find a lottery between two outcomes at a value where the choice between them changes.

        Otherwise returns the first outcome met that is neither of the two, if any.
        """
        # Scan the probability for two neighbours where the choice changes.
        samples = []
        third = None
        value = first.value
        for weight in np.linspace(0.0, 1.0, SCAN_POINTS):
            # The choice only needs the value roughly; the bisection refines it.
            value, outcomes = self._mixed(float(weight), [first, second], value, SCAN_LOOSENESS)
            if value is None:
                return None, None
            pick, chosen = self._chosen(value, outcomes)
            if pick is None and third is None:
                third = chosen
            samples.append((float(weight), value, outcomes, pick))
        changes = [index for index in range(len(samples) - 1)
                   if {samples[index][3], samples[index + 1][3]} == {0, 1}]
        if not changes:
            return None, third
        low, value_low, outcomes_low, pick_low = samples[changes[0]]
        high, value_high, outcomes_high, _ = samples[changes[0] + 1]

        # Bisect until the values on either side of the change agree.
        for _ in range(BISECTIONS):
            if float(np.max(np.abs(value_high - value_low))) <= self.tolerance:
                break
            middle = 0.5 * (low + high)
            # The value moves smoothly with the probability, so start between the two.
            start = 0.5 * (value_low + value_high)
            value, outcomes = self._mixed(middle, [first, second], start)
            if value is None:
                return None, third
            pick, chosen = self._chosen(value, outcomes)
            if pick == pick_low:
                low, value_low, outcomes_low = middle, value, outcomes
            elif pick == 1 - pick_low:
                high, value_high, outcomes_high = middle, value, outcomes
            else:
                return None, third or chosen
        else:
            return None, third

        # Keep the side where the actions selected reproduce the lottery.
        for weight, value, outcomes in ((low, value_low, outcomes_low), (high, value_high, outcomes_high)):
            found = self._checked(value, mix_outcomes(outcomes[0], outcomes[1], weight), lottery=True)
            if found is not None:
                return found, None
        return None, third

    def _mixed(self, weight: float, steps: list[Step], start: np.ndarray, looseness: float = 1.0):
        """Return the value consistent with drawing the first outcome with probability ``weight``.

        Returns the value and the outcomes there, or (None, outcomes) when no
        fixed point is found to ``looseness`` times the tolerance.
        """
        shares = [weight, 1.0 - weight][:len(steps)]
        last: list[NodeOutcome] = []

        def mapped(value):
            last[:] = [self._under(value, step) for step in steps]
            return sum(share * outcome.value for share, outcome in zip(shares, last))

        value = fixed_point(mapped, start, looseness * self.settled)
        if value is not None:
            # The outcomes must belong to the value returned.
            mapped(value)
        return value, list(last)

    def _checked(self, value: np.ndarray, outcome: NodeOutcome, lottery: bool) -> Settled | None:
        """Keep ``outcome`` at ``value`` if, with the actions selected there, it is consistent."""
        solver = self.solver
        core = solver.core
        self.evaluations += 1
        own = solver.node_step(value, self.reviews, None, None)[0]
        fresh = own.values[0][:, :, core.phases.start, :]
        starts = own.policy.codes[0][:, core.phases.start, :]
        settled = solver.renegotiate(fresh, starts, core.own, fixed=outcome)
        residual = float(np.max(np.abs(settled.value - value)))
        if residual > self.settled or not self._acceptable(fresh, starts, outcome):
            return None
        return Settled(value=value, lottery=outcome if lottery else None,
                       evaluations=self.evaluations, residual=residual)

    def _gains(self, fresh: np.ndarray) -> np.ndarray:
        """Return each party's gain over no treaty from agreeing each term at the node (party, column, state)."""
        core = self.solver.core
        return self.solver.offered_values(fresh, core.own) - core.own.no_treaty[:, None, :]

    def _acceptable(self, fresh, starts, outcome: NodeOutcome) -> bool:
        """Return whether every term the outcome agrees gives each party at least its no-treaty value.

        A term at the switch may sit exactly on a party's participation
        constraint, so a shortfall within the tolerance counts as acceptable.
        """
        gains = self._gains(fresh)
        for columns, probability in outcome.lottery():
            for state, column in enumerate(columns):
                if column < 0 or probability[state] <= 0:
                    continue
                if np.any(gains[:, column, state] < -self.tolerance):
                    return False
                if self.solver.game.rules.duration.delay == 0 and starts[column, state] != COMPLY:
                    return False
        return True


def fixed_point(mapped: Callable[[np.ndarray], np.ndarray], start: np.ndarray,
                tolerance: float) -> np.ndarray | None:
    """Return ``v`` with ``|mapped(v) - v| <= tolerance``, or None.

    Plain iteration first, since the map usually contracts; Newton's method
    with a finite-difference Jacobian where it contracts slowly or not at
    all, because a value that repels the plain iteration can still be a
    fixed point.
    """
    value = start
    previous = np.inf
    for iteration in range(PLAIN_ITERATIONS):
        image = mapped(value)
        residual = float(np.max(np.abs(image - value)))
        if residual <= tolerance:
            return image
        value = image
        # A slow contraction costs more plain steps than a few Newton steps.
        if iteration >= 3 and residual > SLOW_CONTRACTION * previous:
            break
        previous = residual

    shape = value.shape
    flat = value.ravel()
    size = flat.size
    for _ in range(NEWTON_STEPS):
        residual = mapped(flat.reshape(shape)).ravel() - flat
        if float(np.max(np.abs(residual))) <= tolerance:
            return flat.reshape(shape)
        jacobian = np.empty((size, size))
        for index in range(size):
            step = 1e-7 * max(1.0, abs(flat[index]))
            moved = flat.copy()
            moved[index] += step
            jacobian[:, index] = (mapped(moved.reshape(shape)).ravel() - moved - residual) / step
        try:
            flat = flat - np.linalg.solve(jacobian, residual)
        except np.linalg.LinAlgError:
            return None
        if not np.all(np.isfinite(flat)):
            return None
    return None


def outcome_key(policy: Policy, outcome: NodeOutcome, columns: np.ndarray) -> bytes:
    """Identify a renegotiation outcome by how the terms ``columns`` are kept and accepted.

    ``columns`` are the terms that the parties agree and the terms their
    values depend on.  The actions, extension choices and acceptability there
    are what can jump.  The lottery over those terms moves smoothly with the
    values, even as terms enter or leave it, so it is left out.
    """
    parts = [codes[columns].tobytes() for codes in policy.codes]
    parts += [policy.extend[segment][columns].tobytes() for segment in sorted(policy.extend)]
    parts.append(np.asarray(outcome.feasible)[columns].tobytes())
    return b"".join(parts)


def mix_outcomes(first: NodeOutcome, second: NodeOutcome, weight: float) -> NodeOutcome:
    """Draw ``first`` with probability ``weight`` and ``second`` otherwise, in every state.

    A term in both lotteries gets one row with the two chances added.
    """
    states = first.support.shape[1]
    chances: list[dict[int, float]] = [{} for _ in range(states)]
    for outcome, share in ((first, weight), (second, 1.0 - weight)):
        if share <= 0:
            continue
        for columns, probability in outcome.lottery():
            for state in range(states):
                if probability[state] > 0:
                    column = int(columns[state])
                    chances[state][column] = chances[state].get(column, 0.0) + share * probability[state]
    rows = max(len(chance) for chance in chances)
    support = np.full((rows, states), -1, dtype=np.int64)
    probability = np.zeros((rows, states))
    for state, chance in enumerate(chances):
        ordered = sorted(chance.items(), key=lambda item: -item[1])
        for row, (column, share) in enumerate(ordered):
            support[row, state] = column
            probability[row, state] = share
    return NodeOutcome(support=support, value=None, probability=probability)
