"""The map-based forward propagation against a cell-by-cell propagation.

``engine.survival`` moves the mass of each occupied (column, clock position)
pair with a precomputed linear map per period.  The reference below instead
moves every (column, position, phase, state) cell on its own, in the order the
engine applies the rules.  Review nodes open the period.  Each cell then
complies, breaks down, gives notice or escapes as its policy code selects, and
the chain moves what stays.  Expiry nodes extend, renegotiate or lapse last.
It keeps the same conventions: cells below ``NEGLIGIBLE`` are dropped after
each period, and an expiry node reached by at most ``NEGLIGIBLE`` is skipped.
It takes no shortcuts, so it also checks the steady-state and "nothing
alive" exits of the engine.  Both must agree to rounding.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest

from engine.build import build_game
from engine.clock import NO_NEXT
from engine.dynamic import BREAKDOWN, COMPLY, NOTICE_CODE, NodeOutcome, Policy
from engine.loader import parse_treaty_text
from engine.phases import EXIT, NO_ESCAPE, NORMAL, SUSPENDED
from engine.solve import Solver, combine_policies
from engine.survival import NEGLIGIBLE, PeriodMaps, propagate
from helpers import SIMULATION_SPEC

# The two-party, two-state treaty of the simulation tests, on a grid of 5 so
# that the cell-by-cell reference stays fast.
TREATY = SIMULATION_SPEC.replace("model: {{grid: 11, horizon: 10 years}}\n{provisions}",
                                 "model: {{grid: 5}}\nprovisions:\n{provisions}")

SUNSET = """  - kind: duration
    term: 4 years
    renegotiation: {cost: 0.1, delay: 0 years}
"""
SUNSET_WITH_DELAY = """  - kind: duration
    term: 4 years
    renegotiation: {cost: 0.1, delay: 1 year}
    extensions: {length: 2 years, max: 1}
"""
WITHDRAWAL = """  - kind: withdrawal
    notice: 2 years
    cost: 0.05
"""
ESCAPE = """  - kind: escape_hatch
    trigger: {states: [crisis]}
    suspension: 2 years
    cost: 0.1
    cost_type: transfer
    max_uses: 2
    cooldown: 1 year
"""
REVIEW = """  - kind: review
    every: 2 years
    amendment_cost: 0.01
"""

TREATIES = {
    "sunset, notice, escape": SUNSET + WITHDRAWAL + ESCAPE,
    "two-year renegotiation delay": SUNSET.replace("delay: 0 years", "delay: 2 years") + WITHDRAWAL + ESCAPE,
    "delayed renegotiation, extension, review": SUNSET_WITH_DELAY + WITHDRAWAL + ESCAPE + REVIEW,
}

PERIODS = 120
SERIES = ("alive", "breakdown", "exit", "lapse", "escape", "with_treaty", "without_treaty")


def solved_inputs(provisions: str, strictness: float = 0.5):
    """Return the solver core, regime values, policy and node that scoring propagates."""
    game = build_game(parse_treaty_text(TREATY.format(name="survival maps check", provisions=provisions)))
    solver = Solver(game)
    base = solver.solve()
    columns = solver.evaluate([strictness])
    policy = combine_policies(columns.own.policy, base.own.policy)
    regime = solver.core.regime_values(np.concatenate([columns.gammas, base.gammas]))
    return solver.core, regime, policy, solver.node_own


def random_policy(core, columns: int, rng: np.random.Generator) -> tuple[Policy, NodeOutcome]:
    """Draw a policy that uses every legal action, and a renegotiation lottery.

    Compliance is the most likely code so that mass survives long enough to
    reach expiry and review nodes several times.
    """
    phases = core.phases
    n = core.n
    states = core.n_states
    normal = phases.kind == NORMAL
    codes = []
    for _ in range(core.clock.size):
        table = np.where(rng.random((columns, phases.size, states)) < 0.9, COMPLY, BREAKDOWN)
        for column in range(columns):
            for phase in np.flatnonzero(normal):
                for state in range(states):
                    draw = rng.random()
                    party = int(rng.integers(n))
                    if draw < 0.05 and core.rules.withdrawal is not None:
                        table[column, phase, state] = NOTICE_CODE + party
                    elif draw < 0.15 and phases.after_escape[phase, party] != NO_ESCAPE:
                        table[column, phase, state] = NOTICE_CODE + n + party
        codes.append(table.astype(np.int8))

    base_columns = columns - 1
    amend = {int(position): rng.integers(-1, base_columns, size=(columns, int(normal.sum()), states))
             for position in np.flatnonzero(core.clock.review)}
    extend = {segment: rng.random((columns, states)) for segment in range(core.clock.segments - 1)}

    # Two outcomes per state, a random column and a lapse (-1), with random odds.
    support = np.stack([rng.integers(0, base_columns, size=states), np.full(states, -1)])
    first = rng.random(states)
    node = NodeOutcome(support=support, value=None, probability=np.stack([first, 1.0 - first]))
    return Policy(codes=codes, amend=amend, extend=extend), node


def reference_propagation(core, z, policy, node, periods):
    """Propagate cell by cell and return the same series as ``Trajectory``."""
    game = core.game
    clock = core.clock
    phases = core.phases
    rules = core.rules
    transition = game.transition
    b = core.defection
    n, states = b.shape
    delay = rules.duration.delay if rules.duration is not None else 0
    renegotiation_cost = rules.duration.renegotiation_cost if rules.duration is not None else 0.0
    suspension = {}
    if rules.escape is not None:
        suspension = {j: core._suspension_stage(j, z) for j in range(n)}
    lottery = [(np.full(states, -1), np.ones(states))] if node is None else node.lottery()
    normal_phases = list(phases.normal_phases())

    series = {name: np.zeros(periods) for name in SERIES[:5]}
    with_treaty = np.zeros((n, periods))
    without_treaty = np.zeros((n, periods))
    nodes = []

    cells = {(0, 0, int(phases.start), int(game.start)): 1.0}
    limbo = defaultdict(float)  # (periods still to wait - 1, column, state) -> mass
    dead = np.zeros(states)
    outlook = np.zeros(states)
    outlook[game.start] = 1.0
    pending = np.zeros(n)

    for t in range(periods):
        without_treaty[:, t] = b @ outlook
        outlook = outlook @ transition

        for position in np.flatnonzero(clock.review):
            reaching = sum(mass for (column, at, phase, state), mass in cells.items()
                           if at == position and phases.kind[phase] == NORMAL)
            if reaching <= NEGLIGIBLE:
                continue
            amended = defaultdict(float)
            success = 0.0
            for (column, at, phase, state), mass in cells.items():
                target = -1
                if at == position and phases.kind[phase] == NORMAL and mass > 0:
                    target = policy.amend[position][column, normal_phases.index(phase), state]
                if target >= 0:
                    amended[(int(target) + 1, at, phase, state)] += mass
                    success += mass
                else:
                    amended[(column, at, phase, state)] += mass
            cells = dict(amended)
            pending += rules.review.amendment_cost * success
            nodes.append({"period": t, "kind": "review", "mass": reaching, "success": success})

        stage = b @ dead - pending
        pending = np.zeros(n)
        alive = sum(cells.values()) + sum(limbo.values())
        for (_, _, state), mass in limbo.items():
            stage += b[:, state] * mass
        next_dead = dead @ transition
        following = defaultdict(float)
        expiring = defaultdict(float)  # (segment, column, state) -> mass
        ended = 0.0

        for (column, position, phase, state), mass in cells.items():
            code = int(policy.codes[position][column, phase, state])
            kind = phases.kind[phase]
            nxt = clock.next[position]

            def send(target: int) -> None:
                for later_state in range(states):
                    moved = mass * transition[state, later_state]
                    if target == EXIT:
                        next_dead[later_state] += moved
                    elif nxt == NO_NEXT:
                        expiring[(clock.segment[position], column, later_state)] += moved
                    else:
                        following[(column, nxt, target, later_state)] += moved
                if target == EXIT:
                    series["exit"][t] += mass

            if code == BREAKDOWN:
                series["breakdown"][t] += mass
                ended += mass
                stage += b[:, state] * mass
                next_dead += mass * transition[state]
            elif code == COMPLY:
                if kind == SUSPENDED:
                    stage += suspension[phases.invoker[phase]][:, column, state] * mass
                else:
                    stage += z[:, column] * mass
                send(phases.after_comply[phase])
            elif kind == NORMAL and code < NOTICE_CODE + n:
                party = code - NOTICE_CODE
                stage[party] -= rules.withdrawal.cost * mass
                if rules.withdrawal.notice == 0:
                    series["exit"][t] += mass
                    ended += mass
                    stage += b[:, state] * mass
                    next_dead += mass * transition[state]
                else:
                    stage += z[:, column] * mass
                    send(phases.after_notice)
            elif kind == NORMAL:
                party = code - NOTICE_CODE - n
                series["escape"][t] += mass
                stage += suspension[party][:, column, state] * mass
                stage[party] -= rules.escape.cost * mass
                if rules.escape.cost_type == "transfer":
                    for other in range(n):
                        if other != party:
                            stage[other] += rules.escape.cost * mass / (n - 1)
                send(phases.after_escape[phase, party])

        waiting = defaultdict(float)
        for (slot, column, state), mass in limbo.items():
            for later_state in range(states):
                moved = mass * transition[state, later_state]
                if slot == 0:
                    following[(column, 0, phases.start, later_state)] += moved
                else:
                    waiting[(slot - 1, column, later_state)] += moved
        limbo = waiting

        reaching = sum(expiring.values())
        if reaching > NEGLIGIBLE:
            succeeded = 0.0
            for (segment, column, state), mass in expiring.items():
                if segment in policy.extend:
                    extended = mass * policy.extend[segment][column, state]
                    following[(column, clock.segment_starts[segment + 1], phases.start, state)] += extended
                    succeeded += extended
                    mass -= extended
                for targets, probability in lottery:
                    amount = mass * probability[state]
                    if amount <= 0:
                        continue
                    if targets[state] < 0:
                        series["lapse"][t] += amount
                        next_dead[state] += amount
                    else:
                        pending += renegotiation_cost * amount
                        succeeded += amount
                        if delay > 0:
                            limbo[(delay - 1, int(targets[state]) + 1, state)] += amount
                        else:
                            following[(int(targets[state]) + 1, 0, phases.start, state)] += amount
            nodes.append({"period": t + 1, "kind": "expiry", "mass": reaching, "success": succeeded})

        series["alive"][t] = alive - ended
        cells = {key: mass for key, mass in following.items() if mass >= NEGLIGIBLE}
        dead = next_dead
        with_treaty[:, t] = stage

    series["with_treaty"] = with_treaty
    series["without_treaty"] = without_treaty
    tail = sum(cells.values()) + sum(limbo.values())
    return series, nodes, tail


def assert_same_propagation(core, z, policy, node, periods):
    trajectory = propagate(core, z, policy, node, periods)
    series, nodes, tail = reference_propagation(core, z, policy, node, periods)

    # Both drop cells below NEGLIGIBLE (1e-13), and rounding can decide
    # differently for a cell at that size, so absolute agreement is to 1e-12.
    for name in SERIES:
        np.testing.assert_allclose(getattr(trajectory, name), series[name], rtol=1e-12, atol=1e-12,
                                   err_msg=name)
    assert trajectory.tail_mass == pytest.approx(tail, rel=1e-12, abs=1e-12)

    assert [(entry["period"], entry["kind"]) for entry in trajectory.nodes] == \
        [(entry["period"], entry["kind"]) for entry in nodes]
    for ours, theirs in zip(trajectory.nodes, nodes):
        assert ours["mass"] == pytest.approx(theirs["mass"], rel=1e-12, abs=1e-12)
        assert ours["success"] == pytest.approx(theirs["success"], rel=1e-12, abs=1e-12)
    return trajectory


@pytest.mark.parametrize("name", sorted(TREATIES))
@pytest.mark.parametrize("strictness", [0.35, 0.65])
def test_solved_policy_matches_reference(name, strictness):
    core, z, policy, node = solved_inputs(TREATIES[name], strictness)
    assert_same_propagation(core, z, policy, node, PERIODS)


SEEDS = range(4)


@pytest.mark.parametrize("name", sorted(TREATIES))
@pytest.mark.parametrize("seed", SEEDS)
def test_random_policy_matches_reference(name, seed):
    core, z, _, _ = solved_inputs(TREATIES[name])
    policy, node = random_policy(core, z.shape[1], np.random.default_rng(seed))
    assert_same_propagation(core, z, policy, node, PERIODS)


@pytest.mark.parametrize("name", sorted(TREATIES))
def test_random_policies_end_every_way(name):
    # The comparison above only means something if the drawn policies reach
    # every way a period can end the treaty, so check that they do.
    core, z, _, _ = solved_inputs(TREATIES[name])
    reached = set()
    for seed in SEEDS:
        policy, node = random_policy(core, z.shape[1], np.random.default_rng(seed))
        trajectory = propagate(core, z, policy, node, PERIODS)
        reached |= {series for series in ("breakdown", "exit", "lapse", "escape")
                    if getattr(trajectory, series).sum() > 0}
        reached |= {entry["kind"] for entry in trajectory.nodes if entry["success"] > 0}

    assert reached >= {"breakdown", "exit", "lapse", "escape", "expiry"}


def test_review_nodes_move_mass_between_columns():
    core, z, _, _ = solved_inputs(TREATIES["delayed renegotiation, extension, review"])
    policy, node = random_policy(core, z.shape[1], np.random.default_rng(7))
    trajectory = assert_same_propagation(core, z, policy, node, PERIODS)

    reviews = [entry for entry in trajectory.nodes if entry["kind"] == "review"]
    assert reviews
    assert max(entry["success"] for entry in reviews) > 0


def test_steady_tail_matches_reference():
    # Without a sunset, review or waiting period the clock has one position,
    # so once the state distribution settles the engine copies the last
    # period forward. With every code COMPLY nothing ever ends, and the
    # copied tail must match the full cell-by-cell propagation.
    core, z, policy, node = solved_inputs(ESCAPE)
    assert core.clock.size == 1
    assert node is None
    compliant = Policy(codes=[np.full_like(codes, COMPLY) for codes in policy.codes])
    trajectory = assert_same_propagation(core, z, compliant, None, 400)

    assert trajectory.alive == pytest.approx(np.ones(400), abs=1e-12)


def test_treaty_that_ends_matches_reference():
    # Everyone breaks down in the first period, so the engine leaves its loop
    # early and fills the rest with the no-treaty streams.
    core, z, policy, node = solved_inputs(SUNSET + WITHDRAWAL + ESCAPE)
    broken = Policy(codes=[np.full_like(codes, BREAKDOWN) for codes in policy.codes])
    trajectory = assert_same_propagation(core, z, broken, node, PERIODS)

    assert trajectory.breakdown[0] == pytest.approx(1.0)
    assert trajectory.tail_mass == 0.0


def test_escape_where_impossible_is_rejected():
    # After an escape the cooldown runs, and a normal phase in cooldown has no
    # escape to invoke. A policy that still selects one is invalid.
    core, z, policy, _ = solved_inputs(SUNSET + WITHDRAWAL + ESCAPE)
    phases = core.phases
    blocked = np.flatnonzero((phases.kind == NORMAL) & (phases.after_escape[:, 0] == NO_ESCAPE))
    assert blocked.size
    codes = [np.full_like(table, COMPLY) for table in policy.codes]
    codes[0][0, blocked[0], :] = NOTICE_CODE + core.n

    with pytest.raises(ValueError, match="no escape is possible"):
        PeriodMaps(core, z, Policy(codes=codes)).get(0, 0)
