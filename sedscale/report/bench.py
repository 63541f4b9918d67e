"""``sedscale bench``: run the layer benchmarks of ``benchmarks/`` at laptop sizes, one table.

Each benchmark runs as its own subprocess (``python benchmarks/bench_X.py ...``) so its memory
figures are its own, and its result is parsed from the JSON it prints or writes. A figure is
``(name, measured, target, direction)``; ``ratio`` is measured ÷ target for "at least" targets and
target ÷ measured for "at most" targets, so ratio ≥ 1 always means the target is met. Ratios are
taken inside one run of a benchmark (machines here are noisy).

The LLM benchmarks (``serve``, ``agent``) start a vLLM server (minutes on a CPU) and are only run
when named explicitly or with ``--all``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Optional

QUICK = ("plan", "fit", "campaign")
ALL = ("plan", "fit", "campaign", "serve", "agent")
#: Not a script of ``benchmarks/``: ``sedscale bench agent-quality --catalog FILE`` runs
#: :mod:`sedscale.report.agent_quality` in process, with options of its own.
AGENT_QUALITY = "agent-quality"


@dataclass
class Figure:
    bench: str
    figure: str
    measured: Optional[float]
    target: Optional[float]
    direction: str  # ">=" or "<="
    unit: str = ""
    seconds: float = 0.0
    error: str = ""

    @property
    def ratio(self) -> Optional[float]:
        if self.measured is None or self.target is None or self.measured == 0:
            return None
        return self.measured / self.target if self.direction == ">=" else self.target / self.measured

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["ratio"] = self.ratio
        d["met"] = None if self.ratio is None else self.ratio >= 1.0
        return d


def benchmarks_dir() -> Path:
    """``benchmarks/`` of the source tree (the package is installed editable from it)."""
    env = os.environ.get("SEDSCALE_BENCHMARKS")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "benchmarks"


def _run(args: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=timeout)


def _json_lines(text: str) -> list[dict[str, Any]]:
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{") and line.endswith("}"):
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
    return out


def bench_plan(bdir: Path, tmp: Path, timeout: float) -> list[Figure]:
    out = tmp / "plan.json"
    proc = _run([str(bdir / "bench_plan.py"), "--sizes", "1e5", "1e6", "--rows-per-file", "1e5", "--json", str(out)], timeout)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr.strip()[-300:])
    res = json.loads(out.read_text())["results"]
    return [Figure("plan", f"peak RSS {res[-1]['rows']:.0e} ÷ {res[0]['rows']:.0e} rows",
                   max(r["rss_ratio_vs_smallest"] for r in res), 1.2, "<=", "x")]


def bench_fit(bdir: Path, tmp: Path, timeout: float) -> list[Figure]:
    proc = _run([str(bdir / "bench_fit.py"), "--quick"], timeout)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr.strip()[-300:])
    figs = []
    for line in proc.stdout.splitlines():
        cells = line.split()
        if len(cells) >= 4 and re.fullmatch(r"\d+", cells[0]):
            models = int(cells[0])
            figs.append(Figure("fit", f"kernel speed-up over plain numpy, {models:,} models",
                               float(cells[3]), 10.0, ">=", "x"))
            if models >= 10_000:  # the absolute targets: 20,000 src/s at 10^4 models, 3,000 at 10^5
                figs.append(Figure("fit", f"kernel sources/s (1 thread), {models:,} models",
                                   float(cells[1].replace(",", "")), 20_000.0 if models < 100_000 else 3_000.0,
                                   ">=", "src/s"))
    if not figs:
        raise RuntimeError("no result rows in bench_fit output")
    return figs


def bench_campaign(bdir: Path, tmp: Path, timeout: float) -> list[Figure]:
    figs = []
    proc = _run([str(bdir / "bench_campaign.py"), "throughput", "--rows", "20000", "--rows-per-partition", "5000",
                 "--grid", "tiny", "--workdir", str(tmp / "campaign")], timeout)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr.strip()[-300:])
    for r in _json_lines(proc.stdout):
        if r.get("bench") == "throughput":
            figs.append(Figure("campaign", "submit ÷ in-process fit sources/s (20k rows: engine start-up dominates)", r["ratio"], 0.8, ">=", "x"))
    proc = _run([str(bdir / "bench_campaign.py"), "bookkeeping", "--partitions", "2000",
                 "--workdir", str(tmp / "bookkeeping")], timeout)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr.strip()[-300:])
    for r in _json_lines(proc.stdout):
        if r.get("bench") == "bookkeeping":
            figs.append(Figure("campaign", "resume scan, 2,000 partitions, checksums", r["seconds_checksum"], 2.0, "<=", "s"))
    return figs


def bench_serve(bdir: Path, tmp: Path, timeout: float) -> list[Figure]:
    proc = _run([str(bdir / "bench_serve.py"), "--rounds", "2", "--requests", "32", "--json",
                 "--run-dir", str(tmp / "serve")], timeout)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr.strip()[-300:])
    text = proc.stdout[proc.stdout.index("{"):]
    r = json.loads(text[: text.rindex("}") + 1])
    return [Figure("serve", "router ÷ direct throughput (median of rounds)", r["ratio_median"], 0.95, ">=", "x")]


def bench_agent(bdir: Path, tmp: Path, timeout: float) -> list[Figure]:
    out = tmp / "agent.json"
    proc = _run([str(bdir / "bench_agent.py"), "--sources", "32", "--repeat", "1", "--json", str(out)], timeout)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr.strip()[-300:])
    s = json.loads(out.read_text())["summary"]
    return [
        Figure("agent", "agent ÷ vllm bench serve output tok/s", s["agent_vs_bench_output_ratio"], 0.9, ">=", "x"),
        Figure("agent", "tokens per agent source", s["tokens_per_agent_source"], 5000.0, "<=", "tokens"),
        Figure("agent", "prefix-cache hit fraction (/metrics)", s["prefix_cache_hit_fraction"], 0.8, ">=", ""),
    ]


BENCHES: dict[str, Callable[[Path, Path, float], list[Figure]]] = {
    "plan": bench_plan, "fit": bench_fit, "campaign": bench_campaign, "serve": bench_serve, "agent": bench_agent,
}


def run_benchmarks(names: tuple[str, ...], *, timeout: float = 900.0,
                   progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    bdir = benchmarks_dir()
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory(prefix="sedscale-bench-") as tmp:
        for name in names:
            if progress:
                progress(name)
            t0 = time.perf_counter()
            try:
                figs = BENCHES[name](bdir, Path(tmp), timeout)
            except Exception as exc:  # one broken benchmark must not hide the others
                figs = [Figure(name, "(benchmark failed)", None, None, ">=", error=f"{type(exc).__name__}: {exc}")]
            dt = time.perf_counter() - t0
            for f in figs:
                f.seconds = dt
            figures.extend(figs)
    return {
        "sedscale_bench_version": 1,
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "host": os.uname().nodename,
        "cpus": os.cpu_count(),
        "load_average_1min": os.getloadavg()[0],
        "figures": [f.as_dict() for f in figures],
    }
