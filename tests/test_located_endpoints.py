"""Located zone endpoints and terms: what the search certifies and how many solver calls it takes.

An endpoint is certified by a bracket of two evaluated strictness values at
most ``ENDPOINT_TOLERANCE`` apart: an infeasible one outside and the returned,
feasible one inside.  The terms are certified by their evaluated neighbours:
both lie within ``ENDPOINT_TOLERANCE`` of them and no evaluated point scores
higher.  The tests record every call to ``Solver.evaluate`` made by the search
and check these facts against the recorded results.
"""

import math
from pathlib import Path

import numpy as np
import pytest

from engine.bargaining import bargaining_objective
from engine.build import build_game
from engine.loader import load_treaty
from engine.score import (
    ENDPOINT_TOLERANCE,
    REFINE_POINTS,
    SECTIONS,
    _best_terms,
    _Feasibility,
)
from engine.solve import Solver
from helpers import opposed_pair

TREATIES = Path(__file__).resolve().parent.parent / "treaties"


class Recorder:
    """Keep every strictness a feasibility test's solver evaluates, with what it found there."""

    def __init__(self, feasibility: _Feasibility):
        self.feasibility = feasibility
        self.calls = 0
        self.parts = []
        original = feasibility.solver.evaluate

        def evaluate(gammas):
            columns = original(gammas)
            self.calls += 1
            self.keep(columns)
            return columns

        feasibility.solver.evaluate = evaluate

    def keep(self, columns):
        check = self.feasibility
        self.parts.append((np.array(columns.gammas), check.mask(columns), check.starts(columns),
                           check.margins(columns)))

    def keep_grid(self):
        self.keep(self.feasibility.solver.solve())

    @property
    def gammas(self):
        return np.concatenate([part[0] for part in self.parts])

    @property
    def feasible(self):
        return np.concatenate([part[1] for part in self.parts])

    @property
    def starts(self):
        return np.concatenate([part[2] for part in self.parts])

    @property
    def margins(self):
        return np.concatenate([part[3] for part in self.parts], axis=1)


def feasibility_of(game, party: int | None = None) -> _Feasibility:
    """Return the agreement test of all parties (``party`` None) or of one party alone."""
    n = game.n_parties
    negotiation = np.array([item.negotiation_cost for item in game.parties])
    if party is None:
        return _Feasibility(Solver(game), np.ones(n, dtype=bool), negotiation)
    strategic = np.zeros(n, dtype=bool)
    strategic[party] = True
    return _Feasibility(Solver(game, strategic, renegotiation=Solver(game)), strategic, negotiation)


def located(feasibility: _Feasibility):
    """Return the intervals of ``feasibility`` and a record of every point evaluated for them."""
    recorder = Recorder(feasibility)
    intervals = feasibility.intervals()
    recorder.keep_grid()
    return intervals, recorder


def brackets(intervals, recorder):
    """Yield (endpoint, index of the endpoint, index of the nearest infeasible point beyond it)."""
    gammas, feasible = recorder.gammas, recorder.feasible
    for low, high in intervals:
        for end, outward in ((low, -1.0), (high, 1.0)):
            if (outward < 0 and end == 0.0) or (outward > 0 and end == 1.0):
                # An interval that reaches an end of [0, 1] has nothing outside to bracket.
                continue
            at_end = np.flatnonzero(gammas == end)
            beyond = np.flatnonzero(((gammas - end) * outward > 0) & ~feasible)
            outside = beyond[np.argmin(np.abs(gammas[beyond] - end))] if beyond.size else None
            yield end, at_end, outside


def assert_certified(intervals, recorder):
    gammas, feasible = recorder.gammas, recorder.feasible
    checked = 0
    for end, at_end, outside in brackets(intervals, recorder):
        assert at_end.size > 0, f"endpoint {end!r} was never evaluated"
        assert feasible[at_end].all(), f"endpoint {end!r} is infeasible"
        assert outside is not None, f"no infeasible point was evaluated beyond {end!r}"
        width = abs(gammas[outside] - end)
        assert width <= ENDPOINT_TOLERANCE, f"bracket at {end!r} is {width:.3g} wide"
        checked += 1
    return checked


def kinds_of_switch(intervals, recorder, considered):
    """Per endpoint: whether the outside end starts complying, and the largest margin change."""
    margins = recorder.margins[considered]
    found = []
    for end, at_end, outside in brackets(intervals, recorder):
        jump = np.max(np.abs(margins[:, outside] - margins[:, at_end[0]]))
        found.append((bool(recorder.starts[outside]), float(jump)))
    return found


# z_A = gamma, z_B = 1 - gamma, one state, no-treaty values b_i / (1 - delta).
# Complying for ever is worth z_i / (1 - delta). Breaching pays 2 b_i once and
# then b_i / (1 - delta) from the next period. So party i complies iff
# z_i / (1 - delta) >= 2 b_i + delta b_i / (1 - delta), that is, iff
# z_i >= b_i (2 - delta) = 1.1 b_i at delta = 0.9. This is stricter than
# participation (z_i >= b_i). So the zone is [1.1 b_A, 1 - 1.1 b_B] =
# [0.341, 0.7393], and outside it the equilibrium does not start complying.
B_A, B_B, DELTA = 0.31, 0.237, 0.9


def opposed():
    return opposed_pair(B_A, B_B, np.eye(1), DELTA, DELTA)


def k_section_rounds(game) -> int:
    # A bracket starts one grid cell wide, 1 / (grid - 1), and each k-section
    # round keeps one of SECTIONS equal parts. It is ENDPOINT_TOLERANCE wide after
    # the first r with cell / SECTIONS**r <= ENDPOINT_TOLERANCE.
    cell = 1.0 / (game.settings.grid - 1)
    return math.ceil(math.log(cell / ENDPOINT_TOLERANCE) / math.log(SECTIONS))


def test_opposed_pair_zone_matches_closed_form():
    intervals, recorder = located(feasibility_of(opposed()))

    assert len(intervals) == 1
    low, high = intervals[0]
    assert low == pytest.approx(1.1 * B_A, abs=ENDPOINT_TOLERANCE)
    assert high == pytest.approx(1.0 - 1.1 * B_B, abs=ENDPOINT_TOLERANCE)
    assert assert_certified(intervals, recorder) == 2


def test_incentive_switch_located_in_one_round():
    # On the complying side the start state's incentive slack,
    # (z_i - 1.1 b_i) / (1 - delta), is linear in gamma. So extrapolating it from
    # the inside end and two complying points beyond puts the estimate on the
    # switch up to rounding. Points one ladder step either side of it then close
    # the bracket in the first round. K-section alone needs five rounds for the
    # default grid.
    game = opposed()
    assert game.settings.grid == 101
    assert k_section_rounds(game) == 5

    for party in (None, 0, 1):
        check = feasibility_of(game, party)
        intervals, recorder = located(check)

        assert recorder.calls == 1, f"party {party}"
        assert assert_certified(intervals, recorder) == 1 + (party is None)
        for starts_outside, _ in kinds_of_switch(intervals, recorder, check.considered):
            assert not starts_outside


@pytest.mark.parametrize("party", [0, 1, 2])
def test_margin_crossing_takes_fewer_rounds_than_k_section(party):
    # Each party of the rigid cyber draft, alone, accepts up to or from the
    # strictness where its margin crosses zero while the equilibrium still
    # starts complying, so the margin is continuous across the bracket.
    game = build_game(load_treaty(TREATIES / "cyber-rigid.yaml"))
    check = feasibility_of(game, party)
    intervals, recorder = located(check)

    assert assert_certified(intervals, recorder) == 1
    for starts_outside, jump in kinds_of_switch(intervals, recorder, check.considered):
        assert starts_outside
        assert jump < 1e-6
    assert recorder.calls < k_section_rounds(game)


def test_start_switch_endpoints_certified():
    # The 1925 Geneva Protocol's zone ends where a party's incentive in the start
    # state fails: outside, the equilibrium breaks down at once and every margin
    # drops to the value of no treaty, a jump at the endpoint.
    game = build_game(load_treaty(TREATIES / "geneva-protocol-1925.yaml"))
    check = feasibility_of(game)
    intervals, recorder = located(check)

    assert assert_certified(intervals, recorder) == 2
    for starts_outside, jump in kinds_of_switch(intervals, recorder, check.considered):
        assert not starts_outside
        assert jump > 1e-2


def test_margin_jump_endpoint_certified():
    # The NPT's zone ends below gamma = 1 where the non-nuclear states' margin
    # jumps from positive to negative at a switch of the equilibrium policy,
    # while the equilibrium still starts complying. No interpolation finds a
    # jump, so there the k-section points do the work.
    game = build_game(load_treaty(TREATIES / "npt.yaml"))
    check = feasibility_of(game)
    intervals, recorder = located(check)

    assert assert_certified(intervals, recorder) == 2
    kinds = kinds_of_switch(intervals, recorder, check.considered)
    assert any(starts_outside and jump > 1e-3 for starts_outside, jump in kinds)
    assert recorder.calls <= k_section_rounds(game)


def terms_search(game):
    """Run the terms search over the zone and return terms, rounds and every scored point."""
    check = feasibility_of(game)
    zone = check.intervals()
    recorder = Recorder(check)
    terms, _ = _best_terms(check, zone, check.solver.core.weights, game.settings.bargaining)
    objective = bargaining_objective(recorder.margins, check.solver.core.weights, game.settings.bargaining)
    objective = np.where(recorder.feasible, objective, -np.inf)
    return terms, recorder.calls, recorder.gammas, objective


def assert_terms_certified(terms, gammas, objective):
    at_terms = np.flatnonzero(gammas == terms)
    assert at_terms.size > 0, "the terms were never evaluated"
    assert objective[at_terms[0]] == np.max(objective)
    below = gammas[gammas < terms]
    above = gammas[gammas > terms]
    assert below.size > 0
    assert terms - below.max() <= ENDPOINT_TOLERANCE
    assert above.size > 0
    assert above.min() - terms <= ENDPOINT_TOLERANCE


def test_smooth_peak_found_in_two_rounds():
    # With equal discounts the Nash product of the opposed pair is
    # (gamma - b_A)(1 - gamma - b_B) / (1 - delta)^2, which peaks at
    # gamma = (b_A + 1 - b_B) / 2 = 0.5365, inside the zone and between grid points.
    # The polynomial through five grid points around the best one places the
    # second round's points on the peak, which closes the search. The zoom alone
    # shrinks the cells around the best point (REFINE_POINTS - 1) / 2 = 15-fold a
    # round, so from one grid cell it needs ceil(log(0.01 / 1e-7) / log 15) = 5
    # rounds after the grid round. The grid round itself reuses the points
    # solved while locating the zone, so only the second round calls the solver.
    game = opposed()
    terms, calls, gammas, objective = terms_search(game)

    assert terms == pytest.approx((B_A + 1.0 - B_B) / 2.0, abs=ENDPOINT_TOLERANCE)
    assert_terms_certified(terms, gammas, objective)
    cell = 1.0 / (game.settings.grid - 1)
    zoom_rounds = 1 + math.ceil(math.log(cell / ENDPOINT_TOLERANCE) / math.log((REFINE_POINTS - 1) / 2))
    assert zoom_rounds == 6
    assert calls == 1


def test_peak_at_jump_certified():
    # START I's objective rises with strictness and drops where the equilibrium
    # policy switches, so its peak sits just below a jump, where no polynomial
    # fits. The zoom still pins it between two evaluated points.
    game = build_game(load_treaty(TREATIES / "start-i.yaml"))
    terms, calls, gammas, objective = terms_search(game)

    assert_terms_certified(terms, gammas, objective)
    above = np.flatnonzero(gammas > terms)
    right = above[np.argmin(gammas[above])]
    assert objective[gammas == terms][0] - objective[right] > 1e-4


@pytest.mark.parametrize("name", ["cyber-flexible.yaml", "cwc.yaml"])
def test_reused_points_match_a_fresh_solve(name):
    # The terms search takes its first round from the points solved while
    # locating the zone. Solving them again must give the same margins, up to
    # the solver's tolerance for a sunset clause's renegotiation value.
    game = build_game(load_treaty(TREATIES / name))
    check = feasibility_of(game)
    low, high = check.intervals()[0]
    points = np.array([low, high, *check.solver.grid[(check.solver.grid > low) & (check.solver.grid < high)]])

    known = check.known(points)
    assert known is not None
    ok, margins = known
    fresh_ok, fresh = check.at(points)

    assert np.array_equal(ok, fresh_ok)
    np.testing.assert_allclose(margins, check.margins(fresh), rtol=0, atol=1e-8)


def test_terms_peak_beside_grid_point():
    # Solved afresh, the bargaining objective at the returned terms is at
    # least that at 100 endpoint tolerances on either side, as at a smooth
    # peak. Terms stuck on the grid point 0.125, about 0.002 from the peak,
    # score below their left neighbour by about 5e-9.
    game = build_game(load_treaty(Path(__file__).parent / "data" / "terms_beside_grid_point.yaml"))
    check = feasibility_of(game)
    weights, rule = check.solver.core.weights, game.settings.bargaining
    terms, _ = _best_terms(check, check.intervals(), weights, rule)

    step = 100 * ENDPOINT_TOLERANCE
    ok, columns = check.at([terms - step, terms, terms + step])
    objective = bargaining_objective(check.margins(columns), weights, rule)
    assert ok.all()
    assert objective[1] >= objective[0]
    assert objective[1] >= objective[2]
    assert terms != pytest.approx(0.125, abs=1e-3)
