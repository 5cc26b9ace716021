"""The ``treaty`` command: check, score, compare and simulate treaty files, print the JSON Schema.

Results go to stdout; problems go to stderr, one ``error:`` line each. Exit codes:
0 success; 2 an invalid treaty file or request, or an output that cannot be written;
3 a solver failure, a model too large to solve, or one that needs more memory than
the process can get (``MemoryError``). Any other exception is a bug in the engine and
propagates with its traceback.

An output file (``schema -o``, ``sweep --out`` and ``--plot``) replaces an earlier
file of that name only once it is complete, so a failed write keeps the earlier one.
A failed write to stdout itself, as to a full disk, to ``/dev/full`` or to a stdout
closed with ``>&-``, prints ``error: cannot write the output: REASON`` and exits with 2.

A reader that closes the output early, as in ``treaty score --json FILE | head``, stops
the command without a traceback and with status 141, the shell's status for a writer
ended by SIGPIPE. ``treaty sweep`` catches the closed pipe itself and exits with 0.
Ctrl-C prints ``interrupted`` and exits with 130, and SIGTERM exits with 143. Both stop
the worker processes of ``--workers`` first. After Ctrl-C, ``score --vary``, ``simulate``,
``compare --simulate`` and ``sweep`` print what they finished by then, marked partial, and
count it on stderr in place of ``interrupted``, and so does ``sweep`` after a ``MemoryError``.

NOTE: argparse also exits with status 2 on a command-line usage error. Its message
starts with ``usage:``, which distinguishes it from a problem in a treaty file. An
option that takes one value is such an error when it is given twice, because
argparse would otherwise keep the last value and drop the first without a word.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from importlib import metadata
from pathlib import Path

from engine.build import build_game
from engine.checked_output import CheckedOutput, OutputWriteError
from engine.cli_options import StoreOnce, given_options
from engine.errors import SolverError, SpecError
from engine.heartbeat import Heartbeat
from engine.loader import load_treaty
from engine.simulate import add_simulate_arguments, check_simulate_arguments
from engine.sweep import add_sweep_arguments, run_sweep_command

EXIT_OK = 0
EXIT_INVALID = 2
EXIT_SOLVER = 3
# 128 + SIGPIPE (13), the status a shell reports for a writer whose reader went away.
EXIT_BROKEN_PIPE = 141
# 128 + SIGINT (2), the status a shell reports for a command ended by Ctrl-C.
EXIT_INTERRUPTED = 130

OUT_OF_MEMORY = (
    "error: the model needs more memory than this process could get; use a coarser `period`, "
    "a smaller `model.grid`, shorter durations or a shorter `model.horizon`, or run with a "
    "higher memory limit"
)

SCHEMA_FILE = Path(__file__).with_name("treaty.schema.json")


def main(argv: list[str] | None = None) -> int:
    """Run the ``treaty`` command with ``argv`` (default: ``sys.argv[1:]``); return the exit code."""
    if argv is None:
        # Run from the command line: a termination request then unwinds like an
        # interrupt, so that sweeps, draws and simulations stop their workers.
        signal.signal(signal.SIGTERM, _terminate)
        # A shell without job control starts background jobs with SIGINT ignored,
        # and they stay so.
        if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            signal.signal(signal.SIGINT, _interrupt)

    # Every command prints through this wrapper, which distinguishes a failed
    # write to stdout from an OSError elsewhere, which is a bug.
    stdout = sys.stdout
    checked_stdout = CheckedOutput(stdout)
    sys.stdout = checked_stdout
    try:
        exit_code = _run_command(argv)
        # Flush inside the handler, because output still buffered here would
        # otherwise meet the closed pipe or the full disk during interpreter shutdown.
        sys.stdout.flush()
        if checked_stdout.failure is not None:
            raise checked_stdout.failure
    except BrokenPipeError:
        _discard_failed_output()
        return EXIT_BROKEN_PIPE
    except OutputWriteError as error:
        _report(f"error: cannot write the output: {error.strerror}")
        _discard_failed_output()
        return EXIT_INVALID
    except MemoryError:
        # numpy raises it for an array larger than the memory left, often under
        # a limit such as `ulimit -v` or a batch system's. The solver's own size
        # check (engine.solve.MAX_VALUES) catches only the largest models.
        _report(OUT_OF_MEMORY)
        return EXIT_SOLVER
    except KeyboardInterrupt:
        # Ctrl-C is a request rather than a failure, so it gets one line and no
        # traceback. Sweeps, draws and simulations have stopped their workers.
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        sys.stdout = stdout
        if argv is None:
            # Python resets its handlers to the default at shutdown, where a late
            # Ctrl-C or SIGTERM would end the process with the signal's status
            # in place of the command's own.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
    return exit_code


def _terminate(signum, frame) -> None:
    """Raise ``SystemExit`` with the shell's code for a process ended by SIGTERM."""
    _ignore_further_stops()
    raise SystemExit(128 + signal.SIGTERM)


def _interrupt(signum, frame) -> None:
    """Raise ``KeyboardInterrupt``, as Python's own handler of Ctrl-C does."""
    _ignore_further_stops()
    raise KeyboardInterrupt


def _ignore_further_stops() -> None:
    # A second request, such as Ctrl-C pressed twice, would cut short the cleanup
    # that stops the workers. The handler does nothing rather than SIG_IGN,
    # because Python reports a signal pending at a switch to SIG_IGN as an error.
    signal.signal(signal.SIGINT, _ignore_stop)
    signal.signal(signal.SIGTERM, _ignore_stop)


def _ignore_stop(signum, frame) -> None:
    """Do nothing: the command is already stopping."""


def _run_command(argv: list[str] | None) -> int:
    parser = _build_parser()
    try:
        arguments = parser.parse_args(argv)
    except SystemExit as stop:
        # --help, --version and usage errors end here; report their code to the caller.
        return stop.code if isinstance(stop.code, int) else EXIT_INVALID
    return arguments.run(arguments)


def _discard_failed_output() -> None:
    """Point stdout or stderr at devnull where a write failed with output still buffered.

    Without this, the interpreter's last flush at exit raises again on that stream,
    prints a second error and exits with status 120. A closed pipe and a full
    disk are both such failures.
    """
    for stream in (sys.stdout, sys.stderr):
        if stream is None:
            continue
        try:
            stream.flush()
        except OSError:
            _point_at_devnull(stream)


def _point_at_devnull(stream) -> None:
    try:
        descriptor = stream.fileno()
    except (OSError, ValueError):
        # A stream without a file descriptor, such as a test's capture, is
        # not flushed at exit.
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, descriptor)
    os.close(devnull)


def _report(line: str) -> None:
    """Print ``line`` on stderr, unless stderr cannot be written either."""
    try:
        print(line, file=sys.stderr, flush=True)
    except OSError:
        pass


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
        "-o", "--output", action=StoreOnce, metavar="PATH",
        help="write the schema to PATH instead of printing it"
    )
    schema.set_defaults(run=_run_schema)

    score = commands.add_parser(
        "score", help="solve one treaty and report the prediction", description="Solve one treaty and report the prediction."
    )
    score.add_argument("file", metavar="FILE", help="treaty YAML file to score")
    score.add_argument("--json", action="store_true", help="print the result as one JSON object")
    score.add_argument("--vary", action="append", default=[], metavar="PATH=DIST",
                       help="draw a field from uniform(a,b), beta(a,b), normal(mean,sd) or "
                            "triangular(low,mode,high) and report the chance of agreement; repeatable")
    score.add_argument("--draws", type=int, default=200, action=StoreOnce, metavar="N",
                       help="number of draws with --vary (default 200)")
    score.add_argument("--seed", type=int, default=None, action=StoreOnce, metavar="S",
                       help="seed of the draws with --vary; omitted, a fresh seed is drawn and reported")
    score.add_argument("--workers", type=int, default=1, action=StoreOnce, metavar="W",
                       help="worker processes with --vary (default 1)")
    score.set_defaults(run=_run_score)

    compare = commands.add_parser(
        "compare",
        help="score several treaties side by side",
        description="Score several treaties and report them side by side, in the order given.",
    )
    compare.add_argument("files", nargs="+", metavar="FILE", help="treaty YAML file to score; give at least two")
    compare.add_argument("--json", action="store_true", help="print the results as a JSON list")
    compare.add_argument("--simulate", action="store_true",
                         help="also simulate every design on the same random numbers")
    add_simulate_arguments(compare)
    compare.set_defaults(run=_run_compare)

    simulate = commands.add_parser(
        "simulate",
        help="simulate a treaty on random paths of its environment",
        description="Simulate the predicted treaty on random paths of the declared environment: "
                    "survival, payoff distributions and event frequencies with standard errors.",
    )
    simulate.add_argument("file", metavar="FILE", help="treaty YAML file to simulate")
    simulate.add_argument("--json", action="store_true", help="print the result as one JSON object")
    add_simulate_arguments(simulate)
    simulate.set_defaults(run=_run_simulate)

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
    if arguments.output is None:
        sys.stdout.write(text)
        return EXIT_OK

    from engine.output_files import os_error_reason, write_atomically
    from engine.sweep import SweepError, check_output_path

    try:
        check_output_path("--output", arguments.output)
    except SweepError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_INVALID

    # Written through a temporary file, so that a failed write keeps an earlier schema.
    try:
        write_atomically(arguments.output, lambda stream: stream.write(text))
    except OSError as error:
        print(f"error: {arguments.output}: cannot write the schema file: {os_error_reason(error)}",
              file=sys.stderr)
        return EXIT_INVALID
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
    if arguments.vary:
        from engine.calibration import run_vary_command

        return run_vary_command(arguments)
    # These options only shape the draws of --vary; alone they would be ignored.
    unused = [option for option, value, default in (("--draws", arguments.draws, 200),
                                                    ("--seed", arguments.seed, None),
                                                    ("--workers", arguments.workers, 1))
              if value != default]
    if unused:
        verb = "applies" if len(unused) == 1 else "apply"
        print(f"error: {', '.join(unused)} {verb} only with --vary; add --vary PATH=DIST or "
              "leave them out", file=sys.stderr)
        return EXIT_INVALID
    try:
        with Heartbeat(arguments.file):
            score, fragile = _score_file(arguments.file)
    except SpecError as error:
        _print_problems(error)
        return EXIT_INVALID
    except SolverError as error:
        print(f"error: {arguments.file}: {error}", file=sys.stderr)
        return EXIT_SOLVER

    if arguments.json:
        print(json.dumps(_score_dict(score, fragile), indent=2))
    else:
        from engine.report import format_score

        print(format_score(score))
    return EXIT_OK


def _run_compare(arguments: argparse.Namespace) -> int:
    if len(arguments.files) < 2:
        print("error: compare needs at least two treaty files; to score one, use "
              f"`treaty score {arguments.files[0]}`", file=sys.stderr)
        return EXIT_INVALID
    if not arguments.simulate:
        # Simulation options without --simulate would be ignored without a word.
        ignored = [f"--{name}" for name in ("paths", "years", "seed", "workers")
                   if name in given_options(arguments)]
        if ignored:
            verb = "applies" if len(ignored) == 1 else "apply"
            print(f"error: {', '.join(ignored)} {verb} only with --simulate; add --simulate or "
                  "leave them out", file=sys.stderr)
            return EXIT_INVALID

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

    if arguments.simulate:
        problem = check_simulate_arguments(arguments)
        if problem is not None:
            print(f"error: {problem}", file=sys.stderr)
            return EXIT_INVALID

    games = [build_game(spec) for spec in specs]
    if arguments.simulate:
        from engine.simulate import simulation_size_problem

        # Checked for every design before the first solve, which can take minutes.
        for filename, game in zip(arguments.files, games):
            problem = simulation_size_problem(game, arguments.paths, arguments.years)
            if problem is not None:
                print(f"error: {filename}: {problem}", file=sys.stderr)
                return EXIT_INVALID

    scores = []
    for filename, game in zip(arguments.files, games):
        try:
            with Heartbeat(filename):
                scores.append(_score_game(game))
        except SolverError as error:
            print(f"error: {filename}: {error}", file=sys.stderr)
            return EXIT_SOLVER

    simulations, seed = None, None
    if arguments.simulate:
        from engine.simulate import SimulationInterrupted, compare_simulations

        try:
            simulations, seed = compare_simulations(games, [score for score, _ in scores], arguments,
                                                    progress=True)
        except SimulationInterrupted as interrupt:
            _print_partial(lambda: _print_comparison(arguments, scores, interrupt.simulations, interrupt.seed))
            return _report_interrupted_paths(interrupt, " per design")
        except SolverError as error:
            print(f"error: {error}", file=sys.stderr)
            return EXIT_SOLVER

    _print_comparison(arguments, scores, simulations, seed)
    return EXIT_OK


def _print_comparison(arguments: argparse.Namespace, scores: list, simulations: list | None,
                      seed: int | None) -> None:
    """Print the scores of ``compare`` and, with ``--simulate``, their simulations."""
    if arguments.json:
        results = [_score_dict(score, fragile) for score, fragile in scores]
        if simulations is not None:
            from engine.simulate import comparison_dict

            results = {"scores": results, "simulation": comparison_dict(simulations, seed)}
        print(json.dumps(results, indent=2))
    else:
        from engine.report import format_comparison

        print(format_comparison([score for score, _ in scores], arguments.files))
        if simulations is not None:
            from engine.simulate import format_comparison as format_simulations

            print()
            print(format_simulations(arguments.files, simulations, seed))


def _run_simulate(arguments: argparse.Namespace) -> int:
    from engine.simulate import (SimulationInterrupted, format_simulation, simulate_game,
                                 simulation_size_problem)

    problem = check_simulate_arguments(arguments)
    if problem is not None:
        print(f"error: {problem}", file=sys.stderr)
        return EXIT_INVALID
    try:
        game = build_game(load_treaty(arguments.file))
        # Checked before the solve, which can take minutes.
        problem = simulation_size_problem(game, arguments.paths, arguments.years)
        if problem is not None:
            print(f"error: {arguments.file}: {problem}", file=sys.stderr)
            return EXIT_INVALID
        with Heartbeat(arguments.file):
            score, _ = _score_game(game)
        simulation = simulate_game(game, score, arguments.paths, arguments.years, arguments.seed,
                                   arguments.workers, progress=True)
    except SimulationInterrupted as interrupt:
        partial = interrupt.simulations[0]
        _print_partial(lambda: print(json.dumps(partial.to_dict(), indent=2) if arguments.json
                                     else format_simulation(partial)))
        return _report_interrupted_paths(interrupt)
    except SpecError as error:
        _print_problems(error)
        return EXIT_INVALID
    except SolverError as error:
        print(f"error: {arguments.file}: {error}", file=sys.stderr)
        return EXIT_SOLVER

    if simulation is None:
        if arguments.json:
            # Valid JSON for a reader that parses the output, as in compare --simulate.
            print(json.dumps({"treaty": game.name, "agreement": False, "simulation": None}, indent=2))
        else:
            print(f"{arguments.file}: no agreement is predicted, so there is no treaty to simulate")
        return EXIT_OK
    if arguments.json:
        print(json.dumps(simulation.to_dict(), indent=2))
    else:
        print(format_simulation(simulation))
    return EXIT_OK


def _print_partial(print_report) -> None:
    """Run ``print_report`` and flush stdout, where a reader that has gone does not stop the command.

    The line on stderr that counts the finished work and the exit status 130
    still follow, as after a sweep, because the run was stopped by Ctrl-C and
    not by the reader.
    """
    try:
        print_report()
        sys.stdout.flush()
    except BrokenPipeError:
        _discard_failed_output()


def _report_interrupted_paths(interrupt, scope: str = "") -> int:
    """Print the line on stderr that follows a partial simulation report, and return 130.

    ``scope`` follows the path counts, as " per design" does for ``compare``.
    """
    print(f"interrupted after {interrupt.paths:,} of {interrupt.requested:,} paths{scope}; "
          "the report covers only those paths and is marked partial", file=sys.stderr)
    return EXIT_INTERRUPTED


def _run_sweep(arguments: argparse.Namespace) -> int:
    # engine.sweep reports its own errors and returns 2 for a request that cannot run.
    return run_sweep_command(arguments)


def _score_file(filename: str):
    return _score_game(build_game(load_treaty(filename)))


def _score_game(game):
    """Score ``game`` and flag terms that rest on beliefs; return the score and the fragile list."""
    from engine.beliefs import find_fragile, fragile_warning
    from engine.score import score_game

    score = score_game(game)
    fragile = find_fragile(game, score.evaluated_strictness)
    score.warnings.extend(fragile_warning(entry) for entry in fragile)
    return score, fragile


def _score_dict(score, fragile: list[dict]) -> dict:
    result = score.to_dict()
    result["fragile"] = fragile
    return result


def _print_problems(error: SpecError) -> None:
    for problem in error.problems:
        print(problem.format(), file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
