"""A 20,000-source mock catalog with planted bad rows, for the end-to-end campaign tests.

Built from a small physical mock (:func:`sedscale.sed.mock.make_mock`) tiled with deterministic
flux jitter, so it costs seconds, not minutes. ``PLANTED`` maps each planted row to the reason
code the validation must give it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

N_ROWS = 20_000
PLANTED: dict[int, str] = {
    10: "null_id",
    20: "null_id",
    30: "duplicate_id",  # repeats row 5's id (same partition)
    15_000: "duplicate_id",  # repeats row 7's id (another partition and row group)
    40: "non_finite",
    50: "bad_error",
    60: "no_bands",
    70: "bad_redshift",
    80: "missing_redshift",
}

TINY_WORKFLOW = """\
name: tiny
profile: generic
rows_per_partition: 2500
photoz: false
fit:
  sfh: {family: delayed, age: [0.5, 3.0], tau: [1.0]}
  stellar: {metallicity: [1.0]}
  dust_attenuation: {av: [0.0, 1.0]}
  nebular: {enabled: false}
  dust_emission: {enabled: false}
  redshift: {node_step: 0.02}
policy: none
retries: 1
"""


def write_mock_catalog(path: Path, n: int = N_ROWS, seed: int = 3) -> Path:
    from sedscale.sed.mock import make_mock

    base = make_mock("euclid", 400, seed=seed)
    base = base.select([c for c in base.column_names if not c.startswith("truth")])
    reps = -(-n // base.num_rows)
    table = pa.concat_tables([base] * reps).slice(0, n)
    rng = np.random.default_rng(seed)
    cols = {name: table.column(name).to_numpy().copy() for name in table.column_names}
    cols["source_id"] = np.arange(1, n + 1, dtype=np.int64)
    flux_names = [c for c in cols if c.startswith("flux_")]
    for name in flux_names:
        err = cols["fluxerr_" + name[5:]]
        cols[name] = cols[name] + rng.normal(0, 1, n) * err * 0.5
    cols["source_id"][30] = cols["source_id"][5]
    cols["source_id"][15_000] = cols["source_id"][7]
    cols[flux_names[0]][40] = np.inf
    cols["fluxerr_" + flux_names[1][5:]][50] = -1.0
    for name in flux_names:
        cols[name][60] = np.nan
    cols["redshift"][70] = -1.0
    cols["redshift"][80] = np.nan
    arrays = {k: pa.array(v) for k, v in cols.items()}
    mask = np.zeros(n, bool)
    mask[[10, 20]] = True
    arrays["source_id"] = pa.array(cols["source_id"], pa.int64(), mask=mask)
    pq.write_table(pa.table(arrays), path, row_group_size=5000)
    return path
