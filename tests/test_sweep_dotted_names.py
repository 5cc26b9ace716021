"""Sweep paths that name parties whose names contain dots, with and without quotes."""

from __future__ import annotations

import copy
import json

import pytest

from engine.cli import main
from engine.sweep_axes import SweepError, resolve_path, split_path
from helpers import SIMULATION_SPEC


def treaty(*names: str) -> dict:
    """Return a treaty mapping with one party per name, each with a discount and a breach cost."""
    return {
        "schema": "treaty/v1",
        "environment": {"start": "calm", "states": {"calm": 1.0}},
        "parties": [
            {
                "name": name,
                "discount": 0.9,
                "defection_value": {"calm": 0.2, "late.phase": 0.4},
                "regime_value": [[0, 0.3], [1, 0.7]],
                "breach_cost": 0.1,
            }
            for name in names
        ],
    }


@pytest.mark.parametrize(
    ("path", "party"),
    [
        ("parties.U.S..discount", 0),
        ('parties."U.S.".discount', 0),
        ("parties.'U.S.'.discount", 0),
        ("parties.St. Kitts and Nevis.discount", 1),
        ('parties."St. Kitts and Nevis".discount', 1),
        ("parties. St. Kitts and Nevis .discount", 1),
        ("parties.Russia.discount", 2),
        ("parties.2.discount", 2),
    ],
)
def test_party_with_dots_resolved(path, party):
    data = treaty("U.S.", "St. Kitts and Nevis", "Russia")

    (target,) = resolve_path(data, path)

    assert target.keys == ("parties", party, "discount")


def test_longer_name_wins_when_shorter_fails():
    # Party "A" has no field "B", so only the party "A.B" reading names a field.
    data = treaty("A", "A.B")

    (longer,) = resolve_path(data, "parties.A.B.discount")
    (shorter,) = resolve_path(data, "parties.A.discount")

    assert longer.keys == ("parties", 1, "discount")
    assert shorter.keys == ("parties", 0, "discount")


def test_shorter_name_wins_when_longer_fails():
    # "A.regime_value" is a party, but "parties.A.regime_value.1.1" only makes
    # sense as the list element of party "A": the other party has no field "1".
    data = treaty("A", "A.regime_value")

    (target,) = resolve_path(data, "parties.A.regime_value.1.1")

    assert target.keys == ("parties", 0, "regime_value", 1, 1)


def test_ambiguous_path_rejected():
    # Both readings name a field: "calm" in the defection_value of party "A",
    # and a new field "calm" of party "A.defection_value". The path is
    # rejected rather than guessed.
    data = treaty("A", "A.defection_value")

    with pytest.raises(SweepError) as caught:
        resolve_path(data, "parties.A.defection_value.calm")

    message = str(caught.value)
    assert "ambiguous" in message
    assert 'parties."A.defection_value".calm' in message
    assert 'parties."A".defection_value.calm' in message
    assert "quotes" in message


def test_quotes_settle_ambiguity():
    data = treaty("A", "A.defection_value")

    (inner,) = resolve_path(data, 'parties."A".defection_value.calm')
    (outer,) = resolve_path(data, 'parties."A.defection_value".calm')

    assert inner.keys == ("parties", 0, "defection_value", "calm")
    assert outer.keys == ("parties", 1, "calm")
    assert outer.missing


def test_quoted_key_with_dot():
    data = treaty("A")

    (target,) = resolve_path(data, 'parties.A.defection_value."late.phase"')

    assert target.keys == ("parties", 0, "defection_value", "late.phase")


def test_star_selects_all_parties():
    data = treaty("U.S.", "*")

    targets = resolve_path(data, "parties.*.discount")
    (quoted,) = resolve_path(data, 'parties."*".discount')

    assert [target.keys for target in targets] == [("parties", 0, "discount"), ("parties", 1, "discount")]
    assert quoted.keys == ("parties", 1, "discount")


@pytest.mark.parametrize(
    ("path", "fragment"),
    [
        ('parties."U.S".discount', "no party named 'U.S'"),
        ("parties.U.S.discount", "no party named 'U'"),
        ('parties."U.S..discount', "is not closed"),
        ('parties."U.S."x.discount', "expected a dot after the quoted name 'U.S.'"),
        ("parties.U.S..", "dot-separated"),
        ('parties."U.S."', "whole item"),
    ],
)
def test_dotted_path_errors(path, fragment):
    with pytest.raises(SweepError) as caught:
        resolve_path(treaty("U.S.", "Russia"), path)

    assert fragment in str(caught.value)


def test_duplicate_quoted_name_needs_index():
    data = treaty("U.S.", "U.S.")

    with pytest.raises(SweepError, match=r"2 parties are named 'U\.S\.'.*parties\.0\.discount"):
        resolve_path(data, 'parties."U.S.".discount')


def test_split_path_segments():
    segments = split_path('a. "b.c" .d')

    assert [(segment.text, segment.quoted) for segment in segments] == [
        ("a", False), ("b.c", True), ("d", False)]


def test_sweep_dotted_name_matches_plain(tmp_path, capsys):
    # The same treaty with dotted and plain party names must give the same rows:
    # the dotted paths write the same fields as the plain ones.
    plain_text = SIMULATION_SPEC.format(name="names", provisions="")
    dotted_text = plain_text.replace("- name: A", "- name: U.S.").replace("- name: B", "- name: St. Kitts")
    plain = tmp_path / "plain.yaml"
    dotted = tmp_path / "dotted.yaml"
    plain.write_text(plain_text)
    dotted.write_text(dotted_text)

    def sweep(path, x, y):
        argv = ["sweep", str(path), "--x", x, "--y", y, "--formula", "printed", "--json", "--quiet"]
        assert main(argv) == 0
        return json.loads(capsys.readouterr().out)

    plain_rows = sweep(plain, "parties.A.discount=0.3:0.95:4", "parties.B.discount=0.3:0.9:3")
    dotted_rows = sweep(dotted, "parties.U.S..discount=0.3:0.95:4",
                        'parties."St. Kitts".discount=0.3:0.9:3')

    renames = {"parties.A.discount": "parties.U.S..discount",
               "parties.B.discount": 'parties."St. Kitts".discount',
               "margin_A": "margin_U.S.", "margin_B": "margin_St. Kitts"}
    assert len(dotted_rows) == 12
    for plain_row, dotted_row in zip(plain_rows, dotted_rows):
        assert dotted_row == {renames.get(key, key): value for key, value in plain_row.items()}
    # Each party's margin (z - t)/(1 - delta) moves with its own discount, so
    # equal rows show that both axes took effect.
    assert len({row["margin_A"] for row in plain_rows}) > 1
    assert len({row["margin_B"] for row in plain_rows}) > 1


def test_vary_dotted_name(tmp_path, capsys):
    text = SIMULATION_SPEC.format(name="names", provisions="").replace("- name: A", "- name: U.S.")
    path = tmp_path / "dotted.yaml"
    path.write_text(text)

    argv = ["score", str(path), "--vary", "parties.U.S..discount=uniform(0.95,0.99)",
            "--draws", "3", "--seed", "1", "--json"]
    assert main(argv) == 0

    report = json.loads(capsys.readouterr().out)
    assert report["valid_draws"] == 3
    assert report["varied"][0]["path"] == "parties.U.S..discount"


def test_original_mapping_unchanged():
    data = treaty("A", "A.B")
    before = copy.deepcopy(data)

    resolve_path(data, "parties.A.B.discount")

    assert data == before
