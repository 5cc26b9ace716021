"""Scoring without the parties' own accepted sets, as sweeps do."""

import pytest

from engine.build import build_game
from engine.loader import load_treaty
from engine.score import score_game
from helpers import random_game

CATALOG = ["treaties/cyber-rigid.yaml", "treaties/cyber-flexible.yaml", "treaties/inf.yaml",
           "treaties/new-start.yaml"]


def assert_same_prediction(full, lean):
    assert lean.agreement == full.agreement
    assert lean.zone == full.zone
    assert lean.terms == full.terms
    assert lean.survival == full.survival
    assert lean.expected_lifetime_years == full.expected_lifetime_years
    for with_sets, without in zip(full.parties, lean.parties):
        assert without.accepts is None
        assert without.value_with_treaty == with_sets.value_with_treaty
        assert without.margin == with_sets.margin


@pytest.mark.parametrize("path", CATALOG)
def test_catalog_prediction_unchanged(path):
    game = build_game(load_treaty(path))

    assert_same_prediction(score_game(game), score_game(game, accepted_sets=False))


@pytest.mark.parametrize("seed, kind", [(3, None), (5, "withdrawal"), (7, "escape"), (11, "duration")])
def test_generated_prediction_unchanged(seed, kind):
    game = random_game(seed, kind)

    assert_same_prediction(score_game(game), score_game(game, accepted_sets=False))
