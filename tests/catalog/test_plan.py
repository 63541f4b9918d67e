"""Partition planning: every row exactly once, deterministic, and no data pages read."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sedscale.campaign.manifest import manifest_table, read_manifest, write_manifest
from sedscale.catalog.plan import plan_partitions
from sedscale.catalog.read import read_partition
from sedscale.catalog.forms import open_catalog


def _bytes_read() -> int:
    """Bytes this process has read through read()/pread() so far (Linux /proc/self/io rchar)."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise RuntimeError("no rchar in /proc/self/io")


@pytest.fixture(scope="module")
def million_row_catalog(tmp_path_factory) -> Path:
    """1,200,000 rows in 4 files of uneven row-group sizes; ids are the global row number."""
    root = tmp_path_factory.mktemp("plan")
    start = 0
    for k, (n, rg) in enumerate([(400_000, 65_536), (250_000, 120_000), (350_000, 30_000), (200_000, 200_000)]):
        ids = np.arange(start, start + n, dtype=np.int64)
        rng = np.random.default_rng(k)
        pq.write_table(
            pa.table({"source_id": ids, "flux_euclid_h": rng.random(n), "fluxerr_euclid_h": rng.random(n),
                      "flux_euclid_j": rng.random(n), "fluxerr_euclid_j": rng.random(n)}),
            root / f"part-{k:03d}.parquet", row_group_size=rg, compression="none",
        )
        start += n
    return root


def test_plan_covers_every_row_once_deterministically(million_row_catalog, tmp_path):
    source = open_catalog(str(million_row_catalog / "*.parquet"))
    assert source.num_rows == 1_200_000
    plan = plan_partitions(source, rows_per_partition=50_000)
    manifest = manifest_table(plan)
    again = manifest_table(plan_partitions(open_catalog(million_row_catalog), rows_per_partition=50_000))
    assert manifest.equals(again)
    n = manifest["n_rows"].to_numpy()
    assert n.sum() == 1_200_000 and n.max() <= 50_000
    assert (manifest["partition_id"].to_numpy() == np.arange(manifest.num_rows)).all()
    # per file, the row ranges tile [0, num_rows) without gap or overlap
    for file_index, cf in enumerate(source.files):
        rows = manifest.filter(pa.compute.equal(manifest["file_index"], file_index))
        starts, stops = rows["row_start"].to_numpy(), rows["row_stop"].to_numpy()
        assert starts[0] == 0 and stops[-1] == cf.num_rows
        assert (starts[1:] == stops[:-1]).all()
    # reading the partitions returns each id exactly once, in catalog order
    seen = np.concatenate([read_partition(p, ["source_id"])["source_id"].to_numpy() for p in plan])
    assert (seen == np.arange(1_200_000)).all()
    path = write_manifest(plan, tmp_path / "manifest.parquet")
    assert manifest_table(read_manifest(path)).equals(manifest)
    assert read_manifest(path) == plan


def test_plan_reads_footers_not_data_pages(million_row_catalog):
    total = sum(os.path.getsize(p) for p in million_row_catalog.glob("*.parquet"))
    before = _bytes_read()
    source = open_catalog(million_row_catalog)
    plan = plan_partitions(source, rows_per_partition=10_000)
    read_by_plan = _bytes_read() - before
    assert len(plan) >= 120
    assert read_by_plan < 0.01 * total, (read_by_plan, total)
    # and reading the data does cost the file sizes: the measure can fail
    before = _bytes_read()
    for part in plan[:20]:
        read_partition(part, ["source_id", "flux_euclid_h"])
    assert _bytes_read() - before > 100 * read_by_plan / 20


def test_small_row_groups_are_packed_and_big_ones_split(tmp_path):
    pq.write_table(pa.table({"source_id": np.arange(1000)}), tmp_path / "a.parquet", row_group_size=100)
    pq.write_table(pa.table({"source_id": np.arange(1000, 2000)}), tmp_path / "b.parquet", row_group_size=1000)
    manifest = manifest_table(plan_partitions(open_catalog(tmp_path), rows_per_partition=250))
    a = manifest.filter(pa.compute.equal(manifest["file_index"], 0)).to_pylist()
    b = manifest.filter(pa.compute.equal(manifest["file_index"], 1)).to_pylist()
    assert [p["n_rows"] for p in a] == [200] * 5 and a[0]["row_groups"] == [0, 1]
    assert [p["n_rows"] for p in b] == [250] * 4 and all(p["row_groups"] == [0] for p in b)
