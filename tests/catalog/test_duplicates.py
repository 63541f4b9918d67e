"""Duplicate ids across files: the hash-partitioned scan agrees with an in-memory check."""

from __future__ import annotations

import numpy as np

from sedscale.catalog.duplicates import DuplicateIndex, find_duplicate_ids
from sedscale.catalog.forms import open_catalog

from .catalogs import clean_columns, write


def _catalog(tmp_path):
    rng = np.random.default_rng(11)
    expected = []
    for k in range(3):
        cols = clean_columns(5000, seed=k, start_id=k * 5000)
        if k:
            rows = rng.choice(5000, size=40, replace=False)
            cols["source_id"][rows] = rng.integers(0, k * 5000, size=40)  # ids of earlier files
            expected += [(k, int(r)) for r in rows]
        write(cols, tmp_path / f"f{k}.parquet", row_group_size=1000)
    return open_catalog(tmp_path), sorted(expected)


def test_bucketed_scan_equals_in_memory(tmp_path):
    source, expected = _catalog(tmp_path)
    in_memory = find_duplicate_ids(source, "source_id")
    bucketed = find_duplicate_ids(source, "source_id", tmp_path, in_memory_rows=1000, rows_per_bucket=2000)
    assert bucketed.buckets > 1 and in_memory.buckets == 1  # the spill path ran
    got = sorted(zip(bucketed.file_index.tolist(), bucketed.row.tolist()))
    assert got == sorted(zip(in_memory.file_index.tolist(), in_memory.row.tolist()))
    # every planted copy is found; an id repeated inside the later file counts once more at most
    assert set(expected) <= set(got) and len(got) - len(expected) <= 2
    assert not list(tmp_path.glob("sedscale-dupes-*"))  # the spill is cleaned up


def test_rows_in_partition_and_roundtrip(tmp_path):
    source, _ = _catalog(tmp_path)
    index = find_duplicate_ids(source, "source_id")
    rows = index.rows_in(1, 1000, 3000)
    assert ((rows >= 0) & (rows < 2000)).all()
    index.write(tmp_path / "dups.parquet")
    again = DuplicateIndex.read(tmp_path / "dups.parquet")
    assert (again.row == index.row).all() and (again.file_index == index.file_index).all()
