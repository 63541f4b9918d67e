"""``sedscale export --format hats``: a real HATS catalog that ``lsdb.open_catalog`` opens and that
joins back to its input by id — partitioned like a HATS input, else by position (hats-import).

Slow: hats-import and lsdb run on Dask.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sedscale.campaign.commit import commit_partition
from sedscale.campaign.create import create_from_manifest
from sedscale.campaign.manifest import synthetic_manifest
from sedscale.campaign.meta import CatalogRecord
from sedscale.campaign.paths import CampaignPaths
from sedscale.campaign.testing import make_synthetic_campaign, synthetic_results
from sedscale.catalog.partition import Partition
from sedscale.results import RESULTS_SCHEMA

pytestmark = pytest.mark.slow

N_INPUT = 3000
ROWS_PER_PARTITION = 40  # smaller than the biggest input pixel: some pixels span two partitions


def _sedscale(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sedscale", *args], capture_output=True, text=True, timeout=300)


def _input_frame() -> pd.DataFrame:
    """An input catalog with positions and ids in IRSA's spelling (``object_id``)."""
    rng = np.random.default_rng(7)
    return pd.DataFrame({
        "object_id": rng.permutation(N_INPUT).astype(np.int64) * 1_000_003 + 2**40,
        "ra": rng.uniform(0, 360, N_INPUT),
        "dec": np.degrees(np.arcsin(rng.uniform(-1, 1, N_INPUT))),
        "mer_flux_vis_psf": rng.uniform(1, 10, N_INPUT),
    })


def _hats_input(tmp_path: Path) -> Path:
    """The input as a HATS catalog built by hats-import (several pixels)."""
    from dask.distributed import Client
    from hats_import.catalog.arguments import ImportArguments
    from hats_import.pipeline import pipeline_with_client

    flat = tmp_path / "input.parquet"
    pq.write_table(pa.Table.from_pandas(_input_frame(), preserve_index=False), flat)
    args = ImportArguments(output_path=str(tmp_path), output_artifact_name="input_hats", input_file_list=[str(flat)],
                           file_reader="parquet", ra_column="ra", dec_column="dec", pixel_threshold=200,
                           tmp_dir=str(tmp_path / "tmp"), resume=False, progress_bar=False)
    with Client(processes=False, n_workers=1, threads_per_worker=2, dashboard_address=None) as client:
        pipeline_with_client(args, client)
    return tmp_path / "input_hats"


def _results_for(rows: pa.Table, start: int) -> pa.Table:
    """Synthetic fit results for input ``rows``: their ids and positions, made-up fit values."""
    table = synthetic_results(start, rows.num_rows)
    for name, source in (("source_id", "object_id"), ("ra", "ra"), ("dec", "dec")):
        table = table.set_column(RESULTS_SCHEMA.get_field_index(name), name, rows.column(source).cast(pa.float64()
                                 if name != "source_id" else pa.int64()))
    return table


def _campaign_over_pixels(catalog: Path, root: Path) -> tuple[CampaignPaths, list[tuple[int, int]]]:
    """A campaign planned as the HATS reader plans one (a pixel's rows split into consecutive
    partitions, none spanning two pixels), each partition committed with results for its rows."""
    import hats
    from hats.io import paths as hats_paths

    pixels = hats.read_hats(catalog).get_healpix_pixels()
    pieces: list[tuple[Partition, pa.Table]] = []
    for pixel in pixels:
        path = hats_paths.pixel_catalog_file(catalog, pixel)
        rows = pq.read_table(path.path, columns=["object_id", "ra", "dec"])
        for lo in range(0, rows.num_rows, ROWS_PER_PARTITION):
            part = rows.slice(lo, ROWS_PER_PARTITION)
            template = synthetic_manifest([part.num_rows])[0]
            pieces.append((dataclasses.replace(template, partition_id=len(pieces), file=str(path), row_start=lo,
                                               row_stop=lo + part.num_rows, pixel_order=pixel.order,
                                               pixel=pixel.pixel), part))
    paths = create_from_manifest(root, [p for p, _ in pieces], name=root.name, catalog=CatalogRecord(spec=[]),
                                 workflow={"name": "hats-input"}, site={"name": "test"},
                                 profile={"id": "object_id", "ra": "ra", "dec": "dec"})
    start = 0
    for part, rows in pieces:
        commit_partition(paths, part.partition_id, _results_for(rows, start), chunk_rows=ROWS_PER_PARTITION,
                         run_id=None)
        start += rows.num_rows
    assert len(pieces) > len(pixels)  # some pixel really spans several partitions
    return paths, [(p.order, p.pixel) for p in pixels]


def test_hats_input_keeps_its_pixels_and_joins_back_by_id(tmp_path: Path) -> None:
    import hats
    import lsdb

    catalog = _hats_input(tmp_path)
    paths, input_pixels = _campaign_over_pixels(catalog, tmp_path / "camp")
    out = tmp_path / "results_hats"
    proc = _sedscale("export", str(paths.root), "-o", str(out), "--format", "hats")
    assert proc.returncode == 0, proc.stderr
    assert f"{N_INPUT} rows" in proc.stdout

    written = hats.read_hats(out)
    assert [(p.order, p.pixel) for p in written.get_healpix_pixels()] == input_pixels
    assert written.catalog_info.total_rows == N_INPUT
    for name in ("partition_info.csv", "hats.properties", "dataset/_metadata", "dataset/_common_metadata"):
        assert (out / name).is_file(), name

    results = lsdb.open_catalog(out)
    assert {"source_id", "ra", "dec", "logmstar"} <= set(results.columns)
    joined = results.join(lsdb.open_catalog(catalog), left_on="source_id", right_on="object_id",
                          suffixes=("", "_in"), suffix_method="overlapping_columns").compute()
    assert len(joined) == N_INPUT
    assert (joined["source_id"] == joined["object_id"]).all()
    np.testing.assert_array_equal(joined["ra"].to_numpy(), joined["ra_in"].to_numpy())
    direct = results.compute()
    assert direct.index.name == "_healpix_29" and direct["source_id"].dtype.name.startswith("int64")


def test_flat_input_is_partitioned_by_position_and_joins_back(tmp_path: Path) -> None:
    import lsdb

    sizes = [700, 650, 0, 480]
    paths = make_synthetic_campaign(tmp_path / "camp", sizes)
    start = 0
    for pid, n in enumerate(sizes):
        commit_partition(paths, pid, synthetic_results(start, n), chunk_rows=700, run_id=None)
        start += n
    out = tmp_path / "results_hats"
    proc = _sedscale("export", str(paths.root), "-o", str(out), "--format", "hats")
    assert proc.returncode == 0, proc.stderr
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # staging removed

    results = lsdb.open_catalog(out)
    assert results.hc_structure.catalog_info.catalog_name == "results_hats"
    flat = pq.read_table(_parquet_export(paths, tmp_path)).to_pandas()
    inputs = lsdb.from_dataframe(flat[["source_id", "ra", "dec"]].rename(columns={"source_id": "object_id"}),
                                 catalog_name="input", ra_column="ra", dec_column="dec")
    joined = results.join(inputs, left_on="source_id", right_on="object_id", suffixes=("", "_in"),
                          suffix_method="overlapping_columns").compute()
    assert len(joined) == sum(sizes) and (joined["source_id"] == joined["object_id"]).all()
    back = results.compute().sort_values("source_id")
    np.testing.assert_array_equal(back["logmstar"].to_numpy(dtype=float, na_value=np.nan),
                                  flat.sort_values("source_id")["logmstar"].to_numpy(dtype=float))


def _parquet_export(paths: CampaignPaths, tmp_path: Path) -> Path:
    out = tmp_path / "flat.parquet"
    proc = _sedscale("export", str(paths.root), "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    return out
