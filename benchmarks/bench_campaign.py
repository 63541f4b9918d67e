"""Campaign benchmarks (issue 6): throughput vs in-process fit, resume bookkeeping, memory.

    python benchmarks/bench_campaign.py throughput --rows 200000 [--site local] [--grid small|default]
    python benchmarks/bench_campaign.py bookkeeping --partitions 10000
    python benchmarks/bench_campaign.py memory --rows 1000000 10000000 [--rows-per-partition 100000]
    python benchmarks/bench_campaign.py first-commit [--runs 2] [--no-install-warmup]

``throughput`` runs, in one invocation on the same catalog, ``sedscale submit`` (engine, campaign
store, atomic commits; wall time of the whole command) and the in-process fit (``sedscale fit``
when that command exists, else the same per-partition function on the whole catalog in one
process) and prints sources/s of both and their ratio (target >= 0.8).
``bookkeeping`` builds a campaign of N committed partitions (one real commit cloned) and times
finding what is left (target <= 2 s). ``memory`` runs a campaign per row count and samples the
peak RSS of the driver and of the largest worker (target: 10^7 within 1.2x of 10^6).
``first-commit`` times the README demo (2,000 rows, 500 per partition) from ``sedscale submit``'s
start to its first done-marker: on a fresh install (new cache; the install step of
scripts/install.sh unless --no-install-warmup), then again into a new campaign (shared grid cache
warm); with the report's fixed costs and steady-state rate (issue 17; target: ~10 s).
Every result is also printed as one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

GRIDS = {
    "small": {"sfh": {"family": "delayed", "age": [0.3, 1.0, 3.0, 8.0], "tau": [0.3, 3.0]},
              "stellar": {"metallicity": [1.0]}, "dust_attenuation": {"av": [0.0, 0.5, 1.5]},
              "nebular": {"enabled": False}, "dust_emission": {"enabled": False}, "redshift": {"node_step": 0.01}},
    "tiny": {"sfh": {"family": "delayed", "age": [0.5, 3.0], "tau": [1.0]}, "stellar": {"metallicity": [1.0]},
             "dust_attenuation": {"av": [0.0, 1.0]}, "nebular": {"enabled": False},
             "dust_emission": {"enabled": False}, "redshift": {"node_step": 0.02}},
    "default": {},
}


def _env() -> dict[str, str]:
    return os.environ | {"PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")}


def make_catalog(path: Path, rows: int, seed: int = 11, row_group: int = 50_000) -> Path:
    """A mock Euclid catalog: a small physical mock tiled with flux jitter, streamed to disk."""
    from sedscale.sed.mock import make_mock

    base = make_mock("euclid", 2000, seed=seed)
    base = base.select([c for c in base.column_names if not c.startswith("truth")])
    rng = np.random.default_rng(seed)
    flux = [c for c in base.column_names if c.startswith("flux_")]
    with pq.ParquetWriter(path, base.schema) as writer:
        done = 0
        while done < rows:
            n = min(row_group, rows - done)
            idx = rng.integers(0, base.num_rows, n)
            chunk = base.take(pa.array(idx))
            cols = {c: chunk.column(c) for c in base.column_names}
            cols["source_id"] = pa.array(np.arange(done + 1, done + n + 1, dtype=np.int64))
            for c in flux:
                err = chunk.column("fluxerr_" + c[5:]).to_numpy()
                cols[c] = pa.array(chunk.column(c).to_numpy() + rng.normal(0, 0.3, n) * err)
            writer.write_table(pa.table(cols, schema=base.schema))
            done += n
    return path


#: The memory benchmark runs the rules policy on a capped share of the sources: with the tiny grid
#: nearly every source fails triage, and an uncapped agent would make a 10^7-row run take hours
#: without changing what is measured (the driver's and the workers' peak memory).
MEMORY_BUDGETS = {"max_agent_steps": 2, "max_agent_fraction": 0.02}


def _workflow(folder: Path, grid: str, rows_per_partition: int, policy: str = "none",
              budgets: dict | None = None) -> Path:
    import yaml

    path = folder / f"bench-{grid}.yaml"
    data = {"name": f"bench-{grid}", "profile": "generic", "photoz": False,
            "rows_per_partition": rows_per_partition, "fit": GRIDS[grid], "policy": policy, "retries": 1}
    if budgets:
        data["budgets"] = budgets
    path.write_text(yaml.safe_dump(data))
    return path


def _has_fit_command() -> bool:
    out = subprocess.run([sys.executable, "-m", "sedscale", "fit", "--help"], capture_output=True, env=_env())
    return out.returncode == 0


def in_process_fit(catalog: Path, workflow: Path, out: Path, cache: Path) -> None:
    """What ``sedscale fit`` does, when the command is not there: one process, whole catalog."""
    from sedscale.campaign.workflow import load_workflow
    from sedscale.catalog.profiles import load_profile
    from sedscale.fitting import FitOptions, fit_table

    wf = load_workflow(str(workflow))
    table = pq.read_table(catalog)
    profile = load_profile(wf.profile, table.schema)
    options = FitOptions.from_workflow(wf, cache_dir=cache)
    pq.write_table(fit_table(table.select(profile.columns()), profile, options).table, out)


def bench_throughput(rows: int, site: str, grid: str, rows_per_partition: int, workdir: Path) -> dict:
    catalog = make_catalog(workdir / "cat.parquet", rows)
    wf = _workflow(workdir, grid, rows_per_partition)
    t0 = time.perf_counter()
    if _has_fit_command():
        how = "sedscale fit"
        import yaml

        (workdir / "fitconfig.yaml").write_text(yaml.safe_dump(GRIDS[grid]))
        proc = subprocess.run([sys.executable, "-m", "sedscale", "fit", str(catalog), "-o", str(workdir / "fit.parquet"),
                               "--config", str(workdir / "fitconfig.yaml"), "--policy", "none"],
                              capture_output=True, text=True, env=_env())
        if proc.returncode != 0:  # fall back: the command may not take this grid yet
            how = "in-process pipeline (sedscale fit failed: " + proc.stderr.strip().splitlines()[-1][:120] + ")"
            t0 = time.perf_counter()
            subprocess.run([sys.executable, __file__, "_fit", str(catalog), str(wf), str(workdir / "fit.parquet"),
                            str(workdir / "cache-fit")], check=True, env=_env())
    else:
        how = "in-process pipeline (no sedscale fit command yet)"
        subprocess.run([sys.executable, __file__, "_fit", str(catalog), str(wf), str(workdir / "fit.parquet"),
                        str(workdir / "cache-fit")], check=True, env=_env())
    fit_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "sedscale", "submit", str(catalog), "--site", site, "--workflow", str(wf),
                    "--campaign", str(workdir / "camp")], check=True, env=_env(), stderr=subprocess.DEVNULL)
    submit_s = time.perf_counter() - t0
    return {"bench": "throughput", "rows": rows, "site": site, "grid": grid, "rows_per_partition": rows_per_partition,
            "baseline": how, "fit_seconds": fit_s, "submit_seconds": submit_s,
            "fit_sources_per_s": rows / fit_s, "submit_sources_per_s": rows / submit_s,
            "ratio": fit_s / submit_s, "cpus": os.cpu_count(), "load_average_1min": os.getloadavg()[0]}


def bench_bookkeeping(partitions: int, workdir: Path) -> dict:
    from sedscale.campaign.commit import commit_partition
    from sedscale.campaign.resume import plan_resume
    from sedscale.campaign.testing import clone_committed, make_synthetic_campaign, synthetic_results

    paths = make_synthetic_campaign(workdir / "camp", [100] * partitions)
    commit_partition(paths, 0, synthetic_results(0, 100), chunk_rows=100, run_id=None)
    left = set(range(0, partitions, 50))
    clone_committed(paths, 0, [p for p in range(1, partitions) if p not in left])
    os.system("sync")
    out = {"bench": "bookkeeping", "partitions": partitions, "left": len(left) - 1}
    for verify in ("checksum", "size"):
        t0, c0 = time.perf_counter(), time.process_time()
        plan = plan_resume(paths, partitions, verify=verify)  # type: ignore[arg-type]
        out[f"seconds_{verify}"] = time.perf_counter() - t0
        out[f"cpu_seconds_{verify}"] = time.process_time() - c0  # < wall on a shared, loaded machine
        assert len(plan.todo) == len(left) - 1
    out["load_average_1min"] = os.getloadavg()[0]
    return out


def _tree_rss(root_pid: int) -> tuple[int, int]:
    import psutil

    try:
        me = psutil.Process(root_pid)
        procs = [me] + me.children(recursive=True)
    except psutil.NoSuchProcess:
        return 0, 0
    driver = 0
    worker = 0
    for p in procs:
        try:
            rss = p.memory_info().rss
        except psutil.NoSuchProcess:
            continue
        if p.pid == root_pid:
            driver = rss
        elif "process_worker_pool" not in " ".join(p.cmdline()[:2]) and "interchange" not in p.name():
            worker = max(worker, rss)
    return driver, worker


def bench_memory(rows_list: list[int], rows_per_partition: int, site: str, grid: str, workdir: Path) -> list[dict]:
    import psutil

    results = []
    wf = _workflow(workdir, grid, rows_per_partition, policy="rules", budgets=MEMORY_BUDGETS)
    for rows in rows_list:
        catalog = make_catalog(workdir / f"cat-{rows}.parquet", rows)
        camp = workdir / f"camp-{rows}"
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "sedscale", "submit", str(catalog), "--site", site,
                                 "--workflow", str(wf), "--campaign", str(camp)], env=_env(),
                                stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        peak = {"driver": 0, "worker": 0, "pools": 0}
        while proc.poll() is None:
            d, w = _tree_rss(proc.pid)
            for p in psutil.process_iter(["cmdline"]):  # Parsl's pool detaches from the driver
                try:
                    if any(str(camp) in a for a in (p.info["cmdline"] or [])):
                        for c in p.children(recursive=True):
                            w = max(w, c.memory_info().rss)
                except (psutil.NoSuchProcess, psutil.AccessDenied):
                    continue
            peak["driver"] = max(peak["driver"], d)
            peak["worker"] = max(peak["worker"], w)
            time.sleep(0.2)
        results.append({"bench": "memory", "rows": rows, "rows_per_partition": rows_per_partition, "grid": grid,
                        "seconds": time.perf_counter() - t0, "rc": proc.returncode,
                        "peak_driver_rss_mb": peak["driver"] / 2**20, "peak_worker_rss_mb": peak["worker"] / 2**20})
        print("progress:", json.dumps(results[-1]), file=sys.stderr, flush=True)  # long runs: partial figures
        catalog.unlink()
    if len(results) >= 2:
        for key in ("peak_driver_rss_mb", "peak_worker_rss_mb"):
            results[-1][key.replace("peak", "ratio")] = results[-1][key] / max(results[0][key], 1e-9)
    return results


DEMO_CATALOG = Path(__file__).resolve().parents[1] / "examples" / "euclid_mock_2k.parquet"


def _first_commit(camp: Path, env: dict[str, str]) -> dict:
    """The README demo into ``camp``: seconds from the command's start to the first done-marker's
    commit and to its exit, and the report's fixed costs and steady-state rate."""
    t0 = time.time()
    subprocess.run([sys.executable, "-m", "sedscale", "submit", str(DEMO_CATALOG), "--site", "local",
                    "--campaign", str(camp), "--rows-per-partition", "500"],
                   check=True, env=env, stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    total = time.time() - t0
    first = min(json.loads(p.read_text())["committed_at"] for p in (camp / "state" / "done").rglob("p*.json"))
    rep = json.loads(subprocess.run([sys.executable, "-m", "sedscale", "report", str(camp), "--json"], check=True,
                                    env=env, capture_output=True, text=True).stdout)
    fixed = {k: round(v, 2) for k, v in rep["fixed_costs"].items() if k.endswith("_s")}
    return {"first_commit_s": round(first - t0, 2), "total_s": round(total, 2),
            "sources_per_second": rep["sources_per_second"],
            "steady_state_sources_per_second": rep["steady_state_sources_per_second"], "fixed_costs": fixed}


def bench_first_commit(runs: int, workdir: Path, cache: Path | None, install_warmup: bool) -> list[dict]:
    """Time to the README demo's first commit: in a fresh cache (``cache``, else a new folder, i.e.
    a fresh install: no compiled kernel, no grids) after what ``scripts/install.sh`` does (the
    kernel compiled and the demo grids built: `sedscale prepare`) unless ``install_warmup`` is off, then ``runs - 1`` more campaigns of the same
    configuration into new directories (warm kernel, grids from the shared cache)."""
    cache = cache or workdir / "sedscale-cache"
    env = _env() | {"SEDSCALE_CACHE_DIR": str(cache)}
    out = []
    if install_warmup:
        t0 = time.perf_counter()
        step = subprocess.run([sys.executable, "-m", "sedscale", "prepare", str(DEMO_CATALOG), "--site", "local"],
                              env=env, capture_output=True, text=True)
        if step.returncode != 0:
            raise SystemExit(f"sedscale prepare failed ({step.returncode}):\n{step.stderr[-3000:]}")
        out.append({"bench": "first_commit", "step": "install step (sedscale prepare DEMO: kernel + demo grids)",
                    "seconds": round(time.perf_counter() - t0, 2)})
    for i in range(runs):
        state = ("fresh cache" + (" + install warm-up" if install_warmup else "")) if i == 0 else "repeat (warm caches)"
        out.append({"bench": "first_commit", "run": i + 1, "caches": state, **_first_commit(workdir / f"demo-{i}", env),
                    "cpus": os.cpu_count(), "load_average_1min": os.getloadavg()[0]})
    return out


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_fit":
        in_process_fit(Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4]), Path(sys.argv[5]))
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("bench", choices=["throughput", "bookkeeping", "memory", "first-commit"])
    ap.add_argument("--runs", type=int, default=2, help="first-commit: campaigns of the demo, the first in a fresh cache")
    ap.add_argument("--cache-dir", type=Path, default=None, help="first-commit: SEDSCALE_CACHE_DIR (default: a new one)")
    ap.add_argument("--no-install-warmup", action="store_true", help="first-commit: skip the install step (sedscale prepare) install.sh runs")
    ap.add_argument("--rows", type=int, nargs="+", default=[200_000])
    ap.add_argument("--rows-per-partition", type=int, default=50_000)
    ap.add_argument("--partitions", type=int, default=10_000)
    ap.add_argument("--site", default="local")
    ap.add_argument("--grid", choices=list(GRIDS), default="small")
    ap.add_argument("--workdir", type=Path, default=None)
    args = ap.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="sedscale-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        if args.bench == "throughput":
            out = [bench_throughput(args.rows[0], args.site, args.grid, args.rows_per_partition, workdir)]
        elif args.bench == "bookkeeping":
            out = [bench_bookkeeping(args.partitions, workdir)]
        elif args.bench == "first-commit":
            out = bench_first_commit(args.runs, workdir, args.cache_dir, not args.no_install_warmup)
        else:
            out = bench_memory(args.rows, args.rows_per_partition, args.site, args.grid, workdir)
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    for line in out:
        print(json.dumps(line))


if __name__ == "__main__":
    main()
