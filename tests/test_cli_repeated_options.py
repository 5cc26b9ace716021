"""Options that take one value are usage errors when given twice.

argparse's default ``store`` action keeps the last value, so a repeated ``--x``
would replace the first sweep axis without a word. Every such option of the
``treaty`` subcommands rejects a repeat with exit status 2 and one ``error:``
line naming both values.
"""

from __future__ import annotations

import pytest

from engine.cli import main
from helpers import write_treaty

PERSISTENCE = "environment.persistence=0.3:0.9:3"
DISCOUNT = "parties.A.discount=0.5:0.9:2"

# (subcommand and its other arguments, repeated option, first value, second value).
# Each command line would run to completion with either value alone, so a
# parser that kept the last value would exit with 0 instead of 2.
REPEATS = [
    (["sweep", "{file}"], "--x", PERSISTENCE, DISCOUNT),
    (["sweep", "{file}", "--x", PERSISTENCE], "--y", DISCOUNT, "parties.B.discount=0.5:0.9:2"),
    (["sweep", "{file}", "--x", PERSISTENCE], "--formula", "printed", "permanent"),
    (["sweep", "{file}", "--x", PERSISTENCE], "--workers", "1", "2"),
    (["sweep", "{file}", "--x", PERSISTENCE], "--out", "{dir}/a.csv", "{dir}/b.csv"),
    (["sweep", "{file}", "--x", PERSISTENCE], "--compare", "{file}", "{file}"),
    (["score", "{file}", "--vary", "environment.persistence=uniform(0.5,0.9)"],
     "--draws", "3", "4"),
    (["score", "{file}", "--vary", "environment.persistence=uniform(0.5,0.9)"],
     "--seed", "1", "2"),
    (["score", "{file}", "--vary", "environment.persistence=uniform(0.5,0.9)"],
     "--workers", "1", "2"),
    (["simulate", "{file}"], "--paths", "20", "30"),
    (["simulate", "{file}"], "--years", "2", "3"),
    (["simulate", "{file}"], "--seed", "1", "2"),
    (["simulate", "{file}"], "--workers", "1", "2"),
    (["compare", "{file}", "{file}", "--simulate"], "--paths", "20", "30"),
    (["schema"], "--output", "{dir}/a.json", "{dir}/b.json"),
]


def fill(arguments: list[str], file: str, directory: str) -> list[str]:
    return [argument.format(file=file, dir=directory) for argument in arguments]


@pytest.mark.parametrize(("command", "option", "first", "second"), REPEATS,
                         ids=[f"{command[0]} {option}" for command, option, _, _ in REPEATS])
def test_repeat_rejected(tmp_path, capsys, command, option, first, second):
    file = write_treaty(tmp_path, "rigid")
    first, second = fill([first, second], file, str(tmp_path))
    argv = fill(command, file, str(tmp_path)) + [option, first, option, second]

    assert main(argv) == 2

    captured = capsys.readouterr()
    assert captured.out == ""
    error_lines = [line for line in captured.err.splitlines() if "error:" in line]
    assert len(error_lines) == 1
    # argparse names an option with a short form as "-o/--output".
    assert f"{option}: given more than once" in error_lines[0]
    # The message names both values, so the reader sees which one was dropped.
    assert first in error_lines[0]
    assert second in error_lines[0]
    assert not list(tmp_path.glob("[ab].*"))


def test_repeated_x_suggests_y(tmp_path, capsys):
    file = write_treaty(tmp_path, "rigid")

    assert main(["sweep", file, "--x", PERSISTENCE, "--x", DISCOUNT]) == 2

    assert "give a second field with --y" in capsys.readouterr().err


def test_repeat_of_equal_values_rejected(tmp_path, capsys):
    # Even an identical repeat is rejected: the rule is one occurrence, not one value.
    file = write_treaty(tmp_path, "rigid")

    assert main(["sweep", file, "--x", PERSISTENCE, "--x", PERSISTENCE]) == 2

    assert "argument --x: given more than once" in capsys.readouterr().err


def test_short_and_long_forms_count_together(tmp_path, capsys):
    assert main(["schema", "-o", str(tmp_path / "a.json"), "--output", str(tmp_path / "b.json")]) == 2

    assert "argument -o/--output: given more than once" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_single_options_still_accepted(tmp_path, capsys):
    file = write_treaty(tmp_path, "rigid")

    assert main(["sweep", file, "--x", PERSISTENCE, "--y", DISCOUNT, "--formula", "printed",
                 "--workers", "1", "--quiet", "--json"]) == 0

    assert capsys.readouterr().out.startswith("[")


@pytest.mark.parametrize("option", ["--paths", "--years", "--seed", "--workers"])
def test_compare_simulation_option_needs_simulate(tmp_path, capsys, option):
    file = write_treaty(tmp_path, "rigid")

    assert main(["compare", file, file, option, "3"]) == 2

    captured = capsys.readouterr()
    assert captured.out == ""
    assert f"error: {option} applies only with --simulate" in captured.err
