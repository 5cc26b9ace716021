"""The ``treaty`` command: check, score and compare treaty files, print the JSON Schema.

Results go to stdout; problems go to stderr, one ``error:`` line each. Exit codes:
0 success, 2 an invalid treaty file, 3 a solver failure. Any other exception is a bug
in the engine and propagates with its traceback.

NOTE: argparse also exits with status 2 on a command-line usage error; its message
starts with ``usage:``, which tells it apart from a problem in a treaty file.
"""

from __future__ import annotations

import argparse
import json
import sys
from importlib import metadata
from pathlib import Path

from engine.errors import SolverError, SpecError
from engine.loader import load_treaty
from engine.sweep import add_sweep_arguments, run_sweep_command

EXIT_OK = 0
EXIT_INVALID = 2
EXIT_SOLVER = 3

SCHEMA_FILE = Path(__file__).with_name("treaty.schema.json")


def main(argv: list[str] | None = None) -> int:
    """Run the ``treaty`` command with ``argv`` (default: ``sys.argv[1:]``); return the exit code."""
    parser = _build_parser()
    try:
        arguments = parser.parse_args(argv)
    except SystemExit as stop:
        # --help, --version and usage errors end here; report their code to the caller.
        return stop.code if isinstance(stop.code, int) else EXIT_INVALID
    return arguments.run(arguments)


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="treaty",
        description="Predict agreement, terms and survival of treaties declared in YAML.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    check = commands.add_parser(
        "check", help="validate treaty files", description="Validate treaty files and report every problem."
    )
    check.add_argument("files", nargs="+", metavar="FILE", help="treaty YAML file to validate")
    check.set_defaults(run=_run_check)

    schema = commands.add_parser(
        "schema",
        help="print the JSON Schema of the treaty format",
        description="Print the JSON Schema of the treaty format, for editors and other tools.",
    )
    schema.add_argument(
        "-o", "--output", metavar="PATH", help="write the schema to PATH instead of printing it"
    )
    schema.set_defaults(run=_run_schema)

    score = commands.add_parser(
        "score", help="solve one treaty and report the prediction", description="Solve one treaty and report the prediction."
    )
    score.add_argument("file", metavar="FILE", help="treaty YAML file to score")
    score.add_argument("--json", action="store_true", help="print the result as one JSON object")
    score.set_defaults(run=_run_score)

    compare = commands.add_parser(
        "compare",
        help="score several treaties side by side",
        description="Score several treaties and report them side by side, in the order given.",
    )
    compare.add_argument("files", nargs="+", metavar="FILE", help="treaty YAML file to score")
    compare.add_argument("--json", action="store_true", help="print the results as a JSON list")
    compare.set_defaults(run=_run_compare)

    sweep = commands.add_parser(
        "sweep",
        help="score a treaty over a grid of one or two fields",
        description="Score a treaty at every point of a grid over one or two of its fields.",
    )
    add_sweep_arguments(sweep)
    sweep.set_defaults(run=_run_sweep)
    return parser


def _version() -> str:
    try:
        return metadata.version("treaty-design")
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"


def _run_check(arguments: argparse.Namespace) -> int:
    exit_code = EXIT_OK
    for filename in arguments.files:
        try:
            load_treaty(filename)
        except SpecError as error:
            _print_problems(error)
            exit_code = EXIT_INVALID
        else:
            print(f"{filename}: ok")
    return exit_code


def _run_schema(arguments: argparse.Namespace) -> int:
    text = schema_text()
    if arguments.output:
        Path(arguments.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return EXIT_OK


def schema_text() -> str:
    """Return the JSON Schema of the treaty format as the text of ``treaty.schema.json``."""
    from engine.spec import TreatySpec

    schema = TreatySpec.model_json_schema(by_alias=True, mode="validation")
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Treaty file, format treaty/v1",
        **{key: value for key, value in schema.items() if key != "title"},
    }
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def _run_score(arguments: argparse.Namespace) -> int:
    try:
        score = _score_file(arguments.file)
    except SpecError as error:
        _print_problems(error)
        return EXIT_INVALID
    except SolverError as error:
        print(f"error: {arguments.file}: {error}", file=sys.stderr)
        return EXIT_SOLVER

    if arguments.json:
        print(json.dumps(score.to_dict(), indent=2))
    else:
        from engine.report import format_score

        print(format_score(score))
    return EXIT_OK


def _run_compare(arguments: argparse.Namespace) -> int:
    # Validate every file first, so that all invalid files are reported in one run.
    specs = []
    invalid = False
    for filename in arguments.files:
        try:
            specs.append(load_treaty(filename))
        except SpecError as error:
            _print_problems(error)
            invalid = True
    if invalid:
        return EXIT_INVALID

    scores = []
    for filename, spec in zip(arguments.files, specs):
        try:
            scores.append(_score_spec(spec))
        except SolverError as error:
            print(f"error: {filename}: {error}", file=sys.stderr)
            return EXIT_SOLVER

    if arguments.json:
        print(json.dumps([score.to_dict() for score in scores], indent=2))
    else:
        from engine.report import format_comparison

        print(format_comparison(scores))
    return EXIT_OK


def _run_sweep(arguments: argparse.Namespace) -> int:
    # engine.sweep reports its own errors and returns 2 for a request that cannot run.
    return run_sweep_command(arguments)


def _score_file(filename: str):
    return _score_spec(load_treaty(filename))


def _score_spec(spec):
    from engine.build import build_game
    from engine.score import score_game

    return score_game(build_game(spec))


def _print_problems(error: SpecError) -> None:
    for problem in error.problems:
        print(problem.format(), file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
