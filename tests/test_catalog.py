"""The treaty catalog: every file validates, scores, and keeps the facts it encodes.

The tests are parametrized over ``treaties/*.yaml``, so a new catalog file is
covered without editing this module.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from engine import cli
from engine.build import build_game
from engine.loader import load_treaty, parse_treaty_text
from engine.score import score_game

CATALOG = Path(__file__).resolve().parents[1] / "treaties"
CATALOG_FILES = sorted(CATALOG.glob("*.yaml"))
FILE_IDS = [path.stem for path in CATALOG_FILES]

REQUIRED_TREATIES = (
    "hague-1899-balloons",
    "npt",
    "abm",
    "inf",
    "new-start",
    "start-i",
    "salt-i",
    "cwc",
    "bwc",
    "outer-space",
    "ctbt",
    "arms-trade-treaty",
    "budapest-convention",
    "gatt-article-xix",
    "cyber-rigid",
    "cyber-flexible",
)

# The two cyber drafts are hypothetical and have no sources to cite.
HYPOTHETICAL = {"cyber-rigid", "cyber-flexible"}

# Provision terms taken from the treaty texts: (file, kind, field, value as written).
TREATY_TERMS = [
    ("hague-1899-balloons", "duration", "term", "5 years"),
    ("npt", "duration", "term", "25 years"),
    ("npt", "withdrawal", "notice", "3 months"),
    ("npt", "review", "every", "5 years"),
    ("abm", "withdrawal", "notice", "6 months"),
    ("abm", "review", "every", "5 years"),
    ("inf", "withdrawal", "notice", "6 months"),
    ("new-start", "duration", "term", "10 years"),
    ("start-i", "duration", "term", "15 years"),
    ("salt-i", "duration", "term", "5 years"),
    ("cwc", "withdrawal", "notice", "3 months"),
    ("cwc", "review", "every", "5 years"),
    ("bwc", "withdrawal", "notice", "3 months"),
    ("bwc", "review", "every", "5 years"),
    ("outer-space", "withdrawal", "notice", "1 year"),
    ("outer-space", "withdrawal", "earliest", "1 year"),
    ("ctbt", "withdrawal", "notice", "6 months"),
    ("ctbt", "review", "every", "10 years"),
    ("arms-trade-treaty", "withdrawal", "notice", "3 months"),
    ("budapest-convention", "withdrawal", "notice", "3 months"),
    ("gatt-article-xix", "withdrawal", "notice", "6 months"),
    ("gatt-article-xix", "escape_hatch", "suspension", "4 years"),
]


def provision(spec, kind: str):
    """Return the provision of ``kind`` in ``spec``, failing the test if there is none."""
    matches = [item for item in spec.provisions if item.kind == kind]
    assert matches, f"{spec.name}: no {kind} provision"
    return matches[0]


def test_catalog_has_required_treaties():
    missing = sorted(set(REQUIRED_TREATIES) - set(FILE_IDS))
    assert missing == []


@pytest.mark.parametrize("path", CATALOG_FILES, ids=FILE_IDS)
def test_catalog_file_passes_check(path: Path):
    assert cli.main(["check", str(path)]) == 0


@pytest.mark.parametrize("path", CATALOG_FILES, ids=FILE_IDS)
def test_catalog_file_scores_converged(path: Path):
    score = score_game(build_game(load_treaty(path)))

    assert score.converged
    assert score.treaty == load_treaty(path).name
    # Reported probabilities stay inside [0, 1], and the curve never rises, exactly.
    survival = np.array(score.survival)
    assert np.all((survival >= 0.0) & (survival <= 1.0))
    assert np.all(np.diff(survival) <= 0.0)
    for node in score.renegotiation_periods:
        assert 0.0 <= node["p_alive"] <= 1.0
        assert 0.0 <= node["p_success"] <= 1.0
    if score.renegotiation_terms is not None:
        for lottery in score.renegotiation_terms.values():
            if lottery:
                assert sum(item["probability"] for item in lottery) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("path", CATALOG_FILES, ids=FILE_IDS)
def test_catalog_file_marks_calibration(path: Path):
    spec = load_treaty(path)

    comments = [
        line.split("#", 1)[1]
        for line in path.read_text(encoding="utf-8").splitlines()
        if "#" in line
    ]

    assert spec.description is not None
    assert "illustrative calibration" in spec.description
    assert any("calibration" in comment for comment in comments)


@pytest.mark.parametrize("path", CATALOG_FILES, ids=FILE_IDS)
def test_catalog_file_cites_sources(path: Path):
    spec = load_treaty(path)
    if path.stem in HYPOTHETICAL:
        assert spec.sources == []
        return

    assert spec.sources, "a real treaty must list its sources"
    for source in spec.sources:
        assert source.startswith(("http://", "https://")), source


@pytest.mark.parametrize(("stem", "kind", "field", "expected"), TREATY_TERMS)
def test_catalog_treaty_terms(stem: str, kind: str, field: str, expected: str):
    spec = load_treaty(CATALOG / f"{stem}.yaml")

    assert getattr(provision(spec, kind), field).text == expected


def test_new_start_allows_one_extension():
    duration = provision(load_treaty(CATALOG / "new-start.yaml"), "duration")

    assert duration.extensions is not None
    assert duration.extensions.length.text == "5 years"
    assert duration.extensions.max == 1


def test_gatt_escape_rebalances():
    escape = provision(load_treaty(CATALOG / "gatt-article-xix.yaml"), "escape_hatch")

    assert escape.partner_response == "rebalance"


def test_cyber_drafts_share_parties_and_environment():
    rigid = load_treaty(CATALOG / "cyber-rigid.yaml")
    flexible = load_treaty(CATALOG / "cyber-flexible.yaml")

    assert [party.name for party in rigid.parties] == ["United States", "Russia", "China"]
    assert rigid.parties == flexible.parties
    assert rigid.environment == flexible.environment
    assert rigid.state_names == ("today", "breakthrough", "obsolete")
    assert rigid.period.text == flexible.period.text == "3 months"


def test_cyber_rigid_has_no_provisions():
    assert load_treaty(CATALOG / "cyber-rigid.yaml").provisions == []


def test_cyber_flexible_provisions():
    flexible = load_treaty(CATALOG / "cyber-flexible.yaml")
    kinds = sorted(item.kind for item in flexible.provisions)

    assert kinds == ["duration", "escape_hatch", "review", "withdrawal"]
    assert provision(flexible, "duration").term.text == "10 years"
    assert provision(flexible, "withdrawal").notice.text == "6 months"
    assert provision(flexible, "review").every.text == "5 years"

    escape = provision(flexible, "escape_hatch")
    assert escape.suspension.text == "2 years"
    assert escape.max_uses == 1


def test_cyber_flexible_agreed_rigid_not():
    # The drafts share parties and environment. Without the escape hatch the
    # treaty breaks down at the first breakthrough, so the gain before that
    # does not cover the negotiation cost. With it the treaty only pauses.
    rigid = score_game(build_game(load_treaty(CATALOG / "cyber-rigid.yaml")))
    flexible = score_game(build_game(load_treaty(CATALOG / "cyber-flexible.yaml")))

    assert rigid.converged
    assert flexible.converged
    assert not rigid.agreement
    assert flexible.agreement


def test_cyber_flexible_scores_at_low_persistence():
    # At persistence 0.1 many renegotiation terms lie on one line of values,
    # which once stalled the bargaining over lotteries short of its peak.
    text = (CATALOG / "cyber-flexible.yaml").read_text()
    text = re.sub(r"persistence: [0-9.]+", "persistence: 0.1", text, count=1)
    score = score_game(build_game(parse_treaty_text(text)))

    assert score.converged
