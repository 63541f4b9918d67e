"""Benchmark: partition planning on 1e6- and 1e7-row synthetic catalogs, in one run.

Each plan runs in a fresh subprocess so its peak RSS (ru_maxrss) is its own. Target: the 1e7
plan's peak RSS within 1.2x of the 1e6 plan's (planning memory must not grow with the catalog).

    python benchmarks/bench_plan.py [--sizes 1e6 1e7] [--rows-per-file 1e6] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

CHILD = r"""
import json, resource, sys, time
from sedscale.catalog.forms import open_catalog
from sedscale.catalog.plan import plan_partitions
t0 = time.perf_counter()
src = open_catalog(sys.argv[1])
m = plan_partitions(src, int(sys.argv[2]))
dt = time.perf_counter() - t0
print(json.dumps({"rows": src.num_rows, "partitions": len(m), "seconds": dt,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def make_catalog(root: Path, n_rows: int, rows_per_file: int, row_group: int) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    start, k = 0, 0
    while start < n_rows:
        n = min(rows_per_file, n_rows - start)
        cols = {"source_id": np.arange(start, start + n, dtype=np.int64)}
        for band in ("euclid_vis", "euclid_y", "euclid_j", "euclid_h"):
            cols[f"flux_{band}"] = rng.random(n, dtype=np.float32)
            cols[f"fluxerr_{band}"] = rng.random(n, dtype=np.float32)
        pq.write_table(pa.table(cols), root / f"part-{k:05d}.parquet", row_group_size=row_group)
        start, k = start + n, k + 1
    return root


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", nargs="+", type=float, default=[1e6, 1e7])
    ap.add_argument("--rows-per-file", type=float, default=1e6)
    ap.add_argument("--row-group", type=int, default=100_000)
    ap.add_argument("--rows-per-partition", type=int, default=50_000)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="sedscale-bench-plan-") as tmp:
        for size in args.sizes:
            n = int(size)
            t0 = time.perf_counter()
            root = make_catalog(Path(tmp) / f"cat-{n}", n, int(args.rows_per_file), args.row_group)
            gen = time.perf_counter() - t0
            out = subprocess.run([sys.executable, "-c", CHILD, str(root), str(args.rows_per_partition)],
                                 capture_output=True, text=True, check=True)
            r = json.loads(out.stdout)
            r["rows_per_second"] = r["rows"] / r["seconds"]
            r["generate_seconds"] = gen
            results.append(r)
    base = results[0]["peak_rss_mb"]
    print(f"{'rows':>12} {'partitions':>10} {'plan s':>8} {'rows/s':>14} {'peak RSS MB':>12} {'RSS ratio':>9}")
    for r in results:
        r["rss_ratio_vs_smallest"] = r["peak_rss_mb"] / base
        print(f"{r['rows']:>12,} {r['partitions']:>10,} {r['seconds']:>8.3f} {r['rows_per_second']:>14,.0f} "
              f"{r['peak_rss_mb']:>12.1f} {r['rss_ratio_vs_smallest']:>9.3f}")
    worst = max(r["rss_ratio_vs_smallest"] for r in results)
    print(f"target: largest/smallest peak RSS <= 1.2 -> {'PASS' if worst <= 1.2 else 'FAIL'} ({worst:.3f})")
    if args.json:
        args.json.write_text(json.dumps({"benchmark": "plan", "results": results, "target_rss_ratio": 1.2}, indent=2))


if __name__ == "__main__":
    main()
