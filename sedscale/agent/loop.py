"""The agent loop of one table of sources: propose → execute → evaluate → distil, pipelined per source.

::

    outcome = await run_agent_async(phot, triage, config, policy, budgets=AgentBudgets(),
                                    knowledge=kb, seed=campaign_seed)

1. **Triage verdict.** The acceptance test runs on the triage fit; only sources it rejects, that a
   configuration change could help and that ``max_agent_fraction`` admits enter the loop
   (:mod:`sedscale.agent.selection`).
2. **Propose.** Every source in the loop runs its own chain of steps (one coroutine each, all
   concurrent): it asks the policy, gets one validated action applied to its best configuration
   so far, and queues that configuration for fitting. An LLM policy therefore has a request in
   flight for every source that is not being fitted — there is no step barrier at which the
   server waits for the slowest fit, or fits wait for the slowest reply. With ``overlap=False``
   (the default) the run alternates phases instead — no policy call starts while a fit runs, no
   fit starts while a call is out — which is faster where the LLM server shares the CPU cores
   with the fits (tests, laptops); ``overlap=True`` is the setting for nodes whose LLM runs on
   accelerators.
3. **Execute.** One :class:`~sedscale.agent.fit_runner.FitRunner` fits queued jobs in threads,
   grouped by configuration; the grouping depends on timing and never changes a result.
4. **Evaluate.** A fit replaces the source's best when it is better by the acceptance test's
   order (newly accepted, or χ²_red lower by ``min_gain``); the next step edits the best config.
   A source stops when accepted, when the policy says ``accept``/``give_up`` or has nothing left
   to try, after ``max_steps``, or after ``patience`` steps without improvement. Once a source's
   next LLM call would take its tokens past ``max_tokens_per_source``, the policy's fallback
   (the rules, which cost no tokens) decides for it instead (recorded as ``token_budget``); a
   policy without a fallback stops the source.
5. **Distil.** Every step's (patterns, action, gain, accepted) goes into the outcome's knowledge
   delta (integer counts: the order in which sources report does not matter). The policy keeps
   ranking by the knowledge the run started with; the campaign merges deltas for later campaigns
   or the next epoch (:mod:`sedscale.agent.knowledge`).

Partition independence (issue 13): a source's result depends only on its own row, the workflow,
the campaign seed and the knowledge the run started with — its randomness comes from (seed,
source id, step) (:mod:`sedscale.agent.seeds`), admission is per source, the policy's knowledge is
frozen, and fit grouping does not change numbers. Which other sources share its table, the
table's size and order, the partition id and the node change nothing (the LLM policy at
temperature 0 aside: a server's batching is not bit-reproducible).

The final fit of every source is the best of its triage fit and every fit tried, so it is never
worse than triage. Where the time went is measured as wall-clock unions
(:mod:`sedscale.agent.clocks`): ``llm_wait``, ``refit`` and their ``overlap``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import math
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Coroutine, Mapping

import numpy as np

from sedscale.agent.acceptance import AcceptanceTest, FitRows, SourceFit
from sedscale.agent.accounting import SourceAccounting
from sedscale.agent.actions import TERMINAL_OPS
from sedscale.agent.apply import apply_action, describe_config
from sedscale.agent.budgets import AgentBudgets
from sedscale.agent.clocks import AgentClocks
from sedscale.agent.fit_runner import FitAnswer, FitFunction, FitRunner, default_fit
from sedscale.agent.knowledge import KnowledgeBase
from sedscale.agent.outcome import AgentOutcome, AgentResult, DecisionRecord, assemble_outcome
from sedscale.agent.policy import Decision, DecisionRequest, Policy
from sedscale.agent.seeds import source_seed
from sedscale.agent.selection import select_sources
from sedscale.agent.state import NOTE_MAX, Attempt, SourceState, sanitize
from sedscale.agent.trail import StepRecord, action_json, mark_kept, step_reason
from sedscale.catalog.photometry import Photometry
from sedscale.sed.config import FitConfig

__all__ = ["AgentBudgets", "AgentOutcome", "AgentRun", "RunSettings", "run_agent", "run_agent_async"]


@dataclass(frozen=True)
class RunSettings:
    """What one run decides by, besides the policy: limits, the acceptance test, the mode."""

    budgets: AgentBudgets
    acceptance: AcceptanceTest
    photoz: bool
    seed: int  # the campaign's seed
    overlap: bool
    notes: Mapping[int, str]  # source id → catalog free text (sanitised, quoted to an LLM)


class SourceProgress:
    """One source's search in progress: its best fit so far, what it tried, what it cost."""

    def __init__(self, index: int, sid: int, triage: SourceFit, config: FitConfig) -> None:
        self.index, self.sid = index, sid
        self.best = triage
        self.best_config = config
        self.tried = {config.hash()}
        self.history: list[Attempt] = []
        self.stale = 0  # consecutive steps without improvement
        self.seen_patterns: set[str] = set()
        self.decisions: list[DecisionRecord] = []
        self.steps: list[StepRecord] = []  # one per fit tried (the trail)
        self.last_call_tokens = 0  # tokens of this source's last LLM call (next-call estimate)
        self.acct = SourceAccounting()

    @property
    def stopped(self) -> bool:
        return bool(self.acct.stop_reason)

    def result(self) -> AgentResult:
        mark_kept(self.steps)
        return AgentResult(self.best, self.best_config, self.acct, self.history, self.decisions, self.steps)


class AgentRun:
    """The agent's work on one table of sources: each admitted source's chain of steps, the shared
    fit runner, the clocks and the knowledge delta. Made and driven by :func:`run_agent_async`."""

    def __init__(self, phot: Photometry, policy: Policy, settings: RunSettings, runner: FitRunner,
                 clocks: AgentClocks, base_config: FitConfig, epoch: int) -> None:
        self.phot, self.policy, self.settings = phot, policy, settings
        self.runner, self.clocks = runner, clocks
        self.configs: dict[str, FitConfig] = {base_config.hash(): base_config}
        self.delta = KnowledgeBase(epoch=epoch)
        self.policy_seconds = 0.0  # summed per-source decision latencies (they overlap)

    async def run(self, sources: list[SourceProgress]) -> None:
        """Drive every source to its stop, with the fit runner dispatching meanwhile."""
        dispatcher = asyncio.create_task(self.runner.run())
        try:
            await asyncio.gather(*(self._drive(s) for s in sources))
        finally:
            dispatcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await dispatcher

    async def _drive(self, s: SourceProgress) -> None:
        """One source's chain of steps: propose → fit → evaluate, until it stops."""
        for step in range(1, self.settings.budgets.max_steps + 1):
            asked = await self._decide(s, step)
            if asked is None:
                return
            req, d = asked
            if not self._record(s, step, d):
                return
            assert d.config is not None and d.action is not None  # _record stops the source otherwise
            h = d.config.hash()
            config = self.configs.setdefault(h, d.config)
            answer = await self.runner.fit(s.index, config)
            if not self._evaluate(s, step, d, req.state.patterns, h, answer):
                return
        s.acct.stop_reason = "max_steps"

    async def _decide(self, s: SourceProgress, step: int) -> tuple[DecisionRequest, Decision] | None:
        """Step ``step``'s proposal for ``s`` (None: the source stopped on its token budget)."""
        over = s.acct.tokens_total + s.last_call_tokens > self.settings.budgets.max_tokens_per_source
        who = self.policy.fallback if over else self.policy
        if who is None:
            s.acct.stop_reason = "token_budget"
            return None
        req = self._request(s, step)
        d = await self._ask(who, req)
        if over:
            d.fallback = "token_budget"
        return req, d

    def _request(self, s: SourceProgress, step: int) -> DecisionRequest:
        """What the policy is told about ``s`` at ``step`` (seeded by campaign seed, source id, step)."""
        st = self.settings
        state = self._state(s, step)
        state.seen_patterns = tuple(sorted(s.seen_patterns))
        s.seen_patterns.update(state.patterns)
        ss = source_seed(st.seed, s.sid, step)
        return DecisionRequest(
            state=state,
            config=s.best_config,
            try_apply=functools.partial(apply_action, s.best_config, estimates=s.best.estimates,
                                        photoz=st.photoz, limits=st.budgets.limits),
            tried=frozenset(s.tried),
            rng=np.random.default_rng(ss),
            seed=int(ss.generate_state(1, dtype=np.uint32)[0]),
            tokens_used=s.acct.tokens_total,
        )

    def _state(self, s: SourceProgress, step: int) -> SourceState:
        i, photoz = s.index, self.settings.photoz
        z = float(self.phot.redshift[i])
        if photoz or not math.isfinite(z):
            z = s.best.extra.get("z_best", s.best.extra.get("z_mean", z))
        note = sanitize(self.settings.notes.get(s.sid, ""), NOTE_MAX)
        return SourceState(source_id=s.sid, redshift=z, filters=tuple(self.phot.filters), flux=self.phot.flux[i],
                           error=self.phot.error[i], fit=s.best, config_brief=describe_config(s.best_config),
                           history=list(s.history), note=note, step=step, photoz=photoz,
                           axes=s.best_config.axes())

    async def _ask(self, who: Policy, req: DecisionRequest) -> Decision:
        """One decision from ``who`` (in phases, only while no fit runs), timed on the clocks."""
        while not self.settings.overlap and self.runner.fitting:
            self.runner.changed.clear()
            await self.runner.changed.wait()
        t0 = time.perf_counter()
        try:
            with self.clocks.span(self.clocks.llm):
                answers = await who.decide([req])
        finally:
            self.runner.changed.set()
        self.policy_seconds += time.perf_counter() - t0
        if not answers:
            raise RuntimeError(f"policy {who.name!r} returned too few decisions")
        return answers[0]

    def _record(self, s: SourceProgress, step: int, d: Decision) -> bool:
        """Book the decision; False when it ends the source's search."""
        s.decisions.append((step, d.policy, d.action.brief() if d.action is not None else "", d.fallback or ""))
        a = s.acct
        a.tokens.add(d.tokens)
        a.wall_seconds += d.seconds
        if d.tokens.requests:
            s.last_call_tokens = d.tokens.total // d.tokens.requests
        if d.fallback:
            a.fallbacks.append(d.fallback)
        if d.action is None or (d.action.op not in TERMINAL_OPS and d.config is None):
            a.stop_reason = "no_candidate"  # a policy must hand back the config it validated
            return False
        if d.action.op in TERMINAL_OPS:
            a.stop_reason = f"policy_{d.action.op}"
            return False
        return True

    def _evaluate(self, s: SourceProgress, step: int, d: Decision, patterns: tuple[str, ...], h: str,
                  answer: FitAnswer) -> bool:
        """Book the fit of ``s``'s proposal (and its trail record); False when the source stops."""
        assert d.action is not None
        acceptance = self.settings.acceptance
        s.tried.add(h)
        s.acct.agent_steps += 1
        s.acct.wall_seconds += answer.seconds
        f = answer.fit
        record = StepRecord(s.sid, step, d.policy, action_json(d.action), step_reason(d.rule, d.fallback),
                            float(s.best.chi2_red), d.tokens.prompt, d.tokens.completion, config_id=h)
        s.steps.append(record)
        if f is None:
            record.reason = "; ".join(filter(None, [record.reason, f"fit failed: {answer.error}"]))
            s.acct.fallbacks.append(answer.error)
            s.history.append(Attempt(d.action.brief(), float("nan"), False, False))
            s.stale += 1
        else:
            improved = acceptance.better(f, s.best)
            ok = acceptance.passes(f)
            old = s.best.chi2_red
            gain = (old - f.chi2_red) / old if math.isfinite(old) and old > 0 and math.isfinite(f.chi2_red) else 0.0
            self.delta.record(patterns, d.action.key(), gain, improved, ok)
            s.history.append(Attempt(d.action.brief(), f.chi2_red, ok, improved))
            record.chi2_after, record.accepted_after, record.improved = float(f.chi2_red), bool(ok), bool(improved)
            if improved:
                s.best, s.best_config, s.stale = f, self.configs[h], 0
            else:
                s.stale += 1
        if acceptance.passes(s.best):
            s.acct.stop_reason = "accepted"
        elif s.stale >= self.settings.budgets.patience:
            s.acct.stop_reason = "no_improvement"
        return not s.stopped


async def run_agent_async(
    phot: Photometry,
    triage: FitRows,
    config: FitConfig,
    policy: Policy,
    *,
    partition_id: int | None = None,
    budgets: AgentBudgets = AgentBudgets(),
    knowledge: KnowledgeBase | None = None,
    acceptance: AcceptanceTest = AcceptanceTest(),
    photoz: bool = False,
    cache_dir: Path | None = None,
    notes: Mapping[int, str] | None = None,
    seed: int = 0,
    fit: FitFunction | None = None,
    fit_workers: int = 1,
    overlap: bool = False,
    fit_group: int = 8,
) -> AgentOutcome:
    """Run the agent on the sources of ``phot`` whose triage fit fails ``acceptance``.

    ``triage`` is ``fit_photometry(phot, config, photoz=photoz)``. ``partition_id`` only names
    the table in errors: results never depend on it. ``knowledge`` gives the delta's epoch (the
    policy ranks by its own frozen copy of the epoch's knowledge). ``notes`` maps source id →
    free text from the catalog. ``seed`` is the campaign's seed. ``fit`` replaces
    ``sedscale.sed.api.fit_photometry``. ``fit_workers``: fits that may run at once (threads).
    ``overlap``: let fits run while other sources wait on the LLM (pipelined, for a node whose LLM
    runs on accelerators); off, the run alternates phases (measured: docs/AGENT.md).
    ``fit_group``: the most sources one re-fit call takes when pipelined; results do not depend
    on it.
    """
    t_start = time.perf_counter()
    n = len(phot)
    n_triage = np.asarray(triage.chi2_red).shape[0]
    if n_triage != n:
        where = f" (partition {partition_id})" if partition_id is not None else ""
        raise ValueError(f"triage has {n_triage} sources, photometry {n}{where}")
    chosen = select_sources(triage, phot.source_id, acceptance, seed=seed,
                            max_agent_fraction=budgets.max_agent_fraction)
    settings = RunSettings(budgets, acceptance, photoz, seed, overlap, notes or {})
    policy.set_base_config(config)
    clocks = AgentClocks()
    runner = FitRunner(fit or default_fit(), phot, photoz=photoz, cache_dir=cache_dir, clocks=clocks,
                       workers=fit_workers, overlap=overlap, max_group=fit_group if overlap else None)
    run = AgentRun(phot, policy, settings, runner, clocks, config, knowledge.epoch if knowledge is not None else 0)
    sources = [SourceProgress(i, int(phot.source_id[i]), f, config) for i, f in sorted(chosen.fits.items())]
    await run.run(sources)
    stop = list(chosen.stop)
    for s in sources:
        stop[s.index] = s.acct.stop_reason
    out = assemble_outcome(phot.source_id, len(phot.filters), triage, config, {s.index: s.result() for s in sources},
                           stop, chosen.entered, chosen.triage_ok, acceptance, run.delta)
    out.overhead = policy.overhead.as_columns()
    out.seconds = {"total": time.perf_counter() - t_start, "llm_wait": clocks.llm.total, "refit": clocks.fit.total,
                   "overlap": clocks.overlap, "policy": run.policy_seconds, "fit": runner.seconds}
    return out


def run_agent(
    phot: Photometry,
    triage: FitRows,
    config: FitConfig,
    policy: Policy,
    *,
    partition_id: int | None = None,
    budgets: AgentBudgets = AgentBudgets(),
    knowledge: KnowledgeBase | None = None,
    acceptance: AcceptanceTest = AcceptanceTest(),
    photoz: bool = False,
    cache_dir: Path | None = None,
    notes: Mapping[int, str] | None = None,
    seed: int = 0,
    fit: FitFunction | None = None,
    fit_workers: int = 1,
    overlap: bool = False,
    fit_group: int = 8,
) -> AgentOutcome:
    """Synchronous facade of :func:`run_agent_async` (the same arguments).

    Runs a fresh event loop (in a helper thread when called from inside a running loop) and
    closes the policy's own client afterwards, so the policy can be reused by the next call.
    """

    async def main() -> AgentOutcome:
        try:
            return await run_agent_async(
                phot, triage, config, policy, partition_id=partition_id, budgets=budgets, knowledge=knowledge,
                acceptance=acceptance, photoz=photoz, cache_dir=cache_dir, notes=notes, seed=seed, fit=fit,
                fit_workers=fit_workers, overlap=overlap, fit_group=fit_group)
        finally:
            await policy.aclose()

    return _run_in_fresh_loop(main)


def _run_in_fresh_loop(main: Callable[[], Coroutine[None, None, AgentOutcome]]) -> AgentOutcome:
    """``asyncio.run(main())`` — in a helper thread when this thread already runs an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(main())
    box: list[AgentOutcome] = []
    errors: list[BaseException] = []

    def target() -> None:
        try:
            box.append(asyncio.run(main()))
        except BaseException as exc:  # noqa: BLE001 — re-raised in the caller's thread
            errors.append(exc)

    t = threading.Thread(target=target, name="sedscale-agent")
    t.start()
    t.join()
    if errors:
        raise errors[0]
    return box[0]
