"""`treaty compare --simulate`: payoff differences in the JSON and the text output."""

from __future__ import annotations

import json
import re

from engine.cli import main
from helpers import ESCAPE, SIMULATION_SPEC, write_treaty

# One text line per paired party, e.g. "  A: +0.0123 +- 0.0004".
DIFFERENCE_LINE = re.compile(r"^  (?P<name>.+): (?P<difference>[+-]\d+\.\d{4}) \+- (?P<error>\d+\.\d{4})$")

OPTIONS = ["--simulate", "--paths", "400", "--seed", "5"]


def write_variant(tmp_path, name, old, new, provisions=""):
    """Write the simulation test treaty with ``old`` replaced by ``new``."""
    text = SIMULATION_SPEC.format(name=name, provisions=provisions)
    assert old in text
    path = tmp_path / f"{name}.yaml"
    path.write_text(text.replace(old, new))
    return str(path)


def run_json(files, capsys) -> dict:
    assert main(["compare", *files, *OPTIONS, "--json"]) == 0
    return json.loads(capsys.readouterr().out)["simulation"]


def run_text(files, capsys) -> str:
    assert main(["compare", *files, *OPTIONS]) == 0
    return capsys.readouterr().out


def difference_blocks(text: str) -> list[list[str]]:
    """Return the indented lines under each ``payoff difference`` heading of the text report."""
    blocks = []
    inside = False
    for line in text.splitlines():
        if line.startswith("payoff difference from "):
            blocks.append([])
            inside = True
        elif inside and line.startswith("  "):
            blocks[-1].append(line)
        else:
            inside = False
    return blocks


def test_json_differences_match_text(tmp_path, capsys):
    rigid = write_treaty(tmp_path, "rigid")
    flexible = write_treaty(tmp_path, "flexible", ESCAPE)
    files = [rigid, flexible, rigid]

    designs = run_json(files, capsys)["designs"]
    text = run_text(files, capsys)

    assert "payoff_difference_from_first" not in designs[0]
    blocks = difference_blocks(text)
    assert len(blocks) == 2
    for design, block in zip(designs[1:], blocks):
        rows = design["payoff_difference_from_first"]["parties"]
        parsed = [DIFFERENCE_LINE.match(line) for line in block]
        assert all(match is not None for match in parsed), block
        assert [match["name"] for match in parsed] == [row["name"] for row in rows]
        for match, row in zip(parsed, rows):
            assert match["difference"] == f"{row['difference']:+.4f}"
            assert match["error"] == f"{row['standard_error']:.4f}"


def test_difference_is_difference_of_means(tmp_path, capsys):
    # The mean of the per-path differences equals the difference of the two
    # sample means, because the mean is linear: (1/N) sum (y_k - x_k) = mean(y) - mean(x).
    files = [write_treaty(tmp_path, "rigid"), write_treaty(tmp_path, "flexible", ESCAPE)]
    first, second = run_json(files, capsys)["designs"]

    difference = second["payoff_difference_from_first"]
    assert difference["same_environment"] is True
    assert difference["only_in_first"] == []
    assert difference["only_in_this_design"] == []
    means_first = {row["name"]: row["mean"] for row in first["payoffs"]}
    means_second = {row["name"]: row["mean"] for row in second["payoffs"]}
    for row in difference["parties"]:
        expected = means_second[row["name"]] - means_first[row["name"]]
        assert abs(row["difference"] - expected) < 1e-9
        assert row["standard_error"] > 0


def test_unpaired_parties_listed(tmp_path, capsys):
    rigid = write_treaty(tmp_path, "rigid")
    renamed = write_variant(tmp_path, "renamed", "- name: B", "- name: C")
    files = [rigid, renamed]

    difference = run_json(files, capsys)["designs"][1]["payoff_difference_from_first"]
    text = run_text(files, capsys)

    assert [row["name"] for row in difference["parties"]] == ["A"]
    assert difference["only_in_first"] == ["B"]
    assert difference["only_in_this_design"] == ["C"]
    assert f"B (only in {rigid}), C (only in this design)" in text
    (block,) = difference_blocks(text)
    matches = [DIFFERENCE_LINE.match(line) for line in block]
    assert [match["name"] for match in matches if match is not None] == ["A"]


def test_no_shared_party_reported(tmp_path, capsys):
    rigid = write_treaty(tmp_path, "rigid")
    other = write_variant(tmp_path, "other", "- name: A", "- name: X")
    other_text = (tmp_path / "other.yaml").read_text().replace("- name: B", "- name: Y")
    (tmp_path / "other.yaml").write_text(other_text)

    difference = run_json([rigid, other], capsys)["designs"][1]["payoff_difference_from_first"]
    text = run_text([rigid, other], capsys)

    assert difference["parties"] == []
    assert difference["only_in_first"] == ["A", "B"]
    assert difference["only_in_this_design"] == ["X", "Y"]
    assert "none: no party has the same name in both designs" in text


def test_different_environment_flagged(tmp_path, capsys):
    rigid = write_treaty(tmp_path, "rigid")
    stickier = write_variant(tmp_path, "stickier", "persistence: 0.6", "persistence: 0.8")
    files = [rigid, stickier]

    difference = run_json(files, capsys)["designs"][1]["payoff_difference_from_first"]
    text = run_text(files, capsys)

    assert difference["same_environment"] is False
    assert "the environments differ" in text


def test_first_without_agreement(tmp_path, capsys):
    # Defection values of 3 in both states exceed every regime value of party A
    # (at most 0.7), so A accepts no terms and nothing is agreed.
    hopeless = write_variant(tmp_path, "hopeless", "{calm: 0.2, crisis: 1.2}", "{calm: 3, crisis: 3}")
    rigid = write_treaty(tmp_path, "rigid")
    files = [hopeless, rigid]

    designs = run_json(files, capsys)["designs"]
    text = run_text(files, capsys)

    assert designs[0] is None
    assert designs[1]["payoff_difference_from_first"] is None
    assert f"no payoff difference from {hopeless}: it predicts no agreement" in text
