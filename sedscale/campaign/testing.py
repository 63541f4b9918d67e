"""Campaign test kit (as ``zarr.testing``): synthetic campaigns and partition tasks that need
neither a catalog nor the SED layer, so store, commit, resume and engines are tested alone.

The tasks live in the package (not under ``tests/``) so engine workers can import them by
reference. Their results are a pure function of (partition id, row): identical whichever engine,
worker or retry ran them — the property real tasks must have too.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Optional

import numpy as np
import pyarrow as pa

from sedscale import _testhooks
from sedscale.campaign.commit import commit_partition
from sedscale.campaign.create import create_from_manifest
from sedscale.campaign.manifest import manifest_row, synthetic_manifest
from sedscale.campaign.meta import CatalogRecord, read_meta
from sedscale.campaign.paths import CampaignPaths
from sedscale.results import RESULTS_SCHEMA, failed_rows_table

SYNTHETIC_TASK = "sedscale.campaign.testing:synthetic_partition"
SYNTHETIC_FAIL_TASK = "sedscale.campaign.testing:synthetic_fail_partition"
FLAKY_TASK = "sedscale.campaign.testing:flaky_partition"


def synthetic_results(row_start: int, n: int) -> pa.Table:
    """Deterministic results for rows ``row_start .. row_start + n`` of a synthetic catalog:
    every 7th row quarantined, every 11th failed, the rest fitted."""
    rows = np.arange(row_start, row_start + n, dtype=np.int64)
    status = np.where(rows % 7 == 3, "quarantined", np.where(rows % 11 == 5, "failed", "fitted")).astype(object)
    fitted = status == "fitted"
    reason = np.where(status == "quarantined", "bad_error: planted",
                      np.where(status == "failed", "fit_failed: planted", np.full(n, None, dtype=object)))
    phase = (rows * 2654435761 % 2**32) / 2**32
    cols = {
        "source_id": pa.array(rows * 10 + 1),
        "status": pa.array(status, pa.string()),
        "reason": pa.array(reason, pa.string()),
        "redshift": pa.array(0.1 + 3 * phase, mask=~fitted),
        "z_phot": pa.nulls(n, pa.float64()),
        "z_phot_err": pa.nulls(n, pa.float64()),
        "logmstar": pa.array(8 + 4 * phase, mask=~fitted),
        "logmstar_err": pa.array(0.1 + phase / 10, mask=~fitted),
        "logsfr": pa.array(-1 + 3 * phase, mask=~fitted),
        "logsfr_err": pa.array(0.2 + phase / 10, mask=~fitted),
        "av": pa.array(phase, mask=~fitted),
        "chi2_red": pa.array(1 + phase, mask=~fitted),
        "accepted": pa.array(phase < 0.8, mask=~fitted),
        "n_bands": pa.array(np.full(n, 6, np.int32), mask=~fitted),
        "agent_steps": pa.array(np.zeros(n, np.int32)),
        "llm_calls": pa.array(np.zeros(n, np.int32)),
        "tokens_prompt": pa.array(np.zeros(n, np.int64)),
        "tokens_cached": pa.array(np.zeros(n, np.int64)),
        "tokens_completion": pa.array(np.zeros(n, np.int64)),
        "gpu_seconds": pa.array(np.zeros(n)),
        "fit_seconds": pa.array(np.full(n, 1e-3), mask=~fitted),
        "ra": pa.array(360.0 * phase),
        "dec": pa.array(-60.0 + 30.0 * phase),
    }
    for field in RESULTS_SCHEMA:  # later columns (percentiles, provenance): not estimated here
        cols.setdefault(field.name, pa.nulls(n, field.type))
    return pa.table(cols, schema=RESULTS_SCHEMA)


def synthetic_partition(campaign_dir: str, partition_id: int, run_id: Optional[str] = None) -> dict[str, int]:
    """A partition task over a synthetic catalog (no catalog file, no fit)."""
    t0 = time.perf_counter()
    paths = CampaignPaths.at(campaign_dir)
    _testhooks.in_task(partition_id)
    part = manifest_row(paths, partition_id)
    work = float(os.environ.get("SEDSCALE_TEST_TASK_WORK", "0"))
    if work:
        time.sleep(work)
    table = synthetic_results(part.row_start, part.n_rows)
    meta = read_meta(paths)
    marker = commit_partition(paths, partition_id, table, chunk_rows=meta.chunk_rows, run_id=run_id,
                              elapsed_s=time.perf_counter() - t0)
    return {"partition_id": partition_id, "n_rows": marker.n_rows}


def synthetic_fail_partition(campaign_dir: str, partition_id: int, reason: str, run_id: Optional[str] = None) -> dict[str, int]:
    """The driver's fallback for a synthetic partition whose task failed after every retry."""
    paths = CampaignPaths.at(campaign_dir)
    part = manifest_row(paths, partition_id)
    ids = synthetic_results(part.row_start, part.n_rows).column("source_id").combine_chunks()
    marker = commit_partition(paths, partition_id, failed_rows_table(ids, reason),
                              chunk_rows=read_meta(paths).chunk_rows, run_id=run_id, kind="failed", reason=reason)
    return {"partition_id": partition_id, "n_rows": marker.n_rows}


FAULTS_FILE = "test-faults.json"


def flaky_partition(campaign_dir: str, partition_id: int, run_id: Optional[str] = None) -> dict[str, int]:
    """Synthetic, with faults planted by ``<campaign>/test-faults.json``: ``always_fail`` (ids
    whose task always raises), ``fail_once`` (raise on the first attempt only) and ``die_once``
    (the worker process SIGKILLs itself on the first attempt)."""
    import json
    import signal

    root = CampaignPaths.at(campaign_dir).root
    try:
        faults = json.loads((root / FAULTS_FILE).read_text())
    except FileNotFoundError:
        faults = {}

    def first_time(kind: str) -> bool:
        try:
            os.close(os.open(root / f"{kind}-{partition_id}.flag", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            return True
        except FileExistsError:
            return False

    if partition_id in faults.get("always_fail", []):
        raise RuntimeError(f"planted failure in partition {partition_id}")
    if partition_id in faults.get("fail_once", []) and first_time("failed-once"):
        raise RuntimeError(f"planted transient failure in partition {partition_id}")
    if partition_id in faults.get("die_once", []) and first_time("died-once"):
        os.kill(os.getpid(), signal.SIGKILL)
    return synthetic_partition(campaign_dir, partition_id, run_id)


def make_synthetic_campaign(root: Path, sizes: list[int], *, task: str = SYNTHETIC_TASK,
                            workflow: Optional[dict[str, Any]] = None, faults: Optional[dict[str, list[int]]] = None) -> CampaignPaths:
    """A campaign over a synthetic catalog of partitions with ``sizes`` rows (``faults``: see
    :func:`flaky_partition`; setting it selects that task)."""
    if faults is not None:
        task = FLAKY_TASK
    paths = create_from_manifest(
        Path(root), synthetic_manifest(sizes), name=Path(root).name, catalog=CatalogRecord(spec=[]),
        workflow={"name": "synthetic", "retries": 2} | (workflow or {}), site={"name": "test"},
        task=task, fail_task=SYNTHETIC_FAIL_TASK,
    )
    if faults is not None:
        import json

        (paths.root / FAULTS_FILE).write_text(json.dumps(faults))
    return paths


def clone_committed(paths: CampaignPaths, source_pid: int, target_pids: list[int]) -> None:
    """Make ``target_pids`` look committed with copies of ``source_pid``'s files (no fsync):
    a fast way to build campaigns of 10^4 partitions for bookkeeping tests and benchmarks."""
    import dataclasses
    import shutil

    from sedscale.campaign.paths import DATA_ARRAYS
    from sedscale.campaign.state import read_marker

    marker = read_marker(paths, source_pid)
    if marker is None:
        raise ValueError(f"partition {source_pid} is not committed")
    for pid in target_pids:
        for array in DATA_ARRAYS:
            shutil.copyfile(paths.chunk_path(array, source_pid), paths.chunk_path(array, pid))
        target = paths.done_marker(pid)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(dataclasses.replace(marker, partition_id=pid).to_json())
