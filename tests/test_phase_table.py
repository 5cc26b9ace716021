"""The phase table of the escape hatch: uses and cooldown count for the treaty as a whole."""

import numpy as np

from engine.game import EscapeRules, Rules
from engine.phases import NO_ESCAPE, NORMAL, build_phase_table


def escape_table(max_uses, cooldown, suspension=2, parties=3):
    trigger = np.ones((parties, 1), dtype=bool)
    rules = Rules(escape=EscapeRules(trigger=trigger, suspension=suspension, cooldown=cooldown,
                                     max_uses=max_uses))
    return build_phase_table(rules, parties)


def follow_suspension(table, phase):
    """Return the normal phase reached when a suspension that starts in ``phase`` runs out."""
    while table.kind[phase] != NORMAL:
        phase = int(table.after_comply[phase])
    return phase


def test_single_use_shared():
    # With max_uses 1, party 0's escape leaves no use for parties 1 and 2.
    table = escape_table(max_uses=1, cooldown=0)
    start = table.start
    after = follow_suspension(table, int(table.after_escape[start, 0]))

    assert table.uses_left[start] == 1
    assert table.uses_left[after] == 0
    assert np.all(table.after_escape[after] == NO_ESCAPE)


def test_cooldown_blocks_every_party():
    # After party 0's suspension, two cooldown periods pass before anyone,
    # party 0 included, may invoke again; then every party may.
    table = escape_table(max_uses=None, cooldown=2)
    phase = follow_suspension(table, int(table.after_escape[table.start, 0]))

    for _ in range(2):
        assert table.remaining[phase] > 0
        assert np.all(table.after_escape[phase] == NO_ESCAPE)
        phase = int(table.after_comply[phase])
    assert table.remaining[phase] == 0
    assert np.all(table.after_escape[phase] != NO_ESCAPE)


def test_phase_count_linear_in_parties():
    # One count for the treaty: normal phases do not depend on the parties,
    # and suspended phases grow with the number of possible invokers only.
    two, five = escape_table(max_uses=2, cooldown=1, parties=2), escape_table(max_uses=2, cooldown=1, parties=5)

    assert np.sum(two.kind == NORMAL) == np.sum(five.kind == NORMAL) == 3 * 2
    assert np.sum(two.kind != NORMAL) == 2 * 2 * 1
    assert np.sum(five.kind != NORMAL) == 5 * 2 * 1
