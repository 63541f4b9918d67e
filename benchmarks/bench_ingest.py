"""Benchmark: reading survey-shaped catalogs — bytes read, rows/s and peak RSS of the ingest pass.

The ingest pass is what ``validate``/``plan``/``fit`` do before fitting: ``open_for_profile``
(open the catalog from its metadata, resolve the profile, check its columns and units) +
``plan_partitions`` + ``read_partition`` of every partition with the profile's columns only. Each
pass runs in a fresh subprocess, so its bytes (``/proc/self/io`` ``rchar``: every byte read by
read/pread, after the readers' modules are imported) and its peak RSS are its own. Peak RSS is
``VmHWM`` from ``/proc/self/status``: Linux carries ``ru_maxrss`` over fork and exec, so a child's
``ru_maxrss`` is at least the parent's RSS when it forked (the builder's, here); ``VmHWM`` belongs
to the new address space.

* ``wide``: a HATS catalog (IRSA's Euclid Q1 names) of ``--wide-rows`` rows × ``--wide-columns``
  columns read with a ~20-column profile: bytes per row and as a fraction of the pixel files'
  size (target ≤ 5%), rows/s.
* ``rss``: HATS catalogs of each of ``--rss-rows`` rows × ``--rss-columns`` columns: peak RSS of
  the largest ÷ the smallest (target ≤ 1.2).
* ``fits``: the same for ``--fits-files`` FITS tiles (native MER names, ``TUNIT`` µJy). The
  FITS reader seeks and reads whole rows in chunks (a FITS table is row-major), so the bytes
  read are the rows' full width whatever the profile.

The catalogs are written pixel by pixel with pyarrow and hats' own metadata writers
(:func:`sedscale.testing.catalogs.write_hats_pixels`; hats-import's map/split/reduce of 4 GB
on two cores would take longer than the measurement), their core columns from a 4,096-row
``sedscale mock --survey euclid`` table repeated with new ids and positions, the rest random
float32. Files are read right after they are written (page cache warm). Each catalog is deleted
after it is measured unless ``--keep`` (disk: ~4.1 GB per 10^9 cells; all kept ~13 GB).

    python benchmarks/bench_ingest.py [--parts wide rss fits] [--wide-rows 1e6]
        [--wide-columns 1000] [--rss-rows 1e6 1e7] [--rss-columns 100] [--fits-files 20]
        [--rows-per-partition 100000] [--profile euclid-q1-irsa] [--workdir DIR] [--keep]
        [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np
import pyarrow as pa

from sedscale.sed.mock import make_mock
from sedscale.testing import catalogs as tc

CHILD = r"""
import json, resource, sys, time
import pyarrow.parquet, astropy.io.fits, astropy.units, hats  # imported before the count starts
import sedscale.catalog.hats_catalog, sedscale.catalog.fits_tables, sedscale.catalog.parquet_files
from sedscale.catalog.catalog_input import open_for_profile
from sedscale.catalog.plan import plan_partitions
from sedscale.catalog.read import read_partition

def proc_field(name, key):
    with open(name) as fh:
        return int(next(line for line in fh if line.startswith(key)).split()[1])

def rchar():
    return proc_field("/proc/self/io", "rchar:")

spec, profile_spec, rows_per_partition = sys.argv[1], sys.argv[2], int(sys.argv[3])
r0, t0 = rchar(), time.perf_counter()
source, profile = open_for_profile(spec, profile_spec)
plan = plan_partitions(source, rows_per_partition)
r1, t1 = rchar(), time.perf_counter()
columns, optional = profile.columns(), profile.optional_columns()
rows = 0
for partition in plan:
    rows += read_partition(partition, columns, optional).num_rows
r2, t2 = rchar(), time.perf_counter()
print(json.dumps({
    "rows": rows, "catalog_rows": source.num_rows, "files": len(source.files),
    "partitions": len(plan), "columns_read": len(columns), "schema_columns": len(source.schema),
    "open_plan_seconds": t1 - t0, "read_seconds": t2 - t1, "seconds": t2 - t0,
    "open_plan_bytes": r1 - r0, "read_bytes": r2 - r1, "bytes": r2 - r0,
    "peak_rss_mb": proc_field("/proc/self/status", "VmHWM:") / 1024,
    "ru_maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
}))
"""

CENTER = (52.0, -28.0)  # the Euclid Deep Field Fornax
RADIUS_DEG = 2.0
HATS_ORDER = 6  # ~0.84 deg² pixels: ~20 pixel files on the 12.6 deg² cap
BASE_ROWS = 4_096


def base_table(seed: int) -> pa.Table:
    """The mock rows every catalog repeats (the mock's physics is too slow for 10^7 rows)."""
    return make_mock("euclid", BASE_ROWS, seed=seed)


def generic_rows(base: pa.Table, idx: np.ndarray, ra: np.ndarray, dec: np.ndarray) -> pa.Table:
    """Rows ``idx`` of the catalog: base rows repeated, ids ``idx + 1``, their sky positions."""
    rows = base.take(pa.array(idx % base.num_rows))
    rows = rows.set_column(rows.schema.get_field_index("source_id"), "source_id",
                           pa.array(idx.astype(np.int64) + 1))
    return rows.append_column("ra", pa.array(ra[idx])).append_column("dec", pa.array(dec[idx]))


def core_columns(base: pa.Table) -> int:
    """Columns of an IRSA-like table with no filler (plus ``_healpix_29``)."""
    ra = np.zeros(1)
    return tc.irsa_like_table(generic_rows(base, np.zeros(1, np.int64), ra, ra), extra_columns=0,
                              seed=0).num_columns + 1


def build_hats(root: Path, base: pa.Table, n_rows: int, n_columns: int, chunk_rows: int,
               seed: int) -> Path:
    """An IRSA-named HATS catalog of ``n_rows`` × ``n_columns`` (float32 filler)."""
    extra = max(n_columns - core_columns(base), 0)
    ra, dec = tc.sky_cap_positions(n_rows, seed=seed, center=CENTER, radius_deg=RADIUS_DEG)

    def make_rows(idx: np.ndarray) -> pa.Table:
        return tc.irsa_like_table(generic_rows(base, idx, ra, dec), extra_columns=extra,
                                  seed=seed + int(idx[0]), extra_types=("float32",))

    return tc.write_hats_pixels(root, catalog_name=f"irsa_{n_rows}x{n_columns}", ra=ra, dec=dec,
                                order=HATS_ORDER, make_rows=make_rows, chunk_rows=chunk_rows)


def build_fits(root: Path, base: pa.Table, n_rows: int, n_columns: int, n_files: int,
               seed: int) -> Path:
    """``n_files`` MER-named FITS tiles of ``n_rows`` in all × ``n_columns`` (float32 filler)."""
    ra, dec = tc.sky_cap_positions(n_rows, seed=seed, center=CENTER, radius_deg=RADIUS_DEG)
    bounds = np.linspace(0, n_rows, n_files + 1).astype(np.int64)
    for k in range(n_files):
        idx = np.arange(bounds[k], bounds[k + 1], dtype=np.int64)
        mer = tc.mer_like_table(generic_rows(base, idx, ra, dec), seed=seed + k)
        for fld, values in tc.irsa_extra_columns(idx.size, max(n_columns - mer.num_columns, 0),
                                                 seed=seed + k, types=("float32",)):
            mer = mer.append_column(fld.name.upper(), values)
        tc.write_fits_tile(mer, root / tc.fits_tile_name(k))
    return root


def data_bytes(root: Path) -> int:
    """Size of the data files (HATS pixel files or FITS tiles), not the metadata."""
    pattern = "Npix=*" if (root / "hats.properties").exists() else "*.fits"
    return sum(p.stat().st_size for p in root.rglob(pattern) if p.is_file())


def ingest(spec: Path, profile: str, rows_per_partition: int) -> dict[str, float]:
    """One ingest pass in a fresh interpreter (its own rchar and peak RSS)."""
    out = subprocess.run([sys.executable, "-c", CHILD, str(spec), profile, str(rows_per_partition)],
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"ingest of {spec} failed:\n{out.stderr[-4000:]}")
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    size = data_bytes(spec)
    result.update(data_file_bytes=size, bytes_per_row=result["bytes"] / result["rows"],
                  fraction_of_files=result["bytes"] / size,
                  rows_per_second=result["rows"] / result["read_seconds"],
                  rows_per_second_total=result["rows"] / result["seconds"])
    return result


def measure(label: str, build: Callable[[], Path], profile: str, rows_per_partition: int,
            keep: bool) -> dict[str, float]:
    t0 = time.perf_counter()
    root = build()
    built = time.perf_counter() - t0
    try:
        result = ingest(root, profile, rows_per_partition)
    finally:
        if not keep:
            shutil.rmtree(root, ignore_errors=True)
    result["build_seconds"] = built
    print(f"{label:<34} rows {result['rows']:>11,.0f}  cols {result['schema_columns']:>5.0f} "
          f"(read {result['columns_read']:.0f})  files {result['files']:>4.0f}  "
          f"bytes/row {result['bytes_per_row']:>7.1f} (metadata {result['open_plan_bytes'] / 1e6:.1f} MB)  "
          f"of files {100 * result['fraction_of_files']:6.2f}%  "
          f"rows/s {result['rows_per_second']:>12,.0f}  peak RSS {result['peak_rss_mb']:8.1f} MB  "
          f"(built in {built:.0f} s)", flush=True)
    return result


def rss_summary(name: str, results: list[dict[str, float]]) -> dict[str, float]:
    ratio = results[-1]["peak_rss_mb"] / results[0]["peak_rss_mb"]
    print(f"target {name}: peak RSS {results[-1]['rows']:,.0f} ÷ {results[0]['rows']:,.0f} rows "
          f"= {ratio:.3f} (≤ 1.2) -> {'PASS' if ratio <= 1.2 else 'FAIL'}")
    return {"rss_ratio": ratio}


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--parts", nargs="+", choices=("wide", "rss", "fits"), default=["wide", "rss", "fits"])
    ap.add_argument("--wide-rows", type=float, default=1e6)
    ap.add_argument("--wide-columns", type=int, default=1000)
    ap.add_argument("--rss-rows", nargs="+", type=float, default=[1e6, 1e7])
    ap.add_argument("--rss-columns", type=int, default=100)
    ap.add_argument("--fits-files", type=int, default=20)
    ap.add_argument("--rows-per-partition", type=int, default=100_000)
    ap.add_argument("--profile", default="euclid-q1-irsa", help="profile of the HATS catalogs")
    ap.add_argument("--fits-profile", default="euclid-q1", help="profile of the FITS tiles")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--workdir", type=Path, default=None, help="where to build (default: a temp dir)")
    ap.add_argument("--keep", action="store_true", help="keep the catalogs (and print where)")
    ap.add_argument("--json", type=Path, default=None)
    return ap.parse_args()


def run(args: argparse.Namespace, work: Path) -> dict[str, object]:
    base = base_table(args.seed)
    rpp, keep, seed = args.rows_per_partition, args.keep, args.seed
    report: dict[str, object] = {}
    if "wide" in args.parts:
        n, c = int(args.wide_rows), args.wide_columns
        wide = measure(f"wide HATS {n:.0e} x {c}", lambda: build_hats(
            work / "wide", base, n, c, chunk_rows=50_000, seed=seed), args.profile, rpp, keep)
        ok = wide["fraction_of_files"] <= 0.05
        print(f"target wide: bytes read {100 * wide['fraction_of_files']:.2f}% of the files (≤ 5%) -> "
              f"{'PASS' if ok else 'FAIL'}")
        report["wide"] = wide
    if "rss" in args.parts:
        rss = [measure(f"HATS {n:.0e} x {args.rss_columns}", lambda n=int(n): build_hats(
            work / f"rss-{n}", base, n, args.rss_columns, chunk_rows=100_000, seed=seed),
            args.profile, rpp, keep) for n in args.rss_rows]
        report["rss"] = {"results": rss, **rss_summary("HATS", rss)}
    if "fits" in args.parts:
        fits = [measure(f"FITS {args.fits_files} files {n:.0e} x {args.rss_columns}",
                        lambda n=int(n): build_fits(work / f"fits-{n}", base, n, args.rss_columns,
                                                    args.fits_files, seed=seed),
                        args.fits_profile, rpp, keep) for n in args.rss_rows]
        report["fits"] = {"results": fits, **rss_summary("FITS", fits)}
    return report


def main() -> None:
    args = parse_args()
    if args.workdir is not None:
        args.workdir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="sedscale-bench-ingest-", dir=args.workdir))
    try:
        report = run(args, work)
    finally:
        if args.keep:
            print(f"catalogs kept under {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps({"benchmark": "ingest", "argv": sys.argv[1:], **report,
                                         "targets": {"fraction_of_files": 0.05, "rss_ratio": 1.2}},
                                        indent=2))


if __name__ == "__main__":
    main()
