"""Column labels of ``treaty compare``: treaty names, with the file where names repeat."""

import shutil
from pathlib import Path

from engine.cli import main

RIGID = Path(__file__).resolve().parent.parent / "treaties" / "cyber-rigid.yaml"
NAME = "Cyber conduct agreement, rigid draft"


def test_repeated_names_get_files(tmp_path, capsys):
    first, second = tmp_path / "first.yaml", tmp_path / "second.yaml"
    shutil.copy(RIGID, first)
    shutil.copy(RIGID, second)

    assert main(["compare", str(first), str(second)]) == 0
    header = capsys.readouterr().out.splitlines()[0]

    assert f"{NAME} ({first})" in header
    assert f"{NAME} ({second})" in header


def test_distinct_names_stay_plain(capsys):
    flexible = RIGID.with_name("cyber-flexible.yaml")

    assert main(["compare", str(RIGID), str(flexible)]) == 0
    header = capsys.readouterr().out.splitlines()[0]

    assert header.split() == [*NAME.split(), *"Cyber conduct agreement, flexible draft".split()]


def test_names_differing_in_spaces_get_files(tmp_path, capsys):
    first, second = tmp_path / "first.yaml", tmp_path / "second.yaml"
    shutil.copy(RIGID, first)
    second.write_text(RIGID.read_text().replace(f"name: {NAME}", f"name: '{NAME} '", 1))

    assert main(["compare", str(first), str(second)]) == 0
    header = capsys.readouterr().out.splitlines()[0]

    assert f"({first})" in header
    assert f"({second})" in header
