"""`treaty score --json` and `treaty compare --json`: key names and numeric precision.

Located strictness values (zone, accepted intervals, terms) are written with at most
``STRICTNESS_DECIMALS`` decimals. Interval ends are rounded inwards and the terms
stay inside the rounded zone, which moves each value by less than one unit of the
last decimal (1e-8), well inside ``ENDPOINT_TOLERANCE``.
"""

import json
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

import engine.score
from engine.cli import main
from engine.score import ENDPOINT_TOLERANCE, STRICTNESS_DECIMALS, PartyScore, Score
from helpers import write_treaty

DATA = Path(__file__).parent / "data"
MINIMAL = DATA / "minimal.yaml"

# The JSON keys are a fixed contract with the tools that read this output.
SCORE_KEYS = [
    "treaty", "schema", "agreement", "zone", "terms", "parties", "streams",
    "renegotiation_periods", "survival", "expected_lifetime_years", "settings",
    "converged", "solver", "warnings", "fragile",
]
PARTY_KEYS = ["name", "accepts", "value_with_treaty", "value_without_treaty", "margin", "binding"]

HALF_UNIT = Decimal(5) * Decimal(10) ** -(STRICTNESS_DECIMALS + 1)


@pytest.fixture
def recorded_scores(monkeypatch):
    """Run the real solver and keep every ``Score`` it returns, unrounded."""
    scores = []
    solve = engine.score.score_game

    def score_and_record(game):
        score = solve(game)
        scores.append(score)
        return score

    monkeypatch.setattr(engine.score, "score_game", score_and_record)
    return scores


def decimals(number: Decimal) -> int:
    return max(0, -number.as_tuple().exponent)


def located_pairs(item: dict, score: Score) -> list[tuple[str, Decimal, float]]:
    """List (name, JSON number, engine value) for every located strictness of one score."""
    pairs = []
    if score.zone is not None:
        pairs += [("zone low", item["zone"][0], score.zone[0]), ("zone high", item["zone"][1], score.zone[1])]
    if score.terms is not None:
        pairs.append(("terms", item["terms"], score.terms))
    for written, party in zip(item["parties"], score.parties):
        if party.accepts is not None:
            pairs.append((f"{party.name} accepts low", written["accepts"][0], party.accepts[0]))
            pairs.append((f"{party.name} accepts high", written["accepts"][1], party.accepts[1]))
    return pairs


def assert_rounded(item: dict, score: Score) -> None:
    pairs = located_pairs(item, score)
    assert pairs, "the score has no located strictness to check"
    for name, written, exact in pairs:
        assert isinstance(written, Decimal), name
        assert decimals(written) <= STRICTNESS_DECIMALS, f"{name}: {written}"
        # Interval ends are rounded inwards, so by less than one unit of the last decimal.
        assert abs(written - Decimal(exact)) < 2 * HALF_UNIT, f"{name}: {written} vs {exact!r}"
        assert abs(float(written) - exact) <= ENDPOINT_TOLERANCE, name
        if name.endswith("low"):
            assert written >= Decimal(exact), name
        if name.endswith("high"):
            assert written <= Decimal(exact), name
    if score.terms is not None and score.zone is not None:
        assert item["zone"][0] <= item["terms"] <= item["zone"][1]


def variant(tmp_path: Path, name: str, regime_b: str) -> Path:
    path = tmp_path / f"{name}.yaml"
    text = MINIMAL.read_text().replace("regime_value: [[0, 0.8], [1, 0.2]]", f"regime_value: {regime_b}")
    path.write_text(text.replace("name: Two parties, one state", f"name: {name}"))
    return path


def test_score_json_zone_rounded(recorded_scores, capsys):
    assert main(["score", str(MINIMAL), "--json"]) == 0

    item = json.loads(capsys.readouterr().out, parse_float=Decimal)
    (score,) = recorded_scores
    # Both endpoints lie strictly inside [0, 1], so the engine refined them between
    # grid points and they carry a long float tail before rounding.
    assert 0 < score.zone[0] < score.zone[1] < 1
    assert decimals(Decimal(score.zone[0])) > STRICTNESS_DECIMALS
    assert_rounded(item, score)


def test_score_json_keys_unchanged(recorded_scores, capsys):
    assert main(["score", str(MINIMAL), "--json"]) == 0

    item = json.loads(capsys.readouterr().out)
    assert list(item) == SCORE_KEYS
    for party in item["parties"]:
        assert list(party) == PARTY_KEYS


# A four-year term, renegotiated after a year without a treaty.
DURATION = """provisions:
  - kind: duration
    term: 4 years
    renegotiation: {cost: 0.3, delay: 1 year}
"""


def test_score_json_renegotiation_terms(tmp_path, capsys):
    # A sunset treaty adds the key after the nodes; the other keys stay in order.
    path = write_treaty(tmp_path, "sunset", DURATION)
    assert main(["score", path, "--json"]) == 0

    item = json.loads(capsys.readouterr().out)
    keys = list(item)
    assert keys.index("renegotiation_terms") == keys.index("renegotiation_periods") + 1
    assert [key for key in keys if key != "renegotiation_terms"] == SCORE_KEYS
    assert set(item["renegotiation_terms"]) == {"calm", "crisis"}
    grid = np.linspace(0.0, 1.0, 11)
    for lottery in item["renegotiation_terms"].values():
        for entry in lottery:
            assert list(entry) == ["strictness", "probability"]
            assert np.min(np.abs(grid - entry["strictness"])) < 1e-12
            assert 0.0 < entry["probability"] <= 1.0
        if lottery:
            assert sum(entry["probability"] for entry in lottery) == pytest.approx(1.0, abs=1e-12)


def test_renegotiation_terms_without_agreement(tmp_path, capsys):
    # B's defection value of 3 in calm is above any regime value, so no terms are
    # agreed, at first or at expiry. The key is still there, with empty lotteries.
    path = tmp_path / "no-agreement.yaml"
    path.write_text(Path(write_treaty(tmp_path, "sunset", DURATION)).read_text().replace(
        "{calm: 0.2, crisis: 0.45}", "{calm: 3.0, crisis: 0.45}"))
    assert main(["score", str(path), "--json"]) == 0

    item = json.loads(capsys.readouterr().out)
    assert item["agreement"] is False
    assert item["renegotiation_terms"] == {"calm": [], "crisis": []}


def test_compare_json_zones_rounded(recorded_scores, tmp_path, capsys):
    # The second design gives B a flatter regime line, which moves the upper end of
    # the zone to another interior point.
    paths = [
        variant(tmp_path, "first", "[[0, 0.8], [1, 0.2]]"),
        variant(tmp_path, "second", "[[0, 0.7], [1, 0.3]]"),
    ]

    assert main(["compare", *map(str, paths), "--json"]) == 0

    items = json.loads(capsys.readouterr().out, parse_float=Decimal)
    assert len(items) == len(recorded_scores) == 2
    assert recorded_scores[0].zone != recorded_scores[1].zone
    for item, score in zip(items, recorded_scores):
        assert list(item) == SCORE_KEYS
        assert_rounded(item, score)


def make_score(binding: dict, proposal: dict | None) -> Score:
    party = PartyScore(
        name="A",
        accepts=(0.123456789123, 1.0),
        value_with_treaty=1.234567890123456,
        value_without_treaty=0.987654321098765,
        margin=0.246913569024691,
        binding=binding,
    )
    return Score(
        treaty="T", schema="treaty/v1", agreement=True, zone=(0.2166666698455810, 0.7833333301544189),
        terms=0.45520000000000005, parties=[party], proposal=proposal, streams={},
        renegotiation_periods=[], survival=[0.99], expected_lifetime_years=12.3456789012345,
        settings={}, converged=True, solver={"residual": 1.234567890123e-11},
    )


def test_to_dict_rounds_only_strictness():
    binding = {
        "state": "calm", "constraint": "participation", "slack": 0.1234567890123,
        "strictness": 0.30000000000000004,
    }
    proposal = {
        "strictness": 0.123456789012, "accepted": True, "parties": [],
        "difference_from_terms": -0.33174321098800005,
    }
    score = make_score(binding, proposal)

    result = score.to_dict()

    assert result["zone"] == [0.21666667, 0.78333333]
    assert result["terms"] == 0.4552
    assert result["parties"][0]["accepts"] == [0.12345679, 1.0]
    assert result["parties"][0]["binding"]["strictness"] == 0.3
    assert result["proposal"]["difference_from_terms"] == -0.33174321
    # The proposed strictness comes from the file and values come from the solver,
    # so neither is rounded.
    assert result["proposal"]["strictness"] == 0.123456789012
    assert result["parties"][0]["binding"]["slack"] == 0.1234567890123
    assert result["parties"][0]["value_with_treaty"] == 1.234567890123456
    assert result["expected_lifetime_years"] == 12.3456789012345


def test_to_dict_leaves_score_unrounded():
    binding = {"state": "calm", "constraint": "participation", "slack": 0.1, "strictness": 0.30000000000000004}
    proposal = {
        "strictness": 0.5, "accepted": True, "parties": [], "difference_from_terms": 0.04479999999999995,
    }
    score = make_score(binding, proposal)

    score.to_dict()

    assert score.zone == (0.2166666698455810, 0.7833333301544189)
    assert score.terms == 0.45520000000000005
    assert score.parties[0].binding["strictness"] == 0.30000000000000004
    assert score.proposal["difference_from_terms"] == 0.04479999999999995


def test_to_dict_without_agreement():
    score = make_score({"state": "calm", "constraint": "overlap", "slack": None}, None)
    score.zone, score.terms, score.parties[0].accepts = None, None, None

    result = score.to_dict()

    assert result["zone"] is None
    assert result["terms"] is None
    assert result["parties"][0]["accepts"] is None
    assert "proposal" not in result
