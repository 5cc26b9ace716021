"""Properties of the scored engine on small generated games.

Each example draws a seed and builds a game from it: two or three parties,
one to three environment states, linear regime values and, where a test asks,
one provision. The grid is coarse to keep the examples fast; endpoints and
terms are still refined between grid points.
"""

import dataclasses
import numpy as np
import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from engine.errors import SolverError
from engine.game import EscapeRules, Rules, WithdrawalRules
from engine.score import score_game
from helpers import random_game, recorded_propagations

ENDPOINT_ACCURACY = 1e-6
TERMS_ACCURACY = 1e-5
PROHIBITIVE_COST = 1e6
PROVISION_KINDS = ("duration", "withdrawal", "escape", "review")

seeds = st.integers(min_value=0, max_value=2**32 - 1)
examples = settings(max_examples=25, deadline=None)
# Games with a sunset clause or reviews take about a second each to score.
slow_examples = settings(max_examples=8, deadline=None)


def assert_same_interval(found, expected, accuracy=ENDPOINT_ACCURACY):
    if expected is None:
        assert found is None
        return
    assert found is not None
    assert found[0] == pytest.approx(expected[0], abs=accuracy)
    assert found[1] == pytest.approx(expected[1], abs=accuracy)


@examples
@given(seed=seeds)
def test_party_order_irrelevant(seed):
    game = random_game(seed)
    order = list(range(game.n_parties))[::-1]
    reordered = dataclasses.replace(game, parties=tuple(game.parties[i] for i in order))

    first = score_game(game)
    second = score_game(reordered)

    assert first.agreement == second.agreement
    assert_same_interval(second.zone, first.zone)
    if first.terms is None:
        assert second.terms is None
    else:
        assert second.terms == pytest.approx(first.terms, abs=TERMS_ACCURACY)
    for new_index, old_index in enumerate(order):
        old, new = first.parties[old_index], second.parties[new_index]
        assert new.name == old.name
        assert_same_interval(new.accepts, old.accepts)
        assert new.value_without_treaty == pytest.approx(old.value_without_treaty, rel=1e-9)
        if old.value_with_treaty is None:
            assert new.value_with_treaty is None
        else:
            assert new.value_with_treaty == pytest.approx(old.value_with_treaty, rel=1e-6, abs=1e-6)


@examples
@given(seed=seeds, kind=st.sampled_from(["withdrawal", "escape"]))
# This draw once differed in the terms by 2e-5, because the exact values of the
# last notice period left out the no-treaty continuation.
@example(seed=1, kind="withdrawal")
def test_prohibitive_exit_cost_is_rigid(seed, kind):
    # At a cost of 1e6 no party ever gives notice or invokes the escape, because
    # every value in these games is below 1e2, so the result is the rigid treaty's.
    rigid = random_game(seed)
    rng = np.random.default_rng(seed + 1)
    if kind == "withdrawal":
        rules = Rules(withdrawal=WithdrawalRules(notice=int(rng.integers(0, 3)), cost=PROHIBITIVE_COST))
    else:
        rules = Rules(escape=EscapeRules(
            trigger=np.ones((rigid.n_parties, rigid.n_states), dtype=bool),
            suspension=int(rng.integers(1, 3)),
            cost=PROHIBITIVE_COST,
        ))
    costly = dataclasses.replace(rigid, rules=rules)

    # A game whose selection cycles has no result; the costly design must then
    # fail in the same way rather than report a verdict.
    try:
        expected = score_game(rigid)
    except SolverError:
        with pytest.raises(SolverError):
            score_game(costly)
        return
    found = score_game(costly)

    assert found.agreement == expected.agreement
    assert_same_interval(found.zone, expected.zone)
    if expected.terms is not None:
        assert found.terms == pytest.approx(expected.terms, abs=TERMS_ACCURACY)


@slow_examples
@given(seed=seeds, kind=st.sampled_from((None,) + PROVISION_KINDS))
def test_survival_never_rises(seed, kind):
    # The score clips its curve to [0, 1] and makes it non-increasing, so the
    # property is checked on the propagated mass before that, which a wrong
    # transition (mass lost and found again) would break.
    with recorded_propagations() as trajectories:
        # A game the solver cannot converge on is covered by the convergence test below.
        try:
            score = score_game(random_game(seed, kind))
        except SolverError:
            assume(False)
    # Without agreement nothing is propagated.
    assume(score.terms is not None)
    assert len(trajectories) == 1
    alive = trajectories[0].alive

    assert np.all(alive >= -1e-12)
    assert np.all(alive <= 1.0 + 1e-12)
    assert np.all(np.diff(alive) <= 1e-12)


@examples
@given(seed=seeds, raise_by=st.floats(min_value=0.01, max_value=0.3))
def test_higher_defection_never_widens_accepted_set(seed, raise_by):
    # For a rigid treaty, raising b_i(s) raises party i's breach value and its
    # no-treaty value at least as much as its value of complying, so every
    # incentive and participation margin of i weakly falls and its accepted set
    # can only shrink. Linear regime values make each accepted set one interval.
    game = random_game(seed)
    rng = np.random.default_rng(seed + 2)
    party = int(rng.integers(game.n_parties))
    state = int(rng.integers(game.n_states))
    defection = game.parties[party].defection.copy()
    defection[state] += raise_by
    tempted = dataclasses.replace(game.parties[party], defection=defection)
    parties = tuple(tempted if index == party else p for index, p in enumerate(game.parties))

    before = score_game(game).parties[party].accepts
    after = score_game(dataclasses.replace(game, parties=parties)).parties[party].accepts

    if after is None:
        return
    assert before is not None
    assert after[0] >= before[0] - ENDPOINT_ACCURACY
    assert after[1] <= before[1] + ENDPOINT_ACCURACY


@pytest.mark.parametrize("kind", PROVISION_KINDS)
@slow_examples
@given(seed=seeds)
@example(seed=1)
@example(seed=306)
# With an escape hatch these draw games whose selection cycles before it settles.
@example(seed=17)
@example(seed=46)
@example(seed=52)
# With a sunset clause this draws a treaty whose renegotiation iteration first
# narrows to terms far from the fixed point.
@example(seed=59)
# With a sunset clause these draw treaties where no single renegotiation
# outcome is consistent, so a draw between two settles it, and where the
# consistent outcome pushes the damped iteration away.
@example(seed=771)
@example(seed=1219)
def test_solver_converges_with_provision(kind, seed):
    score = score_game(random_game(seed, kind))

    assert score.converged
    assert score.solver["converged"]
