"""Exact dynamic programming on the augmented state, vectorised over strictness.

The solver works on arrays shaped ``(party, column, phase, state)`` where a
column is one strictness value gamma.  At each clock position and augmented
state it evaluates the candidate action profiles:

* everyone complies (code ``COMPLY``; in a suspended or notice phase this
  means the phase runs on);
* party ``j`` gives notice of withdrawal, the others comply
  (``NOTICE_CODE + j``);
* party ``j`` invokes the escape hatch, the others respond as the provision
  sets (``NOTICE_CODE + n + j`` for ``n`` parties).

A candidate is an equilibrium when no strategic party gains by deviating to a
breach (which triggers permanent mutual defection, as a grim trigger does) or
to another legal action.  Among the equilibrium candidates the one with the
largest weighted joint value is selected; ties go to the earlier candidate in
the order above, so to fewer exits and escapes.  Between two parties' notices
or escapes, ties go to the party whose name sorts first (``Game.tie_order``),
so the order in which a file lists the parties does not matter.  Where no candidate is an
equilibrium the treaty breaks down (``BREAKDOWN``): everyone defects for ever.

Profiles in which two parties take legal actions (notice or escape) in the
same period are not considered; with one escape or notice at a time the
counters stay small.

Each party evaluates continuations under its own beliefs about the
environment.  The selected policy is then evaluated again under the declared
chain, which is what survival, streams and reported values use.
"""

from __future__ import annotations

import math

from dataclasses import dataclass, field

import numpy as np

from engine.bargaining import bargaining_objective, bargaining_weights
from engine.clock import NO_NEXT, Clock, build_clock
from engine.game import Game
from engine.phases import EXIT, NO_ESCAPE, NOTICE, SUSPENDED, PhaseTable, build_phase_table

COMPLY = 0
NOTICE_CODE = 1
BREAKDOWN = -1

# A policy seen again this many times after changing counts as a cycle.
CYCLE_RETURNS = 20

CYCLE_SETTLED = (
    "the selection cycled at some terms; there the engine dropped, round by round, the "
    "choices that failed their incentive constraints by the most until every choice held, "
    "so the result is an equilibrium but not always the one with the largest weighted "
    "joint value")

# Equilibrium checks accept a deviation gain this small as a tie, so that an
# incentive constraint met with equality counts as satisfied.
TIE_TOLERANCE = 1e-10


def sweep_limit(minimum: int, tolerance: float, delta: float) -> int:
    """Return how many sweeps a repeating clock may take: ``minimum``, or more for a slow contraction.

    Value iteration shrinks the distance to its fixed point by ``delta`` per
    period, and a pass stops once a sweep changes the values by at most
    ``tolerance * scale * (1 - delta)``, starting from a distance of about
    ``scale``.  That takes ``log(tolerance * (1 - delta)) / log(delta)``
    sweeps, so the limit allows twice as many.  A fine period has a
    ``delta`` close to 1: at a daily period and a yearly discount of 0.93,
    about 290,000 sweeps.
    """
    if not 0.0 < delta < 1.0:
        return minimum
    needed = math.log(tolerance * (1.0 - delta)) / math.log(delta)
    return max(minimum, math.ceil(2.0 * needed))


@dataclass(frozen=True)
class Chain:
    """One view of the environment: each party's transition matrix and no-treaty values."""

    transition: np.ndarray
    no_treaty: np.ndarray
    expected_no_treaty: np.ndarray
    transposed: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Expectations are products ``values @ P_i^T`` per party.  A batched
        # matmul on the transposed matrices is many times faster than the
        # equivalent einsum.
        transposed = np.ascontiguousarray(self.transition.transpose(0, 2, 1))
        object.__setattr__(self, "transposed", transposed)


@dataclass
class Policy:
    """Actions of the selected equilibrium at every clock position.

    ``codes[k]`` has shape (column, phase, state).  ``amend[k]`` maps each
    column to the base column adopted at a review node (-1: status quo).
    ``extend[e]`` records, per column and state, the probability that the
    parties extend at the end of segment ``e`` rather than go to
    renegotiation: 1 or 0, or in between where a lottery settles a choice
    that would otherwise flip back and forth (see ``Solver``).
    ``extend_margin[e]`` is the smallest gain of any party from extending
    over renegotiating, which decides the choice.
    """

    codes: list[np.ndarray]
    amend: dict[int, np.ndarray] = field(default_factory=dict)
    extend: dict[int, np.ndarray] = field(default_factory=dict)
    extend_margin: dict[int, np.ndarray] = field(default_factory=dict)


@dataclass
class NodeOutcome:
    """Renegotiation at expiry: a lottery over base columns in each state (-1 lapse).

    ``support[j, s]`` is a column the parties may agree in state ``s`` and
    ``probability[j, s]`` its chance; the rows are ordered from the most
    likely, and a row past the end of a state's lottery has probability 0.
    ``objective`` and ``feasible`` (column, state) record what the bargaining
    maximised and which terms it could choose. ``held_back`` (column, state)
    is the first-period profile code of terms that every party gains from
    but that were left out because the new treaty would start with a notice
    or an escape, and ``COMPLY`` elsewhere.
    """

    support: np.ndarray
    value: np.ndarray | None
    probability: np.ndarray
    objective: np.ndarray | None = None
    feasible: np.ndarray | None = None
    held_back: np.ndarray | None = None

    @property
    def target(self) -> np.ndarray:
        """The most likely outcome in each state."""
        return self.support[0]

    def lottery(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Return (columns, probability) pairs, one per row of the support."""
        return [(self.support[j], self.probability[j]) for j in range(len(self.support))]


@dataclass
class PassResult:
    """Values and policy of one backward pass (or fixed point) over the clock.

    A pass stopped before position 0 (see ``DynamicSolver.run_pass``) has
    None for ``start_values`` and ``slack``, and for the positions it did not solve.
    """

    start_values: np.ndarray | None
    values: list[np.ndarray] | None
    policy: Policy
    slack: np.ndarray | None
    play: dict[int, np.ndarray] = field(default_factory=dict)


@dataclass
class SolveStats:
    """Outcome of a solve: convergence, iterations, residual and method."""

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


@dataclass(frozen=True)
class Layout:
    """The candidate profiles of the normal phases at one kind of clock position.

    Candidates come in the order of the selection's tie-break: everyone
    complies, then notice by each party of ``notice_party``, then escape by
    each party of ``escape_party``.  ``available`` (candidate, phase, state)
    marks where a candidate may be played, and ``escape_open`` (escape, 1,
    phase, state) the same for the escapes alone, shaped to broadcast over
    columns.  ``both_party`` lists the parties with both a notice and an
    escape, ``both_notice`` and ``both_escape`` those two candidates and
    ``both_open`` where the escape is open.  ``escape_closed`` and
    ``both_closed`` are their negations, kept because every step needs them.
    ``code_table`` contains the profile codes followed by breakdown, so that
    candidate index -1 reads breakdown.
    """

    key: tuple
    candidates: tuple
    codes: np.ndarray
    code_table: np.ndarray
    available: np.ndarray
    notice_index: np.ndarray
    notice_party: np.ndarray
    escape_index: np.ndarray
    escape_party: np.ndarray
    escape_open: np.ndarray
    both_party: np.ndarray
    both_notice: np.ndarray
    both_escape: np.ndarray
    both_open: np.ndarray
    escape_closed: np.ndarray
    both_closed: np.ndarray

    @property
    def count(self) -> int:
        return len(self.candidates)

    @classmethod
    def build(cls, n: int, notice_parties: list[int], escape_available: dict[int, np.ndarray],
              everywhere: np.ndarray) -> "Layout":
        escaping = list(escape_available)
        candidates = [("comply", -1)] + [("notice", j) for j in notice_parties] + [("escape", j) for j in escaping]
        codes = [COMPLY] + [NOTICE_CODE + j for j in notice_parties] + [NOTICE_CODE + n + j for j in escaping]
        available = np.stack([everywhere] * (1 + len(notice_parties))
                             + [escape_available[j] for j in escaping])
        notice_index = np.arange(1, 1 + len(notice_parties))
        escape_index = np.arange(1 + len(notice_parties), len(candidates))
        escape_open = available[escape_index][:, None]
        both = [j for j in notice_parties if j in escape_available]
        both_escape = escape_index[[escaping.index(j) for j in both]].astype(np.intp)
        both_open = available[both_escape][:, None]
        return cls(
            key=tuple(candidates),
            candidates=tuple(candidates),
            codes=np.array(codes, dtype=np.int8),
            code_table=np.array(codes + [BREAKDOWN], dtype=np.int8),
            available=available,
            notice_index=notice_index,
            notice_party=np.array(notice_parties, dtype=np.intp),
            escape_index=escape_index,
            escape_party=np.array(escaping, dtype=np.intp),
            escape_open=escape_open,
            both_party=np.array(both, dtype=np.intp),
            both_notice=notice_index[[notice_parties.index(j) for j in both]].astype(np.intp),
            both_escape=both_escape,
            both_open=both_open,
            escape_closed=~escape_open,
            both_closed=~both_open,
        )


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
        # When every party believes the declared chain, evaluating the policy
        # again under that chain would reproduce the same numbers.
        self.beliefs_are_declared = bool(np.array_equal(own, declared))

        # With no legal actions the one phase has compliance as its only candidate.
        self._rigid = self.rules.withdrawal is None and self.rules.escape is None
        # Breaching pays a strategic party 2 b_i - kappa_i now and then the
        # no-treaty stream, which is b_i now and the same stream after: breach
        # beats breakdown by b_i - kappa_i.  When that is never negative, a
        # complying state is worth at least breakdown to every strategic party,
        # so the one-period map is monotone in their values and value iteration
        # from above descends (see ``_rigid_jump``).
        gap = self.defection - self.breach_cost[:, None]
        self._descends = self._rigid and bool(np.all(gap[self.strategic] >= 0.0))
        # A rigid treaty with one clock position is solved by jumps (``_rigid_jump``).
        # Where it does not descend, a column jumps only where its steps fall or rise everywhere.
        self.jumps = self._rigid and self.clock.size == 1 and not self.clock.review.any()

        # Deviation tables and breach values per chain, computed once.
        self._tables: dict = {}
        self._layouts: dict = {}
        self._breach_tables: dict = {}
        self._breach_values: dict = {}
        self._pass_cache: tuple | None = None
        self._index_phases()

        self.tolerance = game.settings.tolerance
        self.max_iterations = game.settings.max_iterations
        if self.jumps:
            # Jumps and single steps make a sweep cheap here, so the limit can
            # follow the contraction. Elsewhere that limit would keep a pass
            # that does not settle at a fine period running for many minutes.
            self.max_iterations = sweep_limit(self.max_iterations, self.tolerance, float(np.max(self.delta)))

    # ------------------------------------------------------------------ helpers

    def _index_phases(self) -> None:
        """Precompute the phase indices and successor slots that every period uses."""
        phases = self.phases
        exit_slot = phases.size

        def slot(targets: np.ndarray) -> np.ndarray:
            return np.where(targets == EXIT, exit_slot, targets)

        self._normal = phases.normal_phases()
        self._comply_slots = slot(phases.after_comply)
        self._notice_slot = slot(np.array([phases.after_notice]))
        self._notice_phases = np.flatnonzero(phases.kind == NOTICE)
        suspended = np.flatnonzero(phases.kind == SUSPENDED)
        self._suspended = [suspended[phases.invoker[suspended] == j] for j in range(self.n)]

        self._escape_slots = {}
        self._escape_available = {}
        escape = self.rules.escape
        if escape is not None:
            # In the tie order, because the layout lists the escapes in this dict's order.
            for j in self.game.tie_order:
                targets = phases.after_escape[self._normal, j]
                available = (targets != NO_ESCAPE)[:, None] & escape.trigger[j][None, :]
                if self.strategic[j] and available.any():
                    self._escape_slots[j] = slot(np.maximum(targets, 0))
                    self._escape_available[j] = available
        self._everywhere = np.ones((len(self._normal), self.n_states), dtype=bool)
        self._only_normal = len(self._normal) == phases.size

        # The same indices as slices where they are contiguous, because a step
        # then reads and writes views instead of copies.
        self._normal_at = _as_index(self._normal)
        self._normal_next = _as_index(self._comply_slots[self._normal])

        # Every party's suspended phases in one run, so that a step adds their
        # values with one gather instead of one per party. ``_suspended_runs``
        # gives each party's place in that run.
        self._all_suspended = np.concatenate(self._suspended)
        self._all_suspended_at = _as_index(self._all_suspended)
        self._all_suspended_next = _as_index(self._comply_slots[self._all_suspended])
        ends = np.cumsum([invoked.size for invoked in self._suspended])
        self._suspended_runs = [slice(int(end - invoked.size), int(end))
                                for invoked, end in zip(self._suspended, ends)]

        self._notice_at = _as_index(self._notice_phases)
        self._notice_next = _as_index(self._comply_slots[self._notice_phases])
        self._escape_next = {j: _as_index(slots) for j, slots in self._escape_slots.items()}

    def _breaches(self, chain: Chain) -> tuple[np.ndarray, np.ndarray | None]:
        """Return the bound and the partner breach values under ``chain``, computed once."""
        cached = self._breach_values.get(id(chain))
        if cached is None:
            partner = self._partner_breach(chain) if self.rules.escape is not None else None
            cached = (self._bound_breach(chain), partner)
            self._breach_values[id(chain)] = cached
        return cached

    def regime_values(self, gammas: np.ndarray) -> np.ndarray:
        """Per-period regime value of each party at each column, shape (party, column)."""
        return np.stack([party.regime_value(gammas) for party in self.game.parties])

    def _expect(self, values: np.ndarray, chain: Chain) -> np.ndarray:
        """Expected next-period value given today's state, per party, under ``chain``."""
        return np.matmul(values, chain.transposed[:, None])

    def _continuation(self, values: np.ndarray, chain: Chain) -> np.ndarray:
        """Return ``_with_exit(_expect(values))``, written into one array without a concatenation."""
        n, columns, size, states = values.shape
        cont = np.empty((n, columns, size + 1, states))
        np.matmul(values, chain.transposed[:, None], out=cont[:, :, :size, :])
        cont[:, :, size, :] = chain.expected_no_treaty[:, None, :]
        return cont

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

    def _layout(self, notice_open: bool) -> "Layout":
        """Return the candidate profiles of the normal phases, computed once per kind of position.

        ``notice_open`` is True where notice of withdrawal may be given at the position.
        """
        layout = self._layouts.get(notice_open)
        if layout is None:
            notice_parties = [j for j in self.game.tie_order if self.strategic[j]] if notice_open else []
            layout = Layout.build(self.n, notice_parties, self._escape_available, self._everywhere)
            self._layouts[notice_open] = layout
        return layout

    def _per_pass(self, z: np.ndarray, chain: Chain, key, make):
        """Return ``make()``, computed once per pass, that is per regime values ``z`` and ``chain``.

        The arrays kept here are constants of a pass, broadcast to the full
        shape of the arrays they meet in a step.  Numpy adds and compares two
        full arrays faster than it broadcasts one of them along a short last
        axis (the states), by about a factor of two in a step of the catalog's
        flexible cyber treaty.
        """
        cache = self._pass_cache
        if cache is None or cache[0] is not z or cache[1] is not chain:
            cache = self._pass_cache = (z, chain, {})
        value = cache[2].get(key)
        if value is None:
            value = cache[2][key] = make()
        return value

    def _full(self, z: np.ndarray, chain: Chain, key, source: np.ndarray, shape: tuple) -> np.ndarray:
        """Return ``source`` broadcast to ``shape`` as a full array, made once per pass (see ``_per_pass``)."""
        return self._per_pass(z, chain, key, lambda: np.broadcast_to(source, shape).copy())

    def _stages(self, z: np.ndarray, chain: Chain) -> dict[int, np.ndarray]:
        """Return the stage payoffs of every party's suspension at the columns ``z``."""
        return self._per_pass(z, chain, "stages",
                              lambda: {j: self._suspension_stage(j, z) for j in range(self.n)})

    def _suspended_stage_run(self, z: np.ndarray, chain: Chain) -> np.ndarray:
        """Stage payoffs over the run of every party's suspended phases, shape (party, column, phase, state)."""
        stages = self._stages(z, chain)
        run = np.empty((self.n, z.shape[1], self._all_suspended.size, self.n_states))
        for j, place in enumerate(self._suspended_runs):
            run[:, :, place, :] = stages[j][:, :, None, :]
        return run

    def _suspended_codes(self, position: int, run_values: np.ndarray, z: np.ndarray, chain: Chain,
                         settle: "Settling | None") -> np.ndarray | None:
        """Return the codes of the suspended phases: comply where no bound partner gains by breaching.

        ``run_values`` contains the run of every party's suspended phases.
        Returns None where every code is comply because no partner is bound
        and nothing is settled, which spares the checks and the copies.
        """
        _, partner_breach_values = self._breaches(chain)

        # A partner released from its obligations (breach value -inf
        # everywhere) never gains by breaching, so it is not checked.
        checked = self._per_pass(z, chain, "bound partners", lambda: [
            [party for party in range(self.n) if party != j and self.strategic[party]
             and np.isfinite(partner_breach_values[party]).any()]
            for j in range(self.n)])
        if settle is None and not any(checked):
            return None

        run_codes = np.empty(run_values.shape[1:], dtype=np.int8)
        for j, place in enumerate(self._suspended_runs):
            if place.start == place.stop:
                continue
            invoker_values = run_values[:, :, place, :]
            complying = np.ones(invoker_values.shape[1:], dtype=bool)
            for party in checked[j]:
                gap = invoker_values[party] - partner_breach_values[party][None, None, :]
                complying &= gap >= -TIE_TOLERANCE * (1.0 + np.abs(invoker_values[party]))
            codes = np.where(complying, COMPLY, BREAKDOWN).astype(np.int8)
            if settle is not None:
                shortfall = np.full(codes.shape, -np.inf)
                for party in range(self.n):
                    if party != j and self.strategic[party]:
                        shortfall = np.maximum(
                            shortfall, partner_breach_values[party][None, None, :] - invoker_values[party])
                codes = settle.run_on(position, self._suspended[j], codes, shortfall)
            run_codes[:, place, :] = codes
        return run_codes

    def _breach_table(self, layout: "Layout", chain: Chain) -> tuple[np.ndarray, int]:
        """Return the breach values of ``_deviation_table`` for the checked parties, and how many candidates have one.

        The values are shaped to broadcast over ``stacked``.  Parties whose
        incentives are not checked get -inf, so their breach constraint is
        always met and no separate mask is needed.  The count is the
        number of leading candidates with a finite breach value somewhere.
        The rest, such as escapes whose partners are released, need no
        breach check at all.
        """
        key = (layout.key, id(chain))
        cached = self._breach_tables.get(key)
        if cached is None:
            _, breach = self._deviation_table(layout.candidates, chain)
            breach = np.where(self.strategic[None, :, None], breach, -np.inf)
            finite = np.flatnonzero(np.isfinite(breach).any(axis=(1, 2)))
            rows = int(finite[-1]) + 1 if finite.size else 0
            cached = self._breach_tables[key] = (breach[:, :, None, None, :], rows)
        return cached

    def _deviation_table(self, candidates, chain: Chain):
        """Tabulate each party's legal switches and breach value from each candidate.

        ``candidates`` lists (kind, actor) pairs in candidate order.  Returns
        ``targets`` (candidate, party, 2), the indices of the candidates a
        party reaches by changing only its own action (-1 where there is
        none), and ``breach`` (candidate, party, state), the value of
        breaching instead (-inf where the party is not bound, such as the
        suspended party itself).  The table depends only on which candidates
        exist, so it is computed once per candidate list and chain.
        """
        key = (tuple(candidates), id(chain))
        cached = self._tables.get(key)
        if cached is not None:
            return cached

        n = self.n
        count = len(candidates)
        lookup = {(kind, actor): index for index, (kind, actor) in enumerate(candidates)}
        bound = self._bound_breach(chain)
        partner = self._partner_breach(chain) if self.rules.escape is not None else None
        immediate_exit = self.rules.withdrawal is not None and self.rules.withdrawal.notice == 0

        targets = np.full((count, n, 2), -1, dtype=np.int64)
        breach = np.full((count, n, self.n_states), -np.inf)
        for index, (kind, actor) in enumerate(candidates):
            for party in range(n):
                if kind == "comply":
                    breach[index, party] = bound[party]
                    moves = [("notice", party), ("escape", party)]
                elif kind == "notice":
                    # Notice with no notice period ends the treaty at once: nothing to breach.
                    if not immediate_exit:
                        breach[index, party] = bound[party]
                    moves = [("comply", -1), ("escape", party)] if party == actor else []
                elif party == actor:
                    moves = [("comply", -1), ("notice", party)]
                else:
                    breach[index, party] = partner[party]
                    moves = []
                reachable = [lookup[move] for move in moves if move in lookup]
                targets[index, party, :len(reachable)] = reachable

        self._tables[key] = (targets, breach)
        return targets, breach

    def _gaps(self, stacked: np.ndarray, layout: "Layout", chain: Chain) -> np.ndarray:
        """Return each candidate's gain over every party's best deviation, shape like ``stacked``.

        A party's best deviation from candidate c is a breach or a switch to
        one of its own legal actions where that is available.
        """
        n, count = self.n, layout.count
        targets, breach = self._deviation_table(layout.candidates, chain)
        deviation = breach[:, :, None, None, :]
        if targets.max() >= 0:
            # Slot ``count`` is a candidate that is never available.
            switches = np.where(targets >= 0, targets, count)
            legal = np.full((n, count + 1) + stacked.shape[2:], -np.inf)
            np.copyto(legal[:, :count], stacked.swapaxes(0, 1), where=layout.available[None, :, None])
            parties = np.arange(n)[None, :]
            switched = np.maximum(legal[parties, switches[..., 0]], legal[parties, switches[..., 1]])
            deviation = np.maximum(switched, deviation)
        return stacked - deviation

    def _incentives_hold(self, stacked: np.ndarray, layout: "Layout", z: np.ndarray, chain: Chain) -> np.ndarray:
        """Return where no checked party gains by deviating from each candidate, shape (candidate, column, phase, state).

        The same test as ``_gaps(...) >= -TIE_TOLERANCE * (1 + |stacked|)``
        for every party, taken one deviation at a time.  A candidate's value
        minus the largest deviation equals the smallest of its differences
        with each deviation in floating point too, so both give the same
        result.  The switches only concern a party's own candidates: comply,
        its notice and its escape, so they are compared pairwise per party
        instead of gathered for every candidate and party.  Each result goes
        straight into its candidate's row, because only whether every party's
        test passes is needed.
        """
        floor = np.abs(stacked)
        floor += 1.0
        floor *= -TIE_TOLERANCE
        table, rows = self._breach_table(layout, chain)
        satisfied = np.ones((layout.count,) + stacked.shape[2:], dtype=bool)
        if rows:
            breach = self._full(z, chain, ("breach", layout.key), table[:rows], (rows,) + stacked.shape[1:])
            np.all(stacked[:rows] - breach >= floor[:rows], axis=1, out=satisfied[:rows])

        # Switches between a party's own candidates, checked in both directions.
        comply, comply_floor = stacked[0], floor[0]
        notice, escape = layout.notice_index, layout.escape_index
        if notice.size:
            parties = layout.notice_party
            own, own_floor = stacked[notice, parties], floor[notice, parties]
            base, base_floor = comply[parties], comply_floor[parties]
            satisfied[0] &= np.all((base - own) >= base_floor, axis=0)
            satisfied[notice] &= (own - base) >= own_floor
        if escape.size:
            parties = layout.escape_party
            escaped, escaped_floor = stacked[escape, parties], floor[escape, parties]
            base, base_floor = comply[parties], comply_floor[parties]
            satisfied[0] &= np.all(((base - escaped) >= base_floor) | layout.escape_closed, axis=0)
            satisfied[escape] &= (escaped - base) >= escaped_floor
            if layout.both_party.size:
                parties, at_notice, at_escape = layout.both_party, layout.both_notice, layout.both_escape
                own, own_floor = stacked[at_notice, parties], floor[at_notice, parties]
                escaped, escaped_floor = stacked[at_escape, parties], floor[at_escape, parties]
                satisfied[at_notice] &= ((own - escaped) >= own_floor) | layout.both_closed
                satisfied[at_escape] &= (escaped - own) >= escaped_floor
        return satisfied

    def _start_slack(self, stacked: np.ndarray, layout: "Layout", chain: Chain) -> np.ndarray:
        """Return the gain of complying over each party's best deviation in the first normal phase, (party, column, state)."""
        comply = stacked[0][:, :, 0, :]
        bound, _ = self._breaches(chain)
        deviation = np.broadcast_to(bound[:, None, :], comply.shape).copy()
        if layout.notice_index.size:
            parties = layout.notice_party
            own = stacked[layout.notice_index, parties][:, :, 0, :]
            deviation[parties] = np.maximum(deviation[parties], own)
        if layout.escape_index.size:
            parties = layout.escape_party
            escaped = stacked[layout.escape_index, parties][:, :, 0, :]
            escaped = np.where(layout.escape_open[:, :, 0, :], escaped, -np.inf)
            deviation[parties] = np.maximum(deviation[parties], escaped)
        return comply - deviation

    # --------------------------------------------------------------- one period

    def _step(self, position: int, cont: np.ndarray, z: np.ndarray, chain: Chain,
              fixed: np.ndarray | None, settle: "Settling | None" = None, slack_wanted: bool = True):
        """Values and profile codes at one clock position.

        ``cont`` contains each party's expected value of every next phase (the
        last slot is the end of the treaty).  With ``fixed`` the profile codes
        are given and only evaluated.  With ``settle`` each previous choice is
        kept while it is still an equilibrium (see ``Settling``).  The slack
        of the incentive constraints is returned at position 0, or None where
        ``slack_wanted`` is False and computing it would take extra work.
        """
        if self._rigid and settle is None:
            return self._rigid_step(cont, z, chain, fixed)

        n = self.n
        phases = self.phases
        columns = z.shape[1]
        states = self.n_states
        no_treaty = chain.no_treaty[:, None, None, :]
        bound, _ = self._breaches(chain)
        bound_breach = bound[:, None, None, :]
        slack = np.zeros((n, columns, states))

        # Normal phases: everyone bound, legal actions available.  The
        # candidates' values are written straight into one array, because
        # stacking copies made up a large part of a step.
        normal = self._normal
        z4 = z[:, :, None, None]
        withdrawal = self.rules.withdrawal
        layout = self._layout(bool(withdrawal is not None and self.clock.notice_allowed[position]))
        count = layout.count
        stacked = np.empty((count, n, columns, len(normal), states))

        # Every candidate discounts the same continuation, so discount it once.
        discounted = self.delta[:, None, None, None] * cont
        shape = stacked.shape[1:]
        z_normal = self._full(z, chain, "z", z4, shape)
        _add_phases(z_normal, discounted, self._normal_next, stacked[0])

        notice = layout.notice_index
        if notice.size:
            # The notices differ only in who pays the cost of giving notice.
            block = stacked[1:1 + notice.size]
            if withdrawal.notice == 0:
                block[...] = no_treaty
            else:
                # The sum is the same in every normal phase, so add once and copy.
                block[0] = z4 + discounted[:, :, self._notice_slot, :]
                block[1:] = block[0]
            stacked[notice, layout.notice_party] -= withdrawal.cost

        escape = self.rules.escape
        if layout.escape_index.size:
            stages = self._per_pass(z, chain, "escape stages", lambda: {
                j: np.broadcast_to(self._stages(z, chain)[j][:, :, None, :], shape).copy()
                for j in self._escape_next})
            for candidate, j in zip(layout.escape_index, layout.escape_party):
                _add_phases(stages[j], discounted, self._escape_next[j], stacked[candidate])
            stacked[layout.escape_index, layout.escape_party] -= escape.cost
            if escape.cost_type == "transfer":
                for candidate, j in zip(layout.escape_index, layout.escape_party):
                    others = np.arange(n) != j
                    stacked[candidate, others] += escape.cost / (n - 1)

        if fixed is None:
            if settle is None:
                satisfied = self._incentives_hold(stacked, layout, z, chain)
                if position == 0:
                    slack = self._start_slack(stacked, layout, chain) if slack_wanted else None
            else:
                gap = self._gaps(stacked, layout, chain)
                met = gap >= -TIE_TOLERANCE * (1.0 + np.abs(stacked))
                met |= ~self.strategic[None, :, None, None, None]
                satisfied = met.all(axis=1)
                if position == 0:
                    slack = gap[0][:, :, 0, :]
            equilibrium = layout.available[:, None] & satisfied

            # Largest weighted joint value; within a tie, the earliest candidate,
            # which has fewer exits and escapes.
            if settle is not None:
                # How far each candidate misses its worst incentive constraint.
                shortfall = np.where(self.strategic[None, :, None, None, None], -gap, -np.inf).max(axis=1)
                shortfall = np.where(layout.available[:, None], shortfall, np.inf)
                equilibrium, keep = settle.restrict(position, equilibrium, shortfall, layout.codes,
                                                    normal)
            weighted = self.select_weights[0] * stacked[:, 0]
            for party in range(1, n):
                weighted += self.select_weights[party] * stacked[:, party]
            score = np.where(equilibrium, weighted, -np.inf)
            best = score.max(axis=0)
            near = equilibrium & (score >= best - TIE_TOLERANCE * (1.0 + np.abs(best)))
            # The first candidate in the tie, or -1 where none is an equilibrium.
            # Copying candidate numbers from the last to the first took less
            # time in profiles than argmax along the candidate axis.
            index = np.full(near.shape[1:], -1, dtype=np.intp)
            for candidate in range(count - 1, -1, -1):
                np.copyto(index, candidate, where=near[candidate])
            if settle is not None:
                index = np.where(keep >= -1, keep, index)
        else:
            index = _candidate_index(layout.codes, fixed[:, normal, :])

        # Index -1 picks the last entry of the code table, which is breakdown.
        chosen = layout.code_table[index]
        # A masked copy per candidate is cheaper than take_along_axis for a
        # few candidates, and only the candidates chosen somewhere need one.
        # ``stacked`` is not read again, so its first candidate takes the picks.
        chosen_count = np.bincount(index.ravel() + 1, minlength=count + 1)
        picked = stacked[0]
        for candidate in (np.flatnonzero(chosen_count[2:]) + 1).tolist():
            np.copyto(picked, stacked[candidate], where=(index == candidate)[None])
        if chosen_count[0]:
            no_treaty_normal = self._full(z, chain, ("no treaty", len(normal)), no_treaty, shape)
            np.copyto(picked, no_treaty_normal, where=(index < 0)[None])
        if self._only_normal:
            # A copy, because a pass may keep these values, and a view would
            # keep every candidate's values alive with them.
            return picked.copy(), chosen, slack

        values = np.empty((n, columns, phases.size, states))
        codes = np.full((columns, phases.size, states), BREAKDOWN, dtype=np.int8)
        values[:, :, self._normal_at, :] = picked
        codes[:, self._normal_at, :] = chosen

        # Suspended phases: the invoker acts unregulated, partners respond.
        suspended = self._all_suspended
        if suspended.size:
            run_shape = (n, columns, suspended.size, states)
            stage = self._per_pass(z, chain, "suspended stage", lambda: self._suspended_stage_run(z, chain))
            # Written in place where the phases are contiguous, to save a copy.
            at = self._all_suspended_at
            into = values[:, :, at, :] if isinstance(at, slice) else np.empty(run_shape)
            run_values = _add_phases(stage, discounted, self._all_suspended_next, into)
            if fixed is None:
                run_codes = self._suspended_codes(position, run_values, z, chain, settle)
            else:
                run_codes = fixed[:, at, :]
            if run_codes is None:
                codes[:, at, :] = COMPLY
            else:
                lapsed = run_codes != COMPLY
                if lapsed.any():
                    no_treaty_run = self._full(z, chain, ("no treaty", suspended.size), no_treaty, run_shape)
                    np.copyto(run_values, no_treaty_run, where=lapsed[None])
                codes[:, at, :] = run_codes
            if not isinstance(at, slice):
                values[:, :, at, :] = run_values

        # Notice phases: everyone stays bound until the notice runs out.
        notice = self._notice_phases
        if notice.size:
            run_values = z4 + discounted[:, :, self._notice_next, :]
            if fixed is None:
                gap = run_values - bound_breach
                met = gap >= -TIE_TOLERANCE * (1.0 + np.abs(run_values))
                met |= ~self.strategic[:, None, None, None]
                run_codes = np.where(met.all(axis=0), COMPLY, BREAKDOWN).astype(np.int8)
                if settle is not None:
                    shortfall = np.full(run_codes.shape, -np.inf)
                    for party in range(n):
                        if self.strategic[party]:
                            shortfall = np.maximum(shortfall, bound_breach[party] - run_values[party])
                    run_codes = settle.run_on(position, notice, run_codes, shortfall)
            else:
                run_codes = fixed[:, self._notice_at, :]
            values[:, :, self._notice_at, :] = np.where(run_codes[None] == COMPLY, run_values, no_treaty)
            codes[:, self._notice_at, :] = run_codes

        return values, codes, slack

    def _rigid_step(self, cont: np.ndarray, z: np.ndarray, chain: Chain, fixed: np.ndarray | None):
        """Return the values and codes of ``_step`` when compliance is the only candidate.

        Without withdrawal or an escape hatch there is one phase and one
        candidate, so the selection reduces to the incentive check.  This
        short path gives the same numbers with a fraction of the array work.
        """
        bound, _ = self._breaches(chain)
        comply = z[:, :, None, None] + self.delta[:, None, None, None] * cont[:, :, :1, :]
        gap = comply - bound[:, None, None, :]
        if fixed is None:
            holds = (gap >= -TIE_TOLERANCE * (1.0 + np.abs(comply))) | ~self.strategic[:, None, None, None]
            complying = holds.all(axis=0)
            codes = np.where(complying, COMPLY, BREAKDOWN).astype(np.int8)
        else:
            codes = fixed
            complying = codes == COMPLY
        values = np.where(complying[None], comply, chain.no_treaty[:, None, None, :])
        return values, codes, gap[:, :, 0, :]

    def _rigid_policy_values(self, policy: np.ndarray, z: np.ndarray, chain: Chain):
        """Return ``M`` and the exact values ``W`` of a rigid policy with one clock position.

        ``policy`` (column, state) marks the complying states.  ``W`` solves
        ``W = c + M W`` per party and column (see ``_rigid_jump``) by a dense
        solve of one small system each, shape (party, column, state).
        """
        states = self.n_states
        rows = policy[None, :, :, None].astype(float)
        step = rows * (self.delta[:, None, None, None] * chain.transition[:, None, :, :])
        constant = np.where(policy[None], z[:, :, None], chain.no_treaty[:, None, :])
        exact = np.linalg.solve(np.eye(states) - step, constant[..., None])[..., 0]
        return step, exact

    def _rigid_jump(self, values: np.ndarray, z: np.ndarray, chain: Chain, budget: int, settled: float):
        """Advance value iteration of a rigid treaty to just before its policy changes.

        ``values`` (party, column, 1, state) is an iterate ``V_k`` of a treaty
        with one clock position.  While the complying states ``C`` stay the
        same, an iterate is affine in the previous one:
        ``V_{k+1} = c + M V_k`` with ``M = delta_i P_i`` on the rows of ``C``
        (zero elsewhere) and ``c`` the regime value on ``C`` and the no-treaty
        value elsewhere.  So ``V_{k+m} = W + M^m (V_k - W)`` with
        ``W = (I - M)^{-1} c``, the exact value of the policy.

        Where one step falls (``V_{k+1} <= V_k``), every later step under the
        same policy falls too, because ``M`` has no negative entries and
        ``V_{k+m+1} - V_{k+m} = M^m (V_{k+1} - V_k)``.  Each incentive
        constraint then only tightens, so a state outside ``C`` never starts
        complying, and the last ``m`` at which every state of ``C`` still
        complies is found by binary lifting over the powers ``M^(2^j)``.
        The same is true with every inequality reversed where one step rises.
        Under a descending treaty (``_descends``) every step from the upper
        bound falls, so every column jumps.  Otherwise a column whose next
        step falls in some place and rises in another first takes single
        steps (see ``_rigid_steps``), at most ``budget`` of them and none
        once a step is within ``settled``.  Returns
        ``V_{k+m}``, the iterate that plain sweeps would reach just before the
        policy changes (or the fixed point, where it never changes), column
        by column, and the number of single steps taken.
        """
        current = values[:, :, 0, :]
        bound, _ = self._breaches(chain)
        delta = self.delta[:, None, None]

        def complying(v: np.ndarray) -> np.ndarray:
            comply = z[:, :, None] + delta * np.matmul(v, chain.transposed)
            gap = comply - bound[:, None, :]
            holds = (gap >= -TIE_TOLERANCE * (1.0 + np.abs(comply))) | ~self.strategic[:, None, None]
            return holds.all(axis=0)

        policy = complying(current)
        step, exact = self._rigid_policy_values(policy, z, chain)

        # Powers M^(2^j) until they vanish against the values' scale.
        powers = [step]
        while np.max(np.abs(powers[-1])) > 1e-18 and len(powers) < 64:
            powers.append(powers[-1] @ powers[-1])

        def holds_on_policy(v: np.ndarray) -> np.ndarray:
            # Every state keeps its choice. Outside ``C`` that follows from the
            # falling values, except at the tie tolerance, which scales with
            # the value and can loosen as a value falls below zero.
            return np.all(complying(v) == policy, axis=1)

        offset = current - exact
        steps = 0
        monotone = np.ones(current.shape[1], dtype=bool)
        if not self._descends:
            offset, steps, monotone = self._rigid_steps(offset, step, exact, holds_on_policy, budget, settled)
        for power in reversed(powers):
            trial = np.matmul(power, offset[..., None])[..., 0]
            keep = holds_on_policy(exact + trial) & monotone
            offset = np.where(keep[None, :, None], trial, offset)
        return (exact + offset)[:, :, None, :], steps

    @staticmethod
    def _rigid_steps(offset, step, exact, holds_on_policy, budget: int, settled: float):
        """Take single steps ``offset -> M offset`` in the columns whose next step is neither falling nor rising.

        Such a column cannot jump, because its incentive constraints need
        not move one way.  It takes plain steps of value iteration here,
        which cost a small fraction of a sweep.  It stops when its steps
        become monotone (from then on it can jump), when the policy of any
        such column would change (the next sweep takes them on) or after
        ``budget`` steps.  A column stops stepping too once a step changes it by at
        most ``settled``, the pass's stopping rule.  Returns the offsets,
        the number of steps and where the next step is monotone.
        """
        steps = 0
        active = np.ones(offset.shape[1], dtype=bool)
        while True:
            trial = np.matmul(step, offset[..., None])[..., 0]
            monotone = np.all(trial <= offset, axis=(0, 2)) | np.all(trial >= offset, axis=(0, 2))
            # A column whose steps stay mixed as they vanish would otherwise
            # step until the budget runs out. Once a step is within the
            # stopping rule, the sweeps take over and end the pass.
            moving = np.max(np.abs(trial - offset), axis=(0, 2)) > settled
            mixed = active & ~monotone & moving
            if steps >= budget or not mixed.any():
                return offset, steps, monotone
            # Stop where any column's policy would change, so that every
            # column has taken as many steps as the others when the sweeps
            # resume and watch for a cycle.
            if not np.all(holds_on_policy(exact + trial)[mixed]):
                return offset, steps, monotone
            active = mixed
            offset = np.where(active[None, :, None], trial, offset)
            steps += 1

    # ------------------------------------------------------------ review nodes

    def _amend(self, values: np.ndarray, targets: np.ndarray, fixed: np.ndarray | None):
        """Apply the amendment node at a review position.

        ``targets`` contains the values of the base columns at this position.
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
            # Scoring only the acceptable amendments skips most of the
            # logarithms, because at most terms some party would lose.
            objective = np.full(acceptable.shape, -np.inf)
            objective[acceptable] = bargaining_objective(gains[:, acceptable], self.weights, self.rule)
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
                 keep_values: bool = False, reviews: dict | None = None,
                 extension: dict | None = None, unreviewed: PassResult | None = None,
                 down_to: int = 0):
        """One solve of the clock for the columns ``gammas``.

        ``node_value`` (party, state) is the value at an expiry node that ends
        in renegotiation; ``base`` provides review targets when these columns
        are not the base grid itself.  ``extension`` maps segments of a sunset
        clock to extension probabilities (column, state) that replace the
        parties' choice where they are not NaN.  Returns a ``PassResult`` and statistics.

        ``unreviewed``, for a sunset clock, is a pass over the same columns
        and chain, against the same node value and extension, with no reviews
        and no fixed policy, and with every position's values kept.  A pass
        with ``reviews`` then copies the positions after the last review from
        it, because nothing differs there, and starts its own work at that review.

        ``down_to``, for a sunset clock, stops the backward pass at that
        position. Positions before it are not solved, and the result has no
        start values and no slack (both None). Review choices need only the
        positions from the first review on (see ``first_review``).
        """
        if fixed is not None:
            reviews = fixed.amend or None
        if self.clock.cyclic:
            if down_to:
                raise ValueError(
                    f"invalid down_to {down_to}: a pass over a repeating clock solves every position")
            return self._cyclic_pass(gammas, chain, base, fixed, keep_values, reviews)
        if not 0 <= down_to < self.clock.size:
            raise ValueError(
                f"invalid down_to {down_to}: expected a clock position from 0 to {self.clock.size - 1}")
        if unreviewed is not None and fixed is not None:
            raise ValueError("invalid unreviewed pass for a pass with a fixed policy: "
                             "its codes would replace the fixed ones")
        return self._sunset_pass(gammas, chain, node_value, base, fixed, keep_values, reviews,
                                 extension, unreviewed, down_to), None

    @property
    def first_review(self) -> int:
        """The first review position of a sunset clock, where a pass for review choices may stop, or 0 without one."""
        if self.clock.cyclic or not self.clock.review.any():
            return 0
        return int(np.flatnonzero(self.clock.review)[0])

    def _targets(self, position: int, values: np.ndarray, base: PassResult | None) -> np.ndarray:
        """Values of the base columns before any amendment at this review position."""
        if base is None:
            return values
        return base.play[position]

    def _review(self, position, values, base, fixed, reviews, policy, play):
        """Apply the amendment decided at a review position (from ``fixed`` or ``reviews``)."""
        play[position] = values
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
            # The unreviewed base pass has no amendments, so its values are play values.
            targets = values if base is None else base.values[position]
            choices[int(position)] = self._amend(values, targets, None)[1]
        return choices

    def _sunset_pass(self, gammas, chain, node_value, base, fixed, keep_values, reviews,
                     extension=None, unreviewed=None, down_to=0):
        clock = self.clock
        z = self.regime_values(gammas)
        n, columns = z.shape
        states = self.n_states
        size = clock.size
        start = self.phases.start

        stored: list[np.ndarray | None] = [None] * size
        codes: list[np.ndarray | None] = [None] * size
        policy = Policy(codes=codes)
        play: dict[int, np.ndarray] = {}
        slack = np.zeros((n, columns, states))
        node_broadcast = np.broadcast_to(node_value[:, None, :], (n, columns, states))

        following = None
        first = size - 1
        if unreviewed is not None and reviews is not None:
            first = self._copy_unreviewed(unreviewed, stored, policy, columns)
            following = stored[first + 1] if first + 1 < size else None
        for position in range(first, down_to - 1, -1):
            if clock.next[position] == NO_NEXT:
                # Expiry: extend if every party prefers the next segment, else renegotiate.
                segment = clock.segment[position]
                if segment + 1 < clock.segments:
                    extended = stored[clock.segment_starts[segment + 1]][:, :, start, :]
                    margin = np.min(extended - node_broadcast, axis=0)
                    if fixed is not None:
                        extend = fixed.extend[segment]
                    else:
                        # NOTE: extending and renegotiating the same terms at no
                        # cost tie exactly, and rounding at the solver's tolerance
                        # then decides. Node kinds and p_success can change with
                        # the iteration's path there, while the values do not.
                        extend = (margin >= 0.0).astype(float)
                        if extension is not None and segment in extension:
                            # NaN leaves the choice to the parties.
                            override = extension[segment]
                            extend = np.where(np.isnan(override), extend, override)
                    policy.extend[segment] = extend
                    policy.extend_margin[segment] = margin
                    at_expiry = extend[None] * extended + (1.0 - extend[None]) * node_broadcast
                else:
                    at_expiry = node_broadcast
                expected = np.matmul(at_expiry, chain.transposed)
                cont = np.broadcast_to(expected[:, :, None, :], (n, columns, self.phases.size, states))
                cont = self._with_exit(np.ascontiguousarray(cont), chain)
            else:
                cont = self._continuation(following, chain)

            values, step_codes, step_slack = self._step(
                position, cont, z, chain, None if fixed is None else fixed.codes[position])
            if clock.review[position] and reviews is not None:
                values = self._review(position, values, base, fixed, reviews, policy, play)
            if position == 0:
                slack = step_slack
            stored[position] = values
            codes[position] = step_codes
            following = values

        if down_to > 0:
            start_values, slack = None, None
        else:
            start_values = stored[0][:, :, start, self.game.start]
        return PassResult(start_values=start_values, values=_segment_values(stored, clock, keep_values),
                          policy=policy, slack=slack, play=play)

    def _copy_unreviewed(self, unreviewed: PassResult, stored: list, policy: Policy, columns: int) -> int:
        """Copy the positions after the last review from ``unreviewed`` (see ``run_pass``).

        Returns the last review position, where the pass's own work starts.
        Every position after it is reached before any review in a backward
        pass, so its values, codes and extension choices are those of the
        pass without reviews.

        NOTE: only the reviews, the kept values and the number of columns are
        checked. A pass solved for other columns of the same count, another
        chain or another renegotiation value is copied as given.
        """
        clock = self.clock
        if not clock.review.any():
            return clock.size - 1
        last_review = int(np.flatnonzero(clock.review)[-1])
        for position in range(clock.size - 1, last_review, -1):
            if unreviewed.policy.amend or unreviewed.values[position] is None:
                raise ValueError("invalid unreviewed pass: it must have no reviews and keep every position's "
                                 "values (keep_values=True)")
            if unreviewed.values[position].shape[1] != columns:
                raise ValueError(f"invalid unreviewed pass: it has {unreviewed.values[position].shape[1]} "
                                 f"columns, expected {columns}")
            stored[position] = unreviewed.values[position]
            policy.codes[position] = unreviewed.policy.codes[position]
            segment = int(clock.segment[position])
            if clock.next[position] == NO_NEXT and segment in unreviewed.policy.extend:
                policy.extend[segment] = unreviewed.policy.extend[segment]
                policy.extend_margin[segment] = unreviewed.policy.extend_margin[segment]
        return last_review

    def value_bounds(self, z: np.ndarray) -> tuple[np.ndarray, float]:
        """Return an upper bound of every party's value and the scale of the payoffs.

        A partner can at most receive an escape transfer every period on top of
        the best stage payoff.  The scale for tolerances leaves costs out, so
        that a prohibitive cost does not loosen convergence.
        """
        best = np.maximum(z.max(axis=1), 2.0 * self.defection.max(axis=1))
        scale = 1.0 + float(np.max(best / (1.0 - self.delta)))
        escape = self.rules.escape
        bonus = 0.0
        if escape is not None and escape.cost_type == "transfer":
            bonus = escape.cost / (self.n - 1)
        return (best + bonus) / (1.0 - self.delta), scale

    def _polish(self, z, chain, policy, base, stored, codes, sweep):
        """Replace the iterate by the exact values of its policy when they are a fixed point.

        The exact values are kept when one more sweep from them selects the
        same policy again: they then solve the Bellman equation with the
        selection, so they are an equilibrium's values.  For a rigid treaty in
        which breakdown never raises a value, the iterate stays above the most
        cooperative fixed point, its policy cooperates wherever that fixed
        point does, and a policy that passes this test is that fixed point's
        own.  Returns the new values and their residual, or None.
        """
        if self._rigid and self.clock.size == 1 and not self.clock.review.any():
            # One small dense system per party and column is much cheaper here.
            complying = policy.codes[0][:, 0, :] == COMPLY
            exact = [self._rigid_policy_values(complying, z, chain)[1][:, :, None, :]]
        else:
            # Imported here, because loading scipy.sparse takes a third of a
            # second that a rigid treaty never needs.
            from engine.policy_values import exact_cyclic_values

            exact = exact_cyclic_values(self, z, chain, policy, base)
        if exact is None:
            return None
        checked, checked_codes, change = sweep(exact)
        if not all(np.array_equal(a, b) for a, b in zip(checked_codes, codes)):
            return None
        # Values that overflowed prove nothing, so they never count as converged.
        if not (np.isfinite(change) and all(np.all(np.isfinite(values)) for values in checked)):
            return None
        codes[:] = checked_codes
        return checked, change

    def _settle(self, z, chain, policy, base, codes, sweep):
        """Leave a cycle of the selection by dropping the worst failing choices, one round at a time.

        Each round values the current policy exactly and checks every choice
        under those values.  If all hold, the policy is an equilibrium at every
        augmented state under its own exact values, and the rounds stop.
        Otherwise, in each strictness column, the choices that miss their
        incentive constraint by the most are dropped for good at their
        augmented states.  The best remaining equilibrium is selected there
        and where the policy had breakdown, and the other choices are kept.
        Dropping only the worst keeps a choice that fails merely because of a
        worse one elsewhere.  Each round drops at least one choice per failing
        column, so the rounds end.  Returns the values and their residual, or
        None when the game is too large for exact evaluation.
        """
        from engine.policy_values import exact_cyclic_values

        settle = Settling([np.array(entry) for entry in codes])
        # Each augmented state can drop each candidate once and reselect after each drop.
        bound = sum(entry.size for entry in codes) * (4 + 4 * self.n)
        for _ in range(bound):
            exact = exact_cyclic_values(self, z, chain, policy, base)
            if exact is None:
                return None

            settle.start_audit()
            checked, _, change = sweep(exact, settle)
            if not settle.failing():
                return checked, change

            settle.start_apply()
            _, new_codes, _ = sweep(exact, settle)
            codes[:] = new_codes
            settle.previous = [np.array(entry) for entry in new_codes]
        return None

    def _prefix_repeats_loop(self) -> bool:
        """Return True when the clock positions before its loop behave as the loop's positions.

        A clock without a sunset clause runs through positions ``0 .. L-1``
        and then loops over ``L .. size-1``.  Suppose the loop is as long as
        the part before it and notice is allowed alike at positions ``p`` and
        ``p + L``.  Then a step at ``p`` computes what a step at ``p + L``
        computes from the same continuation.  So a sweep gives the positions
        before the loop the values that the next sweep gives the loop, except
        that position 0 gets the values at ``L`` before any amendment there.
        """
        clock = self.clock
        size = clock.size
        loop_start = int(clock.next[size - 1])
        return (clock.cyclic and size >= 2 and 2 * loop_start == size
                and bool(np.array_equal(clock.notice_allowed[:loop_start], clock.notice_allowed[loop_start:])))

    def _cyclic_pass(self, gammas, chain, base, fixed, keep_values, reviews):
        clock = self.clock
        z = self.regime_values(gammas)
        n, columns = z.shape
        states = self.n_states
        size = clock.size

        # Start from an upper bound of every value so that iteration descends to
        # the most cooperative fixed point.
        # NOTE: the descent is monotone only while breakdown never raises a
        # party's value and legal actions do not compete.  Otherwise the
        # iteration can settle on another equilibrium than the most
        # cooperative one, or cycle.  ``_settle`` leaves a cycle with an
        # equilibrium that need not have the largest weighted joint value, and
        # the solve adds a message that reports it.
        upper, scale = self.value_bounds(z)
        stored = [np.broadcast_to(upper[:, None, None, None],
                                  (n, columns, self.phases.size, states)).copy()
                  for _ in range(size)]
        codes: list[np.ndarray | None] = [None] * size
        policy = Policy(codes=codes)
        play: dict[int, np.ndarray] = {}
        slack = np.zeros((n, columns, states))

        residual = np.inf
        # A sweep that changes no value by more than this ends the pass.
        stop = self.tolerance * scale * (1.0 - float(np.max(self.delta)))
        iterations = 0
        converged = False
        stable_codes = 0
        previous_codes = None
        jump = self.jumps and fixed is None and reviews is None
        seen_policies: list[set[int]] = [set() for _ in range(columns)]
        failed_policy = None
        returns = np.zeros(columns, dtype=int)
        messages: list[str] = []

        def sweep(current, settle=None, positions=range(size - 1, -1, -1)):
            """Run one Gauss-Seidel sweep backwards over the clock, leaving ``current`` unchanged.

            ``positions`` restricts the sweep to some positions, in the order
            given; the others keep their values and get no codes.
            """
            nonlocal start_step
            updated = list(current)
            sweep_codes = [None] * size
            change = 0.0
            for position in positions:
                following = updated[clock.next[position]]
                cont = self._continuation(following, chain)
                # The slack at position 0 matters only after the last sweep, so
                # where it costs extra work it is computed then from this step's input.
                values, step_codes, step_slack = self._step(
                    position, cont, z, chain, None if fixed is None else fixed.codes[position],
                    settle, slack_wanted=False)
                if clock.review[position] and reviews is not None:
                    values = self._review(position, values, base, fixed, reviews, policy, play)
                if position == 0:
                    start_step = ("continuation", following) if step_slack is None else ("slack", step_slack)
                change = max(change, float(np.max(np.abs(values - current[position]))))
                updated[position] = values
                sweep_codes[position] = step_codes
            return updated, sweep_codes, change

        # Where the positions before the loop repeat it (see ``_prefix_repeats_loop``),
        # a sweep's values before the loop are those that the next sweep gives
        # the loop.  So each sweep here runs over the loop alone, one sweep
        # ahead, and takes the values and codes before the loop from that
        # sweep.  The results are those of full sweeps at about half the cost.
        # An amendment applies at the loop's first position alone, so position
        # 0 takes the values there before the amendment (``play``).
        loop_start = int(clock.next[size - 1])
        reviewed = reviews is not None
        shifted = (fixed is None and self._prefix_repeats_loop()
                   and (not reviewed or np.array_equal(np.flatnonzero(clock.review), [loop_start])))
        loop = range(size - 1, loop_start - 1, -1)
        ahead: tuple | None = None
        # What the last sweep fed the step at position 0: its continuation
        # values, or the slack itself where the step computed it anyway.
        start_step = None

        def sweep_ahead(current):
            """Return what ``sweep(current)`` returns, from sweeps over the loop alone."""
            nonlocal ahead, start_step
            if ahead is not None and ahead[0] is current[loop_start]:
                this, this_play = ahead[1], ahead[2]
            else:
                this = sweep(current, positions=loop)
                this_play = play.get(loop_start)
            following = sweep(this[0], positions=loop)
            following_play = play.get(loop_start)
            ahead = (this[0][loop_start], following, following_play)

            values, step_codes, change = list(this[0]), list(this[1]), this[2]
            for position in range(loop_start):
                source = position + loop_start
                repeat = following_play if reviewed and position == 0 else following[0][source]
                change = max(change, float(np.max(np.abs(repeat - current[position]))))
                values[position] = repeat
                step_codes[position] = following[1][source]
            if reviewed:
                # The values before the amendment are those of the sweep returned.
                play[loop_start] = this_play
            start_step = ("continuation", values[clock.next[0]])
            return values, step_codes, change

        advance = sweep_ahead if shifted else sweep
        while iterations < self.max_iterations:
            iterations += 1
            stored, new_codes, residual = advance(stored)
            codes[:] = new_codes

            snapshot = np.stack(codes)
            if previous_codes is not None and np.array_equal(snapshot, previous_codes):
                stable_codes += 1
            elif jump and self._descends:
                # A descending treaty only ever removes states from its policy
                # (see ``_rigid_jump``), so no policy comes back and no cycle is watched for.
                stable_codes = 0
            else:
                stable_codes = 0
                # A column whose policy comes back after changing means the
                # selection is cycling there: no stationary pure equilibrium of
                # this form exists, and iterating longer would not change that.
                # Columns are watched one by one, because columns that cycle
                # with different periods rarely bring back the whole policy.
                changed = np.ones(columns, dtype=bool) if previous_codes is None else \
                    np.any(snapshot != previous_codes, axis=(0, 2, 3))
                for column in np.flatnonzero(changed):
                    digest = hash(snapshot[:, column].tobytes())
                    if digest in seen_policies[column]:
                        returns[column] += 1
                    seen_policies[column].add(digest)
                if returns.max() >= CYCLE_RETURNS:
                    settled = self._settle(z, chain, policy, base, codes, sweep)
                    if settled is None:
                        messages.append(
                            "the selected policy cycles instead of settling, and exact "
                            "evaluation could not settle it (the model may be too large for "
                            "it), so no result is given at these terms")
                    else:
                        stored, residual = settled
                        converged = True
                        messages.append(CYCLE_SETTLED)
                    break
            previous_codes = snapshot

            # The distance to the fixed point is at most residual / (1 - delta).
            if residual <= stop:
                converged = True
                polished = self._polish(z, chain, policy, base, stored, codes, sweep)
                if polished is not None:
                    stored, residual = polished
                break

            # Once a sweep leaves the policy unchanged, evaluate it exactly.  The
            # exact values are kept only when they select the same policy again
            # (see ``_polish``).  They depend on the policy alone, so a policy
            # whose polish failed is not polished again.
            if stable_codes >= 1:
                stable_codes = 0
                polished = None
                if failed_policy is None or not np.array_equal(snapshot, failed_policy):
                    polished = self._polish(z, chain, policy, base, stored, codes, sweep)
                    failed_policy = snapshot if polished is None else None
                if polished is not None:
                    stored, residual = polished
                    converged = True
                    break
                if jump:
                    # Falling values only ever remove states from the policy,
                    # so a few jumps reach the fixed point; check after each.
                    jumped, steps = self._rigid_jump(stored[0], z, chain, self.max_iterations - iterations,
                                                     stop)
                    stored = [jumped]
                    # Single steps are sweeps of value iteration too, so they count.
                    iterations += steps

        if start_step is not None and start_step[0] == "continuation":
            slack = self._step(0, self._continuation(start_step[1], chain), z, chain,
                               None if fixed is None else fixed.codes[0])[2]
        elif start_step is not None:
            slack = start_step[1]
        start_values = stored[0][:, :, self.phases.start, self.game.start]
        stats = SolveStats(converged=converged, iterations=iterations, residual=residual,
                           method="value iteration with exact policy evaluation", messages=messages)
        result = PassResult(start_values=start_values, values=stored, policy=policy, slack=slack,
                            play=play)
        return result, stats


class Settling:
    """Bookkeeping for leaving a cycle of the selection (see ``DynamicSolver._settle``).

    A round has two sweeps over the same exact values.  The audit sweep keeps
    every previous choice and records by how much each misses its incentive
    constraint.  The apply sweep drops, per strictness column, the choices
    that miss it by the most, selects again there and where the previous
    choice was breakdown, and keeps everything else.

    ``previous[k]`` holds the profile codes at clock position ``k`` from the
    last round.  ``allowed[k]`` marks the candidates not yet dropped at each
    augmented state of a normal phase.  ``dropped[k]`` marks the augmented
    states of suspended and notice phases where running on has been dropped.
    """

    def __init__(self, previous: list[np.ndarray]):
        self.previous = previous
        self.allowed: dict[int, np.ndarray] = {}
        self.dropped: dict[int, np.ndarray] = {}
        self.auditing = True
        self.misses: dict[tuple[int, str], np.ndarray] = {}
        self.worst: np.ndarray | None = None

    def start_audit(self) -> None:
        self.auditing = True
        self.misses = {}

    def failing(self) -> bool:
        """Return True when the audit found a choice that is not an equilibrium."""
        return any(np.isfinite(miss).any() for miss in self.misses.values())

    def start_apply(self) -> None:
        """Find, per column, the largest miss recorded by the audit."""
        self.auditing = False
        columns = self.previous[0].shape[0]
        worst = np.full(columns, -np.inf)
        for miss in self.misses.values():
            worst = np.maximum(worst, miss.reshape(columns, -1).max(axis=1))
        self.worst = worst

    def _is_worst(self, miss: np.ndarray) -> np.ndarray:
        worst = self.worst.reshape((-1,) + (1,) * (miss.ndim - 1))
        return np.isfinite(miss) & (miss >= worst - TIE_TOLERANCE * (1.0 + np.abs(worst)))

    def restrict(self, position: int, equilibrium: np.ndarray, shortfall: np.ndarray,
                 candidate_codes: np.ndarray, normal: np.ndarray):
        """Return the allowed equilibria and the choice to keep in the normal phases.

        The choice to keep is a candidate index, -1 to keep breakdown, or -2
        where the choice is made again.
        """
        index = _candidate_index(candidate_codes, self.previous[position][:, normal, :])
        picked = np.maximum(index, 0)[None]
        allowed = self.allowed.setdefault(position, np.ones(equilibrium.shape, dtype=bool))

        still = np.take_along_axis(equilibrium, picked, axis=0)[0]
        miss = np.where((index >= 0) & ~still, np.take_along_axis(shortfall, picked, axis=0)[0], -np.inf)
        if self.auditing:
            self.misses[(position, "normal")] = miss
            return equilibrium & allowed, index

        drop = (index >= 0) & self._is_worst(miss)
        np.put_along_axis(allowed, picked, np.take_along_axis(allowed, picked, axis=0) & ~drop[None],
                          axis=0)
        return equilibrium & allowed, np.where(drop | (index < 0), -2, index)

    def run_on(self, position: int, phases: np.ndarray, run_codes: np.ndarray,
               shortfall: np.ndarray) -> np.ndarray:
        """Return the codes of suspended or notice phases: kept, dropped or selected again."""
        previous = self.previous[position][:, phases, :]
        dropped = self.dropped.setdefault(position, np.zeros(self.previous[position].shape, dtype=bool))
        miss = np.where((previous == COMPLY) & (run_codes == BREAKDOWN), shortfall, -np.inf)
        if self.auditing:
            self.misses[(position, f"run{phases[0]}")] = miss
            return previous.astype(np.int8)

        dropped[:, phases, :] |= self._is_worst(miss)
        chosen = np.where(previous == COMPLY, COMPLY, run_codes)
        return np.where(dropped[:, phases, :], BREAKDOWN, chosen).astype(np.int8)


def _as_index(indices: np.ndarray):
    """Return ``indices`` as a slice when they are evenly spaced and ascending, else unchanged."""
    if indices.size == 0:
        return indices
    if indices.size == 1:
        return slice(int(indices[0]), int(indices[0]) + 1)
    step = int(indices[1] - indices[0])
    if step > 0 and np.all(np.diff(indices) == step):
        return slice(int(indices[0]), int(indices[-1]) + 1, step)
    return indices


def _add_phases(constant: np.ndarray, values: np.ndarray, phases, out: np.ndarray) -> np.ndarray:
    """Write ``constant + values[:, :, phases, :]`` into ``out`` and return it.

    ``phases`` is a slice or an index array.  ``numpy.take`` into ``out``
    gathers along an index array about twice as fast as fancy indexing does.
    """
    if isinstance(phases, slice):
        return np.add(constant, values[:, :, phases, :], out=out)
    # Any mode but the default "raise" writes into ``out`` without a buffer.
    # The indices are always in range, so "wrap" never changes one.
    np.take(values, phases, axis=2, out=out, mode="wrap")
    out += constant
    return out


def _candidate_index(candidate_codes: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Return the position of each profile code in ``candidate_codes`` (-1 for breakdown)."""
    # Codes are small int8 values, so a table over all 256 of them maps every code in one step.
    lookup = np.full(256, -1, dtype=np.int64)
    lookup[candidate_codes.astype(np.int64) % 256] = np.arange(len(candidate_codes))
    codes = codes.astype(np.int64)
    return np.where(codes == BREAKDOWN, -1, lookup[codes % 256])


def _segment_values(stored, clock, keep_values):
    """Keep only the values that callers read: segment starts, or all positions."""
    if keep_values:
        return stored
    kept = [None] * len(stored)
    for start in clock.segment_starts:
        kept[start] = stored[start]
    return kept
