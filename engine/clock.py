"""The treaty clock: periods since the current terms took effect.

With a sunset clause the clock runs through the initial term and then through
each extension as consecutive segments; the end of a segment is an expiry node
where the parties extend, renegotiate or let the treaty lapse.  Without a
sunset clause the clock only needs to count far enough for the waiting period
before notice and for the review cycle, after which it repeats the last review
cycle for ever.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from engine.game import Rules

NO_NEXT = -1


@dataclass(frozen=True)
class Clock:
    """Clock positions and what happens at each.

    ``next[k]`` is the following position, or ``NO_NEXT`` where segment
    ``segment[k]`` ends at an expiry node.  ``review[k]`` marks positions that
    open with an amendment node; ``notice_allowed[k]`` whether the waiting
    period before notice has passed.  ``cyclic`` is True when the clock never
    ends (no sunset clause), so values must be found as a fixed point.
    """

    next: np.ndarray
    segment: np.ndarray
    segment_starts: tuple[int, ...]
    review: np.ndarray
    notice_allowed: np.ndarray
    cyclic: bool

    @property
    def size(self) -> int:
        return len(self.next)

    @property
    def segments(self) -> int:
        return len(self.segment_starts)


def build_clock(rules: Rules) -> Clock:
    """Lay out the clock positions that ``rules`` need."""
    review_every = rules.review.every if rules.review is not None else 0
    earliest = rules.withdrawal.earliest if rules.withdrawal is not None else 0

    if rules.duration is not None:
        return _sunset_clock(rules, review_every, earliest)

    if review_every > 0:
        # Two full review cycles past the waiting period: the last cycle repeats,
        # and every position in it is past the waiting period.
        size = review_every * (math.ceil(earliest / review_every) + 2)
        loop_back = size - review_every
    else:
        size = earliest + 1
        loop_back = size - 1

    positions = np.arange(size)
    following = positions + 1
    following[-1] = loop_back
    review = np.zeros(size, dtype=bool)
    if review_every > 0:
        review = (positions % review_every == 0) & (positions >= review_every)

    return Clock(
        next=following,
        segment=np.zeros(size, dtype=np.int64),
        segment_starts=(0,),
        review=review,
        notice_allowed=positions >= earliest,
        cyclic=True,
    )


def _sunset_clock(rules: Rules, review_every: int, earliest: int) -> Clock:
    duration = rules.duration
    lengths = [duration.term] + [duration.extension_length] * duration.extension_max
    lengths = [length for length in lengths if length > 0]

    following: list[int] = []
    segment: list[int] = []
    review: list[bool] = []
    notice_allowed: list[bool] = []
    starts: list[int] = []

    for index, length in enumerate(lengths):
        starts.append(len(following))
        for offset in range(length):
            position = len(following)
            following.append(position + 1 if offset < length - 1 else NO_NEXT)
            segment.append(index)
            review.append(review_every > 0 and offset > 0 and offset % review_every == 0)
            # The waiting period runs from entry into force; extensions come later.
            notice_allowed.append(index > 0 or offset >= earliest)

    return Clock(
        next=np.asarray(following, dtype=np.int64),
        segment=np.asarray(segment, dtype=np.int64),
        segment_starts=tuple(starts),
        review=np.asarray(review, dtype=bool),
        notice_allowed=np.asarray(notice_allowed, dtype=bool),
        cyclic=False,
    )
