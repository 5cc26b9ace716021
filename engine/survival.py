"""Forward propagation of a solved treaty under the declared environment chain.

Starting from the first period in the start state, the probability mass of
every augmented state ``(column, clock, phase, state)`` is pushed through the
selected policy.  This gives the survival curve, expected lifetime, payoff
streams and what happens at each renegotiation and review node.

A treaty counts as alive while it is in force, suspended, under notice, or
being renegotiated after expiry. It dies at breakdown, at the end of a notice
period, and when renegotiation fails (lapse).

``alive[t]`` is the mass alive during period ``t``: what the expiry node at the
start of the period left, less what breaks down or withdraws without notice in
the period itself.  It is therefore the probability that the treaty is alive
``t`` periods after entry into force, once everything decided at that moment
has happened, and its sum is the expected number of periods alive.
"""

from __future__ import annotations

import math

from dataclasses import dataclass, field

import numpy as np

from engine.clock import NO_NEXT
from engine.dynamic import BREAKDOWN, COMPLY, NOTICE_CODE, DynamicSolver, NodeOutcome, Policy
from engine.phases import EXIT, NORMAL, SUSPENDED

# Mass below this is treated as gone; it keeps long propagations cheap.
NEGLIGIBLE = 1e-13
# Largest change of a probability in one period that counts as no change.
STEADY = 1e-16


def period_at_year(year: float, per_year: float) -> int:
    """Return the period in force ``year`` years after entry into force: the last one started by then.

    Treaties end only where a period starts, so the treaty is alive at that
    moment exactly when it is alive during this period.  Where a period
    does not divide a year, rounding to the nearest period would take one
    that starts after the moment.  The small margin keeps a product that
    should be whole, such as 3 x 12, from falling one period short.
    """
    return int(math.floor(year * per_year + 1e-9))


@dataclass
class Trajectory:
    """Per-period outcome of propagating one treaty."""

    alive: np.ndarray
    breakdown: np.ndarray
    exit: np.ndarray
    lapse: np.ndarray
    escape: np.ndarray
    with_treaty: np.ndarray
    without_treaty: np.ndarray
    nodes: list[dict] = field(default_factory=list)
    tail_mass: float = 0.0


def propagate(core: DynamicSolver, z: np.ndarray, policy: Policy, node: NodeOutcome | None,
              periods: int) -> Trajectory:
    """Propagate the treaty that starts in column 0 for ``periods`` periods.

    ``z`` (party, column) gives the per-period regime value of each column.
    ``node`` gives the columns adopted at renegotiation in each state (-1: the
    treaty lapses), possibly as a lottery.  Columns referenced by review amendments and by
    renegotiation are the base grid columns offset by one.
    """
    clock = core.clock
    if core._rigid and clock.size == 1 and node is None and not clock.review.any():
        return _propagate_rigid(core, z, policy, periods)
    return _propagate_general(core, z, policy, node, periods)


def _propagate_general(core: DynamicSolver, z: np.ndarray, policy: Policy, node: NodeOutcome | None,
                       periods: int) -> Trajectory:
    """``propagate`` for any treaty, one period at a time.

    Mass is stored per occupied (column, clock position) pair as a vector over
    (phase, state).  Within a period every pair moves by a linear map that
    depends only on its column, the policy at its position and the chain.
    Each map is therefore built once and reused in later periods and clock
    cycles, and all pairs of a period move together in a few array operations.
    """
    return _Propagation(core, z, policy, node).run(periods)


# Offsets, after the per-party stage payoffs, of the counters in a period map's
# ``outcomes``.  They count mass that breaks down, exits, escapes, ends within
# the period (so is not alive in it) and all mass.
_BREAKDOWN, _EXIT, _ESCAPE, _ENDED, _TOTAL = range(5)
_COUNTERS = 5
# Next phase of a cell whose mass does not stay in the treaty.
_NOWHERE = -100


@dataclass(frozen=True)
class PeriodMap:
    """Linear map of one period for the mass at one clock position and column.

    The mass is a flat vector over (phase, state) cells.  ``scatter[cell]`` is
    the flat index into a ``(phase + 2, state)`` array that receives the
    cell's mass before the chain moves it.  Rows ``0 .. phase - 1`` are the
    next phases, and all staying mass goes to row 0 when the segment ends at
    an expiry node, where the phase no longer matters.  Row ``phase`` is mass
    that leaves the treaty, and row ``phase + 1`` is mass that no rule moves
    (a notice or escape code outside a normal phase), which is dropped.
    ``outcomes`` has shape (cell, party + 5): each party's stage payoff per
    unit of mass, then the counters at the ``_BREAKDOWN`` .. ``_TOTAL`` offsets.
    """

    scatter: np.ndarray
    outcomes: np.ndarray


class PeriodMaps:
    """Period maps of one policy, built on first use and kept for reuse.

    A map depends on the position only through the policy codes there and
    whether the segment ends, so positions with the same codes share one map.
    """

    def __init__(self, core: DynamicSolver, z: np.ndarray, policy: Policy):
        self.core = core
        self.z = z
        self.policy = policy
        self.suspension_stage = {}
        if core.rules.escape is not None:
            self.suspension_stage = {j: core._suspension_stage(j, z) for j in range(z.shape[0])}
        self._by_position: dict[tuple[int, int], PeriodMap] = {}
        self._by_codes: dict[tuple[int, bool, bytes], PeriodMap] = {}

    def get(self, position: int, column: int) -> PeriodMap:
        """Return the map for mass at clock ``position`` in ``column``."""
        found = self._by_position.get((position, column))
        if found is None:
            codes = self.policy.codes[position][column]
            expires = bool(self.core.clock.next[position] == NO_NEXT)
            signature = (column, expires, codes.tobytes())
            found = self._by_codes.get(signature)
            if found is None:
                found = self._by_codes[signature] = self._build(codes, column, expires)
            self._by_position[(position, column)] = found
        return found

    def _build(self, codes: np.ndarray, column: int, expires: bool) -> PeriodMap:
        core = self.core
        phases = core.phases
        rules = core.rules
        n = self.z.shape[0]
        size = phases.size
        states = core.n_states
        normal = np.broadcast_to((phases.kind == NORMAL)[:, None], (size, states))
        z_column = self.z[:, column]
        # Stage payoffs per cell when everyone defects, shape (phase, state, party).
        defecting = np.broadcast_to(core.defection.T, (size, states, n))

        outcomes = np.zeros((size, states, n + _COUNTERS))
        outcomes[:, :, n + _TOTAL] = 1.0
        target = np.full((size, states), _NOWHERE, dtype=np.int64)
        leaves = np.zeros((size, states), dtype=bool)

        # Breakdown: everyone defects from this period on.
        broke = codes == BREAKDOWN
        outcomes[broke, :n] += defecting[broke]
        outcomes[broke, n + _BREAKDOWN] = 1.0
        outcomes[broke, n + _ENDED] = 1.0
        leaves |= broke

        # Compliance: the phase runs on, and a suspended party defects legally.
        complied = codes == COMPLY
        running = np.array(np.broadcast_to(z_column, (size, states, n)))
        for phase in np.flatnonzero(phases.kind == SUSPENDED):
            running[phase] = self.suspension_stage[phases.invoker[phase]][:, column, :].T
        outcomes[complied, :n] += running[complied]
        target[complied] = np.broadcast_to(phases.after_comply[:, None], (size, states))[complied]

        for j in range(n):
            noticed = normal & (codes == NOTICE_CODE + j)
            if noticed.any():
                withdrawal = rules.withdrawal
                outcomes[noticed, j] -= withdrawal.cost
                if withdrawal.notice == 0:
                    outcomes[noticed, :n] += defecting[noticed]
                    outcomes[noticed, n + _EXIT] = 1.0
                    outcomes[noticed, n + _ENDED] = 1.0
                    leaves |= noticed
                else:
                    outcomes[noticed, :n] += z_column
                    target[noticed] = phases.after_notice

            escaped = normal & (codes == NOTICE_CODE + n + j)
            if escaped.any():
                escape = rules.escape
                suspended = np.broadcast_to(self.suspension_stage[j][:, column, :].T, (size, states, n))
                outcomes[escaped, :n] += suspended[escaped]
                outcomes[escaped, j] -= escape.cost
                if escape.cost_type == "transfer":
                    share = np.full(n, escape.cost / (n - 1))
                    share[j] = 0.0
                    outcomes[escaped, :n] += share
                outcomes[escaped, n + _ESCAPE] = 1.0
                target[escaped] = np.broadcast_to(phases.after_escape[:, j][:, None], (size, states))[escaped]

        impossible = np.flatnonzero(((target < 0) & (target != EXIT) & (target != _NOWHERE)).any(axis=1))
        if impossible.size:
            raise ValueError(f"invalid policy: column {column} invokes the escape hatch in phase "
                             f"{phases.labels[impossible[0]]}, where no escape is possible, so the "
                             "policy does not match this treaty's phases")

        # A notice period that runs out ends the treaty after this period.
        exits = target == EXIT
        outcomes[exits, n + _EXIT] = 1.0
        leaves |= exits
        target[exits] = _NOWHERE

        row = np.full((size, states), size + 1, dtype=np.int64)
        staying = target >= 0
        row[staying] = 0 if expires else target[staying]
        row[leaves] = size
        return PeriodMap(scatter=(row * states + np.arange(states)).ravel(),
                         outcomes=outcomes.reshape(size * states, n + _COUNTERS))


class _Propagation:
    """State of one forward propagation between periods.

    ``keys[e]`` is an occupied (column, clock position) pair and ``mass[e]``
    its flat (phase, state) vector.  ``limbo[d, column]`` is mass renegotiated
    at expiry whose new terms start ``d + 1`` periods later, ``dead`` is the
    state distribution of mass that has left the treaty and ``pending_cost``
    the lump-sum costs due in the next period.
    """

    def __init__(self, core: DynamicSolver, z: np.ndarray, policy: Policy, node: NodeOutcome | None):
        self.core = core
        self.policy = policy
        self.maps = PeriodMaps(core, z, policy)
        self.n = z.shape[0]
        self.states = core.n_states
        self.cells = core.phases.size * core.n_states
        duration = core.rules.duration
        self.delay = duration.delay if duration is not None else 0
        self.renegotiation_cost = duration.renegotiation_cost if duration is not None else 0.0
        self.outcomes = [(np.full(self.states, -1), np.ones(self.states))] if node is None else node.lottery()
        self.review_positions = [int(position) for position in np.flatnonzero(core.clock.review)]
        # With one clock position and no node, a period in which nothing ends and
        # no distribution changes repeats for ever, so the rest can be copied.
        self.repeating = (core.clock.size == 1 and node is None and not self.review_positions
                          and self.delay == 0)
        # Where the mass at each position goes: the next position, or None with
        # the segment that ends there.
        self.route = [(None, int(segment)) if following == NO_NEXT else (int(following), None)
                      for following, segment in zip(core.clock.next, core.clock.segment)]

        self.keys = [(0, 0)]
        self.mass = np.zeros((1, self.cells))
        self.mass[0, core.phases.start * self.states + core.game.start] = 1.0
        self.limbo = np.zeros((max(self.delay, 1), z.shape[1], self.states))
        self.dead = np.zeros(self.states)
        self.pending_cost = np.zeros(self.n)

    def run(self, periods: int) -> Trajectory:
        """Propagate for ``periods`` periods and return the per-period outcome."""
        core = self.core
        transition = core.game.transition
        b = core.defection
        n = self.n
        states = self.states
        size = core.phases.size
        slots = (size + 2) * states
        reviewed = set(self.review_positions)
        result = Trajectory(
            alive=np.zeros(periods), breakdown=np.zeros(periods), exit=np.zeros(periods),
            lapse=np.zeros(periods), escape=np.zeros(periods),
            with_treaty=np.zeros((n, periods)), without_treaty=np.zeros((n, periods)),
        )
        outlook = np.zeros(states)
        outlook[core.game.start] = 1.0

        for t in range(periods):
            result.without_treaty[:, t] = b @ outlook
            previous_outlook = outlook
            outlook = outlook @ transition

            # Review nodes open the period: amendments move mass between columns.
            if reviewed and any(position in reviewed for _, position in self.keys):
                self._review(t, result)

            stage = b @ self.dead - self.pending_cost
            self.pending_cost = np.zeros(n)
            alive_now = 0.0
            if self.delay > 0:
                alive_now = self.limbo.sum()
                stage += b @ self.limbo.sum(axis=(0, 1))

            # Every pair is scattered by its map into the rows of its destination:
            # the pair it moves to, or the expiry node it reaches.
            destinations: dict[tuple, int] = {}
            destination_of = []
            maps = []
            for column, position in self.keys:
                following_position, segment = self.route[position]
                key = (column, following_position) if segment is None else ("expiry", segment, column)
                destination_of.append(destinations.setdefault(key, len(destinations)))
                maps.append(self.maps.get(position, column))
            spread = np.zeros((0, size + 2, states))
            totals = np.zeros(n + _COUNTERS)
            if maps:
                index = np.concatenate([period_map.scatter for period_map in maps])
                index += np.repeat(np.asarray(destination_of) * slots, self.cells)
                spread = np.bincount(index, weights=self.mass.ravel(), minlength=len(destinations) * slots)
                spread = spread.reshape(len(destinations), size + 2, states)
                totals = self.mass.ravel() @ np.concatenate([period_map.outcomes for period_map in maps])

            # The chain moves all of it at once.
            moved = spread[:, :size] @ transition
            next_dead = (self.dead + spread[:, size].sum(axis=0)) @ transition
            stage += totals[:n]
            result.breakdown[t] = totals[n + _BREAKDOWN]
            result.exit[t] = totals[n + _EXIT]
            result.escape[t] = totals[n + _ESCAPE]
            alive_now += totals[n + _TOTAL]

            keys = []
            rows = []
            expiring = {}
            for key, destination in destinations.items():
                if key[0] == "expiry":
                    expiring[key[1:]] = moved[destination, 0]
                else:
                    keys.append(key)
                    rows.append(destination)
            following = _Arrivals(keys, moved[rows].reshape(len(rows), self.cells), self)

            # Limbo: renegotiation after expiry with a delay before the new terms start.
            if self.delay > 0:
                released = self.limbo[0] @ transition
                for column in np.flatnonzero(released.any(axis=1)):
                    following.enter((int(column), 0), released[column])
                shifted = np.zeros_like(self.limbo)
                shifted[:-1] = self.limbo[1:] @ transition
                self.limbo = shifted

            # Expiry nodes: extend, renegotiate or lapse, decided in the new state.
            if expiring:
                self._expire(expiring, following, next_dead, t, result)

            result.alive[t] = alive_now - totals[n + _ENDED]
            next_keys, next_mass = following.settle()

            # Distributions that settle geometrically stop changing to within
            # rounding; the copied tail then differs from the exact one by rounding too.
            ended = result.breakdown[t] + result.exit[t] + result.lapse[t] + result.escape[t]
            steady = (self.repeating and ended == 0.0 and not self.pending_cost.any()
                      and next_keys == self.keys
                      and np.allclose(next_mass, self.mass, rtol=0.0, atol=STEADY)
                      and np.allclose(next_dead, self.dead, rtol=0.0, atol=STEADY)
                      and np.allclose(outlook, previous_outlook, rtol=0.0, atol=STEADY))

            self.keys = next_keys
            self.mass = next_mass
            self.dead = next_dead
            result.with_treaty[:, t] = stage

            if steady:
                for series in (result.alive, result.breakdown, result.exit, result.lapse, result.escape):
                    series[t + 1:] = series[t]
                result.with_treaty[:, t + 1:] = stage[:, None]
                result.without_treaty[:, t + 1:] = result.without_treaty[:, t:t + 1]
                break

            # Once nothing is alive, in limbo or owed, only the two no-treaty
            # distributions move, and every later period is a vector product.
            if not (self.keys or self.limbo.any() or self.pending_cost.any()):
                dead = self.dead
                for later in range(t + 1, periods):
                    result.without_treaty[:, later] = b @ outlook
                    outlook = outlook @ transition
                    result.with_treaty[:, later] = b @ dead
                    dead = dead @ transition
                break

        result.tail_mass = float(self.mass.sum() + self.limbo.sum())
        return result

    def _review(self, t: int, result: Trajectory) -> None:
        """Apply the amendment nodes that open period ``t`` to ``keys`` and ``mass``."""
        phases = self.core.phases
        normal = phases.normal_phases()
        grids = self.mass.reshape(len(self.keys), phases.size, self.states)
        added = _Arrivals(list(self.keys), self.mass, self)
        for position in self.review_positions:
            at_position = [e for e, key in enumerate(self.keys) if key[1] == position]
            reaching = float(grids[at_position][:, normal].sum()) if at_position else 0.0
            if reaching <= NEGLIGIBLE:
                continue

            # Adopted mass is taken out of every pair first, so mass that moves
            # into a column is not amended again at the same node.
            choices = self.policy.amend[position]
            moves = []
            success = 0.0
            for e in at_position:
                block = grids[e][normal]
                choice = choices[self.keys[e][0]]
                adopted = (choice >= 0) & (block > 0)
                if not adopted.any():
                    continue
                phase_index, state_index = np.nonzero(adopted)
                amounts = block[adopted]
                success += float(amounts.sum())
                grids[e, normal[phase_index], state_index] = 0.0
                moves.append((choice[adopted] + 1, normal[phase_index] * self.states + state_index, amounts))

            for targets, cells, amounts in moves:
                for target in np.unique(targets):
                    chosen = targets == target
                    added.add_cells((int(target), position), cells[chosen], amounts[chosen])

            self.pending_cost += self.core.rules.review.amendment_cost * success
            result.nodes.append({"period": t, "kind": "review", "mass": float(reaching), "success": success})

        # Mass was moved, not created, so nothing falls below NEGLIGIBLE here.
        self.keys, self.mass = added.settle(threshold=False)

    def _expire(self, expiring: dict[tuple[int, int], np.ndarray], following: "_Arrivals",
                next_dead: np.ndarray, t: int, result: Trajectory) -> None:
        """Settle the expiry nodes at the end of period ``t``.

        ``expiring`` maps (segment, column) to the mass that reaches the end of
        that segment, after the chain has moved it.  Extended mass continues in
        the next segment, renegotiated mass starts new terms (after the delay)
        and the rest lapses into ``next_dead``.
        """
        clock = self.core.clock
        reaching = sum(float(amounts.sum()) for amounts in expiring.values())
        if reaching <= NEGLIGIBLE:
            return

        succeeded = 0.0
        renegotiated = 0.0
        for segment in range(clock.segments):
            keys = [key for key in expiring if key[0] == segment]
            if not keys:
                continue
            columns = [column for _, column in keys]
            portion = np.array([expiring[key] for key in keys])
            if portion.sum() <= 0:
                continue
            if segment in self.policy.extend:
                extended = portion * self.policy.extend[segment][columns]
                for column, amounts in zip(columns, extended):
                    if amounts.any():
                        following.enter((column, clock.segment_starts[segment + 1]), amounts)
                succeeded += float(extended.sum())
                portion = portion - extended

            total = portion.sum(axis=0)
            for targets, probability in self.outcomes:
                amount = total * probability
                lapsed = (targets < 0) & (amount > 0)
                result.lapse[t] += amount[lapsed].sum()
                next_dead[lapsed] += amount[lapsed]
                for state in np.flatnonzero((targets >= 0) & (amount > 0)):
                    column = int(targets[state]) + 1
                    renegotiated += amount[state]
                    if self.delay > 0:
                        self.limbo[self.delay - 1, column, state] += amount[state]
                    else:
                        single = np.zeros(self.states)
                        single[state] = amount[state]
                        following.enter((column, 0), single)

        # Renegotiating costs every party, paid as the new terms are agreed.
        self.pending_cost += self.renegotiation_cost * renegotiated
        result.nodes.append({"period": t + 1, "kind": "expiry", "mass": float(reaching),
                             "success": float(succeeded + renegotiated)})


class _Arrivals:
    """Mass per (column, clock position) pair being collected for the next step.

    ``keys`` and ``mass`` contain the pairs reached so far.  Mass for a pair
    not yet present is stored aside in ``extra`` and joined by ``settle``.
    """

    def __init__(self, keys: list[tuple[int, int]], mass: np.ndarray, propagation: _Propagation):
        self.keys = keys
        self.mass = mass
        self.index = {key: e for e, key in enumerate(keys)}
        self.extra: list[np.ndarray] = []
        self.cells = propagation.cells
        self.start = propagation.core.phases.start * propagation.states
        self.states = propagation.states

    def _vector(self, key: tuple[int, int]) -> np.ndarray:
        e = self.index.get(key)
        if e is None:
            e = self.index[key] = len(self.keys)
            self.keys.append(key)
            self.extra.append(np.zeros(self.cells))
        if e < len(self.mass):
            return self.mass[e]
        return self.extra[e - len(self.mass)]

    def enter(self, key: tuple[int, int], amounts: np.ndarray) -> None:
        """Add per-state ``amounts`` to the start phase of ``key``, as new terms take effect."""
        self._vector(key)[self.start:self.start + self.states] += amounts

    def add_cells(self, key: tuple[int, int], cells: np.ndarray, amounts: np.ndarray) -> None:
        """Add ``amounts`` to the flat (phase, state) ``cells`` of ``key``."""
        np.add.at(self._vector(key), cells, amounts)

    def settle(self, threshold: bool = True) -> tuple[list[tuple[int, int]], np.ndarray]:
        """Return the pairs and their mass, without pairs that hold none.

        With ``threshold``, cells below ``NEGLIGIBLE`` are dropped first.
        """
        mass = np.vstack([self.mass, *self.extra]) if self.extra else self.mass
        if threshold:
            mass[mass < NEGLIGIBLE] = 0.0
        occupied = mass.any(axis=1)
        if occupied.all():
            return self.keys, mass
        return [key for key, holds in zip(self.keys, occupied) if holds], mass[occupied]


def _propagate_rigid(core: DynamicSolver, z: np.ndarray, policy: Policy, periods: int) -> Trajectory:
    """``propagate`` for a treaty with one clock position, one phase and no node.

    The terms never change, so the process is a fixed linear map of three
    distributions over states: the mass alive at the start of the period
    ``m``, the mass after breakdown ``d`` and the no-treaty outlook ``o``.
    With ``c`` the complying states and ``P`` the declared chain,
    ``m' = (m c) P``, ``d' = (d + m (1 - c)) P`` and ``o' = o P``.  Every
    reported quantity is linear in ``(m, d, o)``, so the distributions of all
    periods come from powers of the map.  Unlike the general loop, no
    mass below ``NEGLIGIBLE`` is dropped, which changes nothing above that size.
    """
    game = core.game
    states = core.n_states
    transition = game.transition
    b = core.defection
    complying = (policy.codes[0][0, 0, :] == COMPLY).astype(float)

    # The state (m, d, o) as one row vector and the map as one matrix.
    step = np.zeros((3 * states, 3 * states))
    step[:states, :states] = complying[:, None] * transition
    step[:states, states:2 * states] = (1.0 - complying)[:, None] * transition
    step[states:2 * states, states:2 * states] = transition
    step[2 * states:, 2 * states:] = transition

    # Row t is the start row times step^t.  Doubling the filled rows with
    # step^1, step^2, step^4, ... takes logarithmically many products.
    first = np.zeros(3 * states)
    first[game.start] = 1.0
    first[2 * states + game.start] = 1.0
    path = np.zeros((periods, 3 * states))
    path[:1] = first
    power, filled = step, 1
    while filled < periods:
        count = min(filled, periods - filled)
        path[filled:filled + count] = path[:count] @ power
        filled += count
        power = power @ power
    current = path[-1] @ step if periods else first

    alive_mass = path[:, :states]
    dead_mass = path[:, states:2 * states]
    outlook = path[:, 2 * states:]
    broke = alive_mass * (1.0 - complying)
    complied = alive_mass * complying
    return Trajectory(
        alive=complied.sum(axis=1),
        breakdown=broke.sum(axis=1),
        exit=np.zeros(periods), lapse=np.zeros(periods), escape=np.zeros(periods),
        with_treaty=(z[:, :1] * complied.sum(axis=1)[None, :] + b @ (dead_mass + broke).T),
        without_treaty=b @ outlook.T,
        tail_mass=float(current[:states].sum()),
    )
