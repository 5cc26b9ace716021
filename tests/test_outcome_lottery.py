"""Renegotiation values settled by a public lottery between two outcomes.

The generated treaties below have a sunset clause whose renegotiation value
the damped iteration cannot settle: the outcome chosen at one value makes the
parties choose another, and back.  The checks do not rely on how the search
found the value.  At the value the solver returns, one pass of the treaty
and the lottery valued against it must give the value back, and every term
drawn must be acceptable.  For a lottery, no single outcome chosen there may
give the value back, because then the lottery would not have been needed.
"""

import numpy as np
import pytest

from pathlib import Path

from engine.build import build_game
from engine.dynamic import COMPLY, NodeOutcome
from engine.loader import load_treaty
from engine.outcome_lottery import LOTTERY_NOTE, fixed_point, mix_outcomes
from engine.score import score_game
from engine.solve import Solver
from helpers import random_game

# Seeds of ``random_game(seed, "duration")``.  The first three flip between
# two outcomes.  In the third, the iteration never chose one of the two,
# which turns up only where the other is consistent by itself.  The last has
# one outcome consistent by itself, which the damped iteration did not reach.
LOTTERY_SEEDS = (771, 1434, 1151)
ALONE_SEED = 1219


def solved(seed):
    solver = Solver(random_game(seed, "duration"))
    solver.solve()
    core = solver.core
    scale = core.value_bounds(core.regime_values(solver.grid))[1]
    return solver, core.tolerance * scale


def replayed(solver):
    """One pass at the returned renegotiation value; the node's lottery and the free choice there."""
    core = solver.core
    node = solver.node_own
    own = core.run_pass(solver.grid, core.own, node.value, keep_values=True)[0]
    fresh = own.values[0][:, :, core.phases.start, :]
    starts = own.policy.codes[0][:, core.phases.start, :]
    valued = solver.renegotiate(fresh, starts, core.own, fixed=node)
    free = solver.renegotiate(fresh, starts, core.own)
    return fresh, starts, valued, free


@pytest.mark.parametrize("seed", LOTTERY_SEEDS)
def test_lottery_is_a_consistent_equilibrium_outcome(seed):
    solver, tolerance = solved(seed)
    assert solver.stats.converged
    assert LOTTERY_NOTE in solver.notes
    node = solver.node_own

    fresh, starts, valued, free = replayed(solver)

    # The lottery gives its own value back.
    assert np.max(np.abs(valued.value - node.value)) <= 10 * tolerance
    # No single outcome does: the choice at this value moves the value away.
    assert np.max(np.abs(free.value - node.value)) > 1e3 * tolerance

    # A proper lottery that mixes at least two terms somewhere.
    assert np.all(node.probability >= 0)
    assert np.allclose(node.probability.sum(axis=0), 1.0)
    assert np.any(np.sum(node.probability > 0, axis=0) >= 2)

    # Every term drawn is acceptable to every party and starts with compliance.
    gains = solver.offered_values(fresh, solver.core.own) - solver.core.own.no_treaty[:, None, :]
    for columns, probability in node.lottery():
        for state, column in enumerate(columns):
            if column >= 0 and probability[state] > 0:
                assert np.all(gains[:, column, state] >= -tolerance)
                if solver.game.rules.duration.delay == 0:
                    assert starts[column, state] == COMPLY


def test_score_reports_the_lottery():
    score = score_game(random_game(LOTTERY_SEEDS[0], "duration"))

    assert score.converged
    assert LOTTERY_NOTE in score.warnings
    assert np.all(np.diff(np.array(score.survival)) <= 1e-12)
    # Per state the listed terms carry the chance of agreeing; the rest lapses.
    for terms in score.renegotiation_terms.values():
        assert sum(term["probability"] for term in terms) <= 1.0 + 1e-12
    assert any(len(terms) >= 2 for terms in score.renegotiation_terms.values())


def test_outcome_consistent_by_itself_needs_no_lottery():
    solver, tolerance = solved(ALONE_SEED)
    assert solver.stats.converged
    assert LOTTERY_NOTE not in solver.notes

    _, _, _, free = replayed(solver)

    # The parties' own choice at the value gives the value back.
    assert np.max(np.abs(free.value - solver.node_own.value)) <= 10 * tolerance


def test_mix_outcomes_adds_chances_of_a_shared_term():
    # State 0: first draws 3 surely, second 3 or 5 evenly; state 1: first
    # lapses, second draws 4.  With weight 0.25 on the first: state 0 gets
    # 3 with 0.25 + 0.75 * 0.5 = 0.625 and 5 with 0.375; state 1 lapses with
    # 0.25 and draws 4 with 0.75.
    first = NodeOutcome(support=np.array([[3, -1]]), value=None, probability=np.array([[1.0, 1.0]]))
    second = NodeOutcome(support=np.array([[3, 4], [5, -1]]), value=None,
                         probability=np.array([[0.5, 1.0], [0.5, 0.0]]))

    mixed = mix_outcomes(first, second, 0.25)

    drawn = [{int(c): float(p) for c, p in zip(mixed.support[:, s], mixed.probability[:, s]) if p > 0}
             for s in range(2)]
    assert drawn[0] == pytest.approx({3: 0.625, 5: 0.375})
    assert drawn[1] == pytest.approx({-1: 0.25, 4: 0.75})


def test_fixed_point_of_a_contraction():
    # v = 0.5 v + (1, 2) has the fixed point (2, 4).
    found = fixed_point(lambda v: 0.5 * v + np.array([1.0, 2.0]), np.zeros(2), 1e-12)
    assert found == pytest.approx([2.0, 4.0], abs=1e-11)


def test_fixed_point_that_repels_plain_iteration():
    # v = A v + c with A = [[2, 0], [1, 0.5]] has the fixed point solving
    # (I - A) v = -c: for c = (-1, 0), v1 = 1 and 0.5 v2 = v1, so v = (1, 2).
    # Plain iteration doubles the distance in the first coordinate every step.
    matrix = np.array([[2.0, 0.0], [1.0, 0.5]])
    offset = np.array([-1.0, 0.0])
    found = fixed_point(lambda v: matrix @ v + offset, np.array([0.9, 0.0]), 1e-10)
    assert found is not None
    assert found == pytest.approx([1.0, 2.0], abs=1e-9)


def test_search_drops_terms_that_become_unacceptable():
    # While this treaty's draw is searched, terms that one outcome accepted
    # give a party less than no treaty at other values.  Bargaining over them
    # is undefined, and the search used to end the whole solve with an error.
    path = Path(__file__).parent / "data" / "draw_drops_unacceptable_terms.yaml"

    score = score_game(build_game(load_treaty(path)))

    assert score.converged
