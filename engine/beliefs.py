"""Parties' attitudes to an uncertain environment, and terms that rest on beliefs.

A party's ``beliefs`` may give a ``spread`` around its persistence (the stated
one, or the declared one): the party considers every persistence in
``[p - spread, p + spread]``, clipped to [0, 1].  Its ``attitude`` selects the one
it plans for:

* ``neutral`` (default): the stated persistence;
* ``cautious``: the persistence that leaves it the smallest gain from the treaty;
* ``optimistic``: the one that leaves it the largest.

The gain of a persistence is the party's margin over its no-treaty value,
averaged over the strictness grid, with the party strategic and the others
bound to comply; a strictness at which the party would not comply in the
first period, or would lose, counts as zero gain.  One number per persistence
is needed because the solver gives each party a single chain; the
persistence is chosen once, then the whole treaty is solved under it.

A party's terms are *fragile* when it accepts them under its own beliefs, but
under the declared chain the same equilibrium policy would give it a reason
to breach in some reachable state, or would leave it worse off than without
the treaty.  ``find_fragile`` names the party and that state.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from engine.clock import NO_NEXT
from engine.dynamic import COMPLY, NOTICE_CODE, TIE_TOLERANCE
from engine.environment import believed_matrix
from engine.game import Game
from engine.phases import EXIT, NORMAL, NOTICE
from engine.solve import Solver
from engine.spec import TreatySpec

# Persistence values tried across a party's spread, both ends included.
CANDIDATES = 9


def apply_attitudes(game: Game, spec: TreatySpec) -> Game:
    """Return ``game`` with each cautious or optimistic party planning for its chosen persistence."""
    parties = list(game.parties)
    changed = False
    for index, party_spec in enumerate(spec.parties):
        beliefs = party_spec.beliefs
        if beliefs is None or beliefs.attitude == "neutral" or beliefs.spread <= 0:
            continue
        persistence = choose_persistence(game, spec, index)
        matrix = believed_matrix(spec.environment, persistence, game.period_years)
        parties[index] = dataclasses.replace(parties[index], transition=matrix)
        changed = True
    return dataclasses.replace(game, parties=tuple(parties)) if changed else game


def stated_persistence(spec: TreatySpec, index: int) -> float:
    """Return the yearly persistence party ``index`` states, or the declared one."""
    beliefs = spec.parties[index].beliefs
    if beliefs is not None and beliefs.persistence is not None:
        return float(beliefs.persistence)
    environment = spec.environment
    if environment is None or environment.persistence is None:
        return 1.0
    return float(environment.persistence)


def candidate_persistences(centre: float, spread: float) -> np.ndarray:
    """Return the persistence values tried: an even grid over the clipped spread, and the centre."""
    low, high = max(centre - spread, 0.0), min(centre + spread, 1.0)
    return np.unique(np.concatenate([np.linspace(low, high, CANDIDATES), [centre]]))


def choose_persistence(game: Game, spec: TreatySpec, index: int) -> float:
    """Return the yearly persistence party ``index`` plans for under its attitude.

    Ties go to the candidate nearest the stated persistence, so a spread that
    changes nothing for the party leaves its beliefs as stated.
    """
    beliefs = spec.parties[index].beliefs
    centre = stated_persistence(spec, index)
    candidates = candidate_persistences(centre, beliefs.spread)
    gains = np.array([
        persistence_gain(game, spec, index, persistence) for persistence in candidates
    ])
    sign = 1.0 if beliefs.attitude == "optimistic" else -1.0
    best = np.max(sign * gains)
    tied = candidates[sign * gains >= best - 1e-12 * (1.0 + abs(best))]
    return float(tied[np.argmin(np.abs(tied - centre))])


def persistence_gain(game: Game, spec: TreatySpec, index: int, persistence: float) -> float:
    """Return party ``index``'s average gain over the strictness grid if it believed ``persistence``."""
    matrix = believed_matrix(spec.environment, persistence, game.period_years)
    parties = list(game.parties)
    parties[index] = dataclasses.replace(parties[index], transition=matrix)
    trial = dataclasses.replace(game, parties=tuple(parties))

    strategic = np.zeros(game.n_parties, dtype=bool)
    strategic[index] = True
    solver = Solver(trial, strategic)
    base = solver.solve()
    start_phase = solver.core.phases.start
    complies = base.own.policy.codes[0][:, start_phase, trial.start] == COMPLY
    no_treaty = solver.core.own.no_treaty[index, trial.start]
    margin = base.own.start_values[index] - no_treaty - parties[index].negotiation_cost
    return float(np.mean(np.where(complies, np.maximum(margin, 0.0), 0.0)))


def find_fragile(game: Game, strictness: float | None) -> list[dict]:
    """List the parties whose acceptance of ``strictness`` rests on beliefs the declared chain breaks.

    For each party the equilibrium policy chosen under the parties' beliefs is
    evaluated again under the declared chain.  Where that policy has everyone
    comply in a state reachable from the start, the party's value of
    complying is compared with its value of breaching.  Breaching pays twice
    its defection value, less its breach cost, then no treaty.  A shortfall
    means the treaty would unravel there, and the state with the largest
    shortfall is reported.
    A party that would lose from the treaty under the declared chain is
    reported with the constraint ``participation``.

    NOTE: only the breach deviation is checked, in normal and notice phases of
    the terms themselves; review positions (where the terms may change before
    anyone acts) and suspended phases are not checked.
    """
    if strictness is None or all(np.allclose(p.transition, game.transition) for p in game.parties):
        return []
    solver = Solver(game)
    columns = solver.evaluate([strictness])
    core = solver.core
    clock, phases = core.clock, core.phases
    codes = [code[0] for code in columns.own.policy.codes]
    reachable = _reachable(game, clock, phases, codes, columns.own.policy.extend)
    breach_own = core._bound_breach(core.own)
    breach_declared = core._bound_breach(core.declared)

    found = []
    for party in range(game.n_parties):
        worst = None
        for position in range(clock.size):
            if clock.review[position]:
                continue
            for phase in range(phases.size):
                if phases.kind[phase] not in (NORMAL, NOTICE):
                    continue
                for state in range(game.n_states):
                    if not reachable[position, phase, state] or codes[position][phase, state] != COMPLY:
                        continue
                    own = columns.own.values[position][party, 0, phase, state] - breach_own[party, state]
                    true = (columns.declared.values[position][party, 0, phase, state]
                            - breach_declared[party, state])
                    scale = 1.0 + abs(columns.declared.values[position][party, 0, phase, state])
                    if own >= -TIE_TOLERANCE * scale and true < -TIE_TOLERANCE * scale:
                        if worst is None or true < worst[0]:
                            worst = (true, position, state)
        if worst is not None:
            shortfall, position, state = worst
            found.append({"party": game.parties[party].name, "state": game.states[state],
                          "constraint": "incentive", "shortfall": float(-shortfall),
                          "year": position * game.period_years})
            continue

        negotiation = game.parties[party].negotiation_cost
        own_margin = (columns.own.start_values[party, 0] - negotiation
                      - core.own.no_treaty[party, game.start])
        true_margin = (columns.declared.start_values[party, 0] - negotiation
                       - core.declared.no_treaty[party, game.start])
        if own_margin >= 0 and true_margin < -TIE_TOLERANCE * (1.0 + abs(true_margin)):
            found.append({"party": game.parties[party].name, "state": game.states[game.start],
                          "constraint": "participation", "shortfall": float(-true_margin),
                          "year": 0.0})
    return found


def fragile_warning(entry: dict) -> str:
    """Return the warning line for one entry of ``find_fragile``."""
    if entry["constraint"] == "participation":
        return (f"fragile: {entry['party']} accepts the terms only under its own beliefs; under the "
                f"declared chain it would be better off without the treaty "
                f"(short by {entry['shortfall']:.4g})")
    return (f"fragile: {entry['party']} accepts the terms only under its own beliefs; under the "
            f"declared chain its incentive to comply fails in state `{entry['state']}` "
            f"(short by {entry['shortfall']:.4g}), where the treaty would unravel")


def _reachable(game: Game, clock, phases, codes, extend) -> np.ndarray:
    """Mark the (position, phase, state) of the terms that paths of the declared chain can reach."""
    seen = np.zeros((clock.size, phases.size, game.n_states), dtype=bool)
    stack = [(0, phases.start, game.start)]
    successors = [np.flatnonzero(game.transition[state] > 0) for state in range(game.n_states)]
    n = game.n_parties
    while stack:
        position, phase, state = stack.pop()
        if seen[position, phase, state]:
            continue
        seen[position, phase, state] = True
        code = codes[position][phase, state]
        if code == COMPLY:
            following = phases.after_comply[phase]
        elif NOTICE_CODE <= code < NOTICE_CODE + n:
            following = phases.after_notice if game.rules.withdrawal.notice > 0 else EXIT
        elif code >= NOTICE_CODE + n:
            following = phases.after_escape[phase, code - NOTICE_CODE - n]
        else:
            continue
        if following == EXIT:
            continue
        nxt = clock.next[position]
        for new_state in successors[state]:
            if nxt != NO_NEXT:
                stack.append((int(nxt), int(following), int(new_state)))
                continue
            segment = clock.segment[position]
            if segment in extend and extend[segment][0, new_state]:
                stack.append((clock.segment_starts[segment + 1], phases.start, int(new_state)))
    return seen
