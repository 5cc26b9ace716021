"""Exact dynamic programming on the augmented state, vectorised over strictness.

The solver works on arrays shaped ``(party, column, phase, state)`` where a
column is one strictness value gamma.  At each clock position and augmented
state it evaluates the candidate action profiles:

* everyone complies (code ``COMPLY``; in a suspended or notice phase this
  means the phase runs on);
* party ``j`` gives notice of withdrawal, the others comply (``NOTICE + j``);
* party ``j`` invokes the escape hatch, the others respond as the provision
  says (``ESCAPE + j``).

A candidate is an equilibrium when no strategic party gains by deviating to a
breach (which triggers permanent mutual defection, as a grim trigger does) or
to another legal action.  Among the equilibrium candidates the one with the
largest weighted joint value is selected; ties go to the earlier candidate in
the order above, so to fewer exits and escapes.  Where no candidate is an
equilibrium the treaty breaks down (``BREAKDOWN``): everyone defects for ever.

Profiles in which two parties take legal actions (notice or escape) in the
same period are not considered; with one escape or notice at a time the
counters stay small.

Each party evaluates continuations under its own beliefs about the
environment.  The selected policy is then evaluated again under the declared
chain, which is what survival, streams and reported values use.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from engine.bargaining import bargaining_objective, bargaining_weights
from engine.clock import NO_NEXT, Clock, build_clock
from engine.game import Game
from engine.phases import EXIT, NO_ESCAPE, NORMAL, NOTICE, SUSPENDED, PhaseTable, build_phase_table

COMPLY = 0
NOTICE_CODE = 1
BREAKDOWN = -1

# Equilibrium checks accept a deviation gain this small as a tie, so that an
# incentive constraint that holds with equality counts as satisfied.
TIE_TOLERANCE = 1e-10


@dataclass(frozen=True)
class Chain:
    """One view of the environment: each party's transition matrix and no-treaty values."""

    transition: np.ndarray
    no_treaty: np.ndarray
    expected_no_treaty: np.ndarray


@dataclass
class Policy:
    """What the selected equilibrium does at every clock position.

    ``codes[k]`` has shape (column, phase, state).  ``amend[k]`` maps each
    column to the base column adopted at a review node (-1: status quo).
    ``extend[e]`` says, per column and state, whether the parties extend at the
    end of segment ``e`` rather than go to renegotiation.
    """

    codes: list[np.ndarray]
    amend: dict[int, np.ndarray] = field(default_factory=dict)
    extend: dict[int, np.ndarray] = field(default_factory=dict)


@dataclass
class NodeOutcome:
    """Renegotiation at expiry: the base column agreed in each state (-1 lapse)."""

    target: np.ndarray
    value: np.ndarray


@dataclass
class PassResult:
    """Values and policy of one backward pass (or fixed point) over the clock."""

    start_values: np.ndarray
    values: list[np.ndarray] | None
    policy: Policy
    slack: np.ndarray


@dataclass
class SolveStats:
    """How a solve ended."""

    converged: bool
    iterations: int
    residual: float
    method: str
    messages: list[str] = field(default_factory=list)


def no_treaty_values(discounts: np.ndarray, defection: np.ndarray, transition: np.ndarray) -> np.ndarray:
    """Solve ``V = b + delta Q V`` for each party: the value of never having a treaty."""
    n, states = defection.shape
    eye = np.eye(states)
    values = np.empty((n, states))
    for i in range(n):
        values[i] = np.linalg.solve(eye - discounts[i] * transition[i], defection[i])
    return values


def make_chain(discounts: np.ndarray, defection: np.ndarray, transition: np.ndarray) -> Chain:
    no_treaty = no_treaty_values(discounts, defection, transition)
    expected = np.einsum("ist,it->is", transition, no_treaty)
    return Chain(transition=transition, no_treaty=no_treaty, expected_no_treaty=expected)


class DynamicSolver:
    """Solve a compiled treaty game for any set of strictness columns.

    ``strategic`` marks the parties whose incentives are checked; the others
    are bound to comply and never take legal actions.  The default is all
    parties.
    """

    def __init__(self, game: Game, strategic: np.ndarray | None = None):
        self.game = game
        self.n = game.n_parties
        self.n_states = game.n_states
        parties = game.parties

        self.delta = np.array([party.discount for party in parties], dtype=float)
        self.defection = np.stack([party.defection for party in parties]).astype(float)
        self.breach_cost = np.array([party.breach_cost for party in parties], dtype=float)
        self.strategic = (
            np.ones(self.n, dtype=bool) if strategic is None else np.asarray(strategic, dtype=bool)
        )
        self.rule = game.settings.bargaining
        self.weights = bargaining_weights(self.delta, self.rule)
        select = self.weights * self.strategic
        if select.sum() <= 0:
            select = self.strategic.astype(float)
        self.select_weights = select / select.sum()

        self.rules = game.rules
        self.phases: PhaseTable = build_phase_table(game.rules, self.n)
        self.clock: Clock = build_clock(game.rules)

        own = np.stack([party.transition for party in parties]).astype(float)
        declared = np.broadcast_to(game.transition, own.shape).astype(float)
        self.own = make_chain(self.delta, self.defection, own)
        self.declared = make_chain(self.delta, self.defection, declared)

        self.tolerance = game.settings.tolerance
        self.max_iterations = game.settings.max_iterations

    # ------------------------------------------------------------------ helpers

    def regime_values(self, gammas: np.ndarray) -> np.ndarray:
        """Per-period regime value of each party at each column, shape (party, column)."""
        return np.stack([party.regime_value(gammas) for party in self.game.parties])

    def _expect(self, values: np.ndarray, chain: Chain) -> np.ndarray:
        """Expected next-period value given today's state, per party, under ``chain``."""
        return np.einsum("ist,igpt->igps", chain.transition, values)

    def _with_exit(self, expected: np.ndarray, chain: Chain) -> np.ndarray:
        """Append the no-treaty continuation as the last phase slot (index ``EXIT``)."""
        n, columns, _, states = expected.shape
        exit_slot = np.broadcast_to(chain.expected_no_treaty[:, None, None, :], (n, columns, 1, states))
        return np.concatenate([expected, exit_slot], axis=2)

    def _suspension_stage(self, invoker: int, z: np.ndarray) -> np.ndarray:
        """Stage payoffs while ``invoker`` is suspended, shape (party, column, state)."""
        n = self.n
        escape = self.rules.escape
        b = self.defection
        columns = z.shape[1]
        stage = np.empty((n, columns, self.n_states))
        rebalance = escape.partner_response == "rebalance"
        share = 0.0 if rebalance else 1.0
        for i in range(n):
            if i == invoker:
                stage[i] = b[i][None, :] * (1.0 + share)
            elif rebalance:
                stage[i] = b[i][None, :]
            else:
                # The other partners still comply, so i keeps (n-2)/(n-1) of its regime value.
                stage[i] = (z[i] * (n - 2) / (n - 1))[:, None]
        return stage

    def _partner_breach(self, chain: Chain) -> np.ndarray:
        """Value of breaching for a partner of a suspended party, shape (party, state)."""
        if self.rules.escape.partner_response == "rebalance":
            return np.full((self.n, self.n_states), -np.inf)
        n = self.n
        share = (n - 2) / (n - 1)
        return (
            self.defection * (1.0 + share)
            - self.breach_cost[:, None]
            + self.delta[:, None] * chain.expected_no_treaty
        )

    def _bound_breach(self, chain: Chain) -> np.ndarray:
        """Value of breaching while every other party complies, shape (party, state)."""
        return (
            2.0 * self.defection
            - self.breach_cost[:, None]
            + self.delta[:, None] * chain.expected_no_treaty
        )

    # --------------------------------------------------------------- one period

    def _step(self, position: int, cont: np.ndarray, z: np.ndarray, chain: Chain,
              fixed: np.ndarray | None):
        """Values and profile codes at one clock position.

        ``cont`` holds each party's expected value of every next phase (the
        last slot is the end of the treaty).  With ``fixed`` the profile codes
        are given and only evaluated.
        """
        n = self.n
        phases = self.phases
        columns = z.shape[1]
        states = self.n_states
        delta = self.delta[:, None, None, None]
        exit_slot = phases.size

        def slot(targets: np.ndarray) -> np.ndarray:
            return np.where(targets == EXIT, exit_slot, targets)

        values = np.empty((n, columns, phases.size, states))
        codes = np.full((columns, phases.size, states), BREAKDOWN, dtype=np.int8)
        no_treaty = np.broadcast_to(chain.no_treaty[:, None, None, :], (n, columns, 1, states))
        bound_breach = self._bound_breach(chain)[:, None, None, :]
        strategic = self.strategic[:, None, None, None]
        slack = np.zeros((n, columns, states))

        # Normal phases: everyone bound, legal actions available.
        normal = phases.normal_phases()
        z4 = z[:, :, None, None]
        comply_values = z4 + delta * cont[:, :, slot(phases.after_comply[normal]), :]
        shape = comply_values.shape
        candidates = [(COMPLY, -1, "comply", comply_values, np.ones(shape[2:], dtype=bool))]

        withdrawal = self.rules.withdrawal
        if withdrawal is not None and self.clock.notice_allowed[position]:
            if withdrawal.notice == 0:
                common = np.broadcast_to(no_treaty, shape)
            else:
                target = slot(np.array([phases.after_notice]))
                common = z4 + delta * cont[:, :, target, :]
            for j in range(n):
                if not self.strategic[j]:
                    continue
                notice_values = np.array(np.broadcast_to(common, shape))
                notice_values[j] -= withdrawal.cost
                candidates.append((NOTICE_CODE + j, j, "notice", notice_values,
                                   np.ones(shape[2:], dtype=bool)))

        escape = self.rules.escape
        if escape is not None:
            for j in range(n):
                if not self.strategic[j]:
                    continue
                targets = phases.after_escape[normal, j]
                available = (targets != NO_ESCAPE)[:, None] & escape.trigger[j][None, :]
                if not available.any():
                    continue
                stage = self._suspension_stage(j, z)
                escape_values = stage[:, :, None, :] + delta * cont[:, :, slot(np.maximum(targets, 0)), :]
                escape_values[j] -= escape.cost
                if escape.cost_type == "transfer":
                    others = np.arange(n) != j
                    escape_values[others] += escape.cost / (n - 1)
                candidates.append((NOTICE_CODE + n + j, j, "escape", escape_values, available))

        def masked(candidate_index: int | None, party: int) -> np.ndarray:
            if candidate_index is None:
                return np.full(shape[1:], -np.inf)
            _, _, _, cand_values, available = candidates[candidate_index]
            return np.where(available[None], cand_values[party], -np.inf)

        lookup = {(kind, actor): index for index, (_, actor, kind, _, _) in enumerate(candidates)}
        partner_breach = self._partner_breach(chain)[:, None, None, :] if escape is not None else None

        def deviation(kind: str, actor: int, party: int) -> np.ndarray:
            options = []
            if kind == "comply":
                options.append(np.broadcast_to(bound_breach[party], shape[1:]))
                options.append(masked(lookup.get(("notice", party)), party))
                options.append(masked(lookup.get(("escape", party)), party))
            elif kind == "notice":
                if withdrawal.notice > 0:
                    options.append(np.broadcast_to(bound_breach[party], shape[1:]))
                if party == actor:
                    options.append(masked(0, party))
                    options.append(masked(lookup.get(("escape", party)), party))
            else:
                if party == actor:
                    options.append(masked(0, party))
                    options.append(masked(lookup.get(("notice", party)), party))
                else:
                    options.append(np.broadcast_to(partner_breach[party], shape[1:]))
            if not options:
                return np.full(shape[1:], -np.inf)
            return np.max(np.stack(options), axis=0)

        if fixed is None:
            best_score = np.full(shape[1:], -np.inf)
            chosen = np.full(shape[1:], BREAKDOWN, dtype=np.int8)
            for code, actor, kind, cand_values, available in candidates:
                equilibrium = np.broadcast_to(available[None], shape[1:]).copy()
                for party in range(n):
                    if not self.strategic[party]:
                        continue
                    gap = cand_values[party] - deviation(kind, actor, party)
                    equilibrium &= gap >= -TIE_TOLERANCE * (1.0 + np.abs(cand_values[party]))
                    if code == COMPLY:
                        slack[party] = gap[:, phases.start, :] if position == 0 else 0.0
                score = np.tensordot(self.select_weights, cand_values, axes=1)
                better = equilibrium & (score > best_score + TIE_TOLERANCE * (1.0 + np.abs(score)))
                best_score = np.where(better, score, best_score)
                chosen = np.where(better, np.int8(code), chosen)
        else:
            chosen = fixed[:, normal, :]

        normal_values = np.broadcast_to(no_treaty, shape).copy()
        for code, _, _, cand_values, _ in candidates:
            pick = chosen == code
            normal_values = np.where(pick[None], cand_values, normal_values)
        values[:, :, normal, :] = normal_values
        codes[:, normal, :] = chosen

        # Suspended phases: the invoker acts unregulated, partners respond.
        suspended = np.flatnonzero(phases.kind == SUSPENDED)
        if suspended.size:
            partner_breach_values = self._partner_breach(chain)
            for j in range(n):
                these = suspended[phases.invoker[suspended] == j]
                if these.size == 0:
                    continue
                stage = self._suspension_stage(j, z)
                run_values = stage[:, :, None, :] + delta * cont[:, :, slot(phases.after_comply[these]), :]
                if fixed is None:
                    holds = np.ones(run_values.shape[1:], dtype=bool)
                    for party in range(n):
                        if party == j or not self.strategic[party]:
                            continue
                        gap = run_values[party] - partner_breach_values[party][None, None, :]
                        holds &= gap >= -TIE_TOLERANCE * (1.0 + np.abs(run_values[party]))
                    run_codes = np.where(holds, COMPLY, BREAKDOWN).astype(np.int8)
                else:
                    run_codes = fixed[:, these, :]
                values[:, :, these, :] = np.where(
                    run_codes[None] == COMPLY, run_values,
                    np.broadcast_to(no_treaty, run_values.shape))
                codes[:, these, :] = run_codes

        # Notice phases: everyone stays bound until the notice runs out.
        notice = np.flatnonzero(phases.kind == NOTICE)
        if notice.size:
            run_values = z4 + delta * cont[:, :, slot(phases.after_comply[notice]), :]
            if fixed is None:
                holds = np.ones(run_values.shape[1:], dtype=bool)
                for party in range(n):
                    if not self.strategic[party]:
                        continue
                    gap = run_values[party] - bound_breach[party]
                    holds &= gap >= -TIE_TOLERANCE * (1.0 + np.abs(run_values[party]))
                run_codes = np.where(holds, COMPLY, BREAKDOWN).astype(np.int8)
            else:
                run_codes = fixed[:, notice, :]
            values[:, :, notice, :] = np.where(
                run_codes[None] == COMPLY, run_values,
                np.broadcast_to(no_treaty, run_values.shape))
            codes[:, notice, :] = run_codes

        return values, codes, slack

    # ------------------------------------------------------------ review nodes

    def _amend(self, values: np.ndarray, targets: np.ndarray, fixed: np.ndarray | None):
        """Apply the amendment node at a review position.

        ``targets`` holds the values of the base columns at this position.
        Amendment needs every party to gain after paying the amendment cost;
        among the amendments all accept, the bargaining rule picks one.
        """
        normal = self.phases.normal_phases()
        cost = self.rules.review.amendment_cost
        current = values[:, :, normal, :]
        candidate = targets[:, :, normal, :] - cost

        if fixed is None:
            # gains has shape (party, column, target, phase, state).
            gains = candidate[:, None, :, :, :] - current[:, :, None, :, :]
            acceptable = np.all(gains > TIE_TOLERANCE, axis=0)
            objective = bargaining_objective(gains, self.weights, self.rule)
            objective = np.where(acceptable, objective, -np.inf)
            best = np.argmax(objective, axis=1)
            found = np.take_along_axis(objective, best[:, None], axis=1)[:, 0] > -np.inf
            choice = np.where(found, best, -1)
        else:
            choice = fixed

        adopted = np.take_along_axis(
            np.broadcast_to(candidate[:, None], (self.n, current.shape[1]) + candidate.shape[1:]),
            np.maximum(choice, 0)[None, :, None, :, :],
            axis=2,
        )[:, :, 0]
        updated = values.copy()
        updated[:, :, normal, :] = np.where(choice[None] >= 0, adopted, current)
        return updated, choice.astype(np.int16)

    # ----------------------------------------------------------------- passes

    def run_pass(self, gammas: np.ndarray, chain: Chain, node_value: np.ndarray | None,
                 base: PassResult | None = None, fixed: Policy | None = None,
                 keep_values: bool = False, reviews: dict | None = None):
        """One solve of the clock for the columns ``gammas``.

        ``node_value`` (party, state) is the value at an expiry node that ends
        in renegotiation; ``base`` provides review targets when these columns
        are not the base grid itself.  Returns a ``PassResult`` and statistics.
        """
        if fixed is not None:
            reviews = fixed.amend or None
        if self.clock.cyclic:
            return self._cyclic_pass(gammas, chain, base, fixed, keep_values, reviews)
        return self._sunset_pass(gammas, chain, node_value, base, fixed, keep_values, reviews), None

    def _targets(self, position: int, values: np.ndarray, base: PassResult | None) -> np.ndarray:
        if base is None:
            return values
        return base.values[position]

    def _review(self, position, values, base, fixed, reviews, policy):
        """Apply the amendment decided at a review position (from ``fixed`` or ``reviews``)."""
        choice = fixed.amend[position] if fixed is not None else reviews[position]
        values, choice = self._amend(values, self._targets(position, values, base), choice)
        policy.amend[position] = choice
        return values

    def review_choices(self, unreviewed: PassResult, base: PassResult | None) -> dict[int, np.ndarray]:
        """Decide every amendment against the values of the treaty without further reviews.

        Parties at a review node compare the current terms with each
        alternative as if no later review would change them again.  This
        myopic reading keeps the values a well-defined fixed point.
        """
        choices = {}
        for position in np.flatnonzero(self.clock.review):
            values = unreviewed.values[position]
            targets = values if base is None else base.values[position]
            choices[int(position)] = self._amend(values, targets, None)[1]
        return choices

    def _sunset_pass(self, gammas, chain, node_value, base, fixed, keep_values, reviews):
        clock = self.clock
        z = self.regime_values(gammas)
        n, columns = z.shape
        states = self.n_states
        size = clock.size
        start = self.phases.start

        stored: list[np.ndarray | None] = [None] * size
        codes: list[np.ndarray | None] = [None] * size
        policy = Policy(codes=codes)
        slack = np.zeros((n, columns, states))
        node_broadcast = np.broadcast_to(node_value[:, None, :], (n, columns, states))

        following = None
        for position in range(size - 1, -1, -1):
            if clock.next[position] == NO_NEXT:
                # Expiry: extend if every party prefers the next segment, else renegotiate.
                segment = clock.segment[position]
                if segment + 1 < clock.segments:
                    extended = stored[clock.segment_starts[segment + 1]][:, :, start, :]
                    if fixed is None:
                        extend = np.all(extended >= node_broadcast, axis=0)
                    else:
                        extend = fixed.extend[segment]
                    policy.extend[segment] = extend
                    at_expiry = np.where(extend[None], extended, node_broadcast)
                else:
                    at_expiry = node_broadcast
                expected = np.einsum("ist,igt->igs", chain.transition, at_expiry)
                cont = np.broadcast_to(expected[:, :, None, :], (n, columns, self.phases.size, states))
                cont = self._with_exit(np.ascontiguousarray(cont), chain)
            else:
                cont = self._with_exit(self._expect(following, chain), chain)

            values, step_codes, step_slack = self._step(
                position, cont, z, chain, None if fixed is None else fixed.codes[position])
            if clock.review[position] and reviews is not None:
                values = self._review(position, values, base, fixed, reviews, policy)
            if position == 0:
                slack = step_slack
            stored[position] = values
            codes[position] = step_codes
            following = values

        start_values = stored[0][:, :, start, self.game.start]
        return PassResult(start_values=start_values, values=_segment_values(stored, clock, keep_values),
                          policy=policy, slack=slack)

    def _cyclic_pass(self, gammas, chain, base, fixed, keep_values, reviews):
        clock = self.clock
        z = self.regime_values(gammas)
        n, columns = z.shape
        states = self.n_states
        size = clock.size

        # Start from an upper bound of every value so that iteration descends to
        # the most cooperative fixed point.
        upper = (np.maximum(z.max(axis=1), 2.0 * self.defection.max(axis=1))
                 + (self.rules.escape.cost if self.rules.escape is not None else 0.0))
        upper = upper / (1.0 - self.delta)
        stored = [np.broadcast_to(upper[:, None, None, None],
                                  (n, columns, self.phases.size, states)).copy()
                  for _ in range(size)]
        codes: list[np.ndarray | None] = [None] * size
        policy = Policy(codes=codes)
        slack = np.zeros((n, columns, states))

        residual = np.inf
        iterations = 0
        converged = False
        scale = 1.0 + float(np.max(np.abs(upper)))
        stable_codes = 0
        previous_codes = None
        while iterations < self.max_iterations:
            iterations += 1
            residual = 0.0
            for position in range(size - 1, -1, -1):
                following = stored[clock.next[position]]
                cont = self._with_exit(self._expect(following, chain), chain)
                values, step_codes, step_slack = self._step(
                    position, cont, z, chain, None if fixed is None else fixed.codes[position])
                if clock.review[position] and reviews is not None:
                    values = self._review(position, values, base, fixed, reviews, policy)
                if position == 0:
                    slack = step_slack
                residual = max(residual, float(np.max(np.abs(values - stored[position]))))
                stored[position] = values
                codes[position] = step_codes

            snapshot = np.stack(codes)
            if previous_codes is not None and np.array_equal(snapshot, previous_codes):
                stable_codes += 1
            else:
                stable_codes = 0
            previous_codes = snapshot

            if residual <= self.tolerance * scale:
                converged = True
                break

            # Once the policy has settled, evaluate it exactly and check it once more.
            if stable_codes >= 3 and reviews is None:
                exact = self._evaluate_cyclic_exactly(z, chain, policy)
                if exact is not None:
                    stored = exact
                    stable_codes = 0

        start_values = stored[0][:, :, self.phases.start, self.game.start]
        stats = SolveStats(converged=converged, iterations=iterations, residual=residual,
                           method="value iteration with exact policy evaluation")
        result = PassResult(start_values=start_values, values=stored, policy=policy, slack=slack)
        return result, stats

    def _evaluate_cyclic_exactly(self, z, chain, policy):
        """Solve the linear system of a fixed policy on a repeating clock.

        Returns the values per clock position, or None when the system is too
        large to solve densely.
        """
        clock = self.clock
        phases = self.phases
        n, columns = z.shape
        states = self.n_states
        size = clock.size * phases.size * states
        if size > 240:
            return None

        # Build, for each column and party, V = r + delta * M V, with the end of
        # the treaty folded into r through the no-treaty values.
        solved = [np.empty((n, columns, phases.size, states)) for _ in range(clock.size)]
        index = np.arange(size).reshape(clock.size, phases.size, states)
        for party in range(n):
            matrix = np.zeros((columns, size, size))
            reward = np.zeros((columns, size))
            for position in range(clock.size):
                codes = policy.codes[position]
                nxt = clock.next[position]
                for phase in range(phases.size):
                    for state in range(states):
                        row = index[position, phase, state]
                        self._fill_row(party, position, nxt, phase, state, codes[:, phase, state],
                                       z, chain, matrix, reward, row, index)
            solution = np.linalg.solve(np.eye(size)[None] - matrix, reward[:, :, None])[:, :, 0]
            for position in range(clock.size):
                solved[position][party] = solution[:, index[position]]
        return solved

    def _fill_row(self, party, position, nxt, phase, state, codes, z, chain, matrix, reward, row, index):
        phases = self.phases
        delta = self.delta[party]
        transition = chain.transition[party][state]
        b = self.defection[party][state]
        no_treaty = chain.no_treaty[party][state]
        expected_exit = chain.expected_no_treaty[party][state]
        n = self.n

        def go(columns_mask, target_phase, stage):
            reward[columns_mask, row] += stage[columns_mask] if np.ndim(stage) else stage
            if target_phase == EXIT:
                reward[columns_mask, row] += delta * expected_exit
            else:
                cols = index[nxt, target_phase]
                matrix[np.ix_(np.flatnonzero(columns_mask), [row], cols)] += delta * transition

        broke = codes == BREAKDOWN
        reward[broke, row] = no_treaty
        kind = phases.kind[phase]
        if kind == SUSPENDED:
            j = phases.invoker[phase]
            stage = self._suspension_stage(j, z)[party, :, state]
            go(codes == COMPLY, phases.after_comply[phase], stage)
            return
        if kind == NOTICE:
            go(codes == COMPLY, phases.after_comply[phase], z[party])
            return

        go(codes == COMPLY, phases.after_comply[phase], z[party])
        withdrawal = self.rules.withdrawal
        escape = self.rules.escape
        for j in range(n):
            pick = codes == NOTICE_CODE + j
            if pick.any():
                cost = withdrawal.cost if party == j else 0.0
                if withdrawal.notice == 0:
                    reward[pick, row] = no_treaty - cost
                else:
                    go(pick, phases.after_notice, z[party] - cost)
            pick = codes == NOTICE_CODE + n + j
            if pick.any():
                stage = self._suspension_stage(j, z)[party, :, state]
                if party == j:
                    stage = stage - escape.cost
                elif escape.cost_type == "transfer":
                    stage = stage + escape.cost / (n - 1)
                go(pick, phases.after_escape[phase, j], stage)


def _segment_values(stored, clock, keep_values):
    """Keep only the values that callers read: segment starts, or all positions."""
    if keep_values:
        return stored
    kept = [None] * len(stored)
    for start in clock.segment_starts:
        kept[start] = stored[start]
    return kept
