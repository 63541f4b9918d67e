"""The agent loop of one partition: propose → execute → evaluate → distil, pipelined per source.

::

    outcome = await run_agent_async(phot, triage, config, policy, partition_id=7,
                                    budgets=AgentBudgets(), knowledge=kb)

1. **Triage verdict.** The acceptance test runs on the triage fit; only sources it rejects and a
   configuration change could help (a fit exists, enough degrees of freedom) enter the loop.
2. **Propose.** Every source in the loop runs its own chain of steps (one coroutine each, all
   concurrent): it asks the policy, gets one validated action applied to its best configuration
   so far, and queues that configuration for fitting. An LLM policy therefore has a request in
   flight for every source that is not being fitted — there is no step barrier at which the
   server waits for the slowest fit of the partition, or fits wait for the slowest reply.
   With ``overlap=False`` (the default) the partition alternates phases instead — no policy call
   starts while a fit runs, no fit starts while a call is out — which is faster where the LLM
   server shares the CPU cores with the fits (tests, laptops); ``overlap=True`` is the setting
   for nodes whose LLM runs on accelerators.
3. **Execute.** One fit runner (``fit_workers`` threads, so the event loop and the other sources'
   LLM calls keep running) takes the oldest queued job and, with it, the queued jobs of the same
   ``FitConfig.hash()`` (at most ``fit_group`` when pipelined): sources that asked for the same
   configuration while the previous fit ran share one vectorized ``fit_photometry`` call on one
   cached grid. The fit of a source does not
   depend on which other sources share its call (the kernel works row by row), so the grouping —
   which depends on timing — never changes a result.
4. **Evaluate.** A fit replaces the source's best when it is better by the acceptance test's
   order (newly accepted, or χ²_red lower by ``min_gain``); the next step edits the best config.
   A source stops when accepted, when the policy says ``accept``/``give_up`` or has nothing left
   to try, after ``max_steps``, or after ``patience`` steps without improvement. Once a source's
   next LLM call would take its tokens past ``max_tokens_per_source``, the policy's fallback
   (the rules, which cost no tokens) decides for it instead (recorded as ``token_budget``); a
   policy without a fallback stops the source.
5. **Distil.** Every step's (patterns, action, gain, accepted) goes into the outcome's
   knowledge delta (integer counts: the order in which sources report does not matter); the
   campaign merges deltas between epochs (:mod:`sedscale.agent.knowledge`).

The final fit of every source is the best of its triage fit and every fit tried, so it is never
worse than triage. A source's decisions depend only on its own state and on randomness from
(seed, partition id, source id, step), so a rerun on any node decides identically whatever the
timing. Where the time went is measured as wall-clock unions: ``llm_wait`` (some source waits on
the policy), ``refit`` (some fit runs) and their ``overlap``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import math
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

import numpy as np

from sedscale.agent.acceptance import PHOTOZ_FIELDS, AcceptanceTest, SourceFit, source_fits
from sedscale.agent.accounting import SourceAccounting, accounting_columns, summarize
from sedscale.agent.actions import TERMINAL_OPS
from sedscale.agent.apply import ApplyLimits, apply_action, describe_config
from sedscale.agent.knowledge import KnowledgeBase
from sedscale.agent.policy import Decision, DecisionRequest, Policy
from sedscale.agent.state import Attempt, SourceState, sanitize, NOTE_MAX
from sedscale.catalog.photometry import Photometry
from sedscale.sed.config import FitConfig

FitFunction = Callable[..., Any]  # fit_photometry(phot, config, *, photoz, cache_dir) -> FitResult


@dataclass(frozen=True)
class AgentBudgets:
    """Per-source limits of the loop."""

    max_steps: int = 6
    max_tokens_per_source: int = 5000  # LLM prompt + completion tokens
    patience: int = 3  # consecutive steps without improvement before stopping
    max_agent_fraction: float = 1.0  # share of the partition's sources that may enter the loop
    limits: ApplyLimits = ApplyLimits()


@dataclass
class AgentOutcome:
    """Per-source final results for all N sources of the partition (triage rows passed through)."""

    source_id: np.ndarray  # (N,)
    entered: np.ndarray  # (N,) bool: went through the agent loop
    triage_accepted: np.ndarray  # (N,) bool
    accepted: np.ndarray  # (N,) bool: the final fit passes the acceptance test
    chi2_red: np.ndarray  # (N,)
    triage_chi2_red: np.ndarray  # (N,)
    dof: np.ndarray  # (N,)
    chi2_best: np.ndarray  # (N,)
    estimates: dict[str, tuple[np.ndarray, np.ndarray]]  # name → (mean, std), (N,) each
    residual_sigma: np.ndarray  # (N, B)
    best_flux: np.ndarray  # (N, B)
    extra: dict[str, np.ndarray]  # photo-z outputs of the final fits (z_best, z_mean, ...)
    config_hash: list[str]  # (N,) hash of the final configuration
    configs: dict[str, FitConfig]  # hash → configuration, every final one
    stop_reason: list[str]  # (N,)
    accounting: list[SourceAccounting]  # (N,)
    history: dict[int, list[Attempt]]  # source_id → attempts (agent sources only)
    decisions: dict[int, list[tuple[int, str, str, str]]]  # source_id → (step, by, action, fallback reason)
    knowledge_delta: KnowledgeBase
    overhead: dict[str, int] = field(default_factory=dict)  # LLM warm-up tokens, not per source
    seconds: dict[str, float] = field(default_factory=dict)  # total, llm_wait, refit, overlap (unions); policy, fit (sums)

    def columns(self) -> dict[str, np.ndarray]:
        """Arrays for the results table (DESIGN.md §4 names where they exist)."""
        out: dict[str, np.ndarray] = {"accepted": self.accepted, "chi2_red": self.chi2_red}
        for name in ("logmstar", "logsfr", "av"):
            if name in self.estimates:
                out[name], out[f"{name}_err"] = self.estimates[name]
        out.update(accounting_columns(self.accounting))
        return out

    def summary(self) -> dict[str, Any]:
        """Totals for the partition's report. Besides the accounting totals: ``llm_wait_s`` (wall
        seconds in which some source waited on the policy / LLM), ``refit_s`` (wall seconds in
        which an agent re-fit ran), ``overlap_s`` (both at once) and ``agent_wall_s`` — wall-clock
        unions, not sums over sources, so they can be set beside the partition's wall time."""
        s = summarize(self.accounting)
        ent = self.entered
        sec = self.seconds
        s.update({
            "llm_wait_s": float(sec.get("llm_wait", 0.0)),
            "refit_s": float(sec.get("refit", 0.0)),
            "overlap_s": float(sec.get("overlap", 0.0)),
            "agent_wall_s": float(sec.get("total", 0.0)),
        })
        s.update({
            "sources": int(self.source_id.size),
            "triage_failed": int(np.sum(ent)),
            "agent_accepted": int(np.sum(self.accepted & ent)),
            "acceptance_fraction": float(np.mean(self.accepted[ent])) if ent.any() else float("nan"),
            "seconds": dict(self.seconds),
            "overhead": dict(self.overhead),
        })
        return s


def _default_fit() -> FitFunction:
    from sedscale.sed.api import fit_photometry

    return fit_photometry


def source_seed(seed: int, partition_id: int, source_id: int, step: int) -> np.random.SeedSequence:
    """The seed of one source's step: independent of order, node and retry."""
    sid = int(source_id) & 0xFFFFFFFFFFFFFFFF
    return np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(partition_id) & 0xFFFFFFFFFFFFFFFF, sid, int(step)])


class _Source:
    """Mutable per-source bookkeeping during the loop."""

    def __init__(self, index: int, sid: int, triage: SourceFit, config: FitConfig) -> None:
        self.index, self.sid = index, sid
        self.best = triage
        self.best_config = config
        self.tried = {config.hash()}
        self.history: list[Attempt] = []
        self.stale = 0
        self.seen_patterns: set[str] = set()
        self.decisions: list[tuple[int, str, str, str]] = []
        self.last_call_tokens = 0  # tokens of this source's last LLM call (next-call estimate)
        self.acct = SourceAccounting()


class _Busy:
    """Wall-clock union of the intervals in which at least one of many overlapping activities
    runs (e.g. any source waiting on the LLM): with hundreds of sources in flight a plain sum of
    durations would count the same second hundreds of times."""

    def __init__(self) -> None:
        self.running = 0
        self.since = 0.0
        self.total = 0.0

    def enter(self) -> None:
        if self.running == 0:
            self.since = time.perf_counter()
        self.running += 1

    def leave(self) -> None:
        self.running -= 1
        if self.running == 0:
            self.total += time.perf_counter() - self.since


class _Clocks:
    """Where the partition's agent time went: policy (LLM) waits, fits, and either."""

    def __init__(self) -> None:
        self.llm, self.fit, self.either = _Busy(), _Busy(), _Busy()

    @contextlib.contextmanager
    def span(self, which: _Busy) -> Iterator[None]:
        which.enter()
        self.either.enter()
        try:
            yield
        finally:
            which.leave()
            self.either.leave()


@dataclass
class _FitJob:
    index: int
    config: FitConfig
    future: asyncio.Future


class _FitRunner:
    """Fits queued (source, configuration) jobs in worker threads, grouped by configuration.

    A free worker takes the oldest job and the queued jobs of the same configuration hash (up to
    ``max_group``; None: all), so sources that asked for the same configuration while earlier fits ran share
    one vectorized call (and one prepared configuration); the others stay queued and may gain
    members meanwhile. The cap keeps the policy fed: a re-fit costs per source (its own redshift
    nodes), so one call for 40 sources would hold all 40 back from their next LLM request for
    its whole duration and send them at once (a burst, then an idle server); in calls of a few
    sources they return to the policy in a steady stream. Each job's
    future receives ``(fit or None, error text, this source's share of the call's seconds)``.
    """

    def __init__(self, fit_fn: FitFunction, phot: Photometry, *, photoz: bool, cache_dir: Path | None,
                 clocks: _Clocks, workers: int = 1, overlap: bool = True, max_group: int | None = 8) -> None:
        if workers < 1:
            raise ValueError("fit_workers must be >= 1")
        if max_group is not None and max_group < 1:
            raise ValueError("fit_group must be >= 1")
        self.max_group = max_group
        self.overlap = overlap
        self.changed = asyncio.Event()  # set whenever a policy call or a fit ends (phase gating)
        self.fitting = 0  # groups taken from the queue and not finished
        self.fit_fn, self.phot, self.photoz, self.cache_dir = fit_fn, phot, photoz, cache_dir
        self.clocks = clocks
        self.queue: list[_FitJob] = []
        self.wake = asyncio.Event()
        self.slots = asyncio.Semaphore(workers)
        self.tasks: set[asyncio.Task] = set()
        self.seconds = 0.0  # summed fit-call durations (= the refit union with one worker)

    async def fit(self, index: int, config: FitConfig) -> tuple[SourceFit | None, str, float]:
        job = _FitJob(index, config, asyncio.get_running_loop().create_future())
        self.queue.append(job)
        self.wake.set()
        return await job.future

    async def run(self) -> None:
        """Dispatch forever (cancelled by the loop when every source has stopped)."""
        try:
            while True:
                await self.slots.acquire()
                while not self.queue or (not self.overlap and self.clocks.llm.running):
                    # phases (overlap off): no fit starts while a source waits on the policy
                    self.wake.clear()
                    self.changed.clear()
                    waits = {asyncio.ensure_future(self.wake.wait()), asyncio.ensure_future(self.changed.wait())}
                    _, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                    for w in pending:
                        w.cancel()
                h = self.queue[0].config.hash()
                group = [j for j in self.queue if j.config.hash() == h][: self.max_group]
                taken = {id(j) for j in group}
                self.queue = [j for j in self.queue if id(j) not in taken]
                self.fitting += 1
                task = asyncio.create_task(self._fit_group(group))
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)
        finally:
            for task in list(self.tasks):
                task.cancel()

    async def _fit_group(self, group: list[_FitJob]) -> None:
        idx = np.array([j.index for j in group], dtype=np.int64)
        cfg = group[0].config
        t0 = time.perf_counter()
        try:
            with self.clocks.span(self.clocks.fit):
                result = await asyncio.to_thread(self.fit_fn, self.phot.take(idx), cfg, photoz=self.photoz,
                                                 cache_dir=self.cache_dir)
            fits: list[SourceFit | None] = list(source_fits(result))
            if len(fits) != len(group):
                raise RuntimeError(f"the fit returned {len(fits)} rows for {len(group)} sources")
            error = ""
        except Exception as exc:  # noqa: BLE001 — one bad configuration must not sink the partition
            fits = [None] * len(group)
            error = f"fit_error: {type(exc).__name__}: {' '.join(str(exc).split())[:120]}"
        finally:
            self.fitting -= 1
            self.slots.release()
            self.changed.set()
        dt = time.perf_counter() - t0
        self.seconds += dt
        for job, f in zip(group, fits):
            if not job.future.done():
                job.future.set_result((f, error, dt / len(group)))


async def run_agent_async(
    phot: Photometry,
    triage: Any,
    config: FitConfig,
    policy: Policy,
    *,
    partition_id: int,
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
    """Run the agent on the sources of one partition whose triage fit fails ``acceptance``.

    ``triage`` is ``fit_photometry(phot, config, photoz=photoz)`` (a ``FitResult``). ``knowledge``
    is only used for the delta's epoch here (policies hold their own epoch snapshot). ``notes``
    maps source id → free text from the catalog (sanitised, shown to an LLM as quoted data).
    ``fit`` replaces ``sedscale.sed.api.fit_photometry`` (same signature). ``fit_workers``: fits
    that may run at once (threads); on a node whose LLM runs on accelerators, the CPU cores that
    the partition owns. ``overlap``: let fits run while other sources wait on the LLM (pipelined)
    — for a node whose LLM runs on accelerators; off (the default), the partition alternates
    phases like lock-step (no policy call starts while a fit runs, no fit starts while a policy
    call is out), which is faster where the LLM server and the fits share the same
    CPU cores (measured: docs/AGENT.md). ``fit_group``: the most sources one re-fit call takes
    in the pipelined loop (see :class:`_FitRunner`; with phases a group's sources all wait for
    the phase anyway); results do not depend on it.
    """
    t_start = time.perf_counter()
    fit_fn = fit or _default_fit()
    n = len(phot)
    chi2_0 = np.asarray(triage.chi2_red, dtype=np.float64)
    if chi2_0.shape[0] != n:
        raise ValueError(f"triage has {chi2_0.shape[0]} sources, photometry {n}")
    kb_epoch = knowledge.epoch if knowledge is not None else 0
    delta = KnowledgeBase(epoch=kb_epoch)
    # vectorised triage: per-source objects only for the (few) sources the agent may take
    triage_ok, helpable = acceptance.triage_arrays(triage)
    stop = ["triage_accepted" if ok else "" for ok in triage_ok.tolist()]
    not_eligible = np.flatnonzero(~triage_ok & ~helpable)
    for i, f in zip(not_eligible.tolist(), source_fits(triage, not_eligible)):
        stop[i] = "not_eligible:" + ",".join(acceptance.failures(f))
    candidates = np.flatnonzero(~triage_ok & helpable)
    srcs = {i: _Source(i, int(phot.source_id[i]), f, config)
            for i, f in zip(candidates.tolist(), source_fits(triage, candidates))}
    entered = np.zeros(n, dtype=bool)
    entered[candidates] = True
    active: list[int] = candidates.tolist()
    quota = int(math.floor(budgets.max_agent_fraction * n + 1e-9))
    if len(active) > quota:  # the worst triage fits first (ties by source id): deterministic
        chi2_list = chi2_0.tolist()
        ranked = sorted(active, key=lambda i: (-_finite(chi2_list[i]), srcs[i].sid))
        for i in ranked[quota:]:
            stop[i] = "agent_quota"
            entered[i] = False
        active = sorted(ranked[:quota])
    configs: dict[str, FitConfig] = {config.hash(): config}
    fallback: Policy | None = getattr(policy, "fallback", None)  # acts once the token budget is spent
    set_base = getattr(policy, "set_base_config", None)
    if set_base is not None:
        set_base(config)
    clocks = _Clocks()
    runner = _FitRunner(fit_fn, phot, photoz=photoz, cache_dir=cache_dir, clocks=clocks, workers=fit_workers,
                        overlap=overlap, max_group=fit_group if overlap else None)  # phases: all wait anyway
    policy_s = 0.0  # summed per-source decision latencies (the old "policy" figure; overlaps)

    def finish(i: int, reason: str) -> None:
        stop[i] = reason
        srcs[i].acct.stop_reason = reason

    async def decide(i: int, step: int) -> tuple[DecisionRequest, Decision] | None:
        """Step ``step``'s proposal for source ``i`` (None: the source stopped)."""
        nonlocal policy_s
        s = srcs[i]
        over = s.acct.tokens_total + s.last_call_tokens > budgets.max_tokens_per_source
        if over and fallback is None:
            finish(i, "token_budget")
            return None
        state = _state(phot, i, s, step, photoz, notes)
        state.seen_patterns = tuple(sorted(s.seen_patterns))
        s.seen_patterns.update(state.patterns)
        ss = source_seed(seed, partition_id, s.sid, step)
        req = DecisionRequest(
            state=state,
            config=s.best_config,
            try_apply=functools.partial(apply_action, s.best_config, estimates=s.best.estimates,
                                        photoz=photoz, limits=budgets.limits),
            tried=frozenset(s.tried),
            rng=np.random.default_rng(ss),
            seed=int(ss.generate_state(1, dtype=np.uint32)[0]),
            tokens_used=s.acct.tokens_total,
        )
        who = fallback if over else policy
        while not overlap and runner.fitting:  # phases: no LLM call while a fit runs
            runner.changed.clear()
            await runner.changed.wait()
        t0 = time.perf_counter()
        try:
            with clocks.span(clocks.llm):
                answers = await who.decide([req])
        finally:
            runner.changed.set()
        policy_s += time.perf_counter() - t0
        if not answers:
            raise RuntimeError(f"policy {who.name!r} returned too few decisions")
        d = answers[0]
        if over:
            d.fallback = "token_budget"
        return req, d

    def record(i: int, step: int, d: Decision) -> bool:
        """Book the decision; False when it ends the source's search."""
        s = srcs[i]
        s.decisions.append((step, d.policy, d.action.brief() if d.action is not None else "", d.fallback or ""))
        a = s.acct
        a.llm_calls += d.llm_calls
        a.tokens_prompt += d.tokens_prompt
        a.tokens_cached += d.tokens_cached
        a.tokens_completion += d.tokens_completion
        a.wall_seconds += d.seconds
        if d.llm_calls:
            s.last_call_tokens = (d.tokens_prompt + d.tokens_completion) // d.llm_calls
        if d.fallback:
            a.fallbacks.append(d.fallback)
        if d.action is None or (d.action.op not in TERMINAL_OPS and d.config is None):
            finish(i, "no_candidate")  # a policy must hand back the config it validated
            return False
        if d.action.op in TERMINAL_OPS:
            finish(i, f"policy_{d.action.op}")
            return False
        return True

    def evaluate(i: int, d: Decision, patterns: tuple[str, ...], h: str, f: SourceFit | None, error: str,
                 share: float) -> bool:
        """Book the fit of source ``i``'s proposal; False when the source stops."""
        s = srcs[i]
        s.tried.add(h)
        s.acct.agent_steps += 1
        s.acct.wall_seconds += share
        if f is None:
            s.acct.fallbacks.append(error)
            s.history.append(Attempt(d.action.brief(), float("nan"), False, False))
            s.stale += 1
        else:
            improved = acceptance.better(f, s.best)
            ok = acceptance.passes(f)
            old = s.best.chi2_red
            gain = (old - f.chi2_red) / old if math.isfinite(old) and old > 0 and math.isfinite(f.chi2_red) else 0.0
            delta.record(patterns, d.action.key(), gain, improved, ok)
            s.history.append(Attempt(d.action.brief(), f.chi2_red, ok, improved))
            if improved:
                s.best, s.best_config, s.stale = f, configs[h], 0
            else:
                s.stale += 1
        if acceptance.passes(s.best):
            finish(i, "accepted")
        elif s.stale >= budgets.patience:
            finish(i, "no_improvement")
        return not stop[i]


    async def drive(i: int) -> None:
        """One source's chain of steps: propose → fit → evaluate, until it stops."""
        for step in range(1, budgets.max_steps + 1):
            asked = await decide(i, step)
            if asked is None:
                return
            req, d = asked
            if not record(i, step, d):
                return
            h = d.config.hash()
            configs.setdefault(h, d.config)
            f, error, share = await runner.fit(i, configs[h])
            if not evaluate(i, d, req.state.patterns, h, f, error, share):
                return
        finish(i, "max_steps")

    dispatcher = asyncio.create_task(runner.run())
    try:
        await asyncio.gather(*(drive(i) for i in active))
    finally:
        dispatcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await dispatcher

    out = _assemble(phot, triage, config, srcs, stop, entered, triage_ok, acceptance, configs)
    out.knowledge_delta = delta
    usage = getattr(policy, "overhead", None)
    if usage is not None:
        out.overhead = {"llm_calls": usage.calls, "tokens_prompt": usage.prompt, "tokens_cached": usage.cached,
                        "tokens_completion": usage.completion}
    llm, fit_busy, either = clocks.llm.total, clocks.fit.total, clocks.either.total
    out.seconds = {"total": time.perf_counter() - t_start, "llm_wait": llm, "refit": fit_busy,
                   "overlap": max(0.0, llm + fit_busy - either), "policy": policy_s, "fit": runner.seconds}
    return out


def _finite(x: float) -> float:
    return x if math.isfinite(x) else float("inf")


def _state(phot: Photometry, i: int, s: _Source, step: int, photoz: bool,
           notes: Mapping[int, str] | None) -> SourceState:
    z = float(phot.redshift[i])
    if photoz or not math.isfinite(z):
        z = s.best.extra.get("z_best", s.best.extra.get("z_mean", z))
    note = sanitize(notes.get(s.sid, ""), NOTE_MAX) if notes else ""
    return SourceState(source_id=s.sid, redshift=z, filters=tuple(phot.filters), flux=phot.flux[i],
                       error=phot.error[i], fit=s.best, config_brief=describe_config(s.best_config),
                       history=list(s.history), note=note, step=step, photoz=photoz,
                       axes=s.best_config.axes())


def _assemble(phot: Photometry, triage: Any, config: FitConfig, srcs: dict[int, _Source], stop: list[str],
              entered: np.ndarray, triage_ok: np.ndarray, acceptance: AcceptanceTest,
              configs: dict[str, FitConfig]) -> AgentOutcome:
    """The outcome arrays: the triage fit's rows, overwritten by the agent's best fit of each
    source it took (``srcs``)."""
    n = len(phot)
    b = len(phot.filters)
    triage_chi2 = np.asarray(triage.chi2_red, dtype=np.float64)

    def column(name: str, fill: float, dtype: Any = np.float64) -> np.ndarray:
        value = getattr(triage, name, None)
        return np.full(n, fill, dtype=dtype) if value is None else np.array(value, dtype=dtype)

    chi2 = triage_chi2.copy()
    dof = column("dof", 0, np.int64)
    chi2_best = column("chi2_best", np.nan)
    residual = np.array(triage.residual_sigma, dtype=np.float64).reshape(n, b)
    best_flux = getattr(triage, "best_flux", None)
    best_flux = np.full((n, b), np.nan) if best_flux is None else np.array(best_flux).reshape(n, b)
    tri_est = getattr(triage, "estimates", {}) or {}
    names = sorted(set(tri_est) | {k for s in srcs.values() for k in s.best.estimates})
    estimates = {k: (np.array(tri_est[k][0], dtype=np.float64), np.array(tri_est[k][1], dtype=np.float64))
                 if k in tri_est else (np.full(n, np.nan), np.full(n, np.nan)) for k in names}
    tri_extra = {k: np.asarray(v, dtype=np.float64) for k in PHOTOZ_FIELDS
                 if (v := getattr(triage, k, None)) is not None}
    extra_names = sorted(set(tri_extra) | {k for s in srcs.values() for k in s.best.extra})
    extra = {k: tri_extra[k].copy() if k in tri_extra else np.full(n, np.nan) for k in extra_names}
    accepted = triage_ok.copy()
    hashes = [config.hash()] * n
    accounting = [SourceAccounting(stop_reason=r) for r in stop]
    for i, s in srcs.items():
        f = s.best
        chi2[i], dof[i], chi2_best[i] = f.chi2_red, f.dof, f.chi2_best
        residual[i], best_flux[i] = f.residual, f.best_flux
        for k in names:
            estimates[k][0][i], estimates[k][1][i] = f.estimates.get(k, (np.nan, np.nan))
        for k in extra_names:
            extra[k][i] = f.extra.get(k, np.nan)
        accepted[i] = acceptance.passes(f)
        hashes[i] = s.best_config.hash()
        s.acct.stop_reason = s.acct.stop_reason or stop[i]
        accounting[i] = s.acct
    return AgentOutcome(
        source_id=np.asarray(phot.source_id).copy(),
        entered=entered,
        triage_accepted=triage_ok,
        accepted=accepted,
        chi2_red=chi2,
        triage_chi2_red=triage_chi2,
        dof=dof,
        chi2_best=chi2_best,
        estimates=estimates,
        residual_sigma=residual,
        best_flux=best_flux,
        extra=extra,
        config_hash=hashes,
        configs={h: configs[h] for h in sorted(set(hashes))},
        stop_reason=list(stop),
        accounting=accounting,
        history={s.sid: list(s.history) for i, s in sorted(srcs.items()) if entered[i]},
        decisions={s.sid: list(s.decisions) for i, s in sorted(srcs.items()) if entered[i]},
        knowledge_delta=KnowledgeBase(),
    )


def run_agent(*args: Any, **kwargs: Any) -> AgentOutcome:
    """Synchronous facade of :func:`run_agent_async` (same arguments).

    Runs a fresh event loop (in a helper thread when called from inside a running loop) and
    closes the policy's own client afterwards, so the policy can be reused by the next call.
    """

    async def main() -> AgentOutcome:
        policy = args[3] if len(args) > 3 else kwargs["policy"]
        try:
            return await run_agent_async(*args, **kwargs)
        finally:
            await policy.aclose()

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(main())
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["out"] = asyncio.run(main())
        except BaseException as exc:  # noqa: BLE001 — re-raised in the caller's thread
            box["err"] = exc

    t = threading.Thread(target=target, name="sedscale-agent")
    t.start()
    t.join()
    if "err" in box:
        raise box["err"]
    return box["out"]
