"""Clock positions of a sunset treaty: segments, reviews and the withdrawal waiting period."""

import numpy as np

from engine.clock import build_clock
from engine.game import DurationRules, Rules, WithdrawalRules


def test_waiting_period_not_restarted_by_extension():
    # A six-period term with two extensions of two periods and a waiting
    # period of four. Notice is allowed from offset 4 of the term and at every
    # position of an extension, because the waiting period runs from entry
    # into force and an extension continues the same treaty.
    rules = Rules(duration=DurationRules(term=6, extension_length=2, extension_max=2),
                  withdrawal=WithdrawalRules(notice=1, earliest=4))
    clock = build_clock(rules)

    assert clock.segment.tolist() == [0] * 6 + [1] * 2 + [2] * 2
    assert clock.notice_allowed[:6].tolist() == [False] * 4 + [True] * 2
    assert np.all(clock.notice_allowed[clock.segment > 0])
