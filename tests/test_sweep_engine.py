"""The solver against the closed forms, through ``treaty sweep`` on matching environments.

Every spec here has two parties with ``z_A(gamma) = gamma`` and
``z_B(gamma) = 1 - gamma``, the same discount factor and the same defection
values, and a one-year period. Party A then accepts ``gamma >= t`` and B
accepts ``gamma <= 1 - t``, so the lower end of the solver's zone is A's
threshold ``t`` in the start state. All thresholds stay below 0.5, so the
zone is never empty.
"""

import importlib.util

import numpy as np
import pytest

from engine.closed_forms import (
    folk_threshold,
    per_period_threshold,
    permanent_equilibrium_threshold,
    permanent_threshold,
)
from engine.sweep import run_sweep

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("engine.score") is None,
    reason="engine.score (the solver) is not available yet",
)

# The solver bisects zone endpoints to 1e-7.
TOLERANCE = 1e-6

PARTIES = """\
parties:
  - name: A
    discount: 0.8
    defection_value: DEFECTION
    regime_value: [[0, 0], [1, 1]]
  - name: B
    discount: 0.8
    defection_value: DEFECTION
    regime_value: [[0, 1], [1, 0]]
"""


def write_spec(directory, name, environment, defection):
    text = f"schema: treaty/v1\nname: {name}\n{environment}" + PARTIES.replace("DEFECTION", defection)
    path = directory / f"{name}.yaml"
    path.write_text(text)
    return str(path)


def sweep_rows(path, axes):
    result = run_sweep(path, axes, progress=False)
    for row in result.rows:
        assert row["status"] == "ok", row["message"]
        assert row["agreement"] is True
    return result.rows


def test_engine_single_state_matches_folk(tmp_path):
    # No environment: b = 0.2 for ever, so t = b (2 - delta).
    path = write_spec(tmp_path, "constant", "", "0.2")
    rows = sweep_rows(path, ["parties.*.discount=0:0.95:5"])
    for row in rows:
        delta = row["parties.*.discount"]
        assert row["zone_low"] == pytest.approx(float(folk_threshold(0.2, delta)), abs=TOLERANCE)
        assert row["zone_high"] == pytest.approx(1 - float(folk_threshold(0.2, delta)), abs=TOLERANCE)


def test_engine_matches_per_period_reading(tmp_path):
    # Default chain Q = p I + (1 - p) 1 f^T with long-run probabilities
    # f = (high: 0, gone: 1): from high, stay with p or move to gone; gone is
    # absorbing. That is the per-period reading, so
    # t = b (1 - delta)(2 - delta p) / (1 - delta p).
    environment = "environment:\n  start: high\n  persistence: 0.5\n  states: {high: 0, gone: 1}\n"
    path = write_spec(tmp_path, "per-period", environment, "{high: 0.2, gone: 0}")
    rows = sweep_rows(path, ["parties.*.discount=0.1:0.9:3", "environment.persistence=0:1:3"])

    assert len(rows) == 9
    for row in rows:
        delta, p = row["parties.*.discount"], row["environment.persistence"]
        expected = float(per_period_threshold(0.2, delta, p))
        assert row["zone_low"] == pytest.approx(expected, abs=TOLERANCE), (delta, p)
        # Symmetric parties with equal weights split the zone in the middle.
        assert row["terms"] == pytest.approx(0.5, abs=1e-4)


PERMANENT_ENVIRONMENT = """\
environment:
  start: now
  transitions:
    now: {{stays: {p}, gone: {q}}}
    stays: {{stays: 1.0}}
    gone: {{gone: 1.0}}
"""


@pytest.mark.parametrize("p", [0.0, 0.3, 0.6, 1.0])
def test_engine_matches_permanent_reading(tmp_path, p):
    # The permanent reading as a chain: period 0 in "now", then "stays"
    # (b for ever) with probability p or "gone" (0 for ever). The solver
    # finds the most cooperative equilibrium, whose threshold is
    # min(b (2 - delta), 2 b (1 - delta) / (1 - delta p)), derived in
    # permanent_equilibrium_threshold. At p = 0 and p = 1 it equals the
    # first-period threshold b (2 - 2 delta + p delta).
    environment = PERMANENT_ENVIRONMENT.format(p=p, q=round(1 - p, 12))
    path = write_spec(tmp_path, "permanent", environment, "{now: 0.2, stays: 0.2, gone: 0}")
    rows = sweep_rows(path, ["parties.*.discount=0.3:0.9:3"])

    for row in rows:
        delta = row["parties.*.discount"]
        expected = float(permanent_equilibrium_threshold(0.2, delta, p))
        assert row["zone_low"] == pytest.approx(expected, abs=TOLERANCE), delta
        if p in (0.0, 1.0):
            assert row["zone_low"] == pytest.approx(float(permanent_threshold(0.2, delta, p)), abs=TOLERANCE)


def test_permanent_formula_checks_first_period_only(tmp_path):
    # p = 0.6, delta = 0.9: the first-period formula gives
    # 0.2 (2 - 1.8 + 0.54) = 0.148, but the solver's threshold is
    # min(0.2 * 1.1, 0.04 / 0.46) = 0.0870: complying in "now" and breaking
    # down in "stays" is an equilibrium at lower terms than the formula admits.
    environment = PERMANENT_ENVIRONMENT.format(p=0.6, q=0.4)
    path = write_spec(tmp_path, "gap", environment, "{now: 0.2, stays: 0.2, gone: 0}")
    # A grid needs two points; both are delta = 0.9.
    row = sweep_rows(path, ["parties.*.discount=0.9:0.9:2"])[0]
    assert row["zone_low"] == pytest.approx(0.04 / 0.46, abs=TOLERANCE)
    assert not np.isclose(row["zone_low"], float(permanent_threshold(0.2, 0.9, 0.6)), atol=1e-3)


def test_engine_workers_identical(tmp_path):
    environment = "environment:\n  start: high\n  persistence: 0.5\n  states: {high: 0, gone: 1}\n"
    path = write_spec(tmp_path, "workers", environment, "{high: 0.2, gone: 0}")
    axes = ["parties.*.discount=0.2:0.9:3", "environment.persistence=0.2:0.8:2"]
    single = run_sweep(path, axes, workers=1, progress=False).rows
    several = run_sweep(path, axes, workers=4, progress=False).rows
    assert single == several
