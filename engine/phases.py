"""Counters that the provisions add to the environment state.

The augmented state of the game is ``(clock, phase, s)``: ``s`` is the
environment state, ``clock`` counts periods since the current terms took effect
(for sunset, review and waiting-period rules) and ``phase`` records what is
running now:

* ``normal``: the treaty binds everyone; it remembers the escape uses left and
  the cooldown still to run.
* ``suspended``: one party has invoked the escape hatch and acts unregulated
  legally for the remaining suspension periods.
* ``notice``: a party has given notice of withdrawal; everyone stays bound for
  the remaining periods, then the treaty ends.

Transitions between phases are deterministic given the action profile; only
``s`` is random.  ``EXIT`` marks the end of the treaty (no treaty from then on).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.game import Rules

EXIT = -1

NORMAL = 0
SUSPENDED = 1
NOTICE = 2

PHASE_KIND_NAMES = {NORMAL: "normal", SUSPENDED: "suspended", NOTICE: "notice"}


@dataclass(frozen=True)
class PhaseTable:
    """Enumerated phases and their deterministic successors.

    Arrays are indexed by phase.  ``after_comply[p]`` is the next phase when
    everyone complies (or the suspended party keeps its legal suspension);
    ``after_escape[p]`` the phase after an escape invoked in ``p`` (-2 where no
    escape is possible); ``after_notice`` the phase after notice is given in a
    normal phase (``EXIT`` when the notice period has run out).
    """

    kind: np.ndarray
    invoker: np.ndarray
    uses_left: np.ndarray
    remaining: np.ndarray
    after_comply: np.ndarray
    after_escape: np.ndarray
    after_notice: int
    start: int
    labels: tuple[str, ...]

    @property
    def size(self) -> int:
        return len(self.kind)

    def normal_phases(self) -> np.ndarray:
        return np.flatnonzero(self.kind == NORMAL)


NO_ESCAPE = -2


def build_phase_table(rules: Rules, n_parties: int) -> PhaseTable:
    """Enumerate the phases that the provisions in ``rules`` can reach."""
    escape = rules.escape
    withdrawal = rules.withdrawal

    # Unlimited escape uses need no counter: a single "uses left" value stands
    # for "at least one more".
    if escape is None:
        use_levels = [0]
        cooldown_levels = [0]
    else:
        use_levels = [1] if escape.max_uses is None else list(range(escape.max_uses + 1))
        cooldown_levels = list(range(escape.cooldown + 1))

    kinds: list[int] = []
    invokers: list[int] = []
    uses: list[int] = []
    remaining: list[int] = []
    labels: list[str] = []
    index: dict[tuple, int] = {}

    def add(key: tuple, kind: int, invoker: int, use: int, rest: int, label: str) -> None:
        index[key] = len(kinds)
        kinds.append(kind)
        invokers.append(invoker)
        uses.append(use)
        remaining.append(rest)
        labels.append(label)

    for use in reversed(use_levels):
        for cooldown in cooldown_levels:
            add(("normal", use, cooldown), NORMAL, -1, use, cooldown,
                f"normal(uses={use}, cooldown={cooldown})")

    if escape is not None:
        unlimited = escape.max_uses is None
        for use in reversed(use_levels):
            # After an invocation one use fewer is left, unless uses are unlimited.
            if not unlimited and use == use_levels[-1]:
                continue
            for invoker in range(n_parties):
                for rest in range(1, escape.suspension):
                    add(("suspended", invoker, rest, use), SUSPENDED, invoker, use, rest,
                        f"suspended(party={invoker}, remaining={rest}, uses={use})")

    if withdrawal is not None:
        for rest in range(1, withdrawal.notice):
            add(("notice", rest), NOTICE, -1, 0, rest, f"notice(remaining={rest})")

    size = len(kinds)
    after_comply = np.empty(size, dtype=np.int64)
    after_escape = np.full((size, n_parties), NO_ESCAPE, dtype=np.int64)
    top_cooldown = 0 if escape is None else escape.cooldown

    for phase in range(size):
        kind = kinds[phase]
        use = uses[phase]
        if kind == NORMAL:
            cooldown = remaining[phase]
            after_comply[phase] = index[("normal", use, max(cooldown - 1, 0))]
            if escape is not None and use > 0 and cooldown == 0:
                left = use if escape.max_uses is None else use - 1
                for invoker in range(n_parties):
                    if escape.suspension > 1:
                        target = index[("suspended", invoker, escape.suspension - 1, left)]
                    else:
                        target = index[("normal", left, top_cooldown)]
                    after_escape[phase, invoker] = target
        elif kind == SUSPENDED:
            rest = remaining[phase]
            if rest > 1:
                after_comply[phase] = index[("suspended", invokers[phase], rest - 1, use)]
            else:
                after_comply[phase] = index[("normal", use, top_cooldown)]
        else:
            rest = remaining[phase]
            after_comply[phase] = index[("notice", rest - 1)] if rest > 1 else EXIT

    # Notice given in a normal period binds for that period and notice - 1 more.
    if withdrawal is None or withdrawal.notice <= 1:
        after_notice = EXIT
    else:
        after_notice = index[("notice", withdrawal.notice - 1)]

    return PhaseTable(
        kind=np.asarray(kinds, dtype=np.int64),
        invoker=np.asarray(invokers, dtype=np.int64),
        uses_left=np.asarray(uses, dtype=np.int64),
        remaining=np.asarray(remaining, dtype=np.int64),
        after_comply=after_comply,
        after_escape=after_escape,
        after_notice=after_notice,
        start=index[("normal", use_levels[-1], 0)],
        labels=tuple(labels),
    )
