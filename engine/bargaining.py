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

from engine.errors import SolverError


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


# Objective gap (``max_k c_k - 1``, an upper bound on the shortfall of the
# objective) at which a search that stalls on its support is accepted.
STALL_GAP = 1e-6


def nash_lottery(gains: np.ndarray, weights: np.ndarray, tolerance: float = 1e-13,
                 max_rounds: int = 500,
                 start: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray, float]:
    """Maximise the weighted Nash product over lotteries of candidate terms.

    ``gains`` (party, candidate) is each party's gain from each candidate,
    all of them acceptable.  A lottery ``p`` gives the expected gains
    ``u = gains @ p``, and the objective ``f(p) = sum_i w_i log u_i`` is
    concave in ``p``.  With positive weights it is strictly concave in ``u``,
    so the bargained gains are unique and move continuously with the
    candidates' gains, which neighbour-only lotteries do not guarantee.

    The optimality condition is ``c_k = sum_i w_i gains_ik / u_i <= 1`` for
    every candidate ``k``, with equality on the lottery's support: the line
    ``sum_i (w_i / u_i) x_i = 1`` supports the set of lottery gains at ``u``.
    An active-set method keeps a support, solves the optimality conditions on
    it by Newton steps, drops candidates whose probability falls to zero and
    adds the candidate that violates the condition most.  Within a support,
    moves that change no party's gain reduce it to at most one candidate per
    weighted party plus one.

    ``start`` (candidate indices, probabilities), such as the lottery of a
    nearby problem, is where the search begins when every weighted party
    gains there.  Otherwise it begins at an even mix of each party's best
    candidate.  The peak's gains are the same from either start, to the
    tolerance, and a start near the peak needs fewer Newton steps.

    Returns the support (candidate indices, largest probability first), the
    probabilities and the objective.  When no lottery gives every party with
    a positive weight a positive gain, the support is empty and the
    objective is ``-inf``.
    """
    gains = np.asarray(gains, dtype=float)
    weights = np.asarray(weights, dtype=float)
    weighted = weights > 0
    g = gains[weighted]
    w = weights[weighted] / weights[weighted].sum()
    candidates = gains.shape[1]
    empty = np.zeros(0, dtype=np.int64), np.zeros(0), -np.inf
    if candidates == 0 or not np.all(g.max(axis=1) > 0):
        return empty

    # The peak does not change when a party's gains are rescaled, and with each
    # party's best gain at 1 the peak gives party i a gain of at least w_i,
    # which keeps the Newton steps well scaled.
    scale = g.max(axis=1)
    g = g / scale[:, None]

    # Start from an even mix of each party's best candidate, where every party
    # gains, unless the given start has every party gain too.
    support = sorted(set(int(k) for k in np.argmax(g, axis=1)))
    probability = np.full(len(support), 1.0 / len(support))
    if start is not None and len(start[0]) and np.sum(start[1]) > 0:
        chances = np.asarray(start[1], dtype=float) / np.sum(start[1])
        if np.all(g[:, start[0]] @ chances > 0):
            support, probability = [int(k) for k in start[0]], chances

    def objective(u: np.ndarray) -> float:
        # The objective of the gains as given, not of the rescaled ones.
        return float(np.sum(w * np.log(u * scale)))

    def accept(u, support, probability):
        support, probability = _concentrate(g, u, support, probability)
        order = np.argsort(-probability, kind="stable")
        chosen = np.asarray(support, dtype=np.int64)[order]
        return chosen, probability[order], objective(u)

    tried = set()
    for _ in range(max_rounds):
        try:
            probability, support = _optimise_on_support(g, w, support, probability, tolerance)
        except np.linalg.LinAlgError:
            break
        u = g[:, support] @ probability
        scores = (w / u) @ g
        best = int(np.argmax(scores))
        # NOTE: with nearly dependent candidates (many terms whose values are
        # linear in strictness) the Newton steps can stall short of the peak.
        # A lottery within STALL_GAP of the peak's objective is then accepted,
        # and its gains may differ from the peak's along that flat direction.
        if scores[best] <= 1.0 + tolerance or (best in support and scores[best] <= 1.0 + STALL_GAP):
            return accept(u, support, probability)
        if best in support:
            break

        # Rounding in nearly collinear terms can make candidates take turns as
        # the worst violation, each dropped again at a probability near zero.
        # A support tried before, within STALL_GAP of the peak, is such a cycle.
        grown = frozenset(support + [best])
        if grown in tried and scores[best] <= 1.0 + STALL_GAP:
            return accept(u, support, probability)
        tried.add(grown)
        support = support + [best]
        probability = np.append(probability, 0.0)
    raise SolverError("the Nash bargaining over lotteries of terms did not settle, so no "
                      "renegotiation outcome is given")


def _concentrate(g, u, support, probability, tolerance=1e-12):
    """Give the peak ``u`` as one candidate, or as two candidates close together, where possible.

    Where the set of lottery gains has a flat face, several lotteries give
    the same gains ``u``.  The search may then end on one that mixes distant
    terms, such as even odds on the two extreme terms when a middle term
    gives the same gains.  The gains, and so every value, stay the same;
    the lottery reads more naturally.  Candidates are in the order of the
    terms, so the index distance measures how far apart two terms are.
    """
    size = g.shape[1]
    limit = tolerance * (1.0 + float(np.max(np.abs(u))))
    exact = np.flatnonzero(np.max(np.abs(g - u[:, None]), axis=0) <= limit)
    if exact.size:
        return [int(exact[0])], np.ones(1)

    current = max(support) - min(support) if len(support) > 1 else size
    first, second = np.triu_indices(size, k=1)
    close = (second - first) < current
    first, second = first[close], second[close]
    if first.size == 0:
        return support, probability
    # u = w g_first + (1 - w) g_second, with w read off the coordinate that differs most.
    difference = g[:, first] - g[:, second]
    axis = np.argmax(np.abs(difference), axis=0)
    pick = np.arange(first.size)
    spread = difference[axis, pick]
    usable = np.abs(spread) > limit
    weight = np.where(usable, (u[axis] - g[axis, second]) / np.where(usable, spread, 1.0), -1.0)
    error = np.max(np.abs(weight * difference + g[:, second] - u[:, None]), axis=0)
    valid = usable & (weight > 0.0) & (weight < 1.0) & (error <= limit)
    if not valid.any():
        return support, probability
    candidates = np.flatnonzero(valid)
    best = candidates[np.argmin(second[candidates] - first[candidates])]
    return [int(first[best]), int(second[best])], np.array([weight[best], 1.0 - weight[best]])


def _optimise_on_support(g, w, support, probability, tolerance, max_steps=100):
    """Maximise the Nash objective over lotteries on ``support``, dropping candidates that reach zero."""
    support = list(support)
    probability = np.array(probability, dtype=float)
    for _ in range(max_steps):
        columns = g[:, support]
        u = columns @ probability
        scores = (w / u) @ columns
        if np.max(np.abs(scores - 1.0)) <= tolerance and np.all(probability > 0):
            break

        # Newton step for the optimality conditions with the probabilities
        # summing to one: [H -1; 1' 0] [d; nu] = [-scores; 0].
        size = len(support)
        hessian = -(columns.T * (w / u**2)) @ columns
        system = np.zeros((size + 1, size + 1))
        system[:size, :size] = hessian
        system[:size, size] = -1.0
        system[size, :size] = 1.0
        rhs = np.concatenate([-scores, [0.0]])
        direction = np.linalg.lstsq(system, rhs, rcond=None)[0][:size]
        direction -= direction.mean()
        if np.any((probability <= 0.0) & (direction < 0.0)):
            # Newton would push a candidate just added below zero: move towards
            # the best candidate of the support instead, which raises the objective.
            direction = -probability.copy()
            direction[int(np.argmax(scores))] += 1.0
        change = columns @ direction

        if np.max(np.abs(change)) <= 1e-300:
            # The step changes nobody's gain: the support has redundant candidates.
            support, probability = _reduce_support(columns, support, probability)
            continue

        # Largest step that keeps every probability non-negative.
        shrinking = direction < 0
        limit = np.min(probability[shrinking] / -direction[shrinking]) if shrinking.any() else np.inf
        step = _line_search(u, change, w, min(1.0, limit))
        if step * np.max(np.abs(change)) <= 1e-16 * np.max(u):
            break
        probability = probability + step * direction
        if step >= limit:
            keep = np.flatnonzero(probability > 1e-15)
            if keep.size == 0:
                keep = np.array([int(np.argmax(probability))])
            support = [support[k] for k in keep]
            probability = probability[keep]
        probability = np.maximum(probability, 0.0)
        probability /= probability.sum()
        if len(support) > len(w) + 1:
            support, probability = _reduce_support(g[:, support], support, probability)
    return probability, support


def _line_search(u, change, w, limit):
    """Step in [0, limit] that maximises sum_i w_i log(u_i + t change_i), a concave function of t."""
    def slope(t):
        # Rounding can put a gain at exactly zero next to the first zero; the
        # slope is then infinite, which the bisection handles.
        with np.errstate(divide="ignore", invalid="ignore"):
            return float(np.sum(w * change / (u + t * change)))

    # Where a party's gain would reach zero the objective falls to -inf, and the
    # peak lies before that point.  The slope is not tested there, because it
    # would divide by a rounded zero.
    falling = change < 0
    zero = float(np.min(-u[falling] / change[falling])) if falling.any() else np.inf
    if zero > limit and slope(limit) >= 0.0:
        return limit
    low, high = 0.0, min(limit, zero)
    for _ in range(200):
        middle = 0.5 * (low + high)
        if middle <= low or middle >= high:
            break
        if slope(middle) > 0.0:
            low = middle
        else:
            high = middle
    return low


def _reduce_support(columns, support, probability):
    """Move along a direction that changes no gain until a probability reaches zero, and drop it."""
    size = len(support)
    constraints = np.vstack([columns, np.ones((1, size))])
    _, singular, vt = np.linalg.svd(constraints)
    rank = int(np.sum(singular > 1e-12 * max(1.0, singular.max())))
    if rank >= size:
        return support, probability
    null = vt[-1]
    if not (null < 0).any():
        null = -null
    shrinking = null < 0
    ratios = probability[shrinking] / -null[shrinking]
    step = float(np.min(ratios))
    probability = probability + step * null
    drop = int(np.flatnonzero(shrinking)[int(np.argmin(ratios))])
    keep = [k for k in range(size) if k != drop]
    probability = np.maximum(probability[keep], 0.0)
    return [support[k] for k in keep], probability / probability.sum()
