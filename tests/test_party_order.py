"""Results do not depend on the order in which a file lists the parties.

Where two parties' notices or escapes give the same weighted joint value,
the selection needs a tie-break. It goes by name, so listing the parties in
another order changes nothing. The plain-loop reference solver breaks the
tie the same way.
"""

import numpy as np
import pytest

from engine.build import build_game
from engine.loader import parse_treaty_text
from engine.reference import solve_reference
from engine.score import score_game
from engine.solve import Solver

# A mirror image: `First` at strictness g is `Second` at 1 - g, with equal
# discounts, so at every state the two parties' notices (or escapes) tie.
PARTIES = {
    "First": """  - name: {name}
    discount: 0.9
    breach_cost: 3.0
    defection_value: {{good: 0.2, bad: 1.0}}
    regime_value: [[0, 0.1], [1, 0.6]]
""",
    "Second": """  - name: {name}
    discount: 0.9
    breach_cost: 3.0
    defection_value: {{good: 0.2, bad: 1.0}}
    regime_value: [[0, 0.6], [1, 0.1]]
""",
}

HEAD = """\
schema: treaty/v1
name: mirror image
environment:
  start: good
  transitions:
    good: {good: 0.9, bad: 0.1}
    bad: {bad: 1.0}
parties:
"""

PROVISIONS = {
    "withdrawal": "provisions:\n  - {kind: withdrawal, notice: 2 years, cost: 0.1}\n",
    "escape": ("provisions:\n  - {kind: escape_hatch, trigger: {states: [bad]}, suspension: 1 year, cost: 0.05, "
               "partner_response: rebalance}\n"),
}


def treaty(order, provision, names=("First", "Second")):
    """The mirror-image treaty with its parties listed in ``order`` (keys of PARTIES), named by ``names``."""
    named = dict(zip(("First", "Second"), names))
    body = "".join(PARTIES[key].format(name=named[key]) for key in order)
    return HEAD + body + PROVISIONS[provision] + "model: {grid: 41}\n"


def summary(text):
    score = score_game(build_game(parse_treaty_text(text)))
    data = score.to_dict()
    return data["zone"], data["terms"], sorted((party["name"], party["margin"]) for party in data["parties"])


@pytest.mark.parametrize("provision", ["withdrawal", "escape"])
def test_listing_order_keeps_score(provision):
    listed = summary(treaty(("First", "Second"), provision))
    reversed_ = summary(treaty(("Second", "First"), provision))

    assert listed == reversed_


@pytest.mark.parametrize("provision", ["withdrawal", "escape"])
def test_reference_ties_by_name(provision):
    """With names that sort against the file's order, the engine and the reference still agree."""
    game = build_game(parse_treaty_text(treaty(("First", "Second"), provision, names=("Zulu", "Alpha"))))
    assert game.tie_order == (1, 0)

    solver = Solver(game)
    columns = solver.solve()
    codes = columns.own.policy.codes[0][:, solver.core.phases.start, :]
    reference = solve_reference(game)

    assert np.max(np.abs(np.array(reference.start_values) - columns.own.start_values)) <= 1e-8
    assert np.array_equal(np.array(reference.codes), codes)
