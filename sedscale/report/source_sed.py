"""One source of a campaign, gathered for drawing: its results row, the photometry it was fitted
to, and its best-fit model rebuilt (``sedscale show`` and the report's gallery).

The photometry is read again from the catalog, through the campaign's manifest and profile and
the same validation the fit ran (so units, zero points and dropped bands are the fit's), never
copied into the store. The model comes from the configuration registry the tasks keep
(``configs/<hash>.json``, :meth:`sedscale.campaign.paths.CampaignPaths.fit_config`), falling
back to the workflow's own triage configuration for campaigns that predate it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import numpy as np
import pyarrow as pa

from sedscale.campaign.manifest import read_manifest
from sedscale.campaign.resume import plan_resume
from sedscale.campaign.store import ResultsReader
from sedscale.catalog.read import read_partition
from sedscale.catalog.validate import validate_table
from sedscale.errors import CampaignError, InputError
from sedscale.results import STATUS_FITTED
from sedscale.sed.config import FitConfig
from sedscale.sed.spectrum import ModelSED, rebuild_model

if TYPE_CHECKING:
    from pathlib import Path

    from sedscale.campaign.paths import CampaignPaths
    from sedscale.catalog.partition import Partition
    from sedscale.catalog.photometry import Photometry
    from sedscale.pipeline import CampaignContext

#: Results values of one row by column name (``None`` where null).
ResultRow = dict[str, object]

_HASH = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class SourceSED:
    """Everything a drawing of one source needs (its model is ``None`` when it cannot be rebuilt,
    with ``note`` saying why)."""

    row: ResultRow
    filters: tuple[str, ...]
    flux: np.ndarray  # (B,) µJy as fitted; NaN = not observed
    error: np.ndarray  # (B,) µJy
    error_floor: float
    model: ModelSED | None
    note: str = ""
    #: (B,) bool: the profile declares the band an upper limit (flux = the limit, error = its width)
    is_limit: np.ndarray | None = None

    @property
    def limits(self) -> np.ndarray:
        """(B,) bool, all False when no band is a declared limit."""
        return np.zeros(self.flux.shape, bool) if self.is_limit is None else self.is_limit

    @property
    def source_id(self) -> int:
        return int(str(self.row["source_id"]))

    def residual_sigma(self) -> np.ndarray:
        """(flux − model) / σ_eff per band; NaN without a model or where not observed."""
        if self.model is None:
            return np.full(self.flux.shape, np.nan)
        return self.model.residual_sigma(self.flux, self.error, self.error_floor, self.limits)


def load_fit_config(paths: CampaignPaths, config_hash: str, triage: FitConfig) -> FitConfig:
    """The configuration ``config_hash`` of the campaign's registry (checked against its hash),
    or ``triage`` when that is the one named; :class:`CampaignError` when it is not recorded."""
    if not _HASH.fullmatch(config_hash):
        raise CampaignError(f"{paths.root}: {config_hash!r} is not a fit configuration id")
    path = paths.fit_config(config_hash)
    try:
        text = path.read_text()
    except FileNotFoundError:
        if triage.hash() == config_hash:
            return triage
        raise CampaignError(f"{path}: fit configuration {config_hash[:12]} is not recorded in this campaign "
                            "(written by its tasks since sedscale kept a registry)") from None
    if hashlib.sha256(text.encode()).hexdigest() != config_hash:
        raise CampaignError(f"{path}: content does not match its hash (damaged or edited)")
    return FitConfig.from_dict(json.loads(text)["config"], source=str(path))


def result_rows(table: pa.Table, rows: Sequence[int]) -> list[ResultRow]:
    """The results rows at ``rows`` as plain dicts."""
    picked: list[ResultRow] = table.take(pa.array(list(rows), pa.int64())).to_pylist()
    return picked


def input_photometry(ctx: CampaignContext, partition: Partition, rows: Sequence[int]) -> Photometry:
    """The photometry of the rows ``rows`` of ``partition``, read from the catalog and validated
    as the fit did (one :class:`Photometry` row per requested row, in order)."""
    table = read_partition(partition, ctx.profile.columns(), ctx.profile.optional_columns())
    picked = table.take(pa.array(list(rows), pa.int64()))
    validated = validate_table(picked, ctx.profile, ctx.options.rules)
    if len(validated.photometry) != len(rows):
        reasons = validated.quarantine.column("reason").to_pylist()
        raise InputError(f"partition {partition.partition_id}: the catalog rows no longer validate "
                         f"({', '.join(map(str, reasons))}); has the catalog changed since the fit?")
    return validated.photometry


def source_sed(ctx: CampaignContext, row: ResultRow, phot: Photometry, index: int) -> SourceSED:
    """Row ``index`` of ``phot`` (the source of results ``row``) with its best model rebuilt;
    a source that was not fitted, or whose model is not recorded, comes without one."""
    plain = SourceSED(row=row, filters=tuple(phot.filters), flux=np.asarray(phot.flux[index], np.float64),
                      error=np.asarray(phot.error[index], np.float64),
                      error_floor=ctx.options.fit_config.error_floor, model=None,
                      is_limit=np.asarray(phot.limits[index], bool))
    if row.get("status") != STATUS_FITTED:
        return dataclasses.replace(plain, note=f"{row.get('status')}: {row.get('reason')}")
    config_id, best, z = row.get("fit_config_id"), row.get("best_model"), row.get("redshift")
    if config_id is None or best is None or z is None:
        return dataclasses.replace(plain, note="best model not recorded (an agent refit that reports no model index)")
    try:
        config = load_fit_config(ctx.paths, str(config_id), ctx.options.fit_config)
    except CampaignError as exc:
        return dataclasses.replace(plain, note=str(exc))
    model = rebuild_model(config, phot.filters, int(str(best)), float(str(z)), cache_dir=ctx.options.cache_dir)
    scaled = model.scale_to(plain.flux, plain.error, config.error_floor, plain.limits)
    return dataclasses.replace(plain, model=scaled, error_floor=config.error_floor)


def find_source(ctx: CampaignContext, source_id: int) -> tuple[Partition, int, ResultRow]:
    """(partition, row within it, results row) of ``source_id`` in a finished campaign, read one
    partition at a time; :class:`CampaignError` for an unfinished campaign (naming its partitions)
    and :class:`InputError` for an id the campaign does not hold."""
    plan = plan_resume(ctx.paths, ctx.meta.n_partitions, verify="size")
    pending = sorted(plan.pending + list(plan.corrupt))
    if pending:
        raise pending_partitions_error(ctx.paths.root, pending, ctx.meta.n_partitions)
    reader = ResultsReader(ctx.paths.results_zarr)
    for part in read_manifest(ctx.paths.manifest):
        table = reader.read_partition(part.partition_id, part.n_rows)
        ids = table.column("source_id").to_numpy(zero_copy_only=False)
        hits = np.flatnonzero(ids == source_id)
        if hits.size:
            row = int(hits[0])
            return part, row, result_rows(table, [row])[0]
    raise InputError(f"source {source_id} is not in the campaign {ctx.paths.root} "
                     f"({ctx.meta.n_rows:,} rows)")


def pending_partitions_error(root: Path, pending: Sequence[int], n_partitions: int) -> CampaignError:
    """The refusal for a campaign that is not finished, naming (the first of) its partitions."""
    shown = ", ".join(map(str, pending[:20])) + (", …" if len(pending) > 20 else "")
    return CampaignError(f"{root}: the campaign is not finished: {len(pending)} of {n_partitions} partitions "
                         f"are not committed ({shown}); finish them with `sedscale resume {root}` first")
