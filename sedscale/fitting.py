"""Fitting one table of catalog rows end to end: validate → triage → agent → results contract.

The one algorithm both ``sedscale fit`` (in process) and campaign tasks (:mod:`sedscale.pipeline`)
run, so the two give the same rows for the same input. It touches no engine and no campaign
state. Everything a run needs besides the rows travels in :class:`FitOptions`, built from a
workflow by :meth:`FitOptions.from_workflow` (the one constructor callers use, so the CLI and the
tasks cannot drift apart). A source's result depends only on its own row, the options and the
campaign seed: the agent's seeds derive from (seed, source id, step) — never from the partition,
its neighbours, the worker or the retry (docs/CAMPAIGNS.md, "Determinism").
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from sedscale.agent import AcceptanceTest, AgentBudgets, KnowledgeBase, RulesPolicy, run_agent
from sedscale.agent.endpoint import LLMEndpoint
from sedscale.agent.policy import POLICY_NAMES, Policy, PolicyName
from sedscale.agent.trail import empty_trail, sort_trail
from sedscale.catalog.validate import ValidationRules, validate_table
from sedscale.errors import ConfigError
from sedscale.results import (
    PERCENTILE_QUANTITIES,
    PERCENTILES,
    RESULTS_SCHEMA,
    STATUS_FAILED,
    STATUS_FITTED,
    STATUS_QUARANTINED,
)
from sedscale.sed.api import FitResult, fit_photometry
from sedscale.sed.config import FitConfig

if TYPE_CHECKING:
    from sedscale.agent.loop import AgentOutcome
    from sedscale.campaign.workflow import Workflow
    from sedscale.catalog.photometry import Photometry
    from sedscale.catalog.profiles import CatalogProfile

#: Per-source agent counters copied from the agent's columns into the results.
_AGENT_COUNTERS = ("agent_steps", "llm_calls", "tokens_prompt", "tokens_cached", "tokens_completion")
#: Columns that are null for every row that is not ``fitted``.
_NULL_UNLESS_FITTED = ("redshift", "logmstar", "logmstar_err", "logsfr", "logsfr_err", "av", "chi2_red",
                       "accepted", "n_bands", "fit_seconds", "detected", "fit_config_id", "policy")
#: Columns null wherever their value is NaN (not estimated): percentiles, z_phot.
_NULL_WHEN_NAN = ("z_phot", "z_phot_err", *(f"{q}_{p}" for q in PERCENTILE_QUANTITIES for p in PERCENTILES))
#: Detection threshold of the ``detected`` flag: S/N in at least one band.
DETECTION_SNR = 3.0

_NO_FIT_REASON = "fit_failed: no model of the grid fits this source (chi2 not finite)"
_NO_MASS_REASON = ("fit_failed: every model's best normalisation is <= 0 (no significant flux: the source is "
                   "not detected in the fitted bands)")


@dataclass(frozen=True)
class FitOptions:
    """What to fit with: grid configuration, validation rules, acceptance test, policy, budgets.

    Build it with :meth:`from_workflow`; every field is the type its layer defines, so nothing
    downstream re-reads workflow keys or fills in defaults of its own.
    """

    fit_config: FitConfig
    rules: ValidationRules
    acceptance: AcceptanceTest
    budgets: AgentBudgets
    policy: PolicyName
    photoz: bool = False
    #: photo-z for every source, known redshifts ignored (to score photo-z against a spec-z column)
    ignore_redshift: bool = False
    llm: LLMEndpoint | None = None  # needed by policy "llm" only
    cache_dir: Path | None = None  # model-grid cache; None = no cache on disk
    seed: int = 0

    @classmethod
    def from_workflow(
        cls,
        workflow: Workflow,
        *,
        cache_dir: Path | None,
        fit_config: FitConfig | None = None,
        photoz: bool | None = None,
        policy: PolicyName | None = None,
        llm: LLMEndpoint | None = None,
        seed: int = 0,
        ignore_redshift: bool = False,
    ) -> FitOptions:
        """The options of ``workflow``; a keyword given (not None) replaces the workflow's value.

        ``photoz`` given also sets the validation's ``require_redshift`` to its opposite. ``llm``
        None means the workflow's ``llm_url`` (with its ``llm_model``) when it names one.
        ``ignore_redshift`` implies ``photoz``.
        """
        if ignore_redshift:
            photoz = True
        rules = workflow.validation_rules()
        if photoz is not None:
            rules = rules.model_copy(update={"require_redshift": not photoz})
        if llm is None and workflow.llm_url:
            llm = LLMEndpoint.at_url(workflow.llm_url, workflow.llm_model)
        return cls(
            fit_config=fit_config if fit_config is not None else workflow.fit,
            rules=rules,
            acceptance=workflow.acceptance.to_acceptance_test(),
            budgets=workflow.budgets.to_agent_budgets(),
            policy=policy if policy is not None else workflow.policy,
            photoz=workflow.photoz if photoz is None else photoz,
            llm=llm,
            cache_dir=cache_dir,
            seed=seed,
            ignore_redshift=ignore_redshift,
        )


def _number(summary: dict[str, object], key: str) -> int | float:
    """``summary[key]`` as the number it is, 0 when absent or None (the agent summary is a
    JSON-shaped dict of mixed values)."""
    value = summary.get(key)
    return value if isinstance(value, (int, float)) else 0


@dataclass
class TableSummary:
    """What a table's fit learnt besides the rows: agent counts, fallbacks by reason, where the
    time went (the campaign writes it as ``summaries/partition-<id>.json``)."""

    triage_failed: int = 0  # fitted sources whose triage fit failed the acceptance test
    agent_accepted: int = 0
    fallbacks: dict[str, int] = field(default_factory=dict)  # LLM answers not used, by reason
    triage_fit_s: float = 0.0
    agent_s: float = 0.0
    llm_wait_s: float = 0.0
    refit_s: float = 0.0
    rows: int = 0
    quarantined: int = 0
    fitted: int = 0
    failed: int = 0

    def add_agent(self, agent: AgentOutcome) -> None:
        """Add one agent run's totals."""
        s = agent.summary()
        self.triage_failed += int(_number(s, "triage_failed"))
        self.agent_accepted += int(_number(s, "agent_accepted"))
        fallbacks = s.get("fallbacks")
        for reason, count in (fallbacks if isinstance(fallbacks, dict) else {}).items():
            self.fallbacks[reason] = self.fallbacks.get(reason, 0) + int(count)
        self.llm_wait_s += float(_number(s, "llm_wait_s"))
        self.refit_s += float(_number(s, "refit_s"))

    def count_statuses(self, status: np.ndarray) -> None:
        """Set the row counts from the final status column."""
        self.rows = int(status.shape[0])
        self.quarantined = int(np.sum(status == STATUS_QUARANTINED))
        self.fitted = int(np.sum(status == STATUS_FITTED))
        self.failed = int(np.sum(status == STATUS_FAILED))

    def as_dict(self) -> dict[str, object]:
        """The summary as JSON-ready data (field names are the file's keys)."""
        return asdict(self)


@dataclass
class TableOutcome:
    """The results rows plus what the campaign keeps beside them."""

    table: pa.Table
    knowledge_delta: KnowledgeBase  # what this table's agent steps learnt (empty without agent)
    summary: TableSummary
    #: hash → every fit configuration a row's ``fit_config_id`` names (the campaign keeps them)
    configs: dict[str, FitConfig] = field(default_factory=dict)
    #: one row per agent step of every source that entered the loop (sedscale.agent.trail.TRAIL_SCHEMA)
    trail: pa.Table = field(default_factory=empty_trail)


def make_policy(options: FitOptions, knowledge: KnowledgeBase, *, photoz: bool) -> Policy | None:
    """The policy object for ``options.policy`` (None for ``none``)."""
    if options.policy == "none":
        return None
    if options.policy == "rules":
        return RulesPolicy(knowledge)
    if options.policy == "llm":
        if options.llm is None:
            raise ConfigError("policy 'llm' needs --llm-url (an OpenAI-compatible base URL) or a site LLM service")
        return options.llm.policy(knowledge=knowledge, photoz=photoz, base_config=options.fit_config)
    raise ValueError(f"unknown policy {options.policy!r}: use one of {', '.join(POLICY_NAMES)}")


def empty_result_columns(n: int) -> dict[str, np.ndarray]:
    """One array per results column for ``n`` rows: NaN floats, zero integers, False flags, None strings."""
    cols: dict[str, np.ndarray] = {}
    for f in RESULTS_SCHEMA:
        if pa.types.is_floating(f.type):
            cols[f.name] = np.full(n, np.nan)
        elif pa.types.is_integer(f.type):
            cols[f.name] = np.zeros(n, dtype=np.int64)
        elif pa.types.is_boolean(f.type):
            cols[f.name] = np.zeros(n, dtype=bool)
        else:
            cols[f.name] = np.full(n, None, dtype=object)
    return cols


@dataclass
class _GroupFit:
    """One redshift group's sources (known z, or photo-z) after triage and, where run, the agent."""

    sources: Photometry
    photoz: bool
    fit_seconds: float  # per source: the triage fit's time spread evenly
    fitted: np.ndarray
    accepted: np.ndarray
    chi2_red: np.ndarray
    estimates: dict[str, tuple[np.ndarray, np.ndarray]]
    z_phot: tuple[np.ndarray, np.ndarray] | None  # (z_phot, z_phot_err) in photo-z mode
    agent_counters: dict[str, np.ndarray] = field(default_factory=dict)
    #: "<quantity>_<pNN>" → (N,) posterior percentiles (NaN where not estimated)
    percentiles: dict[str, np.ndarray] = field(default_factory=dict)
    best_model: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # grid index, -1 none
    config_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, object))  # fit configuration hash
    configs: dict[str, FitConfig] = field(default_factory=dict)  # the agent's final ones, by hash
    #: none | rules | llm per source: what its final fit came from (sedscale.agent.trail.kept_policy)
    policies: np.ndarray = field(default_factory=lambda: np.zeros(0, object))
    trail: pa.Table = field(default_factory=empty_trail)  # the agent's steps for these sources

    @classmethod
    def from_triage(cls, sources: Photometry, result: FitResult, test: AcceptanceTest, *,
                    photoz: bool, seconds: float) -> _GroupFit:
        z_phot = None
        if photoz:
            z_phot = (np.asarray(result.z_phot, float), np.asarray(result.z_phot_err, float))
        return cls(
            sources=sources, photoz=photoz, fit_seconds=seconds / len(sources),
            fitted=np.asarray(result.fitted, bool) & np.isfinite(np.asarray(result.chi2_red, float)),
            accepted=test.passes_array(result), chi2_red=np.asarray(result.chi2_red, float),
            estimates={k: (np.asarray(m, float), np.asarray(s, float)) for k, (m, s) in result.estimates.items()},
            z_phot=z_phot,
            percentiles={f"{q}_{p}": np.asarray(v, float) for q, by_p in result.percentiles.items()
                         for p, v in by_p.items()},
            best_model=np.asarray(result.best_index, np.int64),
            config_ids=np.full(len(sources), result.config_hash, dtype=object),
            policies=np.full(len(sources), "none", dtype=object),
        )

    @property
    def needs_agent(self) -> bool:
        return bool((~self.accepted & self.fitted).any())

    def take_agent(self, agent: AgentOutcome) -> None:
        """Replace the triage values by the agent's final ones (estimates it did not report stay)."""
        acols = agent.columns()
        self.accepted = np.asarray(acols["accepted"], bool)
        self.chi2_red = np.asarray(acols["chi2_red"], float)
        for name in ("logmstar", "logsfr", "av"):
            if name in acols:
                err = acols.get(f"{name}_err", self.estimates[name][1])
                self.estimates[name] = (np.asarray(acols[name], float), np.asarray(err, float))
        self.agent_counters = {name: np.asarray(acols[name]) for name in _AGENT_COUNTERS if name in acols}
        self.configs = dict(agent.configs)
        self.policies = agent.policies()
        self.trail = agent.trail()
        self._take_agent_model(agent)
        if self.z_phot is not None:
            z, z_err = self.z_phot
            agent_z = agent.extra.get("z_phot")
            agent_err = agent.extra.get("z_phot_err")
            self.z_phot = (z if agent_z is None else np.where(np.isfinite(agent_z), agent_z, z),
                           z_err if agent_err is None else np.where(np.isfinite(agent_err), agent_err, z_err))


    def _take_agent_model(self, agent: AgentOutcome) -> None:
        """The agent's final configuration per source; its best model index and percentiles where
        the outcome reports them, else (for a source refit under another configuration) none —
        the triage values would describe a model the source no longer has."""
        final = np.asarray(agent.config_hash, dtype=object)
        changed = final != self.config_ids
        self.config_ids = final
        best = agent.extra.get("best_model")
        self.best_model = (np.where(changed, -1, self.best_model) if best is None
                           else np.asarray(best).astype(np.int64))
        for name, values in list(self.percentiles.items()):
            reported = agent.extra.get(name)
            self.percentiles[name] = (np.where(changed, np.nan, values) if reported is None
                                      else np.asarray(reported, float))


class _ResultRows:
    """The results columns of one table, filled group by group, then turned into Arrow."""

    def __init__(self, n: int) -> None:
        self.cols = empty_result_columns(n)
        self.null_id = np.zeros(n, dtype=bool)
        self.status = np.full(n, None, dtype=object)

    def add_quarantine(self, quarantine: pa.Table) -> None:
        """Quarantined rows: their id (null where the input's was) and ``"<code>: <message>"``."""
        if not quarantine.num_rows:
            return
        qi = quarantine.column("row_index").to_numpy()
        sid = quarantine.column("source_id")
        self.cols["source_id"][qi] = sid.fill_null(0).to_numpy(zero_copy_only=False)
        self.null_id[qi] = sid.is_null().to_numpy(zero_copy_only=False)
        self.status[qi] = STATUS_QUARANTINED
        reasons, messages = quarantine.column("reason").to_pylist(), quarantine.column("message").to_pylist()
        self.cols["reason"][qi] = [f"{r}: {m}" for r, m in zip(reasons, messages)]

    def add_group(self, group: _GroupFit) -> None:
        """A fitted group's rows: ``fitted`` with a mass, else ``failed`` with the reason."""
        cols, sub, ri = self.cols, group.sources, group.sources.row_index
        cols["fit_seconds"][ri] = group.fit_seconds
        cols["source_id"][ri] = sub.source_id
        cols["n_bands"][ri] = sub.n_bands_observed
        for name, values in group.agent_counters.items():
            cols[name][ri] = values
        cols["chi2_red"][ri] = group.chi2_red
        for name in ("logmstar", "logsfr"):
            if name in group.estimates:
                cols[name][ri], cols[f"{name}_err"][ri] = group.estimates[name]
        if "av" in group.estimates:
            cols["av"][ri] = group.estimates["av"][0]
        if group.z_phot is not None:
            cols["z_phot"][ri], cols["z_phot_err"][ri] = group.z_phot
            cols["redshift"][ri] = group.z_phot[0]
        else:
            cols["redshift"][ri] = sub.redshift
        has_mass = np.isfinite(cols["logmstar"][ri])
        ok = group.fitted & has_mass
        self.status[ri] = np.where(ok, STATUS_FITTED, STATUS_FAILED)
        cols["reason"][ri[~group.fitted]] = _NO_FIT_REASON
        cols["reason"][ri[group.fitted & ~has_mass]] = _NO_MASS_REASON
        cols["accepted"][ri] = group.accepted & ok
        with np.errstate(divide="ignore", invalid="ignore"):
            snr = np.where((sub.error > 0) & ~sub.limits, sub.flux / sub.error, np.nan)  # a limit is no detection
        cols["detected"][ri] = np.any(np.nan_to_num(snr, nan=-np.inf) >= DETECTION_SNR, axis=1)
        for name, values in group.percentiles.items():
            cols[name][ri] = values
        cols["best_model"][ri] = group.best_model
        cols["fit_config_id"][ri] = group.config_ids
        cols["policy"][ri] = group.policies

    def table(self) -> pa.Table:
        """The rows as a RESULTS_SCHEMA table, with nulls where a value does not apply."""
        self.cols["status"] = self.status
        self.cols["gpu_seconds"][:] = 0.0  # attributed by the campaign from the node's LLM service, if any
        not_fitted = self.status != STATUS_FITTED
        masks = {name: not_fitted for name in _NULL_UNLESS_FITTED}
        for name in _NULL_WHEN_NAN:
            masks[name] = not_fitted | np.isnan(self.cols[name].astype(float))
        masks["best_model"] = not_fitted | (self.cols["best_model"] < 0)
        for name in ("ra", "dec"):  # a position is carried for every row; null where there is none
            masks[name] = np.isnan(self.cols[name].astype(float))
        masks["source_id"] = self.null_id
        arrays = [pa.array(self.cols[f.name], type=f.type, mask=masks.get(f.name)) for f in RESULTS_SCHEMA]
        return pa.Table.from_arrays(arrays, schema=RESULTS_SCHEMA)


def _with_positions(results: pa.Table, table: pa.Table, profile: CatalogProfile) -> pa.Table:
    """The input's ``ra``/``dec`` (where the profile names them) copied into every row's results,
    whatever its status: a position is an input property, needed to join results back to the input."""
    for name, column in (("ra", profile.ra), ("dec", profile.dec)):
        if column:
            values = table.column(column).cast(pa.float64())
            results = results.set_column(results.schema.get_field_index(name), name, values)
    return results


def _fit_group(sources: Photometry, options: FitOptions, knowledge: KnowledgeBase, summary: TableSummary,
               *, photoz: bool, partition_id: int) -> tuple[_GroupFit, KnowledgeBase | None]:
    """Triage-fit one redshift group, then run the agent on those that fail the acceptance test."""
    t0 = time.perf_counter()
    result = fit_photometry(sources, options.fit_config, photoz=photoz, cache_dir=options.cache_dir)
    seconds = time.perf_counter() - t0
    summary.triage_fit_s += seconds
    group = _GroupFit.from_triage(sources, result, options.acceptance, photoz=photoz, seconds=seconds)
    policy = make_policy(options, knowledge, photoz=photoz)
    if policy is None or not group.needs_agent:
        summary.triage_failed += int(np.sum(~group.accepted & group.fitted))
        return group, None
    t_agent = time.perf_counter()
    agent = run_agent(sources, result, options.fit_config, policy, partition_id=partition_id,
                      budgets=options.budgets, knowledge=knowledge, acceptance=options.acceptance,
                      photoz=photoz, cache_dir=options.cache_dir, seed=options.seed)
    summary.agent_s += time.perf_counter() - t_agent
    group.take_agent(agent)
    summary.add_agent(agent)
    return group, agent.knowledge_delta


def fit_table(
    table: pa.Table,
    profile: CatalogProfile,
    options: FitOptions,
    *,
    partition_id: int = 0,
    duplicate_rows: np.ndarray | None = None,
    row_offset: int = 0,
    knowledge: KnowledgeBase | None = None,
) -> TableOutcome:
    """One table of catalog rows → its results (RESULTS_SCHEMA), one row per input row, in order.

    Quarantined rows carry the validation reason; a source the grid cannot fit at all is
    ``failed`` with a reason; every other row is ``fitted`` (``accepted`` says whether it passed
    the acceptance test, after the agent where a policy is set). Sources with a redshift and
    (with ``photoz``) those without are fitted as two groups.
    """
    validated = validate_table(table, profile, options.rules, duplicate_rows=duplicate_rows, row_offset=row_offset)
    rows = _ResultRows(table.num_rows)
    rows.add_quarantine(validated.quarantine)
    kb = knowledge if knowledge is not None else KnowledgeBase()
    delta = KnowledgeBase()
    summary = TableSummary()
    phot = validated.photometry
    known = np.isfinite(phot.redshift) & (not options.ignore_redshift)
    groups = [(known, False)] + ([(~known, True)] if options.photoz else [])
    configs = {options.fit_config.hash(): options.fit_config}
    trails = [empty_trail()]
    for mask, photoz in groups:
        if not mask.any():
            continue
        group, learnt = _fit_group(phot.take(np.flatnonzero(mask)), options, kb, summary,
                                   photoz=photoz, partition_id=partition_id)
        rows.add_group(group)
        configs.update(group.configs)
        trails.append(group.trail)
        if learnt is not None:
            delta = KnowledgeBase.merge(delta, learnt)
    results = _with_positions(rows.table(), table, profile)
    summary.count_statuses(rows.status)
    return TableOutcome(results, delta, summary, configs, sort_trail(pa.concat_tables(trails)))
