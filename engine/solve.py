"""Solve a compiled game on the strictness grid, then at any extra strictness.

With a sunset clause the value of reaching an expiry node depends on the
treaty that would be renegotiated there, which depends on the node value
again.  The solver finds that fixed point by iterating from an upper bound
(with damping once the iteration stops descending, and with Anderson steps
once the agreed terms stay the same), so it reaches the most cooperative
solution.  After the grid solve, the node values and the review targets are
frozen, and extra columns (zone endpoints, the bargaining solution) are
solved against them.
"""

from __future__ import annotations

import math

from dataclasses import dataclass

import numpy as np

from engine.bargaining import bargaining_objective, nash_lottery
from engine.dynamic import (
    COMPLY,
    NOTICE_CODE,
    TIE_TOLERANCE,
    Chain,
    DynamicSolver,
    NodeOutcome,
    PassResult,
    Policy,
    SolveStats,
)
from engine.errors import SolverError
from engine.game import Game
from engine.outcome_lottery import LOTTERY_NOTE, OutcomeLottery, Step

MAX_NODE_ITERATIONS = 2000
# Iterations without progress after which the renegotiation iteration stops.
STALL_ITERATIONS = 100
# Times the renegotiation iteration may move to the columns of the agreed terms
# before it stays on the whole grid (see ``Solver._node_iteration``).
MAX_REDUCTIONS = 3
# Grid columns kept on each side of an agreed term in the reduced iteration.
NEIGHBOURS = 2
# Reduced iterations between two checks on the whole grid.
REDUCED_CHECK = 8
# A step that shrinks the change of the renegotiation value to at most this
# fraction of the step before counts as settling. Two such steps with the
# same terms are enough to move to their columns and to take Anderson steps.
SETTLING_RATIO = 0.2

# Earlier steps that an Anderson step of the renegotiation iteration combines.
ANDERSON_MEMORY = 3

# Policies kept from the renegotiation iteration, to find extension choices that flip.
RECENT_POLICIES = 12
# Bisection steps for an extension probability, and the gain from extending
# (relative to the payoff scale) below which the pivotal party counts as
# indifferent.
EXTENSION_BISECTIONS = 50
EXTENSION_TOLERANCE = 1e-7

EXTENSION_LOTTERY = (
    "the choice between extending the terms and renegotiating them flipped back and forth at "
    "some terms; there the parties extend with the probability that leaves the party gaining "
    "least from extending indifferent")

# Values held per solve: clock positions x phases x states x parties x grid.
# About 30 million doubles (240 MB) per copy keeps a score, which stores a few
# copies, within a few GiB.
MAX_VALUES = 30_000_000


@dataclass
class Columns:
    """Results at a set of strictness values (columns)."""

    gammas: np.ndarray
    own: PassResult
    declared: PassResult


class Solver:
    """Grid solve plus on-demand columns, for one set of strategic parties."""

    def __init__(self, game: Game, strategic: np.ndarray | None = None,
                 renegotiation: "Solver | None" = None):
        self.game = game
        self.core = DynamicSolver(game, strategic)
        _check_size(self.core, game.settings.grid)
        # A solver for a subset of strategic parties takes the outcome of
        # renegotiation at expiry from the joint solve, because what happens
        # after the term is the joint equilibrium for every party.
        self.renegotiation = renegotiation
        self.grid = np.linspace(0.0, 1.0, game.settings.grid)
        self.stats: SolveStats | None = None
        self.node_own: NodeOutcome | None = None
        # The renegotiation value that the grid was solved against. It lies
        # within the tolerance of ``node_own.value``. Extra columns use it too,
        # so that they and the grid columns see the same future.
        self.node_input: np.ndarray | None = None
        self.node_declared: NodeOutcome | None = None
        self.base: Columns | None = None
        # The grid solved without reviews, where the treaty has reviews: review
        # choices are made against it.
        self.unreviewed: PassResult | None = None
        # Messages from every pass, the grid solve and the extra columns.
        self.notes: list[str] = []
        # Extension probabilities fixed by a lottery (see ``_mixed_extension``).
        self.extension: dict[int, np.ndarray] | None = None

    @property
    def keep_all(self) -> bool:
        return bool(self.core.clock.review.any())

    # --------------------------------------------------------- renegotiation

    def renegotiate(self, fresh: np.ndarray, starts: np.ndarray, chain: Chain,
                     fixed: NodeOutcome | None = None,
                     feasible: np.ndarray | None = None,
                     previous: NodeOutcome | None = None) -> NodeOutcome:
        """Bargain over the grid at an expiry node, against the treaty lapsing.

        ``fresh`` (party, column, state) is the value of a new treaty that
        starts in each state; ``starts`` the first-period profile codes.
        ``fixed`` keeps a lottery and only values it; ``feasible`` (column,
        state) replaces the acceptable terms the bargaining chooses from.
        ``previous``, a lottery over the same columns, is where the Nash
        lottery search starts (see ``nash_lottery``).
        """
        core = self.core
        offered = self.offered_values(fresh, chain)

        no_treaty = chain.no_treaty
        if fixed is None:
            gains = offered - no_treaty[:, None, :]
            held_back = None
            if feasible is None:
                # Terms that leave every party exactly where the lapse would,
                # such as a new treaty that breaks down as soon as it starts
                # after a delay, are no agreement, so some party must gain.
                someone_gains = np.any(gains > TIE_TOLERANCE * (1.0 + np.abs(no_treaty[:, None, :])), axis=0)
                feasible = np.all(gains >= 0, axis=0) & someone_gains
                if self.game.rules.duration.delay == 0:
                    # A new treaty must start with everyone complying, as the
                    # first agreement must. Terms left out only because it
                    # would start with a notice or an escape (codes above
                    # COMPLY) are kept, so that a lapse they cause can be
                    # explained. A treaty that breaks down at once gains nothing.
                    held_back = np.where(feasible & (starts > COMPLY), starts, COMPLY).astype(np.int8)
                    feasible &= starts == COMPLY
            objective = np.where(feasible, bargaining_objective(gains, core.weights, core.rule), -np.inf)
            fallback = np.where(feasible, gains.sum(axis=0), -np.inf)
            objective = np.where(np.isfinite(objective.max(axis=0))[None], objective, fallback)
            outcome = _lottery_outcome(gains, feasible, objective, core.weights, core.rule, previous)
            value = np.zeros_like(no_treaty)
            for target, probability in outcome.lottery():
                value += probability[None, :] * _offer(offered, no_treaty, target)
            outcome.value = value
            outcome.objective = objective
            outcome.feasible = feasible
            outcome.held_back = held_back
            return outcome

        value = np.zeros_like(no_treaty)
        for target, probability in fixed.lottery():
            value += probability[None, :] * _offer(offered, no_treaty, target)
        return NodeOutcome(support=fixed.support, value=value, probability=fixed.probability)

    # ------------------------------------------------------------ grid solve

    def solve(self) -> Columns:
        """Solve the base grid under each party's beliefs and under the declared chain."""
        if self.base is not None:
            return self.base

        # Review nodes are decided against the treaty without later reviews,
        # so solve that first when the treaty has reviews.
        self.reviews = None
        if self.keep_all:
            self.unreviewed = self._solve_unreviewed()
            self.reviews = self.core.review_choices(self.unreviewed, None)
        own, declared, stats = self._solve_once(self.reviews)
        if self.renegotiation is None and self.node_own is not None:
            self.notes.extend(self._start_rule_notes(self.node_own))

        self.stats = stats
        self._note(stats)
        if not stats.converged:
            self._raise_unconverged(stats, "the equilibrium values")
        self.base = Columns(gammas=self.grid, own=own, declared=declared)
        return self.base

    def _start_rule_notes(self, outcome: NodeOutcome) -> list[str]:
        """Return a warning for each state where the treaty lapses at expiry only because of how a new treaty would start.

        Terms are agreed at expiry only if every party gains and, without a
        delay, the new treaty starts with everyone complying. Where some
        terms pass the first test but none passes both, the note names what
        the new treaty would start with instead: most often an escape that
        its trigger allows in that state.
        """
        if outcome.held_back is None or outcome.feasible is None:
            return []
        game = self.game
        n = game.n_parties
        notes = []
        for state, name in enumerate(game.states):
            codes = outcome.held_back[:, state]
            if outcome.feasible[:, state].any() or not np.any(codes != COMPLY):
                continue
            starts = []
            for code in np.unique(codes[codes != COMPLY]).tolist():
                if code < NOTICE_CODE + n:
                    starts.append(f"{game.parties[code - NOTICE_CODE].name} giving notice")
                else:
                    starts.append(f"{game.parties[code - NOTICE_CODE - n].name} invoking the escape hatch")
            notes.append(
                f"renegotiation at an expiry in state `{name}` fails although every party would gain "
                f"from some new terms: there the new treaty would start with {' or '.join(starts)}, "
                f"and terms are agreed only if the treaty starts with everyone complying")
        return notes

    def _raise_unconverged(self, stats: SolveStats, values: str) -> None:
        """Raise ``SolverError`` for a grid solve that did not converge, naming the ``values`` that did not."""
        reason = f"; {stats.messages[-1]}" if stats.messages else ""
        # Only value iteration over a repeating clock crawls with short periods.
        advice = ("; a coarser `period` often helps, because the solver then takes fewer, "
                  "larger steps") if self.core.clock.cyclic else ""
        raise SolverError(
            f"{values} did not converge after {stats.iterations} iterations "
            f"(residual {stats.residual:.3g}){reason}; the result would not be reliable, "
            f"so none is given{advice}")

    def _solve_unreviewed(self) -> PassResult:
        """Solve the grid without reviews, as far as the review choices need it.

        The choices depend on the parties' own beliefs alone, so the declared
        chain is left out. Where the renegotiation value comes from the joint
        solve, the pass stops at the first review. The joint solve itself
        bargains over the start values at every iteration, so it solves
        every position. Raises ``SolverError`` if this solve does not
        converge, because choices decided against it would not be reliable.
        """
        core = self.core
        if self.renegotiation is not None and not core.clock.cyclic:
            self.renegotiation.solve()
            return core.run_pass(self.grid, core.own, self.renegotiation.node_input, keep_values=True,
                                 down_to=core.first_review)[0]

        own, _, stats = self._solve_once(None, declared=False)
        if not stats.converged:
            self._note(stats)
            self._raise_unconverged(stats, "the equilibrium values of the treaty without its reviews, "
                                           "against which amendments are decided,")
        return own

    def _solve_once(self, reviews, declared: bool = True):
        """Solve the grid under the parties' own beliefs, and under the declared chain unless ``declared`` is False.

        Returns the two passes (the second is None without the declared
        chain, and the first again where beliefs are the declared chain) and
        the statistics.
        """
        core = self.core
        if not core.clock.cyclic:
            return self._solve_sunset(reviews, declared)
        own, own_stats = core.run_pass(self.grid, core.own, None, keep_values=True, reviews=reviews)
        if core.beliefs_are_declared:
            return own, own, own_stats
        if not declared:
            return own, None, own_stats
        declared, declared_stats = core.run_pass(
            self.grid, core.declared, None, fixed=own.policy, keep_values=True)
        stats = own_stats
        stats.converged = own_stats.converged and declared_stats.converged
        stats.residual = max(own_stats.residual, declared_stats.residual)
        return own, declared, stats

    def _solve_sunset(self, reviews, declared: bool = True):
        core = self.core
        start_phase = core.phases.start
        if self.renegotiation is not None:
            return self._solve_sunset_given_nodes(reviews)
        upper, scale = core.value_bounds(core.regime_values(self.grid))
        node_value = np.repeat(upper[:, None], core.n_states, axis=1)
        method = "backward induction over the term, fixed point in the renegotiation value"

        # Under beliefs: iterate the node value from above.
        recent: list[Step] = []
        node_value, converged, iterations, residual, last = self._node_iteration(
            node_value, reviews, scale, recent=recent)
        self.extension = None
        settled = None
        if not converged:
            mixed = self._mixed_extension(node_value, reviews, scale, recent)
            if mixed is not None:
                node_value, self.extension, extra, residual = mixed
                iterations += extra
                last = None
                converged = True
                self.notes.append(EXTENSION_LOTTERY)
        if not converged:
            found = OutcomeLottery(self, reviews, scale).settle(recent)
            if found is not None:
                node_value, settled = found.value, found.lottery
                iterations += found.evaluations
                residual = found.residual
                converged = True
                if settled is not None:
                    self.notes.append(LOTTERY_NOTE)

        self.node_input = node_value
        if last is not None:
            # The iteration stopped at a whole-grid pass against this value,
            # so that pass is the result.
            own = last[0]
        else:
            own = core.run_pass(self.grid, core.own, node_value, keep_values=True, reviews=reviews,
                                extension=self.extension)[0]
        # Bargained afresh rather than from the last step's lottery, so that
        # where several lotteries give the same gains, the one reported
        # depends on the gains alone and not on the path of the iteration.
        fresh = own.values[0][:, :, start_phase, :]
        starts = own.policy.codes[0][:, start_phase, :]
        self.node_own = self.renegotiate(fresh, starts, core.own, fixed=settled)

        stats = SolveStats(converged=converged, iterations=iterations, residual=residual, method=method)
        if core.beliefs_are_declared:
            self.node_declared = self.node_own
            return own, own, stats
        if not declared:
            return own, None, stats

        # Under the declared chain the policy and the lottery are fixed, so the
        # map of the node value is an affine contraction. Anderson steps reach
        # its fixed point in a few passes, and a step whose change does not
        # shrink is replaced by the plain step.
        node_true = core.declared.no_treaty.copy()
        declared_converged = False
        history: list[tuple[np.ndarray, np.ndarray]] = []
        previous_change, replaced = np.inf, None
        for _ in range(self.node_iteration_limit()):
            declared = core.run_pass(self.grid, core.declared, node_true, fixed=own.policy,
                                     keep_values=True)[0]
            fresh_true = declared.values[0][:, :, start_phase, :]
            node = self.renegotiate(fresh_true, None, core.declared, fixed=self.node_own)
            change = float(np.max(np.abs(node.value - node_true)))
            if change <= self.node_tolerance(scale):
                # The pass against this value is the result.
                declared_converged = True
                break
            if replaced is not None and change >= previous_change:
                node_true, replaced, history = replaced, None, []
                continue
            previous_change = change
            history = (history + [(node_true, node.value)])[-ANDERSON_MEMORY - 1:]
            accelerated = _anderson_step(history) if len(history) >= 2 else None
            replaced = None if accelerated is None else node.value
            node_true = node.value if accelerated is None else accelerated
        if not declared_converged:
            declared = core.run_pass(self.grid, core.declared, node_true, fixed=own.policy,
                                     keep_values=True)[0]
        self.node_declared = NodeOutcome(support=self.node_own.support, value=node_true,
                                         probability=self.node_own.probability)
        stats.converged = converged and declared_converged
        return own, declared, stats

    def _node_iteration(self, node_value, reviews, scale, extension=None,
                        recent: list[Step] | None = None):
        """Iterate the renegotiation value from ``node_value`` until it settles.

        ``extension`` fixes extension probabilities (see ``DynamicSolver.run_pass``)
        and ``recent`` collects the last steps on the whole grid.  Returns the value,
        whether it converged, the iterations, the last residual, and the
        whole-grid pass against the returned value with its renegotiation
        outcome (None unless it converged).

        Once the terms agreed at renegotiation stay the same for three
        iterations, or for two that shrink the change at least fivefold (see
        ``SETTLING_RATIO``), the iteration continues on those columns and their
        neighbours (see ``reduced_columns``), which is much cheaper than the
        whole grid.  Every ``REDUCED_CHECK`` iterations, and before a value
        that settles there counts, one iteration on the whole grid checks every
        column for acceptability and for a better lottery.  If the terms have
        moved off the reduced columns, the iteration goes back to the whole grid.

        After the same steady steps the map counts as nearly affine, so the
        iteration also takes Anderson steps (see
        ``_anderson_step``): from the last few values and their images it
        extrapolates to where the change would vanish.  That needs a few
        steps where plain iteration needs many when the map contracts slowly.
        An Anderson step that changes the agreed terms, or whose change is not
        smaller than the one before, is undone, and the iteration takes the
        plain step instead.

        NOTE: where a lottery's probabilities move steeply with the value,
        Anderson steps and plain iteration can end on probabilities that
        differ by more than the tolerance (1e-6 has been seen), although the
        values agree within it.
        """
        damping = 1.0
        stalled = 0
        previous_residual = np.inf
        best_residual, since_best = np.inf, 0
        residual = np.inf
        iterations = 0
        columns = None
        previous_support = None
        # The last step's outcome, where the next bargaining search starts.
        node = None
        steady = 0
        reductions = 0
        reduced_steps = 0
        # Values and their images since the terms last changed, for Anderson
        # steps, and the plain step that the last Anderson step replaced.
        history: list[tuple[np.ndarray, np.ndarray]] = []
        history_support = None
        replaced = None
        limit = self.node_iteration_limit()
        # A step counts as progress when it shrinks the residual by 0.1%, or,
        # where the map contracts more slowly than that, by half its rate.
        progress = max(0.999, 1.0 - 0.5 * (1.0 - self.node_modulus()))
        for iterations in range(1, limit + 1):
            # Every few iterations on the reduced columns, one on the whole
            # grid checks that the agreed terms have not moved off them.
            whole = columns is None or reduced_steps >= REDUCED_CHECK
            own, node = self.node_step(node_value, reviews, extension, None if whole else columns,
                                       previous=node)
            reduced_steps = 0 if whole else reduced_steps + 1
            if recent is not None and whole:
                recent.append(Step(value=node_value, policy=own.policy, outcome=node))
                del recent[:-RECENT_POLICIES]
            residual = float(np.max(np.abs(node.value - node_value)))
            if residual <= self.node_tolerance(scale):
                if whole:
                    return node_value, True, iterations, residual, (own, node)
                # Settled on the reduced columns: confirm on the whole grid.
                columns, previous_support, steady = None, None, 0
                best_residual, since_best = np.inf, 0
                node_value = node.value
                continue

            if replaced is not None and (residual >= previous_residual
                                         or not np.array_equal(node.support, history_support)):
                # The Anderson step overshot or left the terms it assumed, so
                # the iteration takes the plain step it replaced.
                node_value, replaced = replaced, None
                history = []
                continue
            replaced = None

            if columns is not None:
                agreed = node.support[node.support >= 0]
                overshoot = residual >= previous_residual
                if overshoot or (whole and not np.all(np.isin(agreed, columns))):
                    # The reduced columns serve a smooth approach to terms among
                    # them only, so otherwise the iteration goes back to the whole grid.
                    columns, previous_support, steady = None, None, 0
                    best_residual, since_best = np.inf, 0
                    if overshoot:
                        continue

            # Damp only while the iteration overshoots, because a bargaining
            # outcome that jumps between grid points can make it oscillate.
            if residual >= previous_residual:
                damping = max(damping * 0.5, 1e-4)
            else:
                damping = min(damping * 1.5, 1.0)
            # At the smallest damping an oscillation that persists will not
            # settle. Nor will one whose smallest residual stops falling.
            stalled = stalled + 1 if damping <= 1e-4 else 0
            if residual < progress * best_residual:
                best_residual, since_best = residual, 0
            else:
                since_best += 1
            if stalled >= STALL_ITERATIONS or since_best >= STALL_ITERATIONS:
                break
            settling = residual <= SETTLING_RATIO * previous_residual
            previous_residual = residual
            if damping < 1.0 or not np.array_equal(node.support, history_support):
                history = []
            if damping == 1.0:
                history = (history + [(node_value, node.value)])[-ANDERSON_MEMORY - 1:]
                history_support = node.support
            # Three full steps with the same terms, or two while the change
            # shrinks fast, before the map counts as nearly affine.
            affine = len(history) >= 3 or (len(history) >= 2 and settling)
            accelerated = _anderson_step(history) if affine else None
            if accelerated is not None:
                replaced = node.value
                node_value = accelerated
            else:
                node_value = node_value + damping * (node.value - node_value)

            if columns is None:
                # Three iterations in a row with the same terms at full
                # steps, or two while the change shrinks fast, before moving
                # to those terms' columns.
                same = (damping == 1.0 and previous_support is not None
                        and np.array_equal(node.support, previous_support))
                steady = steady + 1 if same else 0
                previous_support = node.support
                ready = steady >= 2 or (steady >= 1 and settling)
                if ready and reductions < MAX_REDUCTIONS and np.any(node.support >= 0):
                    columns = self.reduced_columns(node.support, reviews)
                    reductions += 1
                    steady = 0
                    reduced_steps = 0
        return node_value, False, iterations, residual, None

    def node_step(self, node_value, reviews, extension, columns, previous: NodeOutcome | None = None):
        """Run one pass at ``node_value`` on ``columns`` (or the grid) and renegotiate against it.

        On reduced columns the outcome's support is mapped back to grid
        columns.  ``previous``, an outcome with grid columns, is where the
        bargaining search starts.
        """
        core = self.core
        start_phase = core.phases.start
        gammas = self.grid
        if columns is not None:
            gammas = self.grid[columns]
            reviews, extension = _restrict(columns, reviews, extension)
        own = core.run_pass(gammas, core.own, node_value, keep_values=True, reviews=reviews,
                            extension=extension)[0]
        fresh = own.values[0][:, :, start_phase, :]
        if previous is not None and columns is not None:
            # The search works on positions among the reduced columns.
            position = np.searchsorted(columns, previous.support)
            inside = (previous.support >= 0) & (position < len(columns))
            inside[inside] = columns[position[inside]] == previous.support[inside]
            previous = NodeOutcome(support=np.where(inside, position, -1), value=None,
                                   probability=previous.probability)
        node = self.renegotiate(fresh, own.policy.codes[0][:, start_phase, :], core.own,
                                previous=previous)
        if columns is not None:
            node.support = np.where(node.support >= 0, columns[np.maximum(node.support, 0)], -1)
        return own, node

    def node_tolerance(self, scale: float) -> float:
        """Return the largest change of the renegotiation value that counts as settled.

        While the selected actions and the agreed terms stay the same, the map
        ``T`` from one renegotiation value to the next is a contraction with
        modulus ``c = max_i delta_i ** (term + delay)``, because a treaty
        agreed at one expiry node reaches the next no sooner.  A change
        ``d = |T(v) - v|`` then puts ``v`` within ``d / (1 - c)`` of the fixed
        point, because ``|v - v*| <= d + |T(v) - T(v*)| <= d + c |v - v*|``.
        The grid is solved against ``v`` itself, so the change must be at most
        ``tolerance * scale * (1 - c)``.  With a short term, ``c`` is close to
        1 and the bound is much tighter than the change alone.
        """
        return self.core.tolerance * scale * self._contraction_factor()

    def _contraction_factor(self) -> float:
        """Return ``1 - c`` for the modulus ``c`` of ``node_modulus``."""
        return 1.0 - self.node_modulus()

    def node_modulus(self) -> float:
        """Return ``max_i delta_i ** (term + delay)``, the slowest contraction of the renegotiation map."""
        duration = self.game.rules.duration
        return float(np.max(self.core.delta ** (duration.term + duration.delay)))

    def node_iteration_limit(self) -> int:
        """Return how many renegotiation iterations to run before giving up.

        ``MAX_NODE_ITERATIONS``, or twice the steps that the slowest
        contraction needs to shrink a change of the payoff scale to the
        stopping rule of ``node_tolerance``, where that is more.
        """
        modulus = self.node_modulus()
        if not 0.0 < modulus < 1.0:
            return MAX_NODE_ITERATIONS
        target = self.core.tolerance * self._contraction_factor()
        return max(MAX_NODE_ITERATIONS, math.ceil(2.0 * math.log(target) / math.log(modulus)))

    def reduced_columns(self, support: np.ndarray, reviews, neighbours: int = NEIGHBOURS) -> np.ndarray:
        """Return the grid columns near the ``support`` columns and those their values depend on.

        A column's values depend on no other column, except through an
        amendment at a review, which takes the values of its target column.
        So the set is closed under the amendments that ``reviews`` fixes.
        """
        chosen = np.zeros(len(self.grid), dtype=bool)
        # Neighbours too, because the lottery often moves to an adjacent term
        # as the value settles, and a column costs little next to a pass.
        agreed = support[support >= 0]
        for offset in range(-neighbours, neighbours + 1):
            chosen[np.clip(agreed + offset, 0, len(self.grid) - 1)] = True
        while True:
            targets = [choice[chosen] for choice in (reviews or {}).values()]
            grown = chosen.copy()
            for target in targets:
                grown[target[target >= 0]] = True
            if np.array_equal(grown, chosen):
                return np.flatnonzero(chosen)
            chosen = grown

    def _mixed_extension(self, node_value, reviews, scale, recent: list[Step]):
        """Settle an extension choice that flips by letting the parties extend with some probability.

        When extending makes the renegotiation value move so that some party
        prefers to renegotiate, and renegotiating moves it back, no pure
        choice is consistent.  Where the recent passes flipped, bisection finds
        the extension probability at which the pivotal party, the one that
        gains least from extending, is indifferent.  A lottery over the two
        choices is then an equilibrium.  Returns the renegotiation value,
        the probabilities, the iterations and the residual, or None when the
        flips are not of this kind or the bisection does not settle them.
        """
        segments = sorted(recent[-1].policy.extend) if recent else []
        flips = {}
        for segment in segments:
            choices = np.stack([step.policy.extend[segment] for step in recent])
            flipping = np.any(choices != choices[0], axis=0)
            if flipping.any():
                flips[segment] = flipping
        if not flips:
            return None

        low = {segment: np.zeros(mask.shape) for segment, mask in flips.items()}
        high = {segment: np.ones(mask.shape) for segment, mask in flips.items()}
        total = 0
        for _ in range(EXTENSION_BISECTIONS):
            extension = {segment: np.where(mask, 0.5 * (low[segment] + high[segment]), np.nan)
                         for segment, mask in flips.items()}
            value, converged, iterations, residual, _ = self._node_iteration(
                node_value, reviews, scale, extension=extension)
            total += iterations
            if not converged:
                return None
            node_value = value
            margins = self.core.run_pass(self.grid, self.core.own, value, keep_values=True,
                                         reviews=reviews, extension=extension)[0].policy.extend_margin
            for segment, mask in flips.items():
                keen = margins[segment] >= 0.0
                low[segment] = np.where(mask & keen, extension[segment], low[segment])
                high[segment] = np.where(mask & ~keen, extension[segment], high[segment])

        # The lottery is an equilibrium only where the pivotal party is indifferent,
        # or where the probability reached an end that the parties choose.
        for segment, mask in flips.items():
            chance = extension[segment][mask]
            margin = margins[segment][mask]
            indifferent = np.abs(margin) <= EXTENSION_TOLERANCE * scale
            chosen = ((chance >= 1.0 - 1e-9) & (margin >= 0.0)) | ((chance <= 1e-9) & (margin < 0.0))
            if not np.all(indifferent | chosen):
                return None
        return node_value, extension, total, residual

    def _solve_sunset_given_nodes(self, reviews):
        joint = self.renegotiation
        joint.solve()
        self.node_own = joint.node_own
        self.node_input = joint.node_input
        self.node_declared = joint.node_declared
        core = self.core
        # Against the same renegotiation value, the pass with reviews repeats
        # the one without them up to the last review, so it starts there.
        own = core.run_pass(self.grid, core.own, self.node_input, keep_values=True,
                            reviews=reviews, unreviewed=None if reviews is None else self.unreviewed)[0]
        declared = own
        if not core.beliefs_are_declared:
            declared = core.run_pass(self.grid, core.declared, self.node_declared.value,
                                     fixed=own.policy, keep_values=True)[0]
        stats = SolveStats(converged=True, iterations=1, residual=0.0,
                           method="backward induction over the term, renegotiation from the joint solve")
        return own, declared, stats

    def offered_values(self, fresh: np.ndarray, chain: Chain) -> np.ndarray:
        """Return the value at the node (party, column, state) of agreeing each column after the delay, net of costs."""
        core = self.core
        duration = self.game.rules.duration
        delay = duration.delay
        n, states = core.n, core.n_states

        delay_payoff = np.zeros((n, states))
        power = np.broadcast_to(np.eye(states), (n, states, states)).copy()
        for step in range(delay):
            delay_payoff += (core.delta ** step)[:, None] * np.einsum("ist,it->is", power, core.defection)
            power = np.einsum("ist,itu->isu", power, chain.transition)
        later = np.einsum("ist,igt->igs", power, fresh)
        return (-duration.renegotiation_cost + delay_payoff[:, None, :]
                + (core.delta ** delay)[:, None, None] * later)

    # --------------------------------------------------------- extra columns

    def evaluate(self, gammas) -> Columns:
        """Solve at arbitrary strictness values against the frozen grid solution."""
        base = self.solve()
        gammas = np.atleast_1d(np.asarray(gammas, dtype=float))
        core = self.core
        node_own = self.node_input
        node_declared = None if self.node_declared is None else self.node_declared.value

        reviews = unreviewed = None
        if self.reviews is not None:
            # Only the review choices and the positions after the last review
            # are read from this pass, so it stops at the first review.
            unreviewed, stats = core.run_pass(gammas, core.own, node_own, base=self.unreviewed,
                                              keep_values=True, down_to=core.first_review)
            self._check(stats, gammas)
            reviews = core.review_choices(unreviewed, self.unreviewed)

        own, stats = core.run_pass(gammas, core.own, node_own, base=base.own, keep_values=True,
                                   reviews=reviews, unreviewed=unreviewed)
        self._check(stats, gammas)
        if core.beliefs_are_declared:
            return Columns(gammas=gammas, own=own, declared=own)
        declared, stats = core.run_pass(gammas, core.declared, node_declared, base=base.declared,
                                        fixed=own.policy, keep_values=True)
        self._check(stats, gammas)
        return Columns(gammas=gammas, own=own, declared=declared)

    def _note(self, stats: SolveStats | None) -> None:
        for message in [] if stats is None else stats.messages:
            if message not in self.notes:
                self.notes.append(message)

    def _check(self, stats: SolveStats | None, gammas: np.ndarray) -> None:
        self._note(stats)
        if stats is not None and not stats.converged:
            reason = f"; {stats.messages[-1]}" if stats.messages else ""
            if len(gammas) <= 3:
                where = ", ".join(f"{gamma:.6g}" for gamma in gammas)
            else:
                where = f"{len(gammas)} values from {gammas.min():.6g} to {gammas.max():.6g}"
            raise SolverError(
                f"the equilibrium values at strictness {where} did not converge "
                f"(residual {stats.residual:.3g}){reason}; the result would not be reliable, "
                "so none is given; a coarser `period` often helps, because the solver then "
                "takes fewer, larger steps")


def _check_size(core: DynamicSolver, grid: int) -> None:
    """Raise a clear error before a model too large for memory is solved."""
    size = core.clock.size * core.phases.size * core.n_states * core.n * grid
    if size > MAX_VALUES:
        raise SolverError(
            f"the model is too large to solve: {core.clock.size} clock positions x "
            f"{core.phases.size} provision phases x {core.n_states} states x {core.n} parties x "
            f"{grid} strictness values = {size:,} values (limit {MAX_VALUES:,}); use a coarser "
            "`period`, shorter durations, a smaller `max_uses` or a smaller `model.grid`")


def _anderson_step(history: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray | None:
    """Return the next renegotiation value from ``(value, image)`` pairs of the same terms, or None.

    For an affine map ``T`` the change ``T(x) - x`` is affine too, so the
    combination of the recent values whose changes cancel best, with
    weights summing to one, is where the change vanishes.  The step returns
    the same combination of their images (Anderson acceleration).  With
    a map that is only nearly affine it lands close to the fixed point, and
    the caller checks the next change.  None where the changes of the recent
    values leave the weights undetermined.
    """
    values = np.stack([value.ravel() for value, _ in history])
    images = np.stack([image.ravel() for _, image in history])
    changes = images - values

    # The weights sum to one, so writing them relative to the newest value
    # leaves an unconstrained least-squares problem over the differences of
    # consecutive changes.
    differences = np.diff(changes, axis=0).T
    if not np.any(differences):
        return None
    weights, *_ = np.linalg.lstsq(differences, changes[-1], rcond=None)
    if not np.all(np.isfinite(weights)):
        return None
    step = images[-1] - np.diff(images, axis=0).T @ weights
    return step.reshape(history[-1][0].shape)


def _restrict(columns: np.ndarray, reviews, extension):
    """Restrict fixed amendment choices and extension probabilities to ``columns``.

    Amendment choices name a target column of the grid; they are renumbered
    to positions in ``columns``, which must contain every target.
    """
    if reviews is not None:
        position = np.full(int(columns.max()) + 1, -1, dtype=np.int64)
        position[columns] = np.arange(len(columns))
        renumbered = {}
        for key, choice in reviews.items():
            picked = choice[columns]
            renumbered[key] = np.where(picked >= 0, position[np.maximum(picked, 0)], -1).astype(picked.dtype)
        reviews = renumbered
    if extension is not None:
        extension = {segment: chance[columns] for segment, chance in extension.items()}
    return reviews, extension


def _offer(offered: np.ndarray, no_treaty: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Value at the node, per party and state, when ``target`` is agreed (-1: lapse)."""
    value = no_treaty.copy()
    for state, column in enumerate(target):
        if column >= 0:
            value[:, state] = offered[:, column, state]
    return value


def _lottery_outcome(gains, feasible, objective, weights, rule,
                     previous: NodeOutcome | None = None) -> NodeOutcome:
    """Bargain at an expiry node over lotteries of the acceptable grid terms.

    A lottery of terms is valued at the mix of their values, so the set the
    parties bargain over is the convex hull of the acceptable terms' gains.
    Under a Nash rule the weighted Nash product has a unique peak on that
    set, and the peak moves continuously with the terms' values.  The fixed
    point iteration over the renegotiation value needs that continuity.  Picking
    the best single term, or mixing only neighbouring terms, can jump between
    distant terms of nearly equal Nash product and keep the iteration from
    settling.  The utilitarian rule is linear, so its best term is a best
    lottery.  Where no lottery gives every party a gain, the parties take the
    acceptable term with the largest sum of gains, as ``objective`` holds.
    The search in each state starts from ``previous`` where it has terms there.
    """
    columns, states = objective.shape
    n = gains.shape[0]
    support = np.full((n + 1, states), -1, dtype=np.int64)
    probability = np.zeros((n + 1, states))
    probability[0] = 1.0
    for state in range(states):
        acceptable = np.flatnonzero(feasible[:, state])
        if acceptable.size == 0:
            continue
        chosen, chances = np.zeros(0, dtype=np.int64), np.zeros(0)
        if rule != "utilitarian":
            start = None
            if previous is not None:
                # Positions of the previous lottery's acceptable terms among the acceptable ones.
                terms = previous.support[:, state]
                position = np.searchsorted(acceptable, terms)
                present = (terms >= 0) & (position < acceptable.size)
                present[present] = acceptable[position[present]] == terms[present]
                start = position[present], previous.probability[present, state]
            chosen, chances, _ = nash_lottery(gains[:, acceptable, state], weights, start=start)
        if chosen.size == 0:
            chosen, chances = np.array([int(np.argmax(objective[acceptable, state]))]), np.ones(1)
        support[:len(chosen), state] = acceptable[chosen]
        probability[:len(chosen), state] = chances
    used = max(1, int(np.max(np.sum(probability > 0, axis=0))))
    return NodeOutcome(support=support[:used], value=None, probability=probability[:used])


def combine_policies(first: Policy, second: Policy) -> Policy:
    """Stack two policies column-wise (used to propagate terms and grid together)."""
    codes = [np.concatenate([a, b], axis=0) for a, b in zip(first.codes, second.codes)]
    amend = {key: np.concatenate([first.amend[key], second.amend[key]], axis=0) for key in first.amend}
    extend = {key: np.concatenate([first.extend[key], second.extend[key]], axis=0)
              for key in first.extend}
    return Policy(codes=codes, amend=amend, extend=extend)

