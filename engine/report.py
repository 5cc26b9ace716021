"""Plain-text tables of scores for people; JSON comes from ``Score.to_dict``."""

from __future__ import annotations

from engine.number_text import (
    evaluated_text,
    fixed_text,
    given_strictness_text,
    interval_text,
    terms_text,
)
from engine.score import Score
from engine.game import name_key

# The meaning of the two node columns, shown under every table of nodes.
NODE_SUCCESS = (
    "  reached: the treaty is alive and its clock puts a node at that date; extensions and "
    "delays move later dates, and a review during a suspension or a notice is skipped, "
    "so this can be below survival\n"
    "  success: at an expiry the treaty is extended or renegotiated (else it lapses); "
    "at a review the terms are amended (else they stay as they are)")


def _number(value, digits: int = 4) -> str:
    if value is None:
        return "-"
    return fixed_text(value, digits)


def _interval(interval) -> str:
    if interval is None:
        return "none"
    return interval_text(interval)


def _terms(score: Score) -> str:
    if score.terms is None:
        return "-"
    return terms_text(score.terms, score.zone)


def _evaluated_at(score: Score) -> str:
    """Format the strictness at which the values, margins and outlook of ``score`` are evaluated."""
    if score.evaluated_strictness is None:
        return "-"
    if score.proposal is not None and score.proposal["accepted"]:
        return evaluated_text("proposal", score.proposal["strictness"], score.zone)
    return evaluated_text("terms", score.terms, score.zone)


def _treaty_concluded(score: Score) -> bool:
    # Without agreement or an accepted proposal nothing is evaluated, so no
    # treaty is concluded and its survival curve is all zeros.
    return score.evaluated_strictness is not None


def _alive_after(score: Score, year: int) -> str:
    if len(score.survival) < year or not _treaty_concluded(score):
        return "-"
    return _number(score.survival[year - 1], 3)


def _lifetime(score: Score) -> str:
    if not score.agreement and score.evaluated_strictness is None:
        return "-"
    if score.expected_lifetime_years is None:
        return "unbounded (the treaty can last for ever)"
    return f"{score.expected_lifetime_years:.1f} years"


def _binding(binding) -> str:
    if not binding:
        return "-"
    if binding["constraint"] == "overlap":
        return "no overlap with the others"
    text = f"{binding['constraint']} in {binding['state']}"
    if binding.get("slack") is not None:
        text += f" (slack {fixed_text(binding['slack'])})"
    return text


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    lines = []
    for index, row in enumerate(rows):
        cells = [cell.ljust(width) for cell, width in zip(row, widths)]
        lines.append("  ".join(cells).rstrip())
        if index == 0:
            lines.append("  ".join("-" * width for width in widths))
    return "\n".join(lines)


def _rejection(proposal: dict) -> str:
    """Return why a rejected proposal fails, as a parenthesis to follow "rejected".

    Only the joint equilibrium decides: a party that rejects the terms when
    the others are bound to comply may still gain when every party is free.
    """
    if not proposal["starts_complying"]:
        return " (with every party free to choose, the treaty would not start with everyone complying)"
    losing = [party["name"] for party in proposal["parties"] if party["margin"] < 0]
    if losing:
        verb = "would" if len(losing) == 1 else "would each"
        return f" ({_names(losing)} {verb} be worse off than without a treaty)"
    return ""


def _names(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def format_score(score: Score) -> str:
    """Render one score as a verdict line, a parties table and the outlook."""
    verdict = "AGREEMENT predicted" if score.agreement else "NO AGREEMENT predicted"
    lines = [f"{score.treaty}", f"  verdict: {verdict}"]
    if score.agreement:
        lines.append(f"  zone of agreement: {_interval(score.zone)}")
        lines.append(f"  terms ({score.settings['bargaining']}): {_terms(score)}")
    if score.proposal is not None:
        accepted = "accepted" if score.proposal["accepted"] else "rejected" + _rejection(score.proposal)
        strictness = given_strictness_text(score.proposal["strictness"])
        lines.append(f"  proposal at strictness {strictness}: {accepted}")
        # With a proposal the table below could be at either strictness.
        if _treaty_concluded(score):
            lines.append(f"  evaluated at: {_evaluated_at(score)}")
    if _treaty_concluded(score):
        lines.append(f"  expected lifetime: {_lifetime(score)}")
    else:
        lines.append("  expected lifetime: - (no treaty is concluded, so there is no survival curve)")
    if score.survival and _treaty_concluded(score):
        # Fixed milestones within the horizon, and the horizon itself.
        years = sorted({year for year in (1, 5, 10, 25, 50) if year <= len(score.survival)}
                       | {len(score.survival)})
        marks = [(year, score.survival[year - 1]) for year in years]
        shares = [f"{year} y {fixed_text(share, 3)}" for year, share in marks]
        lines.append("  alive after: " + ", ".join(shares))
    lines.append("")

    rows = [["party", "accepts", "with treaty", "without", "margin", "binding"]]
    for party in score.parties:
        rows.append([
            party.name,
            _interval(party.accepts),
            _number(party.value_with_treaty),
            _number(party.value_without_treaty),
            _number(party.margin),
            _binding(party.binding),
        ])
    lines.append(_table(rows))

    if score.renegotiation_periods:
        lines.append("")
        rows = [["year", "node", "P(reached)", "P(success | reached)"]]
        for node in score.renegotiation_periods[:12]:
            rows.append([f"{node['year']:g}", node["kind"], fixed_text(node["p_alive"], 3),
                         fixed_text(node["p_success"], 3)])
        lines.append(_table(rows))
        if len(score.renegotiation_periods) > 12:
            lines.append(f"  ({len(score.renegotiation_periods) - 12} later nodes in --json output)")
        lines.append(NODE_SUCCESS)

    if score.renegotiation_terms:
        lines.append("")
        if score.agreement or (score.proposal is not None and score.proposal["accepted"]):
            lines.append("terms agreed when renegotiated at expiry (probability):")
        else:
            # Without a treaty these are what its expiry would bring, had one been concluded.
            lines.append("terms that would be agreed at an expiry, had a treaty been concluded (probability):")
        for state, lottery in score.renegotiation_terms.items():
            outcomes = [f"{item['strictness']:.4f} ({fixed_text(item['probability'], 3)})" for item in lottery]
            agreed = ", ".join(outcomes)
            lines.append(f"  {state}: {agreed or 'none, the treaty lapses'}")

    for warning in score.warnings:
        lines.append(f"warning: {warning}")
    return "\n".join(lines)


def format_comparison(scores: list[Score], files: list[str] | None = None) -> str:
    """Render several designs side by side, verdict first.

    Each column is labelled with its treaty name, followed by its file from
    ``files`` where two designs have the same name.
    """
    names = [score.treaty for score in scores]
    # Names that differ only in what a reader cannot see count as the same.
    keys = [name_key(name) for name in names]
    labels = [f"{name} ({file})" if files and keys.count(key) > 1 else name
              for name, key, file in zip(names, keys, files or names)]
    header = ["", *labels]
    rows = [header]
    rows.append(["verdict", *["agreement" if s.agreement else "no agreement" for s in scores]])
    rows.append(["zone", *[_interval(s.zone) for s in scores]])
    rows.append(["terms", *[_terms(s) for s in scores]])
    # Values, margins and the outlook are those of an accepted proposal, else of the terms.
    rows.append(["evaluated at", *[_evaluated_at(s) for s in scores]])
    rows.append(["expected lifetime", *[_lifetime(s) for s in scores]])
    for year in (10, 25):
        rows.append([f"alive after {year} years", *[_alive_after(s, year) for s in scores]])
    names = []
    for score in scores:
        for party in score.parties:
            if party.name not in names:
                names.append(party.name)
    for name in names:
        cells_accepts, cells_margin = [], []
        for score in scores:
            match = next((party for party in score.parties if party.name == name), None)
            cells_accepts.append("-" if match is None else _interval(match.accepts))
            cells_margin.append("-" if match is None else _number(match.margin))
        rows.append([f"{name} accepts", *cells_accepts])
        rows.append([f"{name} margin", *cells_margin])
    text = _table(rows)
    notes = [f"warning ({label}): {warning}" for label, score in zip(labels, scores) for warning in score.warnings]
    return "\n".join([text, *notes])
