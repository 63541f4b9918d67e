"""Every on-disk name in a campaign directory, and nothing else.

One module owns the layout (as ``hats/io/paths.py`` does for HATS), so the store, the
done-markers, resume, status and export can never disagree about where a file lives, and a
layout change is one edit. Paths are built from integers with f-strings only; at 10^5
partitions building them must stay cheap.

Layout of ``<campaign>/``::

    campaign.json            frozen inputs: catalog files + fingerprint, profile, workflow, site, version
    manifest.parquet         the partition plan (one row per partition)
    results.zarr/            Zarr v3 store; per partition one chunk in each of three arrays
    state/done/<k>/p<id>.json  done-markers (the commit point), sharded 1000 per folder
    state/runs/<run>.json    one record per driver run (start time, engine, site)
    state/run_id             the run that currently owns the campaign (fences stale workers)
    state/lock               advisory lock held by the running driver
    state/hpc-jobs.json      batch-job ids the scheduler engines submitted (cancelled by resume)
    state/driver.pid         the detached driver's pid and start time
    state/processes.json     local processes the run started (pid + start time)
    duplicates/              the cross-file duplicate-id index made at submit
    cache/                   model grids of campaigns made before grids were shared (campaign.json
                             ``grid_cache`` names the shared cache newer campaigns use)
    knowledge/delta-<id>.json  per-partition knowledge-base deltas of the agent
    summaries/partition-<id>.json  per-partition task summaries (with the ``host`` that ran it)
    configs/<hash>.json      every fit configuration a result names (``fit_config_id``), content-addressed
    trails/partition-<id>.parquet  the agent's steps for every agent source of a partition
    provenance.json          versions, workflow, LLM model + weights fingerprint, prompt version, KB hash, seeds
    llm/<host>/              one node's LLM service (daemon.json, service.json, accounting, logs)
    llm/stop                 the driver's end-of-run request to every node service
    tmp/                     temporary files of commits in flight (same file system => atomic rename)
    runinfo/                 Parsl's run_dir;  dask/  Dask's local directory;  logs/  driver logs
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

#: Names of the arrays inside ``results.zarr``; one chunk of each per partition.
FLOAT_ARRAY = "floats"
INT_ARRAY = "ints"
STRING_ARRAY = "strings"
DATA_ARRAYS = (FLOAT_ARRAY, INT_ARRAY, STRING_ARRAY)
#: Coordinate arrays naming the columns of each 2-D data array (for xarray's ``.sel``).
COLUMN_COORDS = {FLOAT_ARRAY: "float_column", INT_ARRAY: "int_column", STRING_ARRAY: "string_column"}
ROW_DIM = "row"

MARKERS_PER_FOLDER = 1000


@dataclass(frozen=True)
class CampaignPaths:
    """The paths of one campaign directory (``root``)."""

    root: Path

    @classmethod
    def at(cls, root: str | Path) -> "CampaignPaths":
        return cls(Path(root).expanduser().resolve())

    # frozen inputs -------------------------------------------------------------------------
    @property
    def campaign_json(self) -> Path:
        return self.root / "campaign.json"

    @property
    def manifest(self) -> Path:
        return self.root / "manifest.parquet"

    @property
    def duplicates_dir(self) -> Path:
        return self.root / "duplicates"

    # results store -------------------------------------------------------------------------
    @property
    def results_zarr(self) -> Path:
        return self.root / "results.zarr"

    def chunk_path(self, array: str, partition_id: int) -> Path:
        """``array``'s chunk file for ``partition_id`` (all arrays are 2-D, one chunk per partition
        along rows and one across columns; separator ``.`` keeps each chunk a single file)."""
        return self.results_zarr / f"{array}/c.{partition_id}.0"

    # state ---------------------------------------------------------------------------------
    @property
    def state_dir(self) -> Path:
        return self.root / "state"

    @property
    def done_dir(self) -> Path:
        return self.state_dir / "done"

    def done_marker(self, partition_id: int) -> Path:
        return self.done_dir / f"{partition_id // MARKERS_PER_FOLDER:05d}" / f"p{partition_id}.json"

    @property
    def runs_dir(self) -> Path:
        return self.state_dir / "runs"

    def run_record(self, run_id: str) -> Path:
        return self.runs_dir / f"{run_id}.json"

    @property
    def run_id_file(self) -> Path:
        return self.state_dir / "run_id"

    @property
    def lock_file(self) -> Path:
        return self.state_dir / "lock"

    @property
    def hpc_jobs(self) -> Path:
        """Batch-job ids the scheduler engines submitted (cancelled by ``resume`` after a crash)."""
        return self.state_dir / "hpc-jobs.json"

    @property
    def driver_pid(self) -> Path:
        """The detached driver's pid and start time (``submit --detach``; stopped by ``resume``)."""
        return self.state_dir / "driver.pid"

    @property
    def processes(self) -> Path:
        """Local processes the run started (pid + start time), so ``resume`` can stop exactly those."""
        return self.state_dir / "processes.json"

    # scratch -------------------------------------------------------------------------------
    @property
    def tmp_dir(self) -> Path:
        return self.root / "tmp"

    @property
    def parsl_run_dir(self) -> Path:
        return self.root / "runinfo"

    @property
    def dask_dir(self) -> Path:
        return self.root / "dask"

    @property
    def logs_dir(self) -> Path:
        return self.root / "logs"

    @property
    def cache_dir(self) -> Path:
        """The campaign's own model-grid cache: used only by campaigns whose ``campaign.json`` has
        no ``grid_cache`` (made before grids were shared across campaigns); newer ones cache grids
        where :meth:`sedscale.campaign.meta.CampaignMeta.grid_cache_dir` says."""
        return self.root / "cache"

    @property
    def duplicates_index(self) -> Path:
        return self.duplicates_dir / "index.parquet"

    @property
    def knowledge_dir(self) -> Path:
        """Per-partition knowledge-base deltas of the agent (readable JSON, merged order-free)."""
        return self.root / "knowledge"

    def knowledge_delta(self, partition_id: int) -> Path:
        return self.knowledge_dir / f"delta-{partition_id:09d}.json"

    @property
    def summaries_dir(self) -> Path:
        """Per-partition task summaries (where the time went, fallbacks by reason; read by the report)."""
        return self.root / "summaries"

    def partition_summary(self, partition_id: int) -> Path:
        return self.summaries_dir / f"partition-{partition_id:09d}.json"

    @property
    def configs_dir(self) -> Path:
        """The fit configurations the results refer to by ``fit_config_id`` (the triage one and
        every one an agent refitted a source under), so a source's best model can be rebuilt."""
        return self.root / "configs"

    def fit_config(self, config_hash: str) -> Path:
        """The configuration whose hash is ``config_hash`` (its canonical JSON; written once)."""
        return self.configs_dir / f"{config_hash}.json"

    @property
    def trails_dir(self) -> Path:
        """The agent's trail per partition: one row per step of every agent source (Parquet)."""
        return self.root / "trails"

    def trail(self, partition_id: int) -> Path:
        return self.trails_dir / f"partition-{partition_id:09d}.parquet"

    @property
    def provenance_json(self) -> Path:
        """What the campaign ran with, recorded once: versions, workflow, LLM model and weights
        fingerprint, prompt version, the knowledge base's hash at start, seeds."""
        return self.root / "provenance.json"

    @property
    def llm_dir(self) -> Path:
        """One sub-directory per node (host name) for the node's LLM service: logs, service.json,
        accounting.json (sedscale.serve.node)."""
        return self.root / "llm"

    def llm_host_dir(self, host: str) -> Path:
        """The LLM service directory of node ``host`` (the only place ``llm/<host>`` is spelled)."""
        return self.llm_dir / host

    def llm_host_dirs(self) -> list[Path]:
        """The LLM service directories of every node that has started one, sorted by host."""
        if not self.llm_dir.is_dir():
            return []
        return sorted(p for p in self.llm_dir.iterdir() if p.is_dir())

    @property
    def llm_stop_file(self) -> Path:
        """Written by the driver at the end of a run: node services started before it stop."""
        return self.llm_dir / "stop"


def default_campaign_dir(catalog: str | Path, workflow_name: str, root: Path | None = None) -> Path:
    """``checkpoints/<catalog stem>-<workflow>`` under the current directory (DESIGN.md section 2)."""
    first = Path(str(catalog).split(",")[0])
    stem = first.stem.replace("*", "all") or "catalog"
    return (root or Path("checkpoints")) / f"{stem}-{workflow_name}"
