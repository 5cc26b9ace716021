"""Transition matrices of the environment chain, per model period.

The file declares persistence per year. Over a period of ``t`` years a state that
stays with probability ``p`` each year stays with probability ``p ** t``, which is
the persistence the sticky-jump chain uses per period. An explicit ``transitions``
matrix is already per period and is used as written.
"""

from __future__ import annotations

import numpy as np

from engine.spec import Environment


def sticky_jump_matrix(persistence_per_period: float, long_run: np.ndarray) -> np.ndarray:
    """Return ``Q = p I + (1 - p) 1 f^T``: stay with probability p, else redraw from f.

    Every row of ``Q`` sums to 1 and ``f`` is its stationary distribution, because
    ``f^T Q = p f^T + (1 - p) f^T``.
    """
    size = len(long_run)
    return persistence_per_period * np.eye(size) + (1 - persistence_per_period) * np.outer(
        np.ones(size), long_run
    )


def persistence_per_period(persistence_per_year: float, period_years: float) -> float:
    return persistence_per_year**period_years


def declared_matrix(environment: Environment | None, period_years: float) -> np.ndarray:
    """Return the declared chain per period, in the order of ``environment.state_names``."""
    if environment is None:
        return np.ones((1, 1))

    names = environment.state_names
    if environment.transitions is not None:
        matrix = np.zeros((len(names), len(names)))
        for row, origin in enumerate(names):
            for target, probability in environment.transitions[origin].items():
                matrix[row, names.index(target)] = probability
        return matrix

    long_run = np.array([environment.states[name] for name in names])
    # With a single state persistence may be omitted; the chain stays put either way.
    yearly = environment.persistence if environment.persistence is not None else 1.0
    return sticky_jump_matrix(persistence_per_period(yearly, period_years), long_run)


def believed_matrix(
    environment: Environment | None, belief_persistence: float | None, period_years: float
) -> np.ndarray:
    """Return a party's own chain: the declared one, unless the party has its own persistence."""
    if belief_persistence is None or environment is None:
        return declared_matrix(environment, period_years)

    names = environment.state_names
    long_run = np.array([environment.states[name] for name in names])
    return sticky_jump_matrix(persistence_per_period(belief_persistence, period_years), long_run)
