"""Bargaining rules that pick terms from the set the parties could all accept.

``nash-patience`` maximises the weighted Nash product
``sum_i w_i log(U_i - d_i)`` with ``w_i`` proportional to ``1 / -ln(delta_i)``:
in Rubinstein-style alternating offers with vanishing time between offers,
each side's share grows with its patience in exactly this way (Binmore,
Rubinstein and Wolinsky 1986).  ``nash-equal`` uses equal weights and
``utilitarian`` maximises the plain sum of gains.
"""

from __future__ import annotations

import numpy as np


def bargaining_weights(discounts: np.ndarray, rule: str) -> np.ndarray:
    """Return the normalised weight of each party under ``rule``."""
    discounts = np.asarray(discounts, dtype=float)
    n = len(discounts)
    if rule != "nash-patience":
        return np.full(n, 1.0 / n)

    # A party with discount 0 has no patience at all and gets weight 0.
    with np.errstate(divide="ignore"):
        impatience = -np.log(discounts)
    weights = np.where(np.isfinite(impatience) & (impatience > 0), 1.0 / impatience, 0.0)
    if weights.sum() <= 0:
        return np.full(n, 1.0 / n)
    return weights / weights.sum()


def bargaining_objective(gains: np.ndarray, weights: np.ndarray, rule: str) -> np.ndarray:
    """Score each candidate from the parties' gains over disagreement.

    ``gains`` has the parties on its first axis.  Candidates where some party
    gains nothing score ``-inf`` under the Nash rules, because the Nash
    product is zero there; the utilitarian rule keeps them.
    """
    gains = np.asarray(gains, dtype=float)
    shape = (-1,) + (1,) * (gains.ndim - 1)
    w = np.asarray(weights, dtype=float).reshape(shape)
    if rule == "utilitarian":
        return gains.sum(axis=0)

    positive = gains > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        logs = np.where(positive, np.log(np.where(positive, gains, 1.0)), -np.inf)
    # A party with weight 0 does not affect the product as long as it gains.
    terms = np.where(w > 0, w * logs, np.where(positive, 0.0, -np.inf))
    return terms.sum(axis=0)
