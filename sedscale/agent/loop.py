"""The lock-step agent loop of one partition: propose → execute → evaluate → distil.

::

    outcome = await run_agent_async(phot, triage, config, policy, partition_id=7,
                                    budgets=AgentBudgets(), knowledge=kb)

1. **Triage verdict.** The acceptance test runs on the triage fit; only sources it rejects and a
   configuration change could help (a fit exists, enough degrees of freedom) enter the loop.
2. **Propose.** At each step every active source asks the policy at once (one batch; an LLM
   policy puts all requests in flight concurrently). Each proposal is applied to the source's
   best configuration so far and validated.
3. **Execute.** Proposals are grouped by ``FitConfig.hash()``; each group is fitted in one
   vectorized ``fit_photometry`` call (its grid built once, cached), groups in hash order, in a
   worker thread so the event loop — and other partitions' LLM calls — keep running.
4. **Evaluate.** A fit replaces the source's best when it is better by the acceptance test's
   order (newly accepted, or χ²_red lower by ``min_gain``); the next step edits the best config.
   A source stops when accepted, when the policy says ``accept``/``give_up`` or has nothing left
   to try, after ``max_steps``, or after ``patience`` steps without improvement. Once a source's
   next LLM call would take its tokens past ``max_tokens_per_source``, the policy's fallback
   (the rules, which cost no tokens) decides for it instead (recorded as ``token_budget``); a
   policy without a fallback stops the source.
5. **Distil.** Every step's (patterns, action, gain, accepted) goes into the outcome's
   knowledge delta; the campaign merges deltas between epochs (:mod:`sedscale.agent.knowledge`).

The final fit of every source is the best of its triage fit and every fit tried, so it is never
worse than triage. Randomness (rule exploration, LLM sampling seeds) comes from
(seed, partition id, source id, step) only: a rerun on any node decides identically.
"""

from __future__ import annotations

import asyncio
import functools
import math
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from sedscale.agent.acceptance import AcceptanceTest, SourceFit, source_fits
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
    seconds: dict[str, float] = field(default_factory=dict)  # total, policy, fit

    def columns(self) -> dict[str, np.ndarray]:
        """Arrays for the results table (DESIGN.md §4 names where they exist)."""
        out: dict[str, np.ndarray] = {"accepted": self.accepted, "chi2_red": self.chi2_red}
        for name in ("logmstar", "logsfr", "av"):
            if name in self.estimates:
                out[name], out[f"{name}_err"] = self.estimates[name]
        out.update(accounting_columns(self.accounting))
        return out

    def summary(self) -> dict[str, Any]:
        s = summarize(self.accounting)
        ent = self.entered
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
) -> AgentOutcome:
    """Run the agent on the sources of one partition whose triage fit fails ``acceptance``.

    ``triage`` is ``fit_photometry(phot, config, photoz=photoz)`` (a ``FitResult``). ``knowledge``
    is only used for the delta's epoch here (policies hold their own epoch snapshot). ``notes``
    maps source id → free text from the catalog (sanitised, shown to an LLM as quoted data).
    ``fit`` replaces ``sedscale.sed.api.fit_photometry`` (same signature).
    """
    t_start = time.perf_counter()
    fit_fn = fit or _default_fit()
    n = len(phot)
    fits0 = source_fits(triage)
    if len(fits0) != n:
        raise ValueError(f"triage has {len(fits0)} sources, photometry {n}")
    kb_epoch = knowledge.epoch if knowledge is not None else 0
    delta = KnowledgeBase(epoch=kb_epoch)
    srcs = [_Source(i, int(phot.source_id[i]), fits0[i], config) for i in range(n)]
    stop = [""] * n
    triage_ok = np.array([acceptance.passes(f) for f in fits0], dtype=bool)
    entered = np.zeros(n, dtype=bool)
    active: list[int] = []
    for i, f in enumerate(fits0):
        if triage_ok[i]:
            stop[i] = "triage_accepted"
        elif not acceptance.agent_can_help(f):
            stop[i] = "not_eligible:" + ",".join(acceptance.failures(f))
        else:
            active.append(i)
            entered[i] = True
    quota = int(math.floor(budgets.max_agent_fraction * n + 1e-9))
    if len(active) > quota:  # the worst triage fits first (ties by source id): deterministic
        ranked = sorted(active, key=lambda i: (-_finite(fits0[i].chi2_red), srcs[i].sid))
        for i in ranked[quota:]:
            stop[i] = "agent_quota"
            entered[i] = False
        active = sorted(ranked[:quota])
    configs: dict[str, FitConfig] = {config.hash(): config}
    policy_s = fit_s = 0.0
    fallback: Policy | None = getattr(policy, "fallback", None)  # acts once the token budget is spent
    set_base = getattr(policy, "set_base_config", None)
    if set_base is not None:
        set_base(config)

    def finish(i: int, reason: str) -> None:
        stop[i] = reason
        srcs[i].acct.stop_reason = reason

    for step in range(1, budgets.max_steps + 1):
        if not active:
            break
        requests: list[DecisionRequest] = []
        asking: list[int] = []
        over: list[int] = []  # sources whose next LLM call would break the token budget
        for i in active:
            s = srcs[i]
            if s.acct.tokens_total + s.last_call_tokens > budgets.max_tokens_per_source:
                if fallback is None:
                    finish(i, "token_budget")
                    continue
                over.append(len(requests))
            state = _state(phot, i, s, step, photoz, notes)
            state.seen_patterns = tuple(sorted(s.seen_patterns))
            s.seen_patterns.update(state.patterns)
            ss = source_seed(seed, partition_id, s.sid, step)
            requests.append(DecisionRequest(
                state=state,
                config=s.best_config,
                try_apply=functools.partial(apply_action, s.best_config, estimates=s.best.estimates,
                                            photoz=photoz, limits=budgets.limits),
                tried=frozenset(s.tried),
                rng=np.random.default_rng(ss),
                seed=int(ss.generate_state(1, dtype=np.uint32)[0]),
                tokens_used=s.acct.tokens_total,
            ))
            asking.append(i)
        t0 = time.perf_counter()
        over_set = set(over)
        ask = [r for k, r in enumerate(requests) if k not in over_set]
        answers = iter(await policy.decide(ask) if ask else [])
        spare = iter(await fallback.decide([requests[k] for k in over]) if over else [])
        decisions = []
        for k in range(len(requests)):
            if k in over_set:
                d = next(spare)
                d.fallback = "token_budget"
            else:
                d = next(answers, None)
                if d is None:
                    raise RuntimeError(f"policy {policy.name!r} returned too few decisions")
            decisions.append(d)
        policy_s += time.perf_counter() - t0

        groups: dict[str, list[tuple[int, Decision, tuple[str, ...]]]] = {}
        for i, req, d in zip(asking, requests, decisions):
            srcs[i].decisions.append((step, d.policy, d.action.brief() if d.action is not None else "", d.fallback or ""))
            a = srcs[i].acct
            a.llm_calls += d.llm_calls
            a.tokens_prompt += d.tokens_prompt
            a.tokens_cached += d.tokens_cached
            a.tokens_completion += d.tokens_completion
            a.wall_seconds += d.seconds
            if d.llm_calls:
                srcs[i].last_call_tokens = (d.tokens_prompt + d.tokens_completion) // d.llm_calls
            if d.fallback:
                a.fallbacks.append(d.fallback)
            if d.action is None:
                finish(i, "no_candidate")
            elif d.action.op in TERMINAL_OPS:
                finish(i, f"policy_{d.action.op}")
            elif d.config is None:  # a policy must hand back the config it validated
                finish(i, "no_candidate")
            else:
                h = d.config.hash()
                configs.setdefault(h, d.config)
                groups.setdefault(h, []).append((i, d, req.state.patterns))

        for h in sorted(groups):
            members = groups[h]
            idx = np.array([m[0] for m in members], dtype=np.int64)
            cfg = configs[h]
            t0 = time.perf_counter()
            try:
                result = await asyncio.to_thread(fit_fn, phot.take(idx), cfg, photoz=photoz, cache_dir=cache_dir)
                new_fits: list[SourceFit | None] = list(source_fits(result))
                error = ""
            except Exception as exc:  # noqa: BLE001 — one bad configuration must not sink the partition
                new_fits = [None] * len(members)
                error = f"fit_error: {type(exc).__name__}: {' '.join(str(exc).split())[:120]}"
            dt = time.perf_counter() - t0
            fit_s += dt
            for (i, d, patterns), f in zip(members, new_fits):
                s = srcs[i]
                s.tried.add(h)
                s.acct.agent_steps += 1
                s.acct.wall_seconds += dt / len(members)
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
                        s.best, s.best_config, s.stale = f, cfg, 0
                    else:
                        s.stale += 1
                if acceptance.passes(s.best):
                    finish(i, "accepted")
                elif s.stale >= budgets.patience:
                    finish(i, "no_improvement")
        active = [i for i in active if not stop[i]]
    for i in active:
        finish(i, "max_steps")

    out = _assemble(phot, triage, fits0, srcs, stop, entered, triage_ok, acceptance, configs)
    out.knowledge_delta = delta
    usage = getattr(policy, "overhead", None)
    if usage is not None:
        out.overhead = {"llm_calls": usage.calls, "tokens_prompt": usage.prompt, "tokens_cached": usage.cached,
                        "tokens_completion": usage.completion}
    out.seconds = {"total": time.perf_counter() - t_start, "policy": policy_s, "fit": fit_s}
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


def _assemble(phot: Photometry, triage: Any, fits0: list[SourceFit], srcs: list[_Source], stop: list[str],
              entered: np.ndarray, triage_ok: np.ndarray, acceptance: AcceptanceTest,
              configs: dict[str, FitConfig]) -> AgentOutcome:
    n = len(srcs)
    b = len(phot.filters)
    finals = [s.best for s in srcs]
    names = sorted({k for f in finals for k in f.estimates})
    estimates = {k: (np.array([f.estimates.get(k, (np.nan, np.nan))[0] for f in finals]),
                     np.array([f.estimates.get(k, (np.nan, np.nan))[1] for f in finals])) for k in names}
    extra_names = sorted({k for f in finals for k in f.extra})
    hashes = [s.best_config.hash() for s in srcs]
    for s in srcs:
        s.acct.stop_reason = s.acct.stop_reason or stop[s.index]
    return AgentOutcome(
        source_id=np.asarray(phot.source_id).copy(),
        entered=entered,
        triage_accepted=triage_ok,
        accepted=np.array([acceptance.passes(f) for f in finals], dtype=bool),
        chi2_red=np.array([f.chi2_red for f in finals]),
        triage_chi2_red=np.array([f.chi2_red for f in fits0]),
        dof=np.array([f.dof for f in finals], dtype=np.int64),
        chi2_best=np.array([f.chi2_best for f in finals]),
        estimates=estimates,
        residual_sigma=np.stack([f.residual for f in finals]) if n else np.zeros((0, b)),
        best_flux=np.stack([f.best_flux for f in finals]) if n else np.zeros((0, b)),
        extra={k: np.array([f.extra.get(k, np.nan) for f in finals]) for k in extra_names},
        config_hash=hashes,
        configs={h: configs[h] for h in sorted(set(hashes))},
        stop_reason=list(stop),
        accounting=[s.acct for s in srcs],
        history={s.sid: list(s.history) for s in srcs if entered[s.index]},
        decisions={s.sid: list(s.decisions) for s in srcs if entered[s.index]},
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
