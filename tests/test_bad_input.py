"""Invalid treaty files: `treaty check` exits 2 with one message at the right place.

Each case edits one spot of a valid file (BASE below, whose line numbers the expected
positions refer to) and names the field path, the 1-based line and column, and a
fragment of the message.
"""

import re

import pytest

from engine.cli import main

BASE = """\
schema: treaty/v1
name: Test treaty
period: 1 year
environment:
  start: calm
  persistence: 0.8
  states: {calm: 0.7, crisis: 0.3}
parties:
  - name: A
    discount: 0.9
    defection_value: {calm: 0.2, crisis: 0.6}
    regime_value: [[0, 0.3], [1, 0.7]]
  - name: B
    discount: 0.85
    defection_value: {calm: 0.25, crisis: 0.5}
    regime_value: [[0, 0.8], [1, 0.4]]
provisions:
  - kind: duration
    term: 10 years
  - kind: withdrawal
    notice: 1 year
  - kind: escape_hatch
    trigger: {states: [crisis]}
    suspension: 1 year
  - kind: review
    every: 5 years
"""


def edit(old: str, new: str) -> str:
    assert BASE.count(old) == 1, f"edit target {old!r} must occur once in BASE"
    return BASE.replace(old, new)


def run_check(tmp_path, capsys, text: str, name: str = "treaty.yaml") -> tuple[int, str, list[str]]:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    code = main(["check", str(path)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err.splitlines()


def test_base_is_valid(tmp_path, capsys):
    code, out, err = run_check(tmp_path, capsys, BASE)

    assert code == 0
    assert out.strip().endswith("treaty.yaml: ok")
    assert err == []


# (case id, edited text, field path, line, column, message fragment)
CASES = [
    (
        "duplicate key",
        edit("    discount: 0.9\n", "    discount: 0.9\n    discount: 0.8\n"),
        "parties[0].discount",
        11,
        5,
        "duplicate key `discount`, first defined at line 10, column 5",
    ),
    (
        "duplicate key in second party",
        edit("    discount: 0.85\n", "    discount: 0.85\n    discount: 0.8\n"),
        "parties[1].discount",
        15,
        5,
        "duplicate key `discount`, first defined at line 14, column 5",
    ),
    (
        "duplicate top-level key",
        edit("period: 1 year\n", "period: 1 year\nperiod: 2 years\n"),
        "period",
        4,
        1,
        "duplicate key `period`, first defined at line 3, column 1",
    ),
    (
        "duplicate key that needs quoting",
        edit("{calm: 0.7, crisis: 0.3}", '{calm: 0.7, "a b": 0.1, "a b": 0.2}'),
        'environment.states["a b"]',
        7,
        35,
        "duplicate key `a b`, first defined at line 7, column 23",
    ),
    (
        "unknown key with suggestion",
        edit("    discount: 0.9\n", "    discont: 0.9\n"),
        "parties[0].discont",
        10,
        5,
        "unknown field `discont`; did you mean `discount`?",
    ),
    (
        "unknown top-level key",
        edit("period: 1 year", "periode: 1 year"),
        "periode",
        3,
        1,
        "unknown field `periode`; did you mean `period`?",
    ),
    (
        # Without the misspelling, `period: 6 months` makes the notice valid, so the
        # notice is not also reported against the default period of one year.
        "misspelt period with durations that need it",
        edit("period: 1 year", "perod: 6 months").replace("notice: 1 year", "notice: 6 months"),
        "perod",
        3,
        1,
        "unknown field `perod`; did you mean `period`?",
    ),
    ("nan", edit("discount: 0.9\n", "discount: .nan\n"), "parties[0].discount", 10, 15, "NaN and infinity are not allowed"),
    ("infinity", edit("discount: 0.85", "discount: -.inf"), "parties[1].discount", 14, 15, "NaN and infinity are not allowed"),
    ("discount of 1", edit("discount: 0.9\n", "discount: 1\n"), "parties[0].discount", 10, 15, "must be below 1"),
    ("negative discount", edit("discount: 0.9\n", "discount: -0.1\n"), "parties[0].discount", 10, 15, "not negative"),
    (
        "discount rounds to 1 per period",
        edit("period: 1 year", "period: 1 day").replace("discount: 0.9\n", "discount: 0.9999999999999999\n"),
        "parties[0].discount",
        10,
        15,
        "the discount per period of 1 day rounds to 1",
    ),
    (
        "notice not whole periods",
        edit("notice: 1 year", "notice: 6 months"),
        "provisions[1].notice",
        21,
        13,
        "`6 months` is not a whole number of model periods (period: 1 year); use `period: 6 months`",
    ),
    (
        # A daily period would fit, but it multiplies the clock, so rounding is offered too.
        "notice of days",
        edit("notice: 1 year", "notice: 100 days"),
        "provisions[1].notice",
        21,
        13,
        "use `period: 1 day`, which fits every duration in the file, or round `100 days` to whole "
        "periods of 1 year",
    ),
    (
        "horizon not whole periods",
        BASE + "model: {horizon: 18 months}\n",
        "model.horizon",
        27,
        18,
        "use `period: 6 months`",
    ),
    (
        "unknown schema version",
        edit("schema: treaty/v1", "schema: treaty/v2"),
        "schema",
        1,
        9,
        "unknown schema version; this build reads treaty/v1",
    ),
    (
        "schema missing",
        edit("schema: treaty/v1\n", ""),
        "schema",
        1,
        1,
        "missing required field; a treaty file starts with `schema: treaty/v1`",
    ),
    (
        "schema not first",
        edit("schema: treaty/v1\nname: Test treaty\n", "name: Test treaty\nschema: treaty/v1\n"),
        "schema",
        2,
        1,
        "must be the first key of the file",
    ),
    (
        "misspelled kind",
        edit("kind: withdrawal", "kind: withdrawl"),
        "provisions[1].kind",
        20,
        11,
        "unknown provision kind; did you mean `withdrawal`?",
    ),
    (
        "kind missing",
        edit("  - kind: review\n    every: 5 years\n", "  - every: 5 years\n"),
        "provisions[3].kind",
        25,
        5,
        "missing required field",
    ),
    (
        "field of another kind",
        edit("    notice: 1 year\n", "    notice: 1 year\n    term: 2 years\n"),
        "provisions[1].term",
        22,
        5,
        "unknown field `term` for a withdrawal provision (`term` belongs to kind duration)",
    ),
    (
        "misspelled provision field",
        edit("    every: 5 years\n", "    evry: 5 years\n"),
        "provisions[3].evry",
        26,
        5,
        "unknown field `evry` for a review provision; did you mean `every`?",
    ),
    (
        "state probabilities sum",
        edit("{calm: 0.7, crisis: 0.3}", "{calm: 0.5, crisis: 0.25}"),
        "environment.states",
        7,
        3,
        "long-run probabilities sum to 0.75; they must sum to 1",
    ),
    (
        # 0.6 + 0.3 is 0.8999999999999999 in binary; the message shows what was written.
        "state probabilities sum with rounding",
        edit("{calm: 0.7, crisis: 0.3}", "{calm: 0.6, crisis: 0.3}"),
        "environment.states",
        7,
        3,
        "long-run probabilities sum to 0.9; they must sum to 1",
    ),
    ("probability above 1", edit("persistence: 0.8", "persistence: 1.2"), "environment.persistence", 6, 16, "must be at most 1"),
    (
        "start missing with several states",
        edit("  start: calm\n", ""),
        "environment.start",
        4,
        1,
        "missing; required when there are several states",
    ),
    (
        "persistence missing with several states",
        edit("  persistence: 0.8\n", ""),
        "environment.persistence",
        4,
        1,
        "missing; required when there are several states",
    ),
    ("start unknown", edit("start: calm", "start: clam"), "environment.start", 5, 10, "unknown state; did you mean `calm`?"),
    (
        "regime points unsorted",
        edit("[[0, 0.3], [1, 0.7]]", "[[0, 0.3], [0.6, 0.5], [0.4, 0.6], [1, 0.7]]"),
        "parties[0].regime_value[2][0]",
        12,
        43,
        "strictness must rise from point to point (previous point: 0.6)",
    ),
    (
        "regime points not covering",
        edit("[[0, 0.3], [1, 0.7]]", "[[0.1, 0.3], [1, 0.7]]"),
        "parties[0].regime_value[0][0]",
        12,
        21,
        "the first point must be at strictness 0",
    ),
    (
        "regime value not finite",
        edit("[[0, 0.3], [1, 0.7]]", "[[0, .inf], [1, 0.7]]"),
        "parties[0].regime_value[0][1]",
        12,
        24,
        "NaN and infinity are not allowed",
    ),
    (
        "regime one point",
        edit("[[0, 0.3], [1, 0.7]]", "[[0, 0.3]]"),
        "parties[0].regime_value",
        12,
        5,
        "needs at least two points",
    ),
    (
        "defection negative",
        edit("{calm: 0.2, crisis: 0.6}", "{calm: -0.2, crisis: 0.6}"),
        "parties[0].defection_value.calm",
        11,
        29,
        "must be at least 0",
    ),
    (
        "defection state missing",
        edit("{calm: 0.2, crisis: 0.6}", "{calm: 0.2}"),
        "parties[0].defection_value",
        11,
        5,
        "missing a value for state crisis",
    ),
    (
        "defection unknown state",
        edit("{calm: 0.2, crisis: 0.6}", "{calm: 0.2, crisis: 0.6, crisys: 0.1}"),
        "parties[0].defection_value.crisys",
        11,
        47,
        "unknown state `crisys`; did you mean `crisis`?",
    ),
    (
        "defection state in another Unicode form",
        edit("{calm: 0.2, crisis: 0.6}", "{calm: 0.2, crisis: 0.6, Crisis: 0.1}"),
        "parties[0].defection_value.Crisis",
        11,
        47,
        "unknown state `Crisis`; it differs from `crisis` only in capitalisation, spaces, invisible "
        "characters or Unicode form ('Crisis' here, 'crisis' where the name is declared)",
    ),
    (
        "defection plain number with several states",
        edit("defection_value: {calm: 0.2, crisis: 0.6}", "defection_value: 0.2"),
        "parties[0].defection_value",
        11,
        22,
        "a single number is allowed only with one state",
    ),
    ("party names repeat", edit("name: B", "name: A"), "parties[1].name", 13, 11, "party name is used twice"),
    (
        "party names differ in case",
        edit("name: B", "name: a"),
        "parties[1].name",
        13,
        11,
        "party name 'a' differs from 'A' (parties[0]) only in capitalisation, spaces, invisible "
        "characters or Unicode form",
    ),
    (
        "party names differ in spaces",
        edit("name: B", 'name: " A "'),
        "parties[1].name",
        13,
        11,
        "party name ' A ' differs from 'A' (parties[0]) only in capitalisation, spaces, invisible "
        "characters or Unicode form",
    ),
    (
        "party names differ in Unicode form",
        edit("name: A", 'name: "\\u00c5"').replace("name: B", 'name: "A\\u030a"'),
        "parties[1].name",
        13,
        11,
        "party name 'A\\u030a' differs from '\\xc5' (parties[0]) only in capitalisation",
    ),
    (
        "party names differ in an invisible character",
        edit("name: B", 'name: "A\\u200d"'),
        "parties[1].name",
        13,
        11,
        "party name 'A\\u200d' differs from 'A' (parties[0]) only in capitalisation",
    ),
    ("party name empty", edit("name: B", 'name: ""'), "parties[1].name", 13, 11, "cannot be empty"),
    (
        "one party",
        edit(BASE[BASE.index("  - name: B") : BASE.index("provisions:")], ""),
        "parties",
        8,
        1,
        "needs at least 2 items (got a list of 1 item)",
    ),
    (
        "missing required field",
        edit("    discount: 0.85\n", ""),
        "parties[1].discount",
        13,
        5,
        "missing required field",
    ),
    (
        "two provisions of one kind",
        edit("  - kind: review\n    every: 5 years\n", "  - kind: duration\n    term: 5 years\n"),
        "provisions[3].kind",
        25,
        11,
        "a treaty has at most one duration provision",
    ),
    (
        "notice longer than term",
        edit("notice: 1 year", "notice: 11 years"),
        "provisions[1].notice",
        21,
        13,
        "11 years is longer than the treaty term of 10 years",
    ),
    (
        "waiting period beyond term",
        edit("    notice: 1 year\n", "    notice: 1 year\n    earliest: 12 years\n"),
        "provisions[1].earliest",
        22,
        15,
        "12 years is longer than the treaty term of 10 years",
    ),
    (
        "review interval longer than term",
        edit("every: 5 years", "every: 20 years"),
        "provisions[3].every",
        26,
        12,
        "20 years is longer than the treaty term of 10 years",
    ),
    (
        "suspension longer than term",
        edit("suspension: 1 year", "suspension: 11 years"),
        "provisions[2].suspension",
        24,
        17,
        "11 years is longer than the treaty term of 10 years",
    ),
    (
        "cooldown longer than term",
        edit("    suspension: 1 year\n", "    suspension: 1 year\n    cooldown: 15 years\n"),
        "provisions[2].cooldown",
        25,
        15,
        "15 years is longer than the treaty term of 10 years",
    ),
    (
        "trigger unknown state",
        edit("[crisis]", "[crises]"),
        "provisions[2].trigger.states[0]",
        23,
        24,
        "unknown state `crises`; did you mean `crisis`?",
    ),
    (
        "trigger no states",
        edit("[crisis]", "[]"),
        "provisions[2].trigger.states",
        23,
        15,
        "needs at least 1 item (got a list of 0 items)",
    ),
    (
        "trigger misspelled",
        edit("trigger: {states: [crisis]}", "trigger: discretionery"),
        "provisions[2].trigger",
        23,
        14,
        "unknown trigger; did you mean `discretionary`?",
    ),
    (
        "trigger two conditions",
        edit("{states: [crisis]}", "{states: [crisis], defection_value_at_least: 0.5}"),
        "provisions[2].trigger",
        23,
        5,
        "a trigger has exactly one condition",
    ),
    (
        "trigger unknown condition",
        edit("{states: [crisis]}", "{state: [crisis]}"),
        "provisions[2].trigger.state",
        23,
        15,
        "unknown trigger condition `state`; did you mean `states`?",
    ),
    (
        "cost type misspelled",
        edit("    suspension: 1 year\n", "    suspension: 1 year\n    cost_type: deadwieght\n"),
        "provisions[2].cost_type",
        25,
        16,
        "not an allowed value; did you mean `deadweight`?",
    ),
    (
        "max uses zero",
        edit("    suspension: 1 year\n", "    suspension: 1 year\n    max_uses: 0\n"),
        "provisions[2].max_uses",
        25,
        15,
        "must be at least 1",
    ),
    (
        "negative cost",
        edit("    notice: 1 year\n", "    notice: 1 year\n    cost: -0.1\n"),
        "provisions[1].cost",
        22,
        11,
        "must be at least 0",
    ),
    ("period zero", edit("period: 1 year", "period: 0 years"), "period", 3, 9, "must be longer than zero"),
    ("duration without unit", edit("term: 10 years", "term: 10"), "provisions[0].term", 19, 11, "a duration needs a unit, e.g. `10 years` (got 10;"),
    (
        "duration text without unit",
        edit("term: 10 years", 'term: "10"'),
        "provisions[0].term",
        19,
        11,
        "a duration needs a unit, e.g. `10 years`",
    ),
    ("strictness above 1", BASE + "terms: {strictness: 1.5}\n", "terms.strictness", 27, 21, "must be at most 1"),
    (
        "bargaining unknown",
        BASE + "model: {bargaining: nash}\n",
        "model.bargaining",
        27,
        21,
        "not an allowed value",
    ),
    ("grid too small", BASE + "model: {grid: 2}\n", "model.grid", 27, 15, "must be at least 3"),
    ("grid not integer", BASE + "model: {grid: 1e3}\n", "model.grid", 27, 15, "expected a whole number"),
    (
        "quoted number",
        edit("discount: 0.9\n", 'discount: "0.9"\n'),
        "parties[0].discount",
        10,
        15,
        "a number written as text (in quotes or tagged `!!str`); write it without quotes or tag",
    ),
    ("list where number expected", edit("discount: 0.9\n", "discount: [0.9]\n"), "parties[0].discount", 10, 5, "expected a number"),
    ("blank treaty name", edit("name: Test treaty", 'name: "   "'), "name", 2, 7, "at least one visible character"),
    # Invisible characters would make two names print alike or reorder a table line.
    (
        "bidirectional override in the treaty name",
        edit("name: Test treaty", 'name: "\\u202eTest"'),
        "name",
        2,
        7,
        "invisible formatting characters such as U+202E are not allowed in a name",
    ),
    (
        "zero-width space in a party name",
        edit("- name: A\n", '- name: "A\\u200b"\n'),
        "parties[0].name",
        9,
        11,
        "invisible formatting characters such as U+200B",
    ),
    (
        "control character in a party name",
        edit("- name: A\n", '- name: "A\\tB"\n'),
        "parties[0].name",
        9,
        11,
        "control characters",
    ),
    # Payoffs beyond a million overflow sums over a discounted future.
    (
        "huge defection value",
        edit("crisis: 0.6}", "crisis: 1e307}"),
        "parties[0].defection_value.crisis",
        11,
        42,
        "must be at most 1,000,000 (got 1e+307; allowed: a number from 0 to 1,000,000)",
    ),
    (
        "huge negative regime value",
        edit("[[0, 0.3], [1, 0.7]]", "[[0, -2e6], [1, 0.7]]"),
        "parties[0].regime_value[0][1]",
        12,
        24,
        "must be at least -1,000,000",
    ),
    (
        "huge breach cost",
        edit("discount: 0.85\n", "discount: 0.85\n    breach_cost: 5e6\n"),
        "parties[1].breach_cost",
        15,
        18,
        "must be at most 1,000,000 (got 5000000.0; allowed: a number from 0 to 1,000,000)",
    ),
    (
        "mapping where list expected",
        edit("parties:\n  - name: A", "parties:\n  first:\n    name: A").replace("  - name: B", "  second:\n    name: B"),
        "parties",
        8,
        1,
        "expected a list",
    ),
]


@pytest.mark.parametrize(
    ("text", "path", "line", "column", "fragment"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_invalid_file(tmp_path, capsys, text, path, line, column, fragment):
    code, out, err = run_check(tmp_path, capsys, text)
    prefix = f"{tmp_path / 'treaty.yaml'}:{line}:{column}: error: "
    if path:
        prefix += f"{path}: "

    assert code == 2
    assert out == ""
    assert len(err) == 1, "\n".join(err)
    assert err[0].startswith(prefix), err[0]
    assert fragment in err[0]


def test_problems_sorted_and_complete(tmp_path, capsys):
    text = edit("discount: 0.9\n", "discount: 1.5\n").replace("notice: 1 year", "notice: 6 months")
    text = text.replace("every: 5 years", "every: 20 years") + "model: {grid: 2}\n"

    code, _, err = run_check(tmp_path, capsys, text)

    assert code == 2
    lines = [int(re.match(r".*?:(\d+):\d+: error:", message).group(1)) for message in err]
    assert lines == [10, 21, 27]


def test_check_several_files(tmp_path, capsys):
    good = tmp_path / "good.yaml"
    bad = tmp_path / "bad.yaml"
    good.write_text(BASE)
    bad.write_text(edit("discount: 0.9\n", "discount: 1\n"))

    code = main(["check", str(good), str(bad)])
    captured = capsys.readouterr()

    assert code == 2
    assert captured.out == f"{good}: ok\n"
    assert captured.err.startswith(f"{bad}:10:15: error:")


def test_transition_rows_checked(tmp_path, capsys):
    text = edit(
        "  persistence: 0.8\n  states: {calm: 0.7, crisis: 0.3}\n",
        "  transitions:\n    calm: {calm: 0.9, crisis: 0.2}\n    crisis: {calm: 0.5, crisis: 0.5}\n",
    )

    code, _, err = run_check(tmp_path, capsys, text)

    assert code == 2
    assert len(err) == 1
    assert ":7:5: error: environment.transitions.calm: row sums to 1.1" in err[0]


def test_sum_reported_beside_bad_persistence(tmp_path, capsys):
    # The sum is checked with the states themselves, so an invalid persistence
    # next to it does not hide it until the persistence is fixed.
    text = edit("  persistence: 0.8\n  states: {calm: 0.7, crisis: 0.3}\n",
                "  persistence: 1.2\n  states: {calm: 0.7, crisis: 0.4}\n")

    code, _, err = run_check(tmp_path, capsys, text)

    assert code == 2
    assert len(err) == 2
    assert "error: environment.persistence: must be at most 1" in err[0]
    assert "error: environment.states: long-run probabilities sum to 1.1" in err[1]


def test_transition_unknown_target(tmp_path, capsys):
    text = edit(
        "  persistence: 0.8\n  states: {calm: 0.7, crisis: 0.3}\n",
        "  transitions:\n    calm: {calm: 0.9, crisys: 0.1}\n    crisis: {calm: 0.5, crisis: 0.5}\n",
    )

    code, _, err = run_check(tmp_path, capsys, text)

    assert code == 2
    assert len(err) == 1
    assert (
        ":7:23: error: environment.transitions.calm.crisys: unknown state `crisys`, "
        "which has no row of its own; did you mean `crisis`?"
    ) in err[0]


def test_beliefs_need_sticky_chain(tmp_path, capsys):
    text = edit(
        "  persistence: 0.8\n  states: {calm: 0.7, crisis: 0.3}\n",
        "  transitions:\n    calm: {calm: 0.9, crisis: 0.1}\n    crisis: {calm: 0.5, crisis: 0.5}\n",
    ).replace("    discount: 0.85\n", "    discount: 0.85\n    beliefs: {persistence: 0.9}\n")

    code, _, err = run_check(tmp_path, capsys, text)

    assert code == 2
    assert len(err) == 1
    assert ":16:5: error: parties[1].beliefs: `beliefs.persistence` needs an environment given by" in err[0]


def test_both_chain_forms_rejected(tmp_path, capsys):
    text = edit(
        "  states: {calm: 0.7, crisis: 0.3}\n",
        "  states: {calm: 0.7, crisis: 0.3}\n  transitions:\n    calm: {calm: 1.0}\n    crisis: {crisis: 1.0}\n",
    )

    code, _, err = run_check(tmp_path, capsys, text)

    assert code == 2
    assert len(err) == 1
    assert ":8:3: error: environment.transitions: give either `persistence` with `states`, or `transitions`" in err[0]


def test_invisible_character_in_a_state_name(tmp_path, capsys):
    # The state is renamed everywhere, so its name is the only problem.
    text = BASE.replace("calm", '"calm\\u200b"')

    code, out, err = run_check(tmp_path, capsys, text)

    assert code == 2
    assert len(err) == 1, "\n".join(err)
    assert "environment.states" in err[0]
    assert "invisible formatting characters such as U+200B" in err[0]


def test_joiner_in_a_party_name_is_accepted(tmp_path, capsys):
    # Zero-width joiners are part of the spelling of some scripts and of emoji.
    code, out, err = run_check(tmp_path, capsys, edit("- name: A\n", '- name: "A\\u200dB"\n'))

    assert code == 0, "\n".join(err)


RIGID = """\
schema: treaty/v1
name: Rigid test treaty
period: 0.01 days
parties:
  - {name: A, discount: 0.9, defection_value: 0.3, regime_value: [[0, 0.2], [1, 0.8]]}
  - {name: B, discount: 0.9, defection_value: 0.3, regime_value: [[0, 0.8], [1, 0.2]]}
"""


def test_default_horizon_too_long(tmp_path, capsys):
    # A year has 365 days in the format, so the default horizon of 50 years is
    # 50 * 365 / 0.01 = 1825000 periods of 0.01 days. An explicit `model.horizon`
    # has a limit of 100000 periods, and so has the default one.
    code, out, err = run_check(tmp_path, capsys, RIGID)

    assert code == 2
    assert out == ""
    assert len(err) == 1
    assert err[0].startswith(f"{tmp_path / 'treaty.yaml'}:3:9: error: period: ")
    assert "makes the default horizon of 50 years 1825000 periods long, more than 100000" in err[0]
    assert "allowed: a longer period, or a `model.horizon` of at most 100000 periods" in err[0]


def test_short_horizon_allows_short_period(tmp_path, capsys):
    # 1000 days are 100000 periods of 0.01 days, exactly the limit.
    code, out, err = run_check(tmp_path, capsys, RIGID + "model: {horizon: 1000 days}\n")

    assert code == 0
    assert err == []


@pytest.mark.parametrize("scale, valid", [(1e-4, True), (9e-5, False), (1e-9, False)])
def test_payoff_scale(tmp_path, capsys, scale, valid):
    # A's payoffs times ``scale``: its largest is ``scale`` itself, its regime
    # value at strictness 1, and 1e-4 is the smallest allowed. B's are ordinary,
    # and do not make up for A's, because each party's constraints compare its own values.
    text = f"""\
schema: treaty/v1
name: Small payoffs
parties:
  - {{name: A, discount: 0.9, defection_value: {0.3 * scale!r}, regime_value: [[0, 0], [1, {scale!r}]]}}
  - {{name: B, discount: 0.9, defection_value: 0.3, regime_value: [[0, 1], [1, 0]]}}
"""
    code, out, err = run_check(tmp_path, capsys, text)

    if valid:
        assert code == 0
        assert err == []
        return
    assert code == 2
    assert len(err) == 1
    assert err[0].startswith(f"{tmp_path / 'treaty.yaml'}:4:")
    assert "error: parties[0].regime_value: every defection and regime value of A is smaller than 0.0001" in err[0]
    assert f"got {scale!r}" in err[0]
    assert "multiply every payoff and cost of the file by the same factor" in err[0]


def test_payoff_scale_every_party(tmp_path, capsys):
    text = """\
schema: treaty/v1
name: Small payoffs
parties:
  - {name: A, discount: 0.9, defection_value: 3e-9, regime_value: [[0, 0], [1, 1e-8]]}
  - {name: B, discount: 0.9, defection_value: 3e-9, regime_value: [[0, 1e-8], [1, 0]]}
"""
    code, out, err = run_check(tmp_path, capsys, text)

    assert code == 2
    assert len(err) == 2
    assert "parties[0].regime_value: every defection and regime value of A" in err[0]
    assert "parties[1].regime_value: every defection and regime value of B" in err[1]


@pytest.mark.parametrize(
    "old, new, allowed",
    [
        ("persistence: 0.8", "persistence: 1.5", "a number from 0 to 1"),
        ("discount: 0.85\n", "discount: 0.85\n    breach_cost: -1\n", "a number from 0 to 1,000,000"),
        ("term: 10 years", "term: 10 years\n    extensions: {length: 10 years, max: 0}",
         "an integer from 1 to 1000"),
        ("suspension: 1 year", "suspension: 1 year\n    max_uses: 0", "an integer from 1 to 1000"),
        # So many uses once built a phase table that overflowed or exhausted memory.
        ("suspension: 1 year", "suspension: 1 year\n    max_uses: 100000000000000000000",
         "an integer from 1 to 1000"),
    ],
)
def test_bound_errors_give_range(tmp_path, capsys, old, new, allowed):
    # The validation error names only the bound that failed, and the message
    # adds the whole range the field allows.
    code, out, err = run_check(tmp_path, capsys, edit(old, new))

    assert code == 2
    assert len(err) == 1
    assert err[0].endswith(f"; allowed: {allowed})")
