"""Weighted Nash bargaining over lotteries of terms, in plain loops, for the reference solver.

A lottery ``p`` over candidate terms gives party ``i`` the expected gain
``u_i = sum_k p_k g_ik``, so the set of lottery gains is the convex hull of
the candidates' gains.  The weighted Nash objective
``f(p) = sum_i w_i log u_i`` (weights summing to 1) is concave, and a lottery
maximises it over that hull exactly when

    c_k = sum_i w_i g_ik / u_i <= 1    for every candidate k,

with equality on the lottery's support (the hyperplane
``sum_i (w_i / u_i) x_i = 1`` supports the hull at ``u``).  With positive
weights the optimal gains ``u`` are unique.

The search here does not follow the engine's active-set method.  It
enumerates supports from the smallest up and accepts the first one whose own
optimum passes the condition above against every candidate:

* a single term, the one with the largest objective;
* pairs, triples and so on of undominated terms, up to one term per party.
  The optimum lies on a face of the hull of dimension at most ``n - 1``, so
  it is a mix of at most ``n`` affinely independent terms.

On a support the objective is maximised over the affine hull of its terms
by damped Newton steps.  A support whose optimum needs a zero or negative
probability, or whose terms are affinely dependent, is skipped, because a
smaller support gives the same gains.
"""

from __future__ import annotations

import math
from itertools import combinations

# Largest excess of c_k over 1 accepted by the optimality check.
OPTIMALITY_TOLERANCE = 1e-9

MAX_NEWTON_STEPS = 100


def nash_objective(gains, weights) -> float:
    """Return ``sum_i w_i log gains_i``, or -inf where a party gains nothing."""
    total = 0.0
    for gain, weight in zip(gains, weights):
        if gain <= 0.0:
            return -math.inf
        total += weight * math.log(gain)
    return total


def undominated(candidates: dict) -> list:
    """Return the keys of ``candidates`` (key: gain vector) that no other candidate dominates.

    A dominated term never carries probability in the optimum, because
    moving its probability to the term that dominates it raises the
    objective.  Of several terms with equal gains only the first is kept.
    """
    keys = sorted(candidates)
    undominated_keys = []
    for key in keys:
        gains = candidates[key]
        dominated = False
        for other in keys:
            if other == key:
                continue
            rival = candidates[other]
            at_least = all(r >= g for r, g in zip(rival, gains))
            equal = all(r == g for r, g in zip(rival, gains))
            if at_least and (not equal or other < key):
                dominated = True
                break
        if not dominated:
            undominated_keys.append(key)
    return undominated_keys


def lottery_gains(candidates: dict, support, probabilities) -> list[float]:
    """Return the expected gain of each party under a lottery."""
    parties = len(next(iter(candidates.values())))
    gains = [0.0] * parties
    for key, chance in zip(support, probabilities):
        for i in range(parties):
            gains[i] += chance * candidates[key][i]
    return gains


def is_optimal(candidates: dict, weights, gains) -> bool:
    """Check the optimality condition ``c_k <= 1`` of the lottery gains ``gains`` against every candidate."""
    for values in candidates.values():
        score = 0.0
        for value, weight, gain in zip(values, weights, gains):
            score += weight * value / gain
        if score > 1.0 + OPTIMALITY_TOLERANCE:
            return False
    return True


def solve_linear(matrix, rhs):
    """Solve ``matrix x = rhs`` by Gaussian elimination with partial pivoting, or return None if singular."""
    size = len(rhs)
    rows = [list(matrix[r]) + [rhs[r]] for r in range(size)]
    largest = max(abs(entry) for row in matrix for entry in row)
    if largest == 0.0:
        return None
    for column in range(size):
        pivot = max(range(column, size), key=lambda r: abs(rows[r][column]))
        if abs(rows[pivot][column]) <= 1e-13 * largest:
            return None
        rows[column], rows[pivot] = rows[pivot], rows[column]
        for r in range(column + 1, size):
            factor = rows[r][column] / rows[column][column]
            for c in range(column, size + 1):
                rows[r][c] -= factor * rows[column][c]
    solution = [0.0] * size
    for r in range(size - 1, -1, -1):
        total = rows[r][size]
        for c in range(r + 1, size):
            total -= rows[r][c] * solution[c]
        solution[r] = total / rows[r][r]
    return solution


def optimise_on_support(candidates: dict, weights, support):
    """Maximise the objective over the affine hull of the ``support`` terms.

    Returns the probabilities, or None when the optimum there is not a
    proper lottery on the whole support (a probability at or below zero) or
    the terms are affinely dependent.
    """
    parties = len(weights)
    size = len(support)
    if size == 1:
        gains = candidates[support[0]]
        return [1.0] if all(gain > 0.0 for gain in gains) else None

    # Free probabilities q_1 .. q_{m-1}; the last term takes 1 - sum(q), so
    # u = g_last + sum_k q_k (g_k - g_last).
    last = candidates[support[-1]]
    offsets = [[candidates[key][i] - last[i] for i in range(parties)] for key in support[:-1]]
    free = [1.0 / size] * (size - 1)

    def gains_at(q):
        return [last[i] + sum(q[k] * offsets[k][i] for k in range(size - 1)) for i in range(parties)]

    gains = gains_at(free)
    value = nash_objective(gains, weights)
    if value == -math.inf:
        return None
    for _ in range(MAX_NEWTON_STEPS):
        gradient = [sum(weights[i] * offsets[k][i] / gains[i] for i in range(parties))
                    for k in range(size - 1)]
        hessian = [[-sum(weights[i] * offsets[k][i] * offsets[l][i] / gains[i] ** 2
                         for i in range(parties))
                    for l in range(size - 1)] for k in range(size - 1)]
        step = solve_linear(hessian, [-entry for entry in gradient])
        if step is None:
            return None

        # The Newton decrement bounds the objective still to gain.  Once it
        # is tiny, full steps converge quadratically, and they are taken
        # without a line search, because the objective's rounding would hide
        # the last digits of the probabilities.
        decrement = sum(gradient[k] * step[k] for k in range(size - 1))
        if decrement <= 1e-28:
            break
        if decrement <= 1e-12:
            trial = [free[k] + step[k] for k in range(size - 1)]
            trial_gains = gains_at(trial)
            if any(gain <= 0.0 for gain in trial_gains):
                return None
            free, gains, value = trial, trial_gains, nash_objective(trial_gains, weights)
            if max(abs(entry) for entry in step) <= 1e-15:
                break
            continue

        # Backtrack until the step keeps every gain positive and raises the
        # objective enough.
        scale = 1.0
        moved = False
        while scale > 1e-12:
            trial = [free[k] + scale * step[k] for k in range(size - 1)]
            trial_gains = gains_at(trial)
            trial_value = nash_objective(trial_gains, weights)
            if trial_value > value and trial_value >= value + 0.25 * scale * decrement:
                free, gains, value, moved = trial, trial_gains, trial_value, True
                break
            scale *= 0.5
        if not moved:
            break

    # Steps that did not settle leave a probability outside (0, 1], which is
    # rejected here, or a lottery that must still pass the caller's optimality check.
    probabilities = free + [1.0 - sum(free)]
    if any(chance <= 0.0 for chance in probabilities):
        return None
    return probabilities


def nash_lottery(candidates: dict, weights, hint=()):
    """Find the lottery of candidate terms that maximises the weighted Nash objective.

    Parameters
    ----------
    candidates : dict
        Maps each term's key (a column index) to the parties' gains, all
        acceptable to every party.
    weights : sequence of float
        Positive bargaining weights, one per party in the gain vectors.
    hint : sequence, optional
        A support to try first, such as the one found at the previous
        renegotiation value.

    Returns
    -------
    support, probabilities : list, list of float
        The lottery, largest probability first.

    Raises
    ------
    ValueError
        If some party gains nothing from every candidate, so that no lottery
        gives everyone a gain.
    RuntimeError
        If no support of up to one term per party passes the optimality check.
    """
    total = sum(weights)
    weights = [weight / total for weight in weights]
    parties = len(weights)
    for i in range(parties):
        if not any(gains[i] > 0.0 for gains in candidates.values()):
            raise ValueError(f"party {i} gains nothing from every acceptable term, so no "
                             "lottery gives every party a gain")

    frontier = undominated(candidates)
    best_single = max(frontier, key=lambda key: nash_objective(candidates[key], weights))

    def supports():
        if hint and all(key in candidates for key in hint):
            yield tuple(sorted(hint))
        yield (best_single,)
        for size in range(2, min(parties, len(frontier)) + 1):
            yield from combinations(frontier, size)

    for support in supports():
        probabilities = optimise_on_support(candidates, weights, list(support))
        if probabilities is None:
            continue
        gains = lottery_gains(candidates, support, probabilities)
        if is_optimal(candidates, weights, gains):
            order = sorted(range(len(support)), key=lambda k: -probabilities[k])
            return [support[k] for k in order], [probabilities[k] for k in order]
    raise RuntimeError(f"the Nash bargaining search failed: no lottery over at most {parties} terms "
                       f"passed the optimality check among {len(candidates)} acceptable terms")
