"""The same campaign on 1, 2 and 3 nodes of the namespace Slurm cluster (scripts/slurm-cluster.sh).

    bash scripts/slurm-cluster.sh up 3
    python benchmarks/bench_cluster.py [--nodes 1 2 3] [--rows 2000] [--rows-per-partition 125] [--json out.json]

For each node count: one Parsl block of that many nodes (srun, 2 workers per node) runs the
campaign from ``sedscale submit``. From the partitions' done-markers (host, worker pid, commit time,
task wall time) it reports:

* block start latency — submit to the first partition starting on a worker (campaign creation,
  sbatch, scheduling, srun, worker pools starting and connecting to the interchange);
* time to first result — submit to the first committed partition (the above plus one partition,
  whose first task on a worker also loads the model grid);
* scheduler overhead per partition — on each worker, the mean gap between the end of one
  partition and the start of its next (dispatch by the interchange, nothing of the fit);
* busy fraction — task seconds ÷ (workers × seconds from the first start to the last commit).

The nodes share this machine's CPUs, so more nodes are not faster here: the figures to read are the
overheads and busy fractions, not speed-ups.
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
from dataclasses import asdict, dataclass
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
WORKFLOW = """\
name: bench-cluster
profile: generic
rows_per_partition: {rows_per_partition}
photoz: false
fit:
  sfh: {{family: delayed, age: [0.5, 3.0], tau: [1.0]}}
  stellar: {{metallicity: [1.0]}}
  dust_attenuation: {{av: [0.0, 1.0]}}
  nebular: {{enabled: false}}
  dust_emission: {{enabled: false}}
  redshift: {{node_step: 0.02}}
policy: none
retries: 1
"""


@dataclass
class ClusterRun:
    nodes: int
    workers: int
    partitions: int
    wall_s: float
    first_start_s: float
    first_result_s: float
    overhead_per_partition_s: float
    busy_fraction: float
    hosts: int


def _site(folder: Path, nodes: int) -> Path:
    data = yaml.safe_load((REPO / "site_configs" / "slurm-cluster.yaml").read_text())
    data["scheduler_options"]["nodes_per_block"] = nodes
    path = folder / f"cluster-{nodes}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _markers(campaign: Path) -> list[dict[str, object]]:
    return [json.loads(p.read_text()) for p in (campaign / "state" / "done").glob("*/p*.json")]


def _gaps(markers: list[dict[str, object]]) -> list[float]:
    """Per worker (host, pid): idle seconds between one partition's end and its next start."""
    by_worker: dict[tuple[str, int], list[tuple[float, float]]] = {}
    for m in markers:
        end = float(m["committed_at"])  # type: ignore[arg-type]
        start = end - float(m["elapsed_s"])  # type: ignore[arg-type]
        by_worker.setdefault((str(m["host"]), int(m["pid"])), []).append((start, end))  # type: ignore[call-overload]
    gaps: list[float] = []
    for spans in by_worker.values():
        spans.sort()
        gaps.extend(max(0.0, nxt[0] - cur[1]) for cur, nxt in zip(spans, spans[1:]))
    return gaps


def run_one(catalog: Path, workflow: Path, nodes: int, work: Path) -> ClusterRun:
    site = _site(work, nodes)
    env = os.environ | {"PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")}
    t0 = time.time()
    proc = subprocess.run([sys.executable, "-m", "sedscale", "submit", str(catalog), "--site", str(site),
                           "--workflow", str(workflow), "--campaign", "camp"],
                          cwd=work, env=env, capture_output=True, text=True, timeout=1800)
    wall = time.time() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{nodes} node(s): submit failed\n{(proc.stdout + proc.stderr)[-3000:]}")
    markers = _markers(work / "camp")
    ends = [float(m["committed_at"]) for m in markers]  # type: ignore[arg-type]
    starts = [e - float(m["elapsed_s"]) for e, m in zip(ends, markers)]  # type: ignore[arg-type]
    workers = 2 * nodes
    busy = sum(float(m["elapsed_s"]) for m in markers) / (workers * (max(ends) - min(starts)))  # type: ignore[arg-type]
    gaps = _gaps(markers)
    return ClusterRun(nodes=nodes, workers=workers, partitions=len(markers), wall_s=round(wall, 1),
                      first_start_s=round(min(starts) - t0, 1), first_result_s=round(min(ends) - t0, 1),
                      overhead_per_partition_s=round(sum(gaps) / len(gaps), 3) if gaps else float("nan"),
                      busy_fraction=round(busy, 3), hosts=len({m["host"] for m in markers}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--rows", type=int, default=2000, help="rows of examples/euclid_mock_2k.parquet to use")
    parser.add_argument("--rows-per-partition", type=int, default=125)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    import pyarrow.parquet as pq

    results: list[ClusterRun] = []
    with tempfile.TemporaryDirectory(prefix="bench-cluster-") as tmp:
        folder = Path(tmp)
        catalog = folder / "mock.parquet"
        pq.write_table(pq.read_table(REPO / "examples" / "euclid_mock_2k.parquet").slice(0, args.rows), catalog)
        workflow = folder / "wf.yaml"
        workflow.write_text(WORKFLOW.format(rows_per_partition=args.rows_per_partition))
        for nodes in args.nodes:
            work = folder / f"n{nodes}"
            work.mkdir()
            results.append(run_one(catalog, workflow, nodes, work))
            print(json.dumps(asdict(results[-1])), flush=True)
            shutil.rmtree(work / "camp", ignore_errors=True)
    print("| nodes | workers | partitions | wall s | block start s | first result s | overhead s/partition "
          "| busy fraction | hosts |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r.nodes} | {r.workers} | {r.partitions} | {r.wall_s} | {r.first_start_s} | {r.first_result_s} | "
              f"{r.overhead_per_partition_s} | {r.busy_fraction} | {r.hosts} |")
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=1))


if __name__ == "__main__":
    main()
