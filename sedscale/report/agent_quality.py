"""``sedscale bench agent-quality``: does the agent earn its tokens? (issue 17)

Every strategy fits the same validated sources of one catalog with truth columns, in this
process (no campaign), with the workflow's options (:meth:`sedscale.fitting.FitOptions.from_workflow`):

* ``triage`` — the workflow's triage configuration alone (``fit_photometry``);
* ``exhaustive`` — the union grid of :mod:`sedscale.report.agent_quality_grid`, per source the
  member with the lowest best χ²;
* ``rules`` — triage, then ``run_agent`` with the rules policy within the workflow's budgets, the
  same calls :func:`sedscale.fitting.fit_table` makes (policy built by its ``make_policy``);
* ``rules_kb`` — the same started from a knowledge base: ``--knowledge`` when given (figures over
  every source), else one learnt by ``rules`` on half A of a seeded split of the source ids
  (:func:`sedscale.agent.seeds.unit_hash`), the figures then over half B only;
* ``llm`` / ``llm_kb`` — the same with the LLM policy, when an endpoint is given.

The agent's re-fits go through a counting wrapper of ``fit_photometry`` (run_agent's ``fit``
hook), so ``models_per_source`` counts every configuration a source was actually fitted with.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import pyarrow as pa

from sedscale.agent import KnowledgeBase, run_agent
from sedscale.agent.endpoint import LLMEndpoint
from sedscale.agent.seeds import unit_hash
from sedscale.catalog.photometry import Photometry
from sedscale.fitting import FitOptions, make_policy
from sedscale.report.agent_quality_grid import evaluations_per_source, exhaustive_configs
from sedscale.report.agent_quality_metrics import (
    TRUTH_COLUMNS,
    StrategyRun,
    Truth,
)
from sedscale.sed.api import FitResult, fit_photometry
from sedscale.sed.config import FitConfig
from sedscale.sed.grid import clear_memory_cache

#: Called with (strategy, sources or member-chunks done, total) as a strategy advances.
Progress = Callable[[str, int, int], None]
#: Sources per exhaustive fit call: bounds the grid memory of the big members (29,160 models).
EXHAUSTIVE_CHUNK = 50
ESTIMATES = tuple(TRUTH_COLUMNS)


def _observed(phot: Photometry) -> np.ndarray:
    """(N,) at least one observed band (finite flux, error > 0): what the fitter needs to fit."""
    return np.asarray(np.any(np.isfinite(phot.flux) & np.isfinite(phot.error) & (phot.error > 0), axis=1), bool)


class CountingFit:
    """``fit_photometry`` that adds each fitted source's (model, node) evaluations to a tally."""

    def __init__(self) -> None:
        """An empty tally: source id → evaluations."""
        self.counts: defaultdict[int, int] = defaultdict(int)
        self._lock = threading.Lock()  # the agent's fit runner may use several threads

    def __call__(self, phot: Photometry, config: FitConfig, *, photoz: bool = False,
                 cache_dir: Path | None = None) -> FitResult:
        """``fit_photometry`` (known z only), then each source's evaluations added."""
        if photoz:
            raise ValueError("the agent-quality benchmark counts known-redshift fits only")
        result = fit_photometry(phot, config, photoz=False, cache_dir=cache_dir)
        spent = evaluations_per_source(config, phot.redshift, _observed(phot))
        with self._lock:
            for sid, n in zip(phot.source_id.tolist(), spent.tolist()):
                self.counts[int(sid)] += int(n)
        return result

    def per_source(self, source_id: np.ndarray) -> np.ndarray:
        """(N,) the tally of each of ``source_id`` (0 if never fitted)."""
        return np.array([self.counts.get(int(s), 0) for s in source_id], dtype=np.int64)


@dataclass(frozen=True)
class BenchInputs:
    """The validated sources with a redshift, their truth, and what to fit them with."""

    phot: Photometry
    truth: Truth
    options: FitOptions
    seed: int = 0
    #: The exhaustive grid's bound (:func:`exhaustive_configs`): None, every family of the action space.
    exhaustive_changes: Optional[int] = None


def _run(phot: Photometry, result_estimates: dict[str, np.ndarray], accepted: np.ndarray, models: np.ndarray,
         seconds: float, steps: Optional[np.ndarray] = None, tokens: Optional[np.ndarray] = None,
         note: str = "") -> StrategyRun:
    """A :class:`StrategyRun` of ``phot``'s sources; no agent steps or tokens unless given."""
    n = len(phot.source_id)
    zeros = np.zeros(n, np.int64)
    return StrategyRun(np.asarray(phot.source_id), result_estimates, np.asarray(accepted, bool), models,
                       zeros if steps is None else steps, zeros if tokens is None else tokens, seconds, note)


def _estimates(result: FitResult) -> dict[str, np.ndarray]:
    """The scored estimates of a fit (NaN for one the grid does not estimate)."""
    return {k: np.asarray(result.mean(k), float) if k in result.estimates else np.full(len(result), np.nan)
            for k in ESTIMATES}


def run_triage(inp: BenchInputs, progress: Progress) -> StrategyRun:
    """The triage configuration alone."""
    t0 = time.perf_counter()
    counter = CountingFit()
    result = counter(inp.phot, inp.options.fit_config, cache_dir=inp.options.cache_dir)
    accepted = inp.options.acceptance.passes_array(result)
    progress("triage", len(inp.phot.source_id), len(inp.phot.source_id))
    return _run(inp.phot, _estimates(result), accepted, counter.per_source(inp.phot.source_id),
                time.perf_counter() - t0)


def run_exhaustive(inp: BenchInputs, progress: Progress) -> StrategyRun:
    """Every member of the exhaustive grid; per source the estimates of its lowest best χ²."""
    t0 = time.perf_counter()
    phot, n = inp.phot, len(inp.phot.source_id)
    members = exhaustive_configs(inp.options.fit_config, inp.exhaustive_changes)
    best_chi2 = np.full(n, np.inf)
    est = {k: np.full(n, np.nan) for k in ESTIMATES}
    accepted = np.zeros(n, bool)
    counter = CountingFit()
    chunks = [np.arange(i, min(i + EXHAUSTIVE_CHUNK, n)) for i in range(0, n, EXHAUSTIVE_CHUNK)]
    done, total = 0, len(members) * len(chunks)
    for config in members:
        for rows in chunks:
            result = counter(phot.take(rows), config, cache_dir=inp.options.cache_dir)
            chi2 = np.where(np.isfinite(result.chi2_best), result.chi2_best, np.inf)
            better = chi2 < best_chi2[rows]
            take = rows[better]
            best_chi2[take] = chi2[better]
            for k, values in _estimates(result).items():
                est[k][take] = values[better]
            accepted[take] = inp.options.acceptance.passes_array(result)[better]
            done += 1
            progress("exhaustive", done, total)
        # a member's grids are not read again (29 members would not fit in memory); the triage
        # configuration's stay for the strategies after this one
        clear_memory_cache(keep_config=inp.options.fit_config.grid_hash())
    note = (f"{len(members)} families" + ("" if inp.exhaustive_changes is None
                                          else f", at most {inp.exhaustive_changes} discrete change(s) from triage"))
    return _run(phot, est, accepted, counter.per_source(phot.source_id), time.perf_counter() - t0, note=note)


def run_policy(inp: BenchInputs, phot: Photometry, options: FitOptions, knowledge: KnowledgeBase,
               label: str, progress: Progress, note: str = "") -> tuple[StrategyRun, KnowledgeBase]:
    """Triage, then the agent with ``options.policy`` on the sources the triage fit cannot explain
    (as :func:`sedscale.fitting.fit_table` runs it); returns the run and what the agent learnt."""
    t0 = time.perf_counter()
    counter = CountingFit()
    triage = counter(phot, options.fit_config, cache_dir=options.cache_dir)
    policy = make_policy(options, knowledge, photoz=False)
    if policy is None:
        raise ValueError(f"strategy {label} needs a policy")
    agent = run_agent(phot, triage, options.fit_config, policy, partition_id=0, budgets=options.budgets,
                      knowledge=knowledge, acceptance=options.acceptance, photoz=False,
                      cache_dir=options.cache_dir, seed=inp.seed, fit=counter)
    cols = agent.columns()
    est = {k: np.asarray(cols[k], float) if k in cols else _estimates(triage)[k] for k in ESTIMATES}
    tokens = np.asarray(cols["tokens_prompt"], np.int64) + np.asarray(cols["tokens_completion"], np.int64)
    progress(label, len(phot.source_id), len(phot.source_id))
    run = _run(phot, est, cols["accepted"], counter.per_source(phot.source_id), time.perf_counter() - t0,
               np.asarray(cols["agent_steps"], np.int64), tokens, note)
    return run, agent.knowledge_delta


def split_halves(source_id: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Boolean masks (A, B) of a seeded split of the source ids: a source's half is a hash of
    (seed, its id) alone, so it does not depend on the catalog's order or size."""
    in_a = unit_hash(seed, np.asarray(source_id, np.int64)) < 0.5
    return in_a, ~in_a


def run_with_knowledge(inp: BenchInputs, options: FitOptions, label: str, progress: Progress,
                       knowledge: Optional[KnowledgeBase]) -> StrategyRun:
    """``<policy>_kb``: from ``knowledge`` over every source, or learnt on half A and measured on half B."""
    if knowledge is not None:
        return run_policy(inp, inp.phot, options, knowledge, label, progress,
                          note="knowledge base given; all sources")[0]
    half_a, half_b = split_halves(inp.phot.source_id, inp.seed)
    _, learnt = run_policy(inp, inp.phot.take(np.flatnonzero(half_a)), options, KnowledgeBase(),
                           f"{label} (learning)", progress)
    note = (f"knowledge learnt on half A ({int(half_a.sum())} sources); figures over half B "
            f"({int(half_b.sum())} sources); split seed {inp.seed}")
    return run_policy(inp, inp.phot.take(np.flatnonzero(half_b)), options, learnt, label, progress, note)[0]


def run_strategies(inp: BenchInputs, *, llm: Optional[LLMEndpoint] = None,
                   knowledge: Optional[KnowledgeBase] = None,
                   progress: Progress = lambda name, done, total: None) -> dict[str, StrategyRun]:
    """Every strategy in order (``llm``/``llm_kb`` only with an endpoint). Seconds are each
    strategy's wall time in this process; the grid memory cache is shared, so the triage grid
    is built once, by ``triage``, which runs first."""
    runs: dict[str, StrategyRun] = {"triage": run_triage(inp, progress),
                                    "exhaustive": run_exhaustive(inp, progress)}
    rules = replace(inp.options, policy="rules")
    runs["rules"] = run_policy(inp, inp.phot, rules, KnowledgeBase(), "rules", progress)[0]
    runs["rules_kb"] = run_with_knowledge(inp, rules, "rules_kb", progress, knowledge)
    if llm is not None:
        with_llm = replace(inp.options, policy="llm", llm=llm)
        runs["llm"] = run_policy(inp, inp.phot, with_llm, KnowledgeBase(), "llm", progress)[0]
        runs["llm_kb"] = run_with_knowledge(inp, with_llm, "llm_kb", progress, knowledge)
    return runs


def truth_of(table: pa.Table, row_index: np.ndarray, source_id: np.ndarray) -> Truth:
    """The truth columns of the validated rows (None for a column the catalog lacks)."""
    values: dict[str, Optional[np.ndarray]] = {}
    for name, column in TRUTH_COLUMNS.items():
        values[name] = (table.column(column).to_numpy(zero_copy_only=False).astype(float)[row_index]
                        if column in table.column_names else None)
    classes = (np.asarray(table.column("truth_class").to_pylist(), dtype=object)[row_index]
               if "truth_class" in table.column_names else None)
    return Truth(np.asarray(source_id), values, classes)


def load_inputs(catalog: Path, *, workflow: Optional[str] = None, cache_dir: Optional[Path] = None,
                seed: int = 0, exhaustive_changes: Optional[int] = None) -> BenchInputs:
    """The catalog's rows, validated with the workflow's rules (its profile), those with a known
    redshift kept (the benchmark fits known redshifts), with their truth columns."""
    import pyarrow.parquet as pq

    from sedscale.campaign.workflow import load_workflow
    from sedscale.catalog.catalog_input import catalog_arg, open_for_profile
    from sedscale.catalog.validate import validate_table
    from sedscale.errors import InputError

    wf = load_workflow(workflow)
    _, profile = open_for_profile(catalog_arg([str(catalog)]), wf.profile)
    table = pq.read_table(catalog)
    if TRUTH_COLUMNS["logmstar"] not in table.column_names:
        raise InputError(f"{catalog}: no {TRUTH_COLUMNS['logmstar']} column (sedscale mock writes the truth columns)")
    options = FitOptions.from_workflow(wf, cache_dir=cache_dir, photoz=False, seed=seed)
    phot = validate_table(table, profile, options.rules).photometry
    phot = phot.take(np.flatnonzero(np.isfinite(phot.redshift)))
    if len(phot.source_id) == 0:
        raise InputError(f"{catalog}: no source passes validation with a redshift")
    return BenchInputs(phot, truth_of(table, phot.row_index, phot.source_id), options, seed, exhaustive_changes)
