"""Exact values of a fixed policy on a repeating clock, by one sparse linear solve.

Once the selected profiles stop changing, the values satisfy
``V = r + delta M V`` for each party, where ``M`` moves each augmented state
``(column, clock, phase, state)`` to its successor under the policy and the
environment chain.  Breakdown and exit fold the no-treaty value into ``r``.
An amendment at a review node replaces the row of the current column by the
row of the adopted column, less the amendment cost.
"""

from __future__ import annotations

import numpy as np
from scipy.sparse import coo_matrix, identity
from scipy.sparse.linalg import spsolve

from engine.dynamic import BREAKDOWN, COMPLY, NOTICE_CODE, Chain, DynamicSolver, PassResult, Policy
from engine.phases import EXIT, NORMAL, SUSPENDED

# Above this many unknowns per party the solver keeps to value iteration.
MAX_UNKNOWNS = 2_000_000


def exact_cyclic_values(core: DynamicSolver, z: np.ndarray, chain: Chain, policy: Policy,
                        base: PassResult | None) -> list[np.ndarray] | None:
    """Return the values per clock position under ``policy``, or None if too large."""
    clock = core.clock
    phases = core.phases
    n, columns = z.shape
    states = core.n_states
    unknowns = columns * clock.size * phases.size * states
    if unknowns > MAX_UNKNOWNS:
        return None

    shape = (columns, clock.size, phases.size, states)
    row_index = np.arange(unknowns).reshape(shape)
    column_ids = np.arange(columns)[:, None].repeat(states, axis=1)
    state_ids = np.arange(states)[None, :].repeat(columns, axis=0)

    rewards = np.zeros((n,) + shape)
    entry_rows, entry_cols, entry_states = [], [], []
    suspension = {}
    if core.rules.escape is not None:
        suspension = {j: core._suspension_stage(j, z) for j in range(n)}

    for position in range(clock.size):
        following = clock.next[position]
        codes = policy.codes[position]
        amend = policy.amend.get(position) if clock.review[position] else None
        normal_slot = {phase: slot for slot, phase in enumerate(phases.normal_phases())}

        for phase in range(phases.size):
            reward, target_phase = _row_parts(core, z, chain, codes[:, phase, :], phase, suspension)
            target_column = column_ids.copy()
            constant = np.zeros((columns, states), dtype=bool)

            if amend is not None and phase in normal_slot:
                choice = amend[:, normal_slot[phase], :]
                moved = choice >= 0
                cost = core.rules.review.amendment_cost
                if base is None:
                    # The adopted column's own row, paid for with the amendment cost.
                    source = np.maximum(choice, 0)
                    reward = np.where(moved[None], reward[:, source, state_ids] - cost, reward)
                    target_phase = np.where(moved, target_phase[source, state_ids], target_phase)
                    target_column = np.where(moved, source, target_column)
                else:
                    adopted = base.play[position][:, :, phase, :]
                    fixed_value = np.take_along_axis(
                        adopted, np.maximum(choice, 0)[None], axis=1) - cost
                    reward = np.where(moved[None], fixed_value, reward)
                    constant = moved

            rewards[:, :, position, phase, :] = reward
            # A row whose treaty ends after this period earns the no-treaty
            # continuation as a constant; only rows with a successor phase
            # enter the matrix.
            exit_rows = (target_phase == EXIT) & ~constant
            if exit_rows.any():
                rewards[:, :, position, phase, :] += np.where(
                    exit_rows[None], core.delta[:, None, None] * chain.expected_no_treaty[:, None, :], 0.0)
            live = (target_phase >= 0) & ~constant
            if not live.any():
                continue
            entry_rows.append(row_index[:, position, phase, :][live])
            entry_cols.append(row_index[target_column[live], following, target_phase[live], 0])
            entry_states.append(state_ids[live])

    values = [np.empty((n, columns, phases.size, states)) for _ in range(clock.size)]
    if entry_rows:
        rows = np.concatenate(entry_rows)
        firsts = np.concatenate(entry_cols)
        origins = np.concatenate(entry_states)
    for party in range(n):
        if entry_rows:
            weights = chain.transition[party][origins]
            matrix = coo_matrix(
                (core.delta[party] * weights.ravel(),
                 (np.repeat(rows, states), (firsts[:, None] + np.arange(states)[None, :]).ravel())),
                shape=(unknowns, unknowns)).tocsc()
            solution = spsolve(identity(unknowns, format="csc") - matrix, rewards[party].ravel())
        else:
            solution = rewards[party].ravel()
        solution = np.asarray(solution).reshape(shape)
        for position in range(clock.size):
            values[position][party] = solution[:, position]
    return values


def _row_parts(core: DynamicSolver, z, chain: Chain, codes: np.ndarray, phase: int, suspension):
    """Stage reward (party, column, state) and next phase (column, state) for one phase.

    The next phase is -2 where the row has no successor (breakdown, or exit at
    once) and ``EXIT`` where the treaty ends after this period.
    """
    phases = core.phases
    n = core.n
    columns, states = codes.shape
    no_treaty = np.broadcast_to(chain.no_treaty[:, None, :], (n, columns, states))
    regime = np.broadcast_to(z[:, :, None], (n, columns, states))
    reward = np.array(no_treaty)
    target = np.full((columns, states), -2, dtype=np.int64)
    kind = phases.kind[phase]

    complying = codes == COMPLY
    if kind == SUSPENDED:
        stage = suspension[phases.invoker[phase]]
        reward = np.where(complying[None], stage, reward)
    else:
        reward = np.where(complying[None], regime, reward)
    target[complying] = phases.after_comply[phase]
    if kind != NORMAL:
        return reward, target

    withdrawal = core.rules.withdrawal
    escape = core.rules.escape
    for j in range(n):
        noticed = codes == NOTICE_CODE + j
        if noticed.any():
            cost = np.zeros((n, 1, 1))
            cost[j] = withdrawal.cost
            if withdrawal.notice == 0:
                reward = np.where(noticed[None], no_treaty - cost, reward)
            else:
                reward = np.where(noticed[None], regime - cost, reward)
                target[noticed] = phases.after_notice
        escaped = codes == NOTICE_CODE + n + j
        if escaped.any():
            stage = suspension[j].copy()
            stage[j] -= escape.cost
            if escape.cost_type == "transfer":
                others = np.arange(n) != j
                stage[others] += escape.cost / (n - 1)
            reward = np.where(escaped[None], stage, reward)
            target[escaped] = phases.after_escape[phase, j]
    target[codes == BREAKDOWN] = -2
    return reward, target
