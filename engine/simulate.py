"""Monte Carlo simulation of a solved treaty on sampled paths of the declared chain.

The exact forward propagation in ``engine.survival`` pushes probability mass
through the equilibrium policy.  This module follows the same transitions on
individual sampled paths, so that it can also report what the mass cannot:
the distribution of each party's discounted payoff and the sampling error of
every frequency.

Each path carries its augmented state as integers: the strictness column in
force, the clock position, the phase and the environment state, plus a status
(in force, renegotiating after expiry, ended).  One period does, in order:

1. at a review position the policy may amend the terms (the amendment cost is
   paid);
2. a path that is renegotiating after expiry receives the no-treaty payoff
   ``b_i(s)``; when its delay has run out the new terms take effect next period;
3. every path in force plays the profile code of the policy: comply, notice by
   ``j``, escape by ``j`` or breakdown, with the stage payoffs and lump-sum costs
   of the solver. The paths whose treaty is still alive are then counted as
   alive in this period, the same count as ``alive`` of the exact
   propagation;
4. the environment moves: the next state is found by looking a uniform draw up
   in the cumulative row of the declared transition matrix;
5. the clock and phase advance; at the end of a term the parties extend,
   renegotiate (paying the renegotiation cost) or let the treaty lapse,
   decided in the new state.  Where the bargaining ties between two sets of
   terms, a second uniform draw picks one with the solver's lottery weights.

Once a path's treaty has ended, the rest of its payoff is the no-treaty value
``V^P_i`` of the state where it ended, added exactly and discounted to period 0.
Paths still running when every party's discount weight has fallen below
``TAIL_WEIGHT`` receive the exact continuation value of their augmented state
from the solver's values under the declared chain.  The mean payoff is
therefore an unbiased estimate of the exact start value.

Random numbers: the paths are cut into blocks of ``BLOCK_SIZE``.  Block ``k``
draws from the ``k``-th child of ``numpy.random.SeedSequence(seed)`` and takes
exactly two uniforms per path and period, whatever happens on the path.  The
results do not depend on how many worker processes share the blocks, and two
designs with the same chain simulated with the same seed see the same
environment paths (common random numbers).
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from engine.cli_options import StoreOnce
from engine.clock import NO_NEXT
from engine.dynamic import BREAKDOWN, COMPLY, NOTICE_CODE
from engine.errors import count_text
from engine.game import Game
from engine.heartbeat import ProgressNotes
from engine.phases import EXIT, SUSPENDED
from engine.report import NODE_SUCCESS
from engine.score import STRICTNESS_DECIMALS, Score
from engine.solve import Solver, combine_policies
from engine.survival import period_at_year
from engine.worker_pool import WorkerPool, worker_count_problem

BLOCK_SIZE = 10_000
DEFAULT_PATHS = 10_000
# Paths are simulated until every party's discount weight is below this; the
# exact continuation value covers the rest.
TAIL_WEIGHT = 1e-4
# Upper bound on simulated periods, whatever the discount factors.
MAX_PERIODS = 20_000
# Two-sided 95% normal quantile for the survival bands.
Z95 = 1.959963984540054

ENDED = 0
IN_FORCE = 1
RENEGOTIATING = 2


@dataclass
class PathModel:
    """Everything a worker needs to simulate paths, as plain arrays.

    Column 0 is the evaluated strictness; columns ``1..`` are the strictness
    grid, to which review amendments and renegotiation move a path.
    """

    n_parties: int
    start_state: int
    start_phase: int
    cumulative: np.ndarray          # (state, state) cumulative rows of the declared chain
    codes: np.ndarray               # (position, column, phase, state) profile codes
    amend: np.ndarray               # (position, column, normal phase, state), -1 status quo
    normal_index: np.ndarray        # phase -> index among the normal phases, -1 otherwise
    review: np.ndarray              # (position,) review node at the start of the period
    next_position: np.ndarray
    segment: np.ndarray
    segment_starts: np.ndarray
    extend: np.ndarray              # (segment, column, state), probability of extending, 0 where none
    node_support: np.ndarray        # (outcome, state) columns agreed at renegotiation, -1 lapse
    node_cumulative: np.ndarray     # (outcome, state) cumulative probability of those outcomes
    phase_kind: np.ndarray
    invoker: np.ndarray
    after_comply: np.ndarray
    after_escape: np.ndarray        # (phase, party)
    after_notice: int
    regime: np.ndarray              # (party, column)
    suspension: np.ndarray          # (invoker, party, column, state); zeros without escape
    defection: np.ndarray           # (party, state)
    discount: np.ndarray            # (party,)
    no_treaty: np.ndarray           # (party, state) V^P under the declared chain
    expected_no_treaty: np.ndarray  # (party, state) (Q V^P)(s)
    values: np.ndarray              # (position, party, column, phase, state) declared values
    waiting: np.ndarray             # (delay, party, column, state) value while renegotiating
    withdrawal_cost: float
    notice: int
    escape_cost: float
    escape_transfer: bool
    renegotiation_cost: float
    delay: int
    amendment_cost: float


@dataclass
class BlockResult:
    """Raw counts and payoffs of one block of paths."""

    payoffs: np.ndarray             # (party, paths)
    alive: np.ndarray               # (period,) paths alive during the period, after its breakdowns
    breakdown: np.ndarray
    withdrawal: np.ndarray
    lapse: np.ndarray
    escape: np.ndarray
    review_reached: np.ndarray
    review_adopted: np.ndarray
    expiry_reached: np.ndarray
    expiry_renewed: np.ndarray
    escape_uses: np.ndarray         # (paths,) escapes invoked within the report horizon


# The per-period counters of ``BlockResult``, which blocks add up.
_COUNTER_NAMES = ("alive", "breakdown", "withdrawal", "lapse", "escape", "review_reached",
                  "review_adopted", "expiry_reached", "expiry_renewed")


def build_path_model(game: Game, strictness: float) -> tuple[PathModel, np.ndarray]:
    """Solve ``game`` and collect the policy at ``strictness`` and on the grid.

    The policy is each party's equilibrium policy under its own beliefs; the
    values are that policy's values under the declared chain, because the
    paths follow that chain.  The exact start values under the declared chain,
    shape (party,), are returned too: the mean payoffs estimate them.
    """
    solver = Solver(game)
    base = solver.solve()
    evaluated = solver.evaluate([strictness])
    core = solver.core
    clock = core.clock
    phases = core.phases
    n, states = core.n, core.n_states

    policy = combine_policies(evaluated.own.policy, base.own.policy)
    gammas = np.concatenate([evaluated.gammas, base.gammas])
    columns = len(gammas)
    codes = np.stack(policy.codes).astype(np.int8)

    normal = phases.normal_phases()
    normal_index = np.full(phases.size, -1, dtype=np.int64)
    normal_index[normal] = np.arange(len(normal))
    amend = np.full((clock.size, columns, len(normal), states), -1, dtype=np.int64)
    for position, choice in policy.amend.items():
        amend[position] = choice

    extend = np.zeros((clock.segments, columns, states))
    for segment, choice in policy.extend.items():
        extend[segment] = choice

    regime = core.regime_values(gammas)
    suspension = np.zeros((n, n, columns, states))
    if core.rules.escape is not None:
        for invoker in range(n):
            suspension[invoker] = core._suspension_stage(invoker, regime)

    values = np.stack([
        np.concatenate([evaluated.declared.values[k], base.declared.values[k]], axis=1)
        for k in range(clock.size)
    ])
    duration = core.rules.duration
    delay = duration.delay if duration is not None else 0
    node_support = np.full((1, states), -1, dtype=np.int64)
    node_cumulative = np.ones((1, states))
    node = solver.node_own
    if node is not None:
        node_support = np.asarray(node.support, dtype=np.int64)
        node_cumulative = np.cumsum(node.probability, axis=0)
        # Rounding must not leave a draw just below one without an outcome: the
        # last outcome of each state's lottery takes every draw beyond it.
        rows = np.arange(len(node_support))[:, None]
        last = np.max(np.where(node.probability > 0, rows, 0), axis=0)
        node_cumulative[rows >= last[None, :]] = np.inf
    waiting = _waiting_values(core.declared, core.defection, core.delta, values, phases.start, delay)

    withdrawal = core.rules.withdrawal
    escape = core.rules.escape
    review = core.rules.review
    model = PathModel(
        n_parties=n,
        start_state=game.start,
        start_phase=phases.start,
        cumulative=np.cumsum(game.transition, axis=1),
        codes=codes,
        amend=amend,
        normal_index=normal_index,
        review=np.asarray(clock.review, dtype=bool),
        next_position=np.asarray(clock.next, dtype=np.int64),
        segment=np.asarray(clock.segment, dtype=np.int64),
        segment_starts=np.asarray(clock.segment_starts, dtype=np.int64),
        extend=extend,
        node_support=node_support,
        node_cumulative=node_cumulative,
        phase_kind=phases.kind,
        invoker=phases.invoker,
        after_comply=phases.after_comply,
        after_escape=phases.after_escape,
        after_notice=int(phases.after_notice),
        regime=regime,
        suspension=suspension,
        defection=core.defection,
        discount=core.delta,
        no_treaty=core.declared.no_treaty,
        expected_no_treaty=core.declared.expected_no_treaty,
        values=values,
        waiting=waiting,
        withdrawal_cost=withdrawal.cost if withdrawal is not None else 0.0,
        notice=withdrawal.notice if withdrawal is not None else 0,
        escape_cost=escape.cost if escape is not None else 0.0,
        escape_transfer=escape is not None and escape.cost_type == "transfer",
        renegotiation_cost=duration.renegotiation_cost if duration is not None else 0.0,
        delay=delay,
        amendment_cost=review.amendment_cost if review is not None else 0.0,
    )
    return model, evaluated.declared.start_values[:, 0].copy()


def _waiting_values(chain, defection, delta, values, start_phase, delay) -> np.ndarray:
    """Value of renegotiating with ``r`` periods of delay left, shape (delay, party, column, state).

    With one period left a path receives ``b(s)`` now and the new terms from the
    next period, so ``W_1 = b + delta Q V_fresh``.  Each further period of
    delay adds one more no-treaty period in front: ``W_r = b + delta Q W_{r-1}``.
    """
    n, columns = values.shape[1], values.shape[2]
    states = defection.shape[1]
    waiting = np.zeros((max(delay, 0), n, columns, states))
    following = values[0][:, :, start_phase, :]
    for remaining in range(delay):
        expected = np.einsum("ist,igt->igs", chain.transition, following)
        waiting[remaining] = defection[:, None, :] + delta[:, None, None] * expected
        following = waiting[remaining]
    return waiting


def periods_to_simulate(discount: np.ndarray, report_periods: int) -> int:
    """Return how many periods to follow: the report horizon, and until discounting hides the rest."""
    largest = float(np.max(discount))
    if largest <= 0.0:
        needed = 1
    else:
        needed = math.ceil(math.log(TAIL_WEIGHT) / math.log(largest))
    return int(min(max(report_periods, needed), max(MAX_PERIODS, report_periods)))


def simulate_block(model: PathModel, seed: np.random.SeedSequence, paths: int,
                   report_periods: int, total_periods: int) -> BlockResult:
    """Simulate ``paths`` paths with the random numbers of ``seed``."""
    rng = np.random.default_rng(seed)
    n = model.n_parties
    counters = {name: np.zeros(report_periods + 1, dtype=np.int64) for name in _COUNTER_NAMES}

    status = np.full(paths, IN_FORCE, dtype=np.int8)
    column = np.zeros(paths, dtype=np.int64)
    position = np.zeros(paths, dtype=np.int64)
    phase = np.full(paths, model.start_phase, dtype=np.int64)
    state = np.full(paths, model.start_state, dtype=np.int64)
    countdown = np.zeros(paths, dtype=np.int64)
    payoffs = np.zeros((n, paths))
    escape_uses = np.zeros(paths, dtype=np.int64)
    weight = np.ones(n)
    delta = model.discount

    def count(name: str, period: int, amount: int, paths_index: np.ndarray | None = None) -> None:
        if period <= report_periods:
            counters[name][period] += amount
        if paths_index is not None and period < report_periods:
            escape_uses[paths_index] += 1

    def end(paths_index: np.ndarray, value: np.ndarray) -> None:
        """End the treaty on these paths, adding the discounted no-treaty remainder ``value``."""
        payoffs[:, paths_index] += value
        status[paths_index] = ENDED

    for t in range(total_periods):
        # Two draws per path and period, used or not, keep paths aligned across
        # designs: one moves the environment, one settles a tied renegotiation.
        uniforms, lottery = rng.random((2, paths))
        if not (status != ENDED).any():
            break

        # 1. Review nodes open the period.
        if model.review.any():
            at_review = (status == IN_FORCE) & model.review[position] & (model.normal_index[phase] >= 0)
            index = np.flatnonzero(at_review)
            if index.size:
                choice = model.amend[position[index], column[index], model.normal_index[phase[index]],
                                     state[index]]
                adopted = index[choice >= 0]
                column[adopted] = choice[choice >= 0] + 1
                payoffs[:, adopted] -= (weight * model.amendment_cost)[:, None]
                count("review_reached", t, index.size)
                count("review_adopted", t, adopted.size)

        acting = np.flatnonzero(status == IN_FORCE)

        # 2. Renegotiation after expiry: no treaty while the delay runs.
        waiting = np.flatnonzero(status == RENEGOTIATING)
        if waiting.size:
            payoffs[:, waiting] += weight[:, None] * model.defection[:, state[waiting]]
            countdown[waiting] -= 1
            starting = waiting[countdown[waiting] == 0]
            status[starting] = IN_FORCE
            position[starting] = 0
            phase[starting] = model.start_phase

        # 3. Paths in force play the policy.
        moving, next_phase = _play(model, acting, column, position, phase, state, payoffs,
                                       weight, t, count, end)

        # Alive in period t: not ended by an earlier period's exit or lapse, nor
        # by this period's breakdown or immediate withdrawal.
        count("alive", t, int(np.count_nonzero(status != ENDED)))

        # 4. The environment moves, for every path.
        new_state = np.minimum((uniforms[:, None] >= model.cumulative[state]).sum(axis=1),
                               model.cumulative.shape[0] - 1)

        # 5. Clock and phase advance; ends of notice and expiry nodes.
        _advance(model, moving, next_phase, column, position, phase, state, new_state, lottery,
                 status, countdown, payoffs, weight, t, count, end)

        state = new_state
        weight = weight * delta

    # Paths still running get the exact continuation value of their augmented state.
    running = np.flatnonzero(status == IN_FORCE)
    if running.size:
        payoffs[:, running] += weight[:, None] * model.values[
            position[running], :, column[running], phase[running], state[running]].T
    waiting = np.flatnonzero(status == RENEGOTIATING)
    if waiting.size:
        payoffs[:, waiting] += weight[:, None] * model.waiting[
            countdown[waiting] - 1, :, column[waiting], state[waiting]].T

    trimmed = {name: array[:report_periods] for name, array in counters.items()}
    return BlockResult(payoffs=payoffs, escape_uses=escape_uses, **trimmed)


def _play(model, acting, column, position, phase, state, payoffs, weight, t, count, end):
    """Apply the profile codes of the policy on the paths ``acting``.

    Returns the paths whose treaty continues into the next period and their
    next phase (``EXIT`` where a notice period has run out).
    """
    n = model.n_parties
    if acting.size == 0:
        return acting, acting
    c, k, ph, s = column[acting], position[acting], phase[acting], state[acting]
    codes = model.codes[k, c, ph, s]
    stage = np.zeros((n, acting.size))
    next_phase = np.full(acting.size, EXIT, dtype=np.int64)
    moves = np.zeros(acting.size, dtype=bool)

    broke = codes == BREAKDOWN
    if broke.any():
        end(acting[broke], weight[:, None] * model.no_treaty[:, s[broke]])
        count("breakdown", t, int(broke.sum()))

    comply = codes == COMPLY
    suspended = comply & (model.phase_kind[ph] == SUSPENDED)
    ordinary = comply & ~suspended
    stage[:, ordinary] = model.regime[:, c[ordinary]]
    if suspended.any():
        stage[:, suspended] = model.suspension[model.invoker[ph[suspended]], :, c[suspended],
                                               s[suspended]].T
    next_phase[comply] = model.after_comply[ph[comply]]
    moves |= comply

    notice = (codes >= NOTICE_CODE) & (codes < NOTICE_CODE + n)
    if notice.any():
        giver = codes[notice] - NOTICE_CODE
        np.subtract.at(payoffs, (giver, acting[notice]), weight[giver] * model.withdrawal_cost)
        if model.notice == 0:
            end(acting[notice], weight[:, None] * model.no_treaty[:, s[notice]])
            count("withdrawal", t, int(notice.sum()))
        else:
            stage[:, notice] = model.regime[:, c[notice]]
            next_phase[notice] = model.after_notice
            moves |= notice

    escape = codes >= NOTICE_CODE + n
    if escape.any():
        invoker = codes[escape] - NOTICE_CODE - n
        stage[:, escape] = model.suspension[invoker, :, c[escape], s[escape]].T
        stage[invoker, np.flatnonzero(escape)] -= model.escape_cost
        if model.escape_transfer:
            share = model.escape_cost / (n - 1)
            others = np.ones((n, int(escape.sum())), dtype=bool)
            others[invoker, np.arange(invoker.size)] = False
            stage[:, escape] += np.where(others, share, 0.0)
        next_phase[escape] = model.after_escape[ph[escape], invoker]
        moves |= escape
        count("escape", t, int(escape.sum()), acting[escape])

    payoffs[:, acting[moves]] += weight[:, None] * stage[:, moves]
    return acting[moves], next_phase[moves]


def _advance(model, moving, next_phase, column, position, phase, state, new_state, lottery,
             status, countdown, payoffs, weight, t, count, end):
    """Move the continuing paths to their next clock position, with expiry nodes."""
    if moving.size == 0:
        return
    delta = model.discount
    exiting = next_phase == EXIT
    if exiting.any():
        # The notice has run out: no treaty from the next period on.
        leaving = moving[exiting]
        end(leaving, (weight * delta)[:, None] * model.expected_no_treaty[:, state[leaving]])
        count("withdrawal", t, int(exiting.sum()))
    moving, next_phase = moving[~exiting], next_phase[~exiting]

    following = model.next_position[position[moving]]
    expiring = following == NO_NEXT
    staying = moving[~expiring]
    position[staying] = following[~expiring]
    phase[staying] = next_phase[~expiring]

    expired = moving[expiring]
    if expired.size == 0:
        return
    count("expiry_reached", t + 1, expired.size)
    segment = model.segment[position[expired]]
    s_new = new_state[expired]
    has_next = segment + 1 < len(model.segment_starts)
    chance = np.where(has_next, model.extend[np.minimum(segment, len(model.segment_starts) - 1),
                                             column[expired], s_new], 0.0)
    draw = lottery[expired]
    extended = draw < chance
    renewed = expired[extended]
    position[renewed] = model.segment_starts[segment[extended] + 1]
    phase[renewed] = model.start_phase

    # Given no extension the draw is uniform on [chance, 1); rescaled, it picks
    # the renegotiated terms without a second draw.
    rest = expired[~extended]
    rest_state = new_state[rest]
    leftover = 1.0 - chance[~extended]
    rescaled = (draw[~extended] - chance[~extended]) / np.where(leftover > 0.0, leftover, 1.0)
    # The first outcome whose cumulative probability exceeds the draw.
    outcome = np.sum(rescaled[None, :] >= model.node_cumulative[:, rest_state], axis=0)
    target = model.node_support[outcome, rest_state]
    lapsed = rest[target < 0]
    if lapsed.size:
        end(lapsed, (weight * delta)[:, None] * model.no_treaty[:, new_state[lapsed]])
        count("lapse", t, lapsed.size)
    agreed = rest[target >= 0]
    count("expiry_renewed", t + 1, renewed.size + agreed.size)
    if agreed.size == 0:
        return
    payoffs[:, agreed] -= (weight * delta * model.renegotiation_cost)[:, None]
    column[agreed] = target[target >= 0] + 1
    if model.delay > 0:
        status[agreed] = RENEGOTIATING
        countdown[agreed] = model.delay
    else:
        position[agreed] = 0
        phase[agreed] = model.start_phase


# ---------------------------------------------------------------- running blocks

_WORKER_MODELS: tuple[PathModel, ...] = ()


def _init_worker(models: tuple[PathModel, ...]) -> None:
    global _WORKER_MODELS
    _WORKER_MODELS = models


def _worker_block(task: tuple) -> BlockResult:
    design, seed, paths, report_periods, total_periods = task
    return simulate_block(_WORKER_MODELS[design], seed, paths, report_periods, total_periods)


def block_sizes(paths: int) -> list[int]:
    """Split ``paths`` into blocks of ``BLOCK_SIZE``, the last one possibly smaller."""
    full, rest = divmod(paths, BLOCK_SIZE)
    return [BLOCK_SIZE] * full + ([rest] if rest else [])


class BlocksInterrupted(KeyboardInterrupt):
    """Ctrl-C while blocks run, with the blocks joined by then in ``results``.

    ``results`` has one ``BlockResult`` per design, each of the first ``paths``
    paths. Those are whole blocks in block order, so they equal a complete run
    of ``paths`` paths with the same seed.
    """

    def __init__(self, results: list[BlockResult], paths: int) -> None:
        super().__init__()
        self.results = results
        self.paths = paths


def run_blocks(model: PathModel, seed: int, paths: int, report_periods: int,
               workers: int = 1, progress: ProgressNotes | None = None) -> BlockResult:
    """Simulate every block and join the results in block order.

    Block ``k`` uses child ``k`` of ``SeedSequence(seed)``, so the joined
    result is the same for any number of ``workers``. Each finished block
    advances ``progress`` by its paths.

    Raises
    ------
    BlocksInterrupted
        On Ctrl-C after at least one block has been joined, once any worker
        processes have stopped. Before that, a plain ``KeyboardInterrupt``.
    """
    return run_design_blocks([model], seed, paths, [report_periods], workers, progress)[0]


def run_design_blocks(models: list[PathModel], seed: int, paths: int, report_periods: list[int],
                      workers: int = 1, progress: ProgressNotes | None = None) -> list[BlockResult]:
    """Simulate every block of every design, as ``run_blocks`` does for one.

    Block ``k`` of each design uses child ``k`` of ``SeedSequence(seed)``. The
    blocks run in rounds: block 0 of every design, then block 1 of every
    design, and so on. So the designs finished by a Ctrl-C have the same
    number of paths, and the paths of each pair up across designs.
    """
    sizes = block_sizes(paths)
    children = np.random.SeedSequence(seed).spawn(len(sizes))
    total_periods = [periods_to_simulate(model.discount, periods)
                     for model, periods in zip(models, report_periods)]
    tasks = [(design, child, size, report_periods[design], total_periods[design])
             for child, size in zip(children, sizes) for design in range(len(models))]

    if workers <= 1 or len(tasks) == 1:
        blocks = (simulate_block(models[task[0]], *task[1:]) for task in tasks)
        return _join_blocks(blocks, models, paths, report_periods, progress)
    with WorkerPool(workers, _init_worker, (tuple(models),)) as pool:
        blocks = pool.map(_worker_block, tasks)
        return _join_blocks(blocks, models, paths, report_periods, progress)


def _join_blocks(blocks: Iterable[BlockResult], models: list[PathModel], paths: int,
                 report_periods: list[int], progress: ProgressNotes | None) -> list[BlockResult]:
    """Add each block to its design's joined result as it arrives, in rounds over the designs.

    Only the joined arrays stay in memory, never every block's copy, so a run
    with many blocks needs little more than its per-path payoffs.

    Raises
    ------
    BlocksInterrupted
        On Ctrl-C after at least one whole round, with the rounds joined by
        then. Before that, a plain ``KeyboardInterrupt``.
    """
    designs = len(models)
    payoffs = [np.zeros((model.n_parties, paths)) for model in models]
    escape_uses = [np.zeros(paths, dtype=np.int64) for _ in models]
    # The paths of the whole rounds joined so far, with every design's counters
    # over those paths. Both change in one assignment, so that an interrupt
    # between any two statements finds them at the same round.
    joined = (0, [{name: np.zeros(periods, dtype=np.int64) for name in _COUNTER_NAMES}
                  for periods in report_periods])
    round_counters: list[dict] = []

    try:
        for index, block in enumerate(blocks):
            design = index % designs
            start, counters = joined
            stop = start + block.payoffs.shape[1]
            payoffs[design][:, start:stop] = block.payoffs
            escape_uses[design][start:stop] = block.escape_uses
            round_counters.append({name: total + getattr(block, name)
                                   for name, total in counters[design].items()})
            if design == designs - 1:
                joined = (stop, round_counters)
                round_counters = []
            if progress is not None:
                progress.advance(block.payoffs.shape[1])
    except KeyboardInterrupt as interrupt:
        finished, counters = joined
        # A report needs at least two paths, as --paths does, for its standard errors.
        if finished < 2:
            raise
        results = [BlockResult(payoffs=payoffs[design][:, :finished],
                               escape_uses=escape_uses[design][:finished], **counters[design])
                   for design in range(designs)]
        raise BlocksInterrupted(results, finished) from interrupt

    _, counters = joined
    return [BlockResult(payoffs=payoffs[design], escape_uses=escape_uses[design], **counters[design])
            for design in range(designs)]


def draw_seed() -> int:
    """Return a fresh seed from the operating system's entropy, to be reported."""
    return secrets.randbits(64)


# -------------------------------------------------------------------- results

@dataclass
class Simulation:
    """Monte Carlo estimates for one treaty at its evaluated strictness."""

    treaty: str
    strictness: float
    seed: int
    paths: int
    years: int
    period_years: float
    party_names: list[str]
    payoffs: np.ndarray
    exact_values: np.ndarray
    counts: BlockResult
    exact_survival: list[float]
    # True when the strictness is the file's accepted proposal rather than located terms.
    proposed: bool = False
    # The declared chain and start state that the paths follow. Two simulations
    # with the same seed see the same states only when these and the period agree.
    transition: np.ndarray | None = None
    start_state: int | None = None
    # The paths requested when Ctrl-C stopped the run after ``paths`` of them; None for a complete run.
    paths_requested: int | None = None

    def survival(self) -> list[dict]:
        """Share of paths with the treaty alive after 1, 2, ... years, with 95% bands.

        The row of year ``k`` counts the paths alive during the period in
        force ``k`` years after entry into force, as ``survival[k - 1]`` of
        the score does, so expiries, lapses and breakdowns decided at that
        moment are already out.
        """
        per_year = 1.0 / self.period_years
        rows = []
        for year in range(1, self.years + 1):
            period = period_at_year(year, per_year)
            if period >= len(self.counts.alive):
                break
            estimate, low, high = wilson(int(self.counts.alive[period]), self.paths)
            row = {"year": year, "estimate": estimate,
                   "standard_error": binomial_error(estimate, self.paths), "low": low, "high": high}
            if year <= len(self.exact_survival):
                row["exact"] = self.exact_survival[year - 1]
            rows.append(row)
        return rows

    def payoff_summary(self) -> list[dict]:
        """Mean, standard error and percentiles of each party's discounted payoff."""
        rows = []
        for party, name in enumerate(self.party_names):
            sample = self.payoffs[party]
            low, middle, high = np.percentile(sample, [5, 50, 95])
            rows.append({
                "name": name,
                "mean": float(sample.mean()),
                "standard_error": standard_error(sample),
                "p5": float(low), "p50": float(middle), "p95": float(high),
                "exact": float(self.exact_values[party]),
            })
        return rows

    def events(self) -> dict:
        """Per-period frequency of each way the treaty ends, and of escapes."""
        return {name: [{"period": int(period), "probability": frequency,
                        "standard_error": binomial_error(frequency, self.paths)}
                       for period, frequency in self._frequencies(getattr(self.counts, name))]
                for name in ("breakdown", "withdrawal", "lapse", "escape")}

    def nodes(self) -> list[dict]:
        """Review and expiry nodes: how often they are reached, and how often the terms go on."""
        rows = []
        for kind, reached, succeeded in (
                ("review", self.counts.review_reached, self.counts.review_adopted),
                ("expiry", self.counts.expiry_reached, self.counts.expiry_renewed)):
            for period in np.flatnonzero(reached):
                reached_share = reached[period] / self.paths
                success = succeeded[period] / reached[period]
                rows.append({
                    "period": int(period), "year": period * self.period_years, "kind": kind,
                    "p_reached": float(reached_share),
                    "p_reached_standard_error": binomial_error(reached_share, self.paths),
                    "p_success": float(success),
                    "p_success_standard_error": binomial_error(success, int(reached[period])),
                })
        return sorted(rows, key=lambda row: (row["period"], row["kind"]))

    def _frequencies(self, counts: np.ndarray):
        for period in np.flatnonzero(counts):
            yield period, float(counts[period] / self.paths)

    def to_dict(self) -> dict:
        """Return the JSON object of the simulation.

        Located terms are rounded to ``STRICTNESS_DECIMALS`` like the terms of the
        score, and a proposal from the file is echoed as written, like the score's
        proposal. The estimates keep every digit.
        """
        strictness = self.strictness if self.proposed else round(self.strictness, STRICTNESS_DECIMALS)
        result = {
            "treaty": self.treaty,
            "strictness": strictness,
            "seed": self.seed,
            "paths": self.paths,
            "years": self.years,
            "period_years": self.period_years,
            "survival": self.survival(),
            "payoffs": self.payoff_summary(),
            "events": self.events(),
            "totals": self.totals(),
            "nodes": self.nodes(),
        }
        if self.paths_requested is not None:
            result["interrupted"] = True
            result["paths_requested"] = self.paths_requested
        return result

    def totals(self) -> dict:
        """Shares of paths ending each way within the report horizon, and escapes per path."""
        horizon = int(round(self.years / self.period_years))
        result = {}
        for name in ("breakdown", "withdrawal", "lapse"):
            share = float(np.sum(getattr(self.counts, name)[:horizon]) / self.paths)
            result[name] = {"probability": share,
                            "standard_error": binomial_error(share, self.paths)}
        uses = self.counts.escape_uses
        result["escapes_per_path"] = {"mean": float(uses.mean()),
                                      "standard_error": standard_error(uses)}
        return result


def standard_error(sample: np.ndarray) -> float:
    if sample.size < 2:
        return float("nan")
    return float(sample.std(ddof=1) / math.sqrt(sample.size))


def binomial_error(share: float, trials: int) -> float:
    return float(math.sqrt(max(share * (1.0 - share), 0.0) / trials)) if trials > 0 else float("nan")


def wilson(successes: int, trials: int, quantile: float = Z95) -> tuple[float, float, float]:
    """Return the share and its Wilson score interval, which stays inside [0, 1]."""
    share = successes / trials
    scale = quantile * quantile / trials
    centre = (share + scale / 2.0) / (1.0 + scale)
    half = quantile * math.sqrt(share * (1.0 - share) / trials + scale / (4.0 * trials)) / (1.0 + scale)
    low, high = max(centre - half, 0.0), min(centre + half, 1.0)

    # At a share of 0 or 1 the interval ends exactly there, but rounding in
    # centre +- half can fall just short of it.
    if successes == 0:
        low = 0.0
    if successes == trials:
        high = 1.0
    return float(share), float(low), float(high)


class SimulationInterrupted(KeyboardInterrupt):
    """Ctrl-C while paths are simulated, with the paths finished by then.

    ``simulations`` has one entry per design, as ``compare_simulations``
    returns them: each agreed design's first ``paths`` of ``requested`` paths,
    marked partial, and None for a design without agreement. With the same
    seed they equal a complete run of ``paths`` paths. It is a
    ``KeyboardInterrupt``, so a caller that does not look for it still stops
    as on any Ctrl-C.
    """

    def __init__(self, simulations: list[Simulation | None], seed: int, paths: int,
                 requested: int) -> None:
        super().__init__()
        self.simulations = simulations
        self.seed = seed
        self.paths = paths
        self.requested = requested


def simulate_game(game: Game, score: Score, paths: int = DEFAULT_PATHS, years: int | None = None,
                  seed: int | None = None, workers: int = 1,
                  progress: bool = False) -> Simulation | None:
    """Simulate ``game`` at the strictness its score evaluates; None when nothing is agreed.

    ``years`` defaults to the score's horizon; ``seed`` to a fresh draw that the
    result reports. With ``progress``, a run that takes longer than
    ``FIRST_NOTE_SECONDS`` writes the paths done to stderr (``ProgressNotes``).

    Raises
    ------
    SimulationInterrupted
        On Ctrl-C once at least one block of paths has finished, after any
        worker processes have stopped. Before that, a plain ``KeyboardInterrupt``.
    """
    if seed is None:
        seed = draw_seed()
    with ProgressNotes("simulate", paths, "paths", enabled=progress) as notes:
        return _simulate_designs([game], [score], paths, years, seed, workers, notes)[0]


def _simulate_designs(games: list[Game], scores: list[Score], paths: int, years: int | None,
                      seed: int, workers: int, notes: ProgressNotes) -> list[Simulation | None]:
    """Simulate every design with agreement on the same blocks, counting the paths in ``notes``.

    The entry of a design without agreement is None.
    """
    agreed = [index for index, score in enumerate(scores) if score.evaluated_strictness is not None]
    if not agreed:
        return [None] * len(games)
    if paths < 2:
        raise ValueError(f"--paths must be at least 2, got {paths}")
    design_years = [len(score.survival) if years is None else years for score in scores]
    report_periods = [report_period_count(games[index], design_years[index]) for index in agreed]

    built = [build_path_model(games[index], scores[index].evaluated_strictness) for index in agreed]
    models = [model for model, _ in built]
    exact_values = [values for _, values in built]

    simulations: list[Simulation | None] = [None] * len(games)
    try:
        counts = run_design_blocks(models, seed, paths, report_periods, workers, notes)
    except BlocksInterrupted as interrupt:
        for position, index in enumerate(agreed):
            simulations[index] = _simulation(games[index], scores[index], seed, design_years[index],
                                             exact_values[position], interrupt.results[position],
                                             requested=paths)
        raise SimulationInterrupted(simulations, seed, interrupt.paths, paths) from interrupt

    for position, index in enumerate(agreed):
        simulations[index] = _simulation(games[index], scores[index], seed, design_years[index],
                                         exact_values[position], counts[position])
    return simulations


def _simulation(game: Game, score: Score, seed: int, years: int, exact_values: np.ndarray,
                counts: BlockResult, requested: int | None = None) -> Simulation:
    """Return the ``Simulation`` of ``counts``, with ``requested`` paths requested when it is partial."""
    return Simulation(
        treaty=game.name,
        strictness=float(score.evaluated_strictness),
        seed=int(seed),
        paths=counts.payoffs.shape[1],
        years=years,
        period_years=game.period_years,
        party_names=[party.name for party in game.parties],
        payoffs=counts.payoffs,
        exact_values=exact_values,
        counts=counts,
        exact_survival=list(score.survival),
        proposed=score.proposal is not None and score.proposal["accepted"],
        transition=np.asarray(game.transition, dtype=float),
        start_state=int(game.start),
        paths_requested=requested,
    )


def report_period_count(game: Game, years: int) -> int:
    """Return the periods whose counts a report of ``years`` years keeps, one past the last year."""
    return int(round(years * game.periods_per_year)) + 1


# ---------------------------------------------------------------- size of a run

# The work of a run is about proportional to its path-periods: the paths times
# the periods each path is followed. A path whose treaty ends early costs less,
# but a treaty that lasts is followed to the end. ``simulate_block`` on 10,000
# paths of a two-party treaty whose paths all stayed alive did 2 to 4 million
# path-periods a second on one core of a shared 2-vCPU machine (Python 3.11,
# numpy 2.4). By that estimate the bound admits runs of 7 to 14 hours per
# worker and rejects runs of weeks.
MAX_PATH_PERIODS = 100_000_000_000


def horizon_years(game: Game) -> int:
    """Return the years of the score's horizon, the default of ``--years``."""
    # The score's survival list has one entry per year of the horizon.
    return int(round(game.settings.horizon / game.periods_per_year))


def simulated_periods(game: Game, years: int) -> int:
    """Return the most periods a path of ``game`` is followed for a report of ``years`` years."""
    discount = np.array([party.discount for party in game.parties])
    return periods_to_simulate(discount, report_period_count(game, years))


def simulation_size_problem(game: Game, paths: int, years: int | None) -> str | None:
    """Return why ``paths`` paths of ``years`` years of ``game`` are too much work, or None.

    ``years`` of None stands for the default, the score's horizon. The check
    needs only the compiled game, so the command makes it before solving.
    """
    if years is None:
        years = horizon_years(game)
    periods = simulated_periods(game, years)
    work = paths * periods
    if work <= MAX_PATH_PERIODS:
        return None

    max_paths = MAX_PATH_PERIODS // periods
    problem = (f"the simulation is too large: {paths:,} paths x {periods:,} periods is {work:,} "
               f"path-periods, and the maximum is {MAX_PATH_PERIODS:,}")
    if periods > report_period_count(game, years):
        # The discount factors set the periods here, so fewer years would not help.
        return (f"{problem}; each path is followed until every party's discount weight is below "
                f"{TAIL_WEIGHT:g} (at most {MAX_PERIODS:,} periods), not only for the years of the "
                f"report, so lower --paths to at most {max_paths:,}")
    return f"{problem}; lower --paths to at most {max_paths:,}, or lower --years"


# ---------------------------------------------------------------- command line

def add_simulate_arguments(parser) -> None:
    """Add the options ``--paths``, ``--years``, ``--seed`` and ``--workers`` to ``parser``.

    Each may be given once, and a repeat is a usage error rather than a silent override.
    """
    parser.add_argument("--paths", type=int, action=StoreOnce, default=DEFAULT_PATHS, metavar="N",
                        help=f"number of simulated paths (default {DEFAULT_PATHS})")
    parser.add_argument("--years", type=int, action=StoreOnce, default=None, metavar="H",
                        help="years of survival and event frequencies to report "
                             "(default: the treaty's horizon)")
    parser.add_argument("--seed", type=int, action=StoreOnce, default=None, metavar="S",
                        help="seed of the random numbers; omitted, a fresh seed is drawn and reported")
    parser.add_argument("--workers", type=int, action=StoreOnce, default=1, metavar="W",
                        help="worker processes; the results do not depend on it (default 1)")


# Bounds on memory. The payoffs of every path stay in memory, 8 bytes per party
# and path plus 8 for its escape count, so 100,000,000 paths of a three-party
# treaty take 3.2 GB. The per-period counters grow with the years.
# MAX_PATH_PERIODS bounds the work of the two together.
MAX_PATHS = 100_000_000
MAX_YEARS = 10_000


def check_simulate_arguments(arguments) -> str | None:
    """Return the problem with the simulation options, or None when they can run."""
    if arguments.paths < 2:
        return f"--paths must be at least 2, got {arguments.paths}"
    if arguments.paths > MAX_PATHS:
        return f"--paths must be at most {MAX_PATHS:,}, got {arguments.paths:,}"
    if arguments.years is not None and arguments.years < 1:
        return f"--years must be at least 1, got {arguments.years}"
    if arguments.years is not None and arguments.years > MAX_YEARS:
        return f"--years must be at most {MAX_YEARS:,}, got {arguments.years:,}"
    if arguments.seed is not None and arguments.seed < 0:
        return f"--seed must not be negative, got {arguments.seed}"
    return worker_count_problem(arguments.workers)


def format_simulation(simulation: Simulation) -> str:
    """Return the text report of one simulation."""
    header = (f"{simulation.treaty}: {simulation.paths} paths at strictness "
              f"{simulation.strictness:.6f}, seed {simulation.seed}")
    if simulation.paths_requested is not None:
        header += (f" (partial: interrupted after {simulation.paths} of "
                   f"{simulation.paths_requested} paths)")
    lines = [
        header,
        "",
        "discounted payoff per party (from entry into force, negotiation cost not included):",
    ]
    rows = [["party", "mean", "std. error", "exact", "5%", "median", "95%"]]
    for row in simulation.payoff_summary():
        rows.append([row["name"], f"{row['mean']:.4f}", f"{row['standard_error']:.4f}",
                     f"{row['exact']:.4f}", f"{row['p5']:.4f}", f"{row['p50']:.4f}",
                     f"{row['p95']:.4f}"])
    lines.append(_table(rows))

    lines.append("")
    lines.append("alive after N years, share of paths (95% band; exact value from the solver):")
    rows = [["years", "estimate", "band", "exact"]]
    survival = simulation.survival()
    last = survival[-1]["year"]
    shown_years = {1, 2, 5, last} | {year for year in range(10, last + 1, 10)}
    for row in survival:
        if row["year"] in shown_years:
            exact = f"{row['exact']:.4f}" if "exact" in row else "-"
            rows.append([str(row["year"]), f"{row['estimate']:.4f}",
                         f"[{row['low']:.4f}, {row['high']:.4f}]", exact])
    lines.append(_table(rows))

    lines.append("")
    lines.append(f"ends and escapes within {count_text(simulation.years, 'year')} "
                 "(share of paths +- std. error):")
    per_year = 1.0 / simulation.period_years
    horizon = int(round(simulation.years * per_year))
    for name, label in (("breakdown", "breakdown"), ("withdrawal", "withdrawal"),
                        ("lapse", "lapse at expiry"), ("escape", "")):
        share = int(np.sum(getattr(simulation.counts, name)[:horizon])) / simulation.paths
        if name == "escape":
            uses = simulation.counts.escape_uses
            lines.append(f"  escapes invoked per path: {uses.mean():.4f} +- {standard_error(uses):.4f}")
        else:
            lines.append(f"  {label}: {share:.4f} +- {binomial_error(share, simulation.paths):.4f}")
    # A node at the horizon opens the period that the last survival value describes.
    nodes = [row for row in simulation.nodes() if row["period"] <= horizon]
    if nodes:
        lines.append("")
        lines.append("renegotiation and review nodes:")
        rows = [["year", "kind", "P(reached)", "P(success | reached)"]]
        for row in nodes[:20]:
            rows.append([f"{row['year']:g}", row["kind"],
                         f"{row['p_reached']:.4f} +- {row['p_reached_standard_error']:.4f}",
                         f"{row['p_success']:.4f} +- {row['p_success_standard_error']:.4f}"])
        lines.append(_table(rows))
        if len(nodes) > 20:
            lines.append(f"  ({len(nodes) - 20} later nodes in the JSON output)")
        lines.append(NODE_SUCCESS)
    return "\n".join(lines)


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    return "\n".join("  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip()
                     for row in rows)


def same_environment(first: Simulation, other: Simulation) -> bool:
    """True when path ``k`` of both simulations follows the same sequence of states.

    That needs the same seed, start state, period and transition matrix: each
    period's environment move looks the same uniform draw up in the same row.
    """
    if first.transition is None or other.transition is None:
        return False
    return (first.seed == other.seed
            and first.start_state == other.start_state
            and first.period_years == other.period_years
            and first.transition.shape == other.transition.shape
            and bool(np.array_equal(first.transition, other.transition)))


def paired_differences(first: Simulation, other: Simulation) -> list[dict]:
    """Mean payoff of ``other`` minus ``first`` per party of the same name, with the paired standard error.

    Both simulations use the same seed and number of paths, so path ``k`` of
    each uses the same uniforms.  The pairs are independent across ``k``, so the
    standard error of the per-path differences is valid in any case.  When the
    environments are the same (``same_environment``), most of the sampling noise
    also cancels in the differences.

    Raises
    ------
    ValueError
        When the two simulations differ in seed or number of paths, so that
        their paths cannot be paired.
    """
    if first.paths != other.paths or first.seed != other.seed:
        raise ValueError(f"cannot pair {first.paths} paths of seed {first.seed} with "
                         f"{other.paths} paths of seed {other.seed}")
    rows = []
    for party, name in enumerate(other.party_names):
        if name not in first.party_names:
            continue
        difference = other.payoffs[party] - first.payoffs[first.party_names.index(name)]
        rows.append({"name": name, "difference": float(difference.mean()),
                     "standard_error": standard_error(difference)})
    return rows


def payoff_difference(first: Simulation, other: Simulation) -> dict:
    """Return the JSON object ``payoff_difference_from_first`` of design ``other``.

    Parties are paired by name. A party that only one of the two designs has
    is listed under ``only_in_first`` or ``only_in_this_design`` and gets no
    difference, because its payoff has no counterpart to subtract.
    """
    return {
        "parties": paired_differences(first, other),
        "only_in_first": [name for name in first.party_names if name not in other.party_names],
        "only_in_this_design": [name for name in other.party_names
                                if name not in first.party_names],
        "same_environment": same_environment(first, other),
    }


def compare_simulations(games: list[Game], scores: list[Score], arguments,
                        progress: bool = False) -> tuple[list, int]:
    """Simulate every design with the same seed. Return the simulations and the seed.

    With ``progress``, a run that takes longer than ``FIRST_NOTE_SECONDS``
    writes the paths done, over all designs with agreement, to stderr.

    Raises
    ------
    SimulationInterrupted
        On Ctrl-C once every design with agreement has finished its first
        block, after any worker processes have stopped. Before that, a plain
        ``KeyboardInterrupt``.
    """
    seed = arguments.seed if arguments.seed is not None else draw_seed()
    agreed = sum(score.evaluated_strictness is not None for score in scores)
    with ProgressNotes("simulate", agreed * arguments.paths, "paths", enabled=progress) as notes:
        simulations = _simulate_designs(games, scores, arguments.paths, arguments.years, seed,
                                        arguments.workers, notes)
    return simulations, seed


def comparison_dict(simulations: list[Simulation | None], seed: int) -> dict:
    """Return the JSON object of ``compare --simulate``.

    Every design after the first carries ``payoff_difference_from_first``, which
    is null when the first design predicts no agreement and so has no payoffs
    on the paths. After Ctrl-C the object, like each design, has
    ``"interrupted": true`` and ``paths_requested``.
    """
    first = simulations[0]
    designs = []
    for index, simulation in enumerate(simulations):
        if simulation is None:
            designs.append(None)
            continue
        entry = simulation.to_dict()
        if index > 0:
            entry["payoff_difference_from_first"] = (
                None if first is None else payoff_difference(first, simulation))
        designs.append(entry)
    result = {"seed": seed, "designs": designs}
    partial = _partial_design(simulations)
    if partial is not None:
        result["interrupted"] = True
        result["paths_requested"] = partial.paths_requested
    return result


def _partial_design(simulations: list[Simulation | None]) -> Simulation | None:
    """Return a design stopped by Ctrl-C, or None when the comparison is complete.

    The designs of one comparison finish the same blocks, so any one of them
    gives the paths finished and requested.
    """
    return next((simulation for simulation in simulations
                 if simulation is not None and simulation.paths_requested is not None), None)


def format_comparison(names: list[str], simulations: list[Simulation | None], seed: int) -> str:
    """Return the text report of ``compare --simulate``: survival and payoffs side by side."""
    lines = [f"simulation with common random numbers, seed {seed}"]
    partial = _partial_design(simulations)
    if partial is not None:
        lines[0] += (f" (partial: interrupted after {partial.paths} of {partial.paths_requested} "
                     "paths per design)")
    first = simulations[0]
    for index, (name, simulation) in enumerate(zip(names, simulations)):
        lines.append("")
        if simulation is None:
            lines.append(f"{name}: no agreement, nothing to simulate")
            continue
        lines.append(format_simulation(simulation))
        if index == 0:
            continue
        lines.append("")
        if first is None:
            lines.append(f"no payoff difference from {names[0]}: it predicts no agreement, "
                         "so it has no simulated payoffs")
            continue
        lines.extend(_format_difference(names[0], payoff_difference(first, simulation)))
    return "\n".join(lines)


def _format_difference(first_name: str, difference: dict) -> list[str]:
    """Return the text lines of one design's payoff difference from the first."""
    lines = [f"payoff difference from {first_name}, paired path by path (mean +- std. error):"]
    for row in difference["parties"]:
        lines.append(f"  {row['name']}: {row['difference']:+.4f} +- {row['standard_error']:.4f}")
    if not difference["parties"]:
        lines.append("  none: no party has the same name in both designs")

    unpaired = ([f"{party} (only in {first_name})" for party in difference["only_in_first"]]
                + [f"{party} (only in this design)" for party in difference["only_in_this_design"]])
    if unpaired:
        lines.append(f"  not compared, no party of the same name in the other design: "
                     f"{', '.join(unpaired)}")
    if not difference["same_environment"]:
        lines.append("  the environments differ, so a path can see different states in the two "
                     "designs and less sampling noise cancels")
    return lines
