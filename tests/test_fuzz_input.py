"""Fuzzed treaty files: `treaty check` never crashes and every error names a position.

Mutations start from valid files: keys removed or renamed, values replaced by values
of other types, numbers pushed out of range, and raw text cut or spliced. Every run
must return 0 (still valid) or 2 (invalid, with `FILE:LINE:COL: error:` lines).
"""

import contextlib
import copy
import io
import re
import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.cli import main
from engine.yaml_loader import load_yaml

DATA = Path(__file__).parent / "data"
FULL_TEXT = (DATA / "full.yaml").read_text()
MINIMAL_TEXT = (DATA / "minimal.yaml").read_text()
FULL = load_yaml(FULL_TEXT).data
MINIMAL = load_yaml(MINIMAL_TEXT).data

ERROR_LINE = re.compile(r"^.+:\d+:\d+: error: ")

SPECIAL_VALUES = [
    "1 year",
    "6 months",
    "45 days",
    "P1Y",
    "discretionary",
    "yes",
    "NO",
    "1:30",
    "010",
    "",
    "treaty/v2",
    "duration",
    "escape_hatch",
]

any_value = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**6), max_value=10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(SPECIAL_VALUES),
    st.lists(st.one_of(st.integers(-3, 3), st.floats(-2, 2)), max_size=3),
    st.dictionaries(st.text(max_size=6), st.integers(-3, 3), max_size=2),
)


def all_paths(node, prefix=()):
    """List the path of every key and list item below ``node``."""
    paths = []
    if isinstance(node, dict):
        items = node.items()
    elif isinstance(node, list):
        items = enumerate(node)
    else:
        return paths
    for key, child in items:
        paths.append(prefix + (key,))
        paths.extend(all_paths(child, prefix + (key,)))
    return paths


def parent_of(data, path):
    node = data
    for part in path[:-1]:
        node = node[part]
    return node


def mutate(data, draw, paths_filter=lambda path: True):
    """Apply one drawn mutation to ``data`` in place."""
    paths = [path for path in all_paths(data) if paths_filter(path)]
    if not paths:
        return
    path = draw(st.sampled_from(paths))
    parent = parent_of(data, path)
    key = path[-1]
    action = draw(st.sampled_from(["remove", "rename", "retype", "out_of_range"]))

    if action == "remove":
        del parent[key]
    elif action == "rename" and isinstance(parent, dict):
        new_key = draw(st.one_of(st.text(min_size=1, max_size=10), st.just(str(key)[:-1] or "x")))
        value = parent.pop(key)
        parent[new_key] = value
    elif action == "out_of_range" and isinstance(parent[key], (int, float)) and not isinstance(parent[key], bool):
        factor = draw(st.sampled_from([-1, 2, 10, 1e9, 0]))
        offset = draw(st.sampled_from([0, 1, -1e-9, 1e-9]))
        parent[key] = parent[key] * factor + offset
    else:
        parent[key] = draw(any_value)


def run_cli(argv) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


def assert_check_outcome(text: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fuzzed.yaml"
        path.write_text(text, encoding="utf-8")
        code, out, err = run_cli(["check", str(path)])

    assert code in (0, 2), err
    if code == 0:
        assert out.endswith("fuzzed.yaml: ok\n")
        return
    lines = err.splitlines()
    assert lines, "exit 2 needs at least one message"
    for line in lines:
        assert ERROR_LINE.match(line), line


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_check_survives_data_mutations(data):
    treaty = copy.deepcopy(data.draw(st.sampled_from([FULL, MINIMAL])))
    for _ in range(data.draw(st.integers(min_value=1, max_value=3))):
        mutate(treaty, data.draw)

    text = yaml.safe_dump(treaty, sort_keys=False, allow_unicode=True)
    assert_check_outcome(text)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from([FULL_TEXT, MINIMAL_TEXT]),
    st.integers(min_value=0, max_value=len(MINIMAL_TEXT)),
    st.integers(min_value=0, max_value=40),
    st.text(alphabet=st.sampled_from(list(":-[]{}&*!|>'\"#,? \t\n\x00\x07é0a")), max_size=8),
)
def test_check_survives_text_splices(text, start, length, insert):
    spliced = text[:start] + insert + text[start + length :]

    assert_check_outcome(spliced)


def _score_available() -> bool:
    try:
        import engine.score  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.mark.skipif(not _score_available(), reason="engine.score is not importable in this build")
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_score_survives_party_mutations(data):
    treaty = copy.deepcopy(MINIMAL)
    # Mutate only party values so that a still-valid file stays quick to solve.
    mutate(treaty, data.draw, paths_filter=lambda path: path[0] == "parties" and len(path) >= 3)

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fuzzed.yaml"
        path.write_text(yaml.safe_dump(treaty, sort_keys=False), encoding="utf-8")
        code, _, err = run_cli(["score", str(path), "--json"])

    assert code in (0, 2), err
    if code == 2:
        for line in err.splitlines():
            assert ERROR_LINE.match(line), line
