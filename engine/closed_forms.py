"""Closed-form compliance thresholds for the two-party treaty game.

The stage game, per period and per party i, with regime value ``z`` (both
comply) and defection value ``b``:

==============  ============  ============
                j complies    j defects
==============  ============  ============
i complies      z             0
i defects       2 b           b
==============  ============  ============

Both parties play grim trigger: comply until someone defects, then defect for
ever. Complying for ever is worth ``z / (1 - delta)``. The best deviation is to
defect now, earn ``2 b`` once, and then live in mutual defection, which is worth
the punishment value ``V^P`` of the state reached next. Compliance is
self-enforcing when the first is at least the second, and each function below
returns the smallest per-period ``z`` for which it is, the *threshold*.

Readings of "b persists with probability p"
-------------------------------------------
Canfil (2018), "Dynamic Arms Control", prints the threshold
``z = (2 delta - p - 2) b / (delta - 2)``. That expression solves
``z + z / (1 - delta) = 2 b + p b / (1 - delta)``, which counts the current
period twice on both sides. It equals the permanent-reading threshold below
evaluated at the discount factor ``1 / (2 - delta)``, which is always at least
``delta``. The printed formula therefore makes compliance look easier than it
is. This module keeps it as ``printed_threshold`` only to reproduce that
paper's Figure 4. Two consistent readings of ``p`` are:

* permanent: from the next period on, ``b`` stays for ever with probability
  ``p`` and is 0 for ever otherwise (``permanent_threshold``);
* per-period: in every period ``b`` survives with probability ``p`` and, once
  gone, is 0 for ever (``per_period_threshold``).

``chain_threshold`` gives the same condition on any finite Markov chain of
defection values, and both readings are special cases of it.

All functions broadcast over numpy arrays and raise ``ValueError`` for a
discount factor outside [0, 1), a probability outside [0, 1] or a negative
defection value.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from engine.game import Game

ArrayLike = float | np.ndarray


def _check_inputs(b: ArrayLike, delta: ArrayLike, p: ArrayLike | None = None) -> None:
    """Raise ValueError when an argument is outside the model's domain."""
    b_array = np.asarray(b, dtype=float)
    delta_array = np.asarray(delta, dtype=float)

    if not np.all(np.isfinite(b_array)) or np.any(b_array < 0):
        raise ValueError(f"defection value b must be finite and >= 0, got {b!r}")
    if np.any(~((delta_array >= 0) & (delta_array < 1))):
        raise ValueError(f"discount factor delta must be in [0, 1), got {delta!r}")

    if p is not None:
        p_array = np.asarray(p, dtype=float)
        if np.any(~((p_array >= 0) & (p_array <= 1))):
            raise ValueError(f"persistence p must be in [0, 1], got {p!r}")


def folk_threshold(b: ArrayLike, delta: ArrayLike) -> np.ndarray:
    """Return the threshold when ``b`` is constant for ever.

    Derivation: ``z / (1 - delta) >= 2 b + delta b / (1 - delta)``. Multiplying
    by ``1 - delta`` gives ``z >= 2 b (1 - delta) + delta b = b (2 - delta)``.
    This is the folk bound ``delta >= (T - R) / (T - P)`` with ``T = 2b``,
    ``R = z`` and ``P = b``. At ``delta = 0`` the game is a one-shot prisoner's
    dilemma and the threshold is ``2 b``.
    """
    _check_inputs(b, delta)
    b = np.asarray(b, dtype=float)
    delta = np.asarray(delta, dtype=float)
    return b * (2.0 - delta)


def printed_threshold(b: ArrayLike, delta: ArrayLike, p: ArrayLike) -> np.ndarray:
    """Return the threshold printed in Canfil (2018), "Dynamic Arms Control".

    The printed form is ``(2 delta - p - 2) b / (delta - 2)``. It solves
    ``z + z / (1 - delta) = 2 b + p b / (1 - delta)``. The left side is
    ``z (2 - delta) / (1 - delta)`` and the right side is
    ``b (2 - 2 delta + p) / (1 - delta)``, so
    ``z = b (2 - 2 delta + p) / (2 - delta)``, the printed value. The current
    period appears twice on each side. The result equals
    ``permanent_threshold(b, 1 / (2 - delta), p)``.

    Kept to reproduce the paper's Figure 4, not as a model result.
    """
    _check_inputs(b, delta, p)
    b = np.asarray(b, dtype=float)
    delta = np.asarray(delta, dtype=float)
    p = np.asarray(p, dtype=float)
    return (2.0 * delta - p - 2.0) * b / (delta - 2.0)


def permanent_threshold(b: ArrayLike, delta: ArrayLike, p: ArrayLike) -> np.ndarray:
    """Return the threshold when ``b`` settles for ever after the current period.

    From the next period on, ``b`` stays for ever with probability ``p``, and is
    0 for ever otherwise. Complying for ever pays ``z / (1 - delta)`` whatever
    happens to ``b``. Deviating pays ``2 b`` now and then mutual defection,
    which is worth ``b / (1 - delta)`` if ``b`` stays and 0 if it goes:
    ``z / (1 - delta) >= 2 b + delta p b / (1 - delta)``, so
    ``z >= b (2 - 2 delta + p delta)``.

    This is the constraint of the first period only. In the branch where ``b``
    stays, complying again needs ``z >= b (2 - delta)``, which is at least as
    large. Where that fails, the most cooperative equilibrium is the one in
    ``permanent_equilibrium_threshold``.
    """
    _check_inputs(b, delta, p)
    b = np.asarray(b, dtype=float)
    delta = np.asarray(delta, dtype=float)
    p = np.asarray(p, dtype=float)
    return b * (2.0 - 2.0 * delta + p * delta)


def permanent_equilibrium_threshold(
    b: ArrayLike, delta: ArrayLike, p: ArrayLike
) -> np.ndarray:
    """Return the smallest ``z`` at which some grim-trigger equilibrium starts with compliance.

    Same environment as ``permanent_threshold``: a first state with ``b``, then
    ``b`` for ever with probability ``p`` ("stays") or 0 for ever ("gone").
    Two equilibria can start with compliance.

    1. Compliance everywhere. The first-period constraint is
       ``z >= b (2 - 2 delta + p delta)`` and the constraint in "stays" is
       ``z >= b (2 - delta)``. For ``p < 1`` the second is the larger.
    2. Compliance in the first state and in "gone", mutual defection in
       "stays". Complying now pays
       ``z + delta (p b / (1 - delta) + (1 - p) z / (1 - delta))`` and
       deviating pays ``2 b + delta p b / (1 - delta)``. The ``b`` terms after
       the first period cancel, which leaves
       ``z (1 - delta p) / (1 - delta) >= 2 b``, or
       ``z >= 2 b (1 - delta) / (1 - delta p)``.

    The threshold is the smaller of ``b (2 - delta)`` and
    ``2 b (1 - delta) / (1 - delta p)``. It equals ``permanent_threshold`` at
    ``p = 0`` and ``p = 1``. For ``0 < p < 1`` it is below ``b (2 - delta)``
    exactly when ``p (2 - delta) < 1``.
    """
    _check_inputs(b, delta, p)
    b = np.asarray(b, dtype=float)
    delta = np.asarray(delta, dtype=float)
    p = np.asarray(p, dtype=float)

    everywhere = b * (2.0 - delta)
    except_stays = 2.0 * b * (1.0 - delta) / (1.0 - delta * p)
    return np.minimum(everywhere, except_stays)


def per_period_threshold(b: ArrayLike, delta: ArrayLike, p: ArrayLike) -> np.ndarray:
    """Return the threshold when ``b`` survives each period with probability ``p``.

    Once ``b`` is gone it is 0 for ever. Mutual defection while ``b`` lasts is
    worth ``V^P = b + delta p V^P``, so ``V^P = b / (1 - delta p)``. Compliance
    pays ``z / (1 - delta)`` and deviating pays ``2 b + delta p V^P``:
    ``z / (1 - delta) >= b (2 (1 - delta p) + delta p) / (1 - delta p)``, so
    ``z >= b (1 - delta) (2 - delta p) / (1 - delta p)``.

    ``p = 1`` gives the folk bound ``b (2 - delta)`` and ``p = 0`` gives
    ``2 b (1 - delta)``, the same as the permanent reading at those ends.
    """
    _check_inputs(b, delta, p)
    b = np.asarray(b, dtype=float)
    delta = np.asarray(delta, dtype=float)
    p = np.asarray(p, dtype=float)
    return b * (1.0 - delta) * (2.0 - delta * p) / (1.0 - delta * p)


def chain_threshold(b: ArrayLike, delta: ArrayLike, transition: np.ndarray) -> np.ndarray:
    """Return the threshold in each state of a Markov chain of defection values.

    Parameters
    ----------
    b : array of shape (n_states,)
        Defection value in each state.
    delta : float or array
        Discount factor. An array of shape ``S`` gives a result of shape
        ``S + (n_states,)``.
    transition : array of shape (n_states, n_states)
        Row-stochastic matrix ``Q``, ``Q[s, t]`` the chance of moving from s to t.

    Returns
    -------
    numpy.ndarray
        ``z*(s)``: compliance in state s is self-enforcing, given compliance
        everywhere afterwards, iff ``z >= z*(s)``.

    Notes
    -----
    Mutual defection is worth ``V^P = b + delta Q V^P``, so
    ``V^P = (I - delta Q)^-1 b``. The constraint in state s is
    ``z / (1 - delta) >= 2 b(s) + delta (Q V^P)(s)``, and
    ``delta Q V^P = V^P - b``, so ``z*(s) = (1 - delta) (b(s) + V^P(s))``.
    Compliance in every state is self-enforcing iff ``z`` is at least the
    largest ``z*(s)`` over the states reachable from the start.
    """
    b = np.asarray(b, dtype=float)
    transition = np.asarray(transition, dtype=float)
    n_states = b.shape[0] if b.ndim == 1 else -1

    if b.ndim != 1 or transition.shape != (n_states, n_states):
        raise ValueError(
            f"b must have shape (n,) and transition (n, n), got {b.shape} and {transition.shape}"
        )
    if np.any(transition < 0) or not np.allclose(transition.sum(axis=1), 1.0):
        raise ValueError("transition must be row-stochastic: entries >= 0 and rows summing to 1")
    _check_inputs(b, delta)

    delta = np.asarray(delta, dtype=float)
    identity = np.eye(n_states)

    # Solve every discount factor at once: the batch axes of delta lead.
    system = identity - delta[..., None, None] * transition
    right_side = np.broadcast_to(b, delta.shape + (n_states,))[..., None]
    punishment_value = np.linalg.solve(system, right_side)[..., 0]
    return (1.0 - delta[..., None]) * (b + punishment_value)


ThresholdFormula = Callable[[ArrayLike, ArrayLike, ArrayLike], np.ndarray]

FORMULAS: dict[str, ThresholdFormula] = {
    "printed": printed_threshold,
    "permanent": permanent_threshold,
    "per-period": per_period_threshold,
}
"""The two-party thresholds ``f(b, delta, p)`` selectable by ``treaty sweep --formula``."""


# --------------------------------------------------------------------------
# Scoring a two-party game with a closed form
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class ClosedFormParty:
    """One party's result under a closed form.

    ``threshold`` is the per-period regime value the party needs. ``margin``
    is the present value of its per-period surplus over that threshold at the
    terms, ``(z(terms) - threshold) / (1 - delta)``, or None without terms.
    """

    name: str
    threshold: float
    margin: float | None


@dataclass(frozen=True)
class ClosedFormScore:
    """The closed-form counterpart of the solver's score, with the same core fields.

    The closed forms do not model how long a treaty lasts, so
    ``expected_lifetime_years`` is always None.
    """

    formula: str
    agreement: bool
    zone: tuple[float, float] | None
    terms: float | None
    parties: tuple[ClosedFormParty, ...]
    expected_lifetime_years: float | None = None
    converged: bool = True
    message: str = ""


def score_closed_form(game: Game, formula: str, persistence: np.ndarray) -> ClosedFormScore:
    """Score a two-party game with one of the closed-form thresholds in ``FORMULAS``.

    Each party i needs ``z_i(gamma) >= t_i`` with ``t_i = f(b_i, delta_i, p_i)``,
    where ``b_i`` is its defection value in the start state, ``delta_i`` its
    per-period discount factor and ``p_i = persistence[i]``. The zone is the
    set of strictness values where both conditions hold. The regime curves are
    linear between their points, so each endpoint is the exact root on its
    segment.

    The terms maximise the game's bargaining rule over the zone, with each
    party's gain taken as its margin ``(z_i - t_i) / (1 - delta_i)``. The
    solver instead uses the value of the treaty minus the value of no treaty,
    which the closed forms do not give. ``nash-patience`` weights party i by
    ``1 / -ln(delta_i)``, ``nash-equal`` weights every party by 1 and
    ``utilitarian`` maximises the sum of margins.

    Provisions, breach costs and negotiation costs are ignored.

    Raises
    ------
    ValueError
        For an unknown formula or a game without exactly two parties.
    """
    if formula not in FORMULAS:
        raise ValueError(f"unknown formula {formula!r}: expected one of {', '.join(FORMULAS)}")
    if game.n_parties != 2:
        raise ValueError(f"the closed forms describe two parties, the game has {game.n_parties}")

    discounts = np.array([party.discount for party in game.parties])
    defection = np.array([party.defection[game.start] for party in game.parties])
    thresholds = np.array(
        [
            float(FORMULAS[formula](b, delta, p))
            for b, delta, p in zip(defection, discounts, persistence)
        ]
    )

    breaks = _curve_breakpoints(game)
    intervals = _feasible_intervals(game, thresholds, breaks)
    if not intervals:
        parties = tuple(
            ClosedFormParty(party.name, float(threshold), None)
            for party, threshold in zip(game.parties, thresholds)
        )
        return ClosedFormScore(formula, False, None, None, parties)

    objective = _bargaining_objective(game, thresholds, discounts)
    candidates = [(*_best_in_interval(objective, low, high, breaks), low, high) for low, high in intervals]

    # The best bargaining value wins; on a tie the lower interval does.
    best_value, terms, low, high = max(candidates, key=lambda item: (item[0], -item[2]))
    message = ""
    if len(intervals) > 1:
        message = (
            f"the accepted strictness values form {len(intervals)} separate intervals; "
            "zone and terms refer to the one with the best bargaining value"
        )

    margins = _margins(game, thresholds, np.array(terms)) / (1.0 - discounts)
    parties = tuple(
        ClosedFormParty(party.name, float(threshold), float(margin))
        for party, threshold, margin in zip(game.parties, thresholds, margins)
    )
    return ClosedFormScore(formula, True, (low, high), float(terms), parties, message=message)


def _curve_breakpoints(game: Game) -> np.ndarray:
    """Return 0, 1 and every regime-curve point in between, sorted."""
    points = [np.array([0.0, 1.0])]
    points.extend(party.regime_points[:, 0] for party in game.parties)
    breaks = np.unique(np.concatenate(points))
    return breaks[(breaks >= 0.0) & (breaks <= 1.0)]


def _margins(game: Game, thresholds: np.ndarray, strictness: np.ndarray) -> np.ndarray:
    """Return ``z_i(gamma) - t_i``, parties along the first axis."""
    return np.array(
        [party.regime_value(strictness) - t for party, t in zip(game.parties, thresholds)]
    )


def _feasible_intervals(
    game: Game, thresholds: np.ndarray, breaks: np.ndarray
) -> list[tuple[float, float]]:
    """Return the closed intervals of [0, 1] where every margin is >= 0."""
    pieces: list[tuple[float, float]] = []
    for left, right in zip(breaks[:-1], breaks[1:]):
        low, high = float(left), float(right)
        margin_left = _margins(game, thresholds, np.array(left))
        margin_right = _margins(game, thresholds, np.array(right))

        # Every margin is linear on [left, right], so it crosses zero at most once.
        for at_left, at_right in zip(margin_left, margin_right):
            if at_left < 0 and at_right < 0:
                low, high = 1.0, 0.0
                break
            if at_left >= 0 and at_right >= 0:
                continue
            root = float(left + (right - left) * at_left / (at_left - at_right))
            if at_left < 0:
                low = max(low, root)
            else:
                high = min(high, root)
        if low <= high:
            pieces.append((low, high))

    merged: list[tuple[float, float]] = []
    for low, high in pieces:
        if merged and low <= merged[-1][1] + 1e-12:
            merged[-1] = (merged[-1][0], max(merged[-1][1], high))
        else:
            merged.append((low, high))
    return merged


def _bargaining_objective(
    game: Game, thresholds: np.ndarray, discounts: np.ndarray
) -> Callable[[float], float]:
    """Return the game's bargaining objective as a function of the strictness."""
    rule = game.settings.bargaining

    if rule == "utilitarian":

        def utilitarian(strictness: float) -> float:
            gains = _margins(game, thresholds, np.array(strictness)) / (1.0 - discounts)
            return float(gains.sum())

        return utilitarian

    if rule == "nash-patience":
        with np.errstate(divide="ignore"):
            weights = np.where(discounts > 0, 1.0 / -np.log(np.maximum(discounts, 1e-300)), 0.0)
    else:
        weights = np.ones_like(discounts)
    if not np.any(weights > 0):
        weights = np.ones_like(discounts)

    def nash_product(strictness: float) -> float:
        gains = _margins(game, thresholds, np.array(strictness)) / (1.0 - discounts)
        total = 0.0
        for weight, gain in zip(weights, gains):
            if weight == 0:
                continue
            if gain <= 0:
                return -math.inf
            total += weight * math.log(gain)
        return total

    return nash_product


def _best_in_interval(
    objective: Callable[[float], float], low: float, high: float, breaks: np.ndarray
) -> tuple[float, float]:
    """Return (value, strictness) of the objective's maximum on [low, high].

    Between two curve points every gain is linear, so the Nash objective
    (a weighted sum of logs of linear functions) is concave there and the
    utilitarian one is linear. A golden-section search on each piece therefore
    finds that piece's maximum.
    """
    inner = breaks[(breaks > low) & (breaks < high)]
    edges = np.concatenate([[low], inner, [high]])

    best = (objective(low), low)
    for left, right in zip(edges[:-1], edges[1:]):
        for point in (_golden_section_max(objective, float(left), float(right)), float(right)):
            value = objective(point)
            if value > best[0]:
                best = (value, point)

    if best[0] == -math.inf:
        # No point gives every weighted party a positive gain (the zone is a
        # single point or a margin is zero throughout), so take the middle.
        middle = 0.5 * (low + high)
        return objective(middle), middle
    return best


def _golden_section_max(
    objective: Callable[[float], float], left: float, right: float, tolerance: float = 1e-10
) -> float:
    inverse_golden = (math.sqrt(5.0) - 1.0) / 2.0
    a, b = left, right
    c = b - inverse_golden * (b - a)
    d = a + inverse_golden * (b - a)
    value_c, value_d = objective(c), objective(d)
    while b - a > tolerance:
        if value_c >= value_d:
            b, d, value_d = d, c, value_c
            c = b - inverse_golden * (b - a)
            value_c = objective(c)
        else:
            a, c, value_c = c, d, value_d
            d = a + inverse_golden * (b - a)
            value_d = objective(d)
    return 0.5 * (a + b)
