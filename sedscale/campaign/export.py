"""``sedscale export``: the campaign's results, one row per input row, as Parquet, HATS or FITS.

Every format streams from :mod:`sedscale.campaign.committed`: one partition in memory at a time,
each partition's chunk checksums verified against its done-marker before it is trusted, and an
incomplete campaign refused — never a silently incomplete file. Rows come out in input order.

``gpu_seconds`` is filled here, not at commit: each node's LLM busy GPU-seconds (from
``llm/<host>/accounting.json``) are split over the sources committed on that node by their share of
tokens (:mod:`sedscale.campaign.attribution`). Without node accounting the committed value (0) stays.

Formats: ``parquet`` (the default; one file, units and descriptions in each field's metadata),
``hats`` (:mod:`sedscale.campaign.export_hats`, a HATS catalog for lsdb) and ``fits``
(:mod:`sedscale.campaign.export_fits`, one binary table for TOPCAT, units in ``TUNIT``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import pyarrow.parquet as pq

from sedscale.campaign.attribution import GpuAttribution
from sedscale.campaign.committed import CommittedResults, open_committed
from sedscale.campaign.export_fits import write_fits
from sedscale.campaign.export_hats import write_hats
from sedscale.campaign.resume import Verify
from sedscale.errors import ConfigError
from sedscale.fsutil import atomic_output
from sedscale.results import annotated_results_schema

ExportFormat = Literal["parquet", "hats", "fits"]
EXPORT_FORMATS: tuple[ExportFormat, ...] = ("parquet", "hats", "fits")


def parse_export_format(value: str) -> ExportFormat:
    """``value`` (the ``--format`` option) as an :data:`ExportFormat`, a typo refused by name."""
    for name in EXPORT_FORMATS:
        if value == name:
            return name
    raise ConfigError(f"--format must be one of {', '.join(EXPORT_FORMATS)}, not {value!r}")


def write_parquet(results: CommittedResults, out: Path) -> int:
    """One Parquet file, written partition by partition; returns the number of rows."""
    schema = annotated_results_schema()
    rows = 0
    with atomic_output(out) as tmp, pq.ParquetWriter(tmp, schema) as writer:
        for _, table in results.tables():
            if table.num_rows:
                writer.write_table(table.cast(schema))
            rows += table.num_rows
    return rows


def export_campaign(root: str | Path, out: str | Path, *, format: ExportFormat = "parquet",
                    verify: Verify = "checksum", attribution: GpuAttribution | None = None) -> int:
    """Write every committed row to ``out`` in ``format``, ``gpu_seconds`` attributed from the
    nodes' LLM accounting; returns the number of rows."""
    results = open_committed(root, verify=verify, attribution=attribution)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if format == "hats":
        return write_hats(results, out)
    if format == "fits":
        return write_fits(results, out)
    return write_parquet(results, out)
