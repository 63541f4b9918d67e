"""Small hand-made catalogs for the catalog-layer tests (generic profile, µJy)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

BANDS = ("euclid_vis", "euclid_y", "euclid_j", "euclid_h", "lsst_g", "lsst_r")


def clean_columns(n: int, seed: int = 0, start_id: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    cols: dict[str, np.ndarray] = {
        "source_id": np.arange(start_id, start_id + n, dtype=np.int64),
        "redshift": rng.uniform(0.1, 3.0, n),
    }
    for band in BANDS:
        cols[f"flux_{band}"] = rng.uniform(0.5, 50.0, n)
        cols[f"fluxerr_{band}"] = rng.uniform(0.02, 0.2, n)
    return cols


def write(cols: dict[str, np.ndarray], path: Path, row_group_size: int | None = None, id_nulls=()) -> Path:
    arrays = {}
    for name, values in cols.items():
        if name == "source_id" and len(id_nulls):
            mask = np.zeros(len(values), bool)
            mask[list(id_nulls)] = True
            arrays[name] = pa.array(values, pa.int64(), mask=mask)
        else:
            arrays[name] = pa.array(values)
    pq.write_table(pa.table(arrays), path, row_group_size=row_group_size)
    return path
