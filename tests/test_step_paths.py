"""The solver's faster paths through a period and a cyclic sweep against the plain formulations.

Each fast path claims to give the same floating-point results as a plainer
way of computing the same thing, not merely close ones, so these tests
compare with exact equality:

* the incentive check taken one deviation at a time, and the slack at the
  start, against each candidate's gap to its best deviation;
* cyclic passes that sweep only the loop of the clock, one sweep ahead,
  against full sweeps over every position;
* amendment bargaining that scores only the acceptable amendments against
  scoring every amendment and masking afterwards;
* a sunset pass with reviews that copies the positions after the last review
  from the pass without reviews against one that solves every position.
"""

import dataclasses

import numpy as np
import pytest

from engine.bargaining import bargaining_objective
from engine.dynamic import TIE_TOLERANCE, DynamicSolver
from engine.game import DurationRules, EscapeRules, ReviewRules, WithdrawalRules
from helpers import random_game


def flexible_game(seed: int, notice: int, partner_response: str, review_every: int | None = None,
                  earliest: int = 0):
    """A random game with withdrawal, an escape hatch open in every state and, optionally, a review."""
    game = random_game(seed)
    n, states = game.n_parties, game.n_states
    rules = dataclasses.replace(
        game.rules,
        withdrawal=WithdrawalRules(notice=notice, cost=0.1, earliest=earliest),
        escape=EscapeRules(trigger=np.ones((n, states), dtype=bool), suspension=2, cost=0.05,
                           cost_type="transfer", cooldown=1, max_uses=None,
                           partner_response=partner_response),
        review=None if review_every is None else ReviewRules(every=review_every, amendment_cost=0.05),
    )
    return dataclasses.replace(game, rules=rules)


def gap_check(core: DynamicSolver, stacked, layout, chain):
    """Return the incentive check as the gap of each candidate to its best deviation."""
    gap = core._gaps(stacked, layout, chain)
    met = gap >= -TIE_TOLERANCE * (1.0 + np.abs(stacked))
    return met | ~core.strategic[None, :, None, None, None]


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("notice, partner_response", [(0, "comply"), (1, "rebalance"), (2, "comply")])
@pytest.mark.parametrize("strategic", [None, "first two"])
def test_incentive_check_matches_gap_check(seed, notice, partner_response, strategic):
    game = flexible_game(seed, notice, partner_response)
    mask = None if strategic is None else np.arange(game.n_parties) < 2
    core = DynamicSolver(game, strategic=mask)
    chain = core.own
    z = core.regime_values(np.linspace(0.0, 1.0, 7))
    rng = np.random.default_rng(seed)

    for notice_open in (True, False):
        layout = core._layout(notice_open)
        shape = (layout.count, core.n, z.shape[1], len(core._normal), core.n_states)
        # Values drawn from a few levels, some of them the breach values
        # themselves, so that exact ties and near ties are common.
        bound, _ = core._breaches(chain)
        levels = np.concatenate([bound.ravel(), bound.ravel() + 1e-12, rng.uniform(-1, 3, 6)])
        stacked = rng.choice(levels, size=shape)

        # Every party's test passes for a candidate exactly where each one does under the gap.
        fast = core._incentives_hold(stacked, layout, z, chain)
        assert np.array_equal(fast, gap_check(core, stacked, layout, chain).all(axis=1))
        # Both outcomes occur, so the comparison is not between two constant arrays.
        assert fast.any()
        assert not fast.all()

        # The slack reported at the start is the gap of compliance in the first normal phase.
        gap = core._gaps(stacked, layout, chain)
        assert np.array_equal(core._start_slack(stacked, layout, chain), gap[0][:, :, 0, :])


GAMMAS = np.linspace(0.0, 1.0, 9)


def review_choices(game):
    """Return the amendment choices decided against a full solve of the treaty without amendments."""
    core = DynamicSolver(game)
    unreviewed, _ = core.run_pass(GAMMAS, core.own, None, keep_values=True)
    return core.review_choices(unreviewed, None)


def sweep_results(game, shifted: bool, sweeps: int | None = None, reviews=None):
    """Run a cyclic pass, stopped after ``sweeps`` sweeps when given."""
    core = DynamicSolver(game)
    if not shifted:
        core._prefix_repeats_loop = lambda: False
    if sweeps is not None:
        core.max_iterations = sweeps
    result, stats = core.run_pass(GAMMAS, core.own, None, keep_values=True, reviews=reviews)
    return core, result, stats


def assert_same_pass(first, second):
    (result, stats), (other, other_stats) = first, second
    assert stats.iterations == other_stats.iterations
    assert stats.residual == other_stats.residual
    assert stats.converged == other_stats.converged
    for a, b in zip(result.values, other.values):
        assert np.array_equal(a, b)
    for a, b in zip(result.policy.codes, other.policy.codes):
        assert np.array_equal(a, b)
    assert np.array_equal(result.slack, other.slack)
    assert sorted(result.play) == sorted(other.play)
    for position in result.play:
        assert np.array_equal(result.play[position], other.play[position])
    assert sorted(result.policy.amend) == sorted(other.policy.amend)
    for position in result.policy.amend:
        assert np.array_equal(result.policy.amend[position], other.policy.amend[position])


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("notice, partner_response", [(0, "comply"), (1, "rebalance")])
def test_loop_sweeps_match_full_sweeps(seed, notice, partner_response):
    game = flexible_game(seed, notice, partner_response, review_every=2 + seed % 2)
    assert DynamicSolver(game)._prefix_repeats_loop()

    # Stopped early, the values are the iterates themselves rather than those
    # of a final exact evaluation, so every position of every sweep counts.
    # With amendments fixed, position 0 takes the values before the amendment.
    choices = review_choices(game)
    for reviews in (None, choices):
        for sweeps in (1, 2, 3, 5, None):
            ahead = sweep_results(game, shifted=True, sweeps=sweeps, reviews=reviews)[1:]
            full = sweep_results(game, shifted=False, sweeps=sweeps, reviews=reviews)[1:]
            assert_same_pass(ahead, full)


def test_loop_sweep_specs_amend():
    # Without an adopted amendment the reviewed comparison above would not
    # exercise the values before the amendment.
    amended = [seed for seed in range(6)
               if any(np.any(choice >= 0) for choice in review_choices(
                   flexible_game(seed, 0, "comply", review_every=2 + seed % 2)).values())]
    assert amended


def test_prefix_check_rejects_waiting_period():
    # Notice is not allowed during the first periods, so the positions before
    # the loop differ from the loop's and cannot be taken from it.
    game = flexible_game(0, 1, "comply", review_every=2, earliest=2)
    assert not DynamicSolver(game)._prefix_repeats_loop()


@pytest.mark.parametrize("rule", ["nash-patience", "nash-equal", "utilitarian"])
def test_amendment_scoring_matches_masking(rule):
    rng = np.random.default_rng(5)
    gains = rng.uniform(-0.5, 1.0, size=(3, 6, 6, 2, 2))
    weights = np.array([0.5, 0.3, 0.2])
    acceptable = np.all(gains > TIE_TOLERANCE, axis=0)
    assert acceptable.any()
    assert not acceptable.all()

    masked = np.where(acceptable, bargaining_objective(gains, weights, rule), -np.inf)
    scored = np.full(acceptable.shape, -np.inf)
    scored[acceptable] = bargaining_objective(gains[:, acceptable], weights, rule)
    assert np.array_equal(masked, scored)


def sunset_game(seed: int):
    """A flexible game with a four-period term, two extensions of two periods and a review every three.

    The review falls at position 3, the end of the term, so the end of the
    first extension, where the parties choose whether to extend again, lies
    after it and is copied.
    """
    game = flexible_game(seed, 1, "comply", review_every=3)
    duration = DurationRules(term=4, renegotiation_cost=0.1, extension_length=2, extension_max=2)
    return dataclasses.replace(game, rules=dataclasses.replace(game.rules, duration=duration))


@pytest.mark.parametrize("seed", range(4))
def test_reviewed_pass_copies_positions_after_last_review(seed):
    game = sunset_game(seed)
    core = DynamicSolver(game)
    assert not core.clock.cyclic
    # Any renegotiation value will do; this one lies above the no-treaty values.
    node_value = core.own.no_treaty + 0.5
    unreviewed, _ = core.run_pass(GAMMAS, core.own, node_value, keep_values=True)
    reviews = core.review_choices(unreviewed, None)
    solved, _ = core.run_pass(GAMMAS, core.own, node_value, keep_values=True, reviews=reviews)
    copied, _ = core.run_pass(GAMMAS, core.own, node_value, keep_values=True, reviews=reviews,
                              unreviewed=unreviewed)

    # The positions after the last review are the unreviewed pass's own arrays.
    last_review = int(np.flatnonzero(core.clock.review)[-1])
    assert 0 < last_review < core.clock.size - 1
    for position in range(last_review + 1, core.clock.size):
        assert copied.values[position] is unreviewed.values[position]

    assert np.array_equal(copied.start_values, solved.start_values)
    for a, b in zip(copied.values, solved.values):
        assert np.array_equal(a, b)
    for a, b in zip(copied.policy.codes, solved.policy.codes):
        assert np.array_equal(a, b)
    assert np.array_equal(copied.slack, solved.slack)
    for field in ("amend", "extend", "extend_margin"):
        mine, theirs = getattr(copied.policy, field), getattr(solved.policy, field)
        assert sorted(mine) == sorted(theirs)
        for key in mine:
            assert np.array_equal(mine[key], theirs[key])
    assert sorted(copied.play) == sorted(solved.play)
    for position in copied.play:
        assert np.array_equal(copied.play[position], solved.play[position])


def test_reviewed_sunset_cases_amend_and_extend():
    # Without an adopted amendment and an extension choice in some case, the
    # comparison above would not exercise the reviews or the copied choices.
    amended, extended = False, False
    for seed in range(4):
        core = DynamicSolver(sunset_game(seed))
        unreviewed, _ = core.run_pass(GAMMAS, core.own, core.own.no_treaty + 0.5, keep_values=True)
        amended |= any(np.any(choice >= 0) for choice in core.review_choices(unreviewed, None).values())
        extended |= any(np.any(extend > 0) for extend in unreviewed.policy.extend.values())
    assert amended and extended


def test_copy_needs_kept_unreviewed_values():
    core = DynamicSolver(sunset_game(0))
    node_value = core.own.no_treaty + 0.5
    whole, _ = core.run_pass(GAMMAS, core.own, node_value, keep_values=True)
    starts_only, _ = core.run_pass(GAMMAS, core.own, node_value)
    reviews = core.review_choices(whole, None)
    with pytest.raises(ValueError, match="every position"):
        core.run_pass(GAMMAS, core.own, node_value, reviews=reviews, unreviewed=starts_only)


def test_pass_stopped_at_first_review_matches_whole_pass():
    core = DynamicSolver(sunset_game(1))
    node_value = core.own.no_treaty + 0.5
    whole, _ = core.run_pass(GAMMAS, core.own, node_value, keep_values=True)
    first = core.first_review
    assert first > 0
    stopped, _ = core.run_pass(GAMMAS, core.own, node_value, keep_values=True, down_to=first)

    # The positions from the first review on are solved as in the whole pass, the earlier ones not at all.
    for position in range(core.clock.size):
        if position >= first:
            assert np.array_equal(stopped.values[position], whole.values[position])
            assert np.array_equal(stopped.policy.codes[position], whole.policy.codes[position])
        else:
            assert stopped.values[position] is None
            assert stopped.policy.codes[position] is None
    assert stopped.start_values is None
    assert stopped.slack is None
    assert core.review_choices(stopped, None).keys() == core.review_choices(whole, None).keys()
    for position, choice in core.review_choices(stopped, None).items():
        assert np.array_equal(choice, core.review_choices(whole, None)[position])


def test_repeating_clock_pass_cannot_stop_early():
    core = DynamicSolver(flexible_game(0, 1, "comply", review_every=2))
    assert core.clock.cyclic
    assert core.first_review == 0
    with pytest.raises(ValueError, match="every position"):
        core.run_pass(GAMMAS, core.own, None, down_to=1)


@pytest.mark.parametrize("down_to", [-1, 8])
def test_pass_rejects_position_outside_clock(down_to):
    core = DynamicSolver(sunset_game(0))
    assert core.clock.size == 8
    with pytest.raises(ValueError, match=f"invalid down_to {down_to}"):
        core.run_pass(GAMMAS, core.own, core.own.no_treaty + 0.5, down_to=down_to)


def test_reviewed_pass_rejects_unreviewed_pass_of_other_columns():
    core = DynamicSolver(sunset_game(0))
    node_value = core.own.no_treaty + 0.5
    unreviewed, _ = core.run_pass(GAMMAS, core.own, node_value, keep_values=True)
    reviews = core.review_choices(unreviewed, None)
    fewer = GAMMAS[:4]
    fewer_reviews = {position: choice[:4] for position, choice in reviews.items()}
    with pytest.raises(ValueError, match="has 9 columns, expected 4"):
        core.run_pass(fewer, core.own, node_value, base=unreviewed, reviews=fewer_reviews,
                      unreviewed=unreviewed)


def test_fixed_policy_pass_rejects_unreviewed_pass():
    core = DynamicSolver(sunset_game(0))
    node_value = core.own.no_treaty + 0.5
    unreviewed, _ = core.run_pass(GAMMAS, core.own, node_value, keep_values=True)
    with pytest.raises(ValueError, match="fixed policy"):
        core.run_pass(GAMMAS, core.declared, node_value, fixed=unreviewed.policy, unreviewed=unreviewed)


def test_kept_values_own_their_data():
    # With notice 0 and no escape hatch every phase is normal, and a period's
    # values are its picked candidates. A kept pass must hold those values
    # alone, not the array of every candidate they were picked from.
    game = random_game(2)
    rules = dataclasses.replace(game.rules, withdrawal=WithdrawalRules(notice=0, cost=0.1))
    game = dataclasses.replace(game, rules=dataclasses.replace(
        rules, duration=DurationRules(term=4, renegotiation_cost=0.1)))
    core = DynamicSolver(game)
    assert core._only_normal
    result, _ = core.run_pass(GAMMAS, core.own, core.own.no_treaty + 0.5, keep_values=True)
    for values in result.values:
        assert values.base is None
