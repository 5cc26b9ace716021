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

from dataclasses import dataclass, field

import numpy as np

from engine.clock import NO_NEXT
from engine.dynamic import BREAKDOWN, COMPLY, NOTICE_CODE, DynamicSolver, NodeOutcome, Policy
from engine.phases import EXIT, NORMAL, SUSPENDED

# Mass below this is treated as gone; it keeps long propagations cheap.
NEGLIGIBLE = 1e-13
# Largest change of a probability in one period that counts as no change.
STEADY = 1e-16


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
    """``propagate`` for any treaty, one period at a time."""
    game = core.game
    clock = core.clock
    phases = core.phases
    n, columns = z.shape
    states = core.n_states
    transition = game.transition
    b = core.defection
    escape = core.rules.escape
    withdrawal = core.rules.withdrawal
    delay = core.rules.duration.delay if core.rules.duration is not None else 0
    renegotiation_cost = core.rules.duration.renegotiation_cost if core.rules.duration is not None else 0.0
    pending_cost = np.zeros(n)

    mass = np.zeros((columns, clock.size, phases.size, states))
    mass[0, 0, phases.start, game.start] = 1.0
    dead = np.zeros(states)
    limbo = np.zeros((max(delay, 1), columns, states))

    result = Trajectory(
        alive=np.zeros(periods), breakdown=np.zeros(periods), exit=np.zeros(periods),
        lapse=np.zeros(periods), escape=np.zeros(periods),
        with_treaty=np.zeros((n, periods)), without_treaty=np.zeros((n, periods)),
    )
    outlook = np.zeros(states)
    outlook[game.start] = 1.0
    suspension_stage = {}
    if escape is not None:
        suspension_stage = {j: core._suspension_stage(j, z) for j in range(n)}

    # Mass sits in few columns: the terms, the terms renegotiated at expiry and,
    # with reviews, the amended terms.  Work is restricted to those columns, and
    # ``following`` is a buffer that is kept at zero outside them.
    node_columns = np.zeros(0, dtype=np.int64)
    if node is not None:
        node_columns = np.unique(np.concatenate([targets[targets >= 0] + 1 for targets, _ in node.lottery()]))
    candidates = np.array([0], dtype=np.int64)
    following = np.zeros_like(mass)
    # With one clock position and no node, a period in which nothing ends and
    # no distribution changes repeats for ever, so the rest can be copied.
    repeating = clock.size == 1 and node is None and not clock.review.any() and delay == 0

    for t in range(periods):
        result.without_treaty[:, t] = b @ outlook
        previous_outlook = outlook
        outlook = outlook @ transition

        # Review nodes open the period: amendments move mass between columns.
        normal = phases.normal_phases()
        for position in np.flatnonzero(clock.review):
            block = mass[:, position][:, normal]
            reaching = block.sum()
            if reaching <= NEGLIGIBLE:
                continue
            choice = policy.amend[position]
            adopted = (choice >= 0) & (block > 0)
            kept = np.where(adopted, 0.0, block)
            column_index, phase_index, state_index = np.nonzero(adopted)
            np.add.at(kept, (choice[adopted] + 1, phase_index, state_index), block[adopted])
            mass[:, position, normal] = kept
            pending_cost += core.rules.review.amendment_cost * float(block[adopted].sum())
            result.nodes.append({"period": t, "kind": "review", "mass": float(reaching),
                                 "success": float(block[adopted].sum())})

        # Amendments can move mass to any column, so then every column is checked.
        if clock.review.any():
            candidates = np.arange(columns)
        cells = clock.size * phases.size * states
        live = candidates[mass[candidates].reshape(len(candidates), cells).max(axis=1, initial=0.0) > 0.0]
        live_mass = mass[live]

        alive_now = live_mass.sum() + limbo.sum()
        ended_now = 0.0

        stage = -pending_cost
        pending_cost = np.zeros(n)
        stage += b @ dead
        stage += np.einsum("is,dcs->i", b, limbo)
        next_dead = dead @ transition
        expiring = np.zeros((clock.segments, columns, states))

        live_z = z[:, live]
        live_stage = {j: values[:, live] for j, values in suspension_stage.items()}
        occupied = live_mass.sum(axis=(0, 2, 3))

        for position in range(clock.size):
            if occupied[position] <= NEGLIGIBLE:
                continue
            block = live_mass[:, position]
            codes = policy.codes[position][live]
            nxt = clock.next[position]

            def send(amount: np.ndarray, phase_target: int) -> None:
                """Move (column, state) mass to ``phase_target`` at the next position."""
                nonlocal next_dead
                moved = amount @ transition
                if phase_target == EXIT:
                    result.exit[t] += amount.sum()
                    next_dead += moved.sum(axis=0)
                elif nxt == NO_NEXT:
                    expiring[clock.segment[position], live] += moved
                else:
                    following[live, nxt, phase_target] += moved

            for phase in range(phases.size):
                amounts = block[:, phase, :]
                if amounts.sum() <= NEGLIGIBLE:
                    continue
                phase_codes = codes[:, phase, :]

                broke = np.where(phase_codes == BREAKDOWN, amounts, 0.0)
                if broke.sum() > 0:
                    result.breakdown[t] += broke.sum()
                    ended_now += broke.sum()
                    stage += np.einsum("is,cs->i", b, broke)
                    next_dead += broke.sum(axis=0) @ transition

                kind = phases.kind[phase]
                complied = np.where(phase_codes == COMPLY, amounts, 0.0)
                if complied.sum() > 0:
                    if kind == SUSPENDED:
                        j = phases.invoker[phase]
                        stage += np.einsum("ics,cs->i", live_stage[j], complied)
                    else:
                        stage += live_z @ complied.sum(axis=1)
                    send(complied, phases.after_comply[phase])

                if kind != NORMAL:
                    continue
                for j in range(n):
                    noticed = np.where(phase_codes == NOTICE_CODE + j, amounts, 0.0)
                    if noticed.sum() > 0:
                        stage[j] -= withdrawal.cost * noticed.sum()
                        if withdrawal.notice == 0:
                            result.exit[t] += noticed.sum()
                            ended_now += noticed.sum()
                            stage += np.einsum("is,cs->i", b, noticed)
                            next_dead += noticed.sum(axis=0) @ transition
                        else:
                            stage += live_z @ noticed.sum(axis=1)
                            send(noticed, phases.after_notice)
                    escaped = np.where(phase_codes == NOTICE_CODE + n + j, amounts, 0.0)
                    if escaped.sum() > 0:
                        total = escaped.sum()
                        result.escape[t] += total
                        stage += np.einsum("ics,cs->i", live_stage[j], escaped)
                        stage[j] -= escape.cost * total
                        if escape.cost_type == "transfer":
                            others = np.arange(n) != j
                            stage[others] += escape.cost * total / (n - 1)
                        send(escaped, phases.after_escape[phase, j])

        # Limbo: renegotiation after expiry with a delay before the new terms start.
        if delay > 0:
            following[:, 0, phases.start] += limbo[0] @ transition
            shifted = np.zeros_like(limbo)
            shifted[:-1] = limbo[1:] @ transition
            limbo = shifted

        # Expiry nodes: extend, renegotiate or lapse, decided in the new state.
        reaching = expiring.sum()
        if reaching > NEGLIGIBLE:
            succeeded = 0.0
            for segment in range(clock.segments):
                portion = expiring[segment]
                if portion.sum() <= 0:
                    continue
                if segment in policy.extend:
                    extended = portion * policy.extend[segment]
                    following[:, clock.segment_starts[segment + 1], phases.start] += extended
                    succeeded += extended.sum()
                    portion = portion - extended
                outcomes = [(np.full(states, -1), np.ones(states))] if node is None else node.lottery()
                for state in range(states):
                    total = portion[:, state].sum()
                    for targets, probability in outcomes:
                        amount = total * probability[state]
                        target = targets[state]
                        if amount <= 0:
                            continue
                        if target < 0:
                            result.lapse[t] += amount
                            next_dead[state] += amount
                        else:
                            # Renegotiating costs every party, paid as the new terms are agreed.
                            pending_cost += renegotiation_cost * amount
                            succeeded += amount
                            if delay > 0:
                                limbo[delay - 1, target + 1, state] += amount
                            else:
                                following[target + 1, 0, phases.start, state] += amount
            result.nodes.append({"period": t + 1, "kind": "expiry", "mass": float(reaching),
                                 "success": float(succeeded)})

        result.alive[t] = alive_now - ended_now
        candidates = np.union1d(live, node_columns)
        touched = following[candidates]
        touched[touched < NEGLIGIBLE] = 0.0
        following[candidates] = touched

        # Distributions that settle geometrically stop changing to within
        # rounding; the copied tail then differs from the exact one by rounding too.
        ended = result.breakdown[t] + result.exit[t] + result.lapse[t] + result.escape[t]
        steady = (repeating and ended == 0.0 and not pending_cost.any()
                  and np.allclose(following, mass, rtol=0.0, atol=STEADY)
                  and np.allclose(next_dead, dead, rtol=0.0, atol=STEADY)
                  and np.allclose(outlook, previous_outlook, rtol=0.0, atol=STEADY))

        # Swap the buffers: the old mass, cleared, receives the next period.
        mass[live] = 0.0
        mass, following = following, mass
        dead = next_dead
        result.with_treaty[:, t] = stage

        if steady:
            for series in (result.alive, result.breakdown, result.exit, result.lapse, result.escape):
                series[t + 1:] = series[t]
            result.with_treaty[:, t + 1:] = stage[:, None]
            result.without_treaty[:, t + 1:] = result.without_treaty[:, t:t + 1]
            break

        # Once nothing is alive, in limbo or owed, only the two no-treaty
        # distributions move, and every later period is a vector product.
        if not (mass.any() or limbo.any() or pending_cost.any()):
            for later in range(t + 1, periods):
                result.without_treaty[:, later] = b @ outlook
                outlook = outlook @ transition
                result.with_treaty[:, later] = b @ dead
                dead = dead @ transition
            break

    result.tail_mass = float(mass.sum() + limbo.sum())
    return result


def _propagate_rigid(core: DynamicSolver, z: np.ndarray, policy: Policy, periods: int) -> Trajectory:
    """``propagate`` for a treaty with one clock position, one phase and no node.

    The terms never change, so the process is a fixed linear map of three
    distributions over states: the mass alive at the start of the period
    ``m``, the mass after breakdown ``d`` and the no-treaty outlook ``o``.
    With ``c`` the complying states and ``P`` the declared chain,
    ``m' = (m c) P``, ``d' = (d + m (1 - c)) P`` and ``o' = o P``.  Every
    reported quantity is linear in ``(m, d, o)``, so the loop only applies
    the map, and one product gives all periods.  Unlike the general loop, no
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

    path = np.zeros((periods, 3 * states))
    current = np.zeros(3 * states)
    current[game.start] = 1.0
    current[2 * states + game.start] = 1.0
    for t in range(periods):
        path[t] = current
        current = current @ step

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
