"""The committed JSON Schema matches the one the models generate."""

import json

from engine.cli import SCHEMA_FILE, main, schema_text


def test_committed_schema_is_current():
    committed = SCHEMA_FILE.read_text(encoding="utf-8")

    assert committed == schema_text(), "regenerate it with: treaty schema -o engine/treaty.schema.json"


def test_schema_describes_format():
    schema = json.loads(schema_text())

    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["properties"]["schema"]["const"] == "treaty/v1"
    assert set(schema["required"]) == {"schema", "name", "parties"}
    assert schema["additionalProperties"] is False
    kinds = {
        schema["$defs"][ref["$ref"].split("/")[-1]]["properties"]["kind"]["const"]
        for ref in schema["properties"]["provisions"]["anyOf"][0]["items"]["oneOf"]
    }
    assert kinds == {"duration", "withdrawal", "escape_hatch", "review"}
    assert schema["properties"]["period"]["default"] == "1 year"


def test_schema_command_prints_schema(capsys):
    assert main(["schema"]) == 0

    assert capsys.readouterr().out == schema_text()


def test_schema_command_writes_file(tmp_path, capsys):
    target = tmp_path / "treaty.schema.json"

    assert main(["schema", "--output", str(target)]) == 0

    assert target.read_text(encoding="utf-8") == schema_text()
    assert capsys.readouterr().out == ""


def test_schema_bounds_the_discount():
    # An editor that validates against the schema flags a discount of 1 or more.
    schema = json.loads(schema_text())
    party = schema["$defs"]["PartySpec"]["properties"]["discount"]

    assert party["minimum"] == 0
    assert party["exclusiveMaximum"] == 1


def test_schema_output_in_missing_directory_is_rejected(tmp_path, capsys):
    target = tmp_path / "missing" / "treaty.schema.json"

    assert main(["schema", "-o", str(target)]) == 2

    error = capsys.readouterr().err
    assert error.startswith("error: invalid --output file")
    assert "not found" in error
    assert len(error.strip().splitlines()) == 1


def test_schema_output_to_a_directory_is_rejected(tmp_path, capsys):
    assert main(["schema", "-o", str(tmp_path)]) == 2

    error = capsys.readouterr().err
    assert "it is a directory" in error
    assert len(error.strip().splitlines()) == 1


def test_schema_output_empty_name_is_rejected(capsys):
    # An empty name is a mistake, not a request for standard output.
    assert main(["schema", "-o", ""]) == 2

    captured = capsys.readouterr()
    assert "the name is empty" in captured.err
    assert captured.out == ""


def test_schema_output_under_a_file_is_rejected(tmp_path, capsys):
    parent = tmp_path / "notes.txt"
    parent.write_text("not a directory\n")

    assert main(["schema", "-o", str(parent / "treaty.schema.json")]) == 2

    error = capsys.readouterr().err
    assert "is a file, not a directory" in error
    assert len(error.strip().splitlines()) == 1
