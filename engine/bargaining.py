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


def best_mix(left: np.ndarray, right: np.ndarray, weights: np.ndarray, rule: str,
             low: float = 0.0, high: float = 1.0) -> tuple[float, float]:
    """Maximise the objective of the gains ``w * left + (1 - w) * right`` over ``w`` in [low, high].

    Returns the weight and the objective there.  The gains are linear in
    ``w``, so the utilitarian objective is linear and peaks at an end.  The
    Nash objective is finite where every party gains, an interval of ``w``,
    and concave there: its slope ``sum_i w_i (left_i - right_i) / gain_i(w)``
    falls with ``w``, so bisection on the slope finds the peak to machine
    precision.  A search on the objective's values would stop about 1e-8 from
    the peak, where the objective is flat to rounding.
    """
    left = np.asarray(left, dtype=float)
    right = np.asarray(right, dtype=float)
    weights = np.asarray(weights, dtype=float)

    def score(w: float) -> float:
        return float(bargaining_objective((w * left + (1.0 - w) * right)[:, None], weights, rule)[0])

    if rule == "utilitarian":
        return max(((w, score(w)) for w in (high, low)), key=lambda item: item[1])

    # Every party must gain: right_i + w (left_i - right_i) > 0.
    step = left - right
    start, stop = low, high
    for gain_at_zero, change in zip(right, step):
        if change > 0:
            start = max(start, -gain_at_zero / change)
        elif change < 0:
            stop = min(stop, gain_at_zero / -change)
        elif gain_at_zero <= 0:
            return low, -np.inf
    if start >= stop:
        return low, -np.inf

    def slope(w: float) -> float:
        return float(np.sum(weights * step / (right + w * step)))

    # At an end set by a party's zero gain the slope points inwards, so only
    # the ends of [low, high] can be the peak.
    if start == low and slope(low) <= 0.0:
        return low, score(low)
    if stop == high and slope(high) >= 0.0:
        return high, score(high)
    for _ in range(100):
        middle = 0.5 * (start + stop)
        if middle <= start or middle >= stop:
            break
        if slope(middle) > 0.0:
            start = middle
        else:
            stop = middle
    middle = 0.5 * (start + stop)
    return middle, score(middle)
