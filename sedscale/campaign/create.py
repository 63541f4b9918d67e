"""Creating a campaign directory: plan once, freeze inputs, then appear atomically.

Everything is built in a sibling temporary folder and renamed to the campaign name at the end,
so an interrupted submit leaves no half-made campaign behind (only a ``.<name>.creating-*``
folder that the next submit ignores). Submitting into an existing campaign is refused with a
pointer to ``sedscale resume``.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, Sequence

from sedscale import __version__
from sedscale.cache_dirs import grid_cache_dir
from sedscale.fsutil import fsync_dir
from sedscale.campaign.manifest import write_campaign_manifest
from sedscale.campaign.meta import DEFAULT_FAIL_TASK, DEFAULT_TASK, CampaignMeta, CatalogRecord, is_campaign, write_meta
from sedscale.campaign.paths import CampaignPaths
from sedscale.campaign.provenance import build_provenance, write_provenance
from sedscale.campaign.store import create_store
from sedscale.errors import CampaignError

if TYPE_CHECKING:
    from sedscale.catalog.duplicates import DuplicateIndex
    from sedscale.catalog.partition import Partition


DUPLICATES_IN_MEMORY_ROWS = 250_000


def refuse_existing(root: Path) -> None:
    """Raise :class:`CampaignError` when ``root`` already holds a campaign or other files."""
    paths = CampaignPaths.at(root)
    if is_campaign(paths):
        raise CampaignError(
            f"{paths.root}: a campaign already exists here; continue it with `sedscale resume {paths.root}` "
            "or choose another --campaign directory"
        )
    if paths.root.exists() and any(paths.root.iterdir()):
        raise CampaignError(f"{paths.root}: exists and is not an empty folder; choose another --campaign directory")


def create_from_manifest(
    root: Path,
    partitions: Sequence[Partition],
    *,
    name: str,
    catalog: CatalogRecord,
    workflow: dict[str, Any],
    site: dict[str, Any],
    profile: Optional[dict[str, Any]] = None,
    profile_spec: str = "generic",
    duplicate_index: Optional[DuplicateIndex] = None,
    task: str = DEFAULT_TASK,
    fail_task: str = DEFAULT_FAIL_TASK,
) -> CampaignPaths:
    """Lay out a campaign for the planned ``partitions`` and move it into place at ``root``."""
    refuse_existing(root)
    final = CampaignPaths.at(root)
    final.root.parent.mkdir(parents=True, exist_ok=True)
    staging = CampaignPaths(final.root.parent / f".{final.root.name}.creating-{uuid.uuid4().hex[:8]}")
    try:
        staging.root.mkdir()
        for folder in (staging.state_dir, staging.done_dir, staging.runs_dir, staging.tmp_dir,
                       staging.logs_dir, staging.duplicates_dir):
            folder.mkdir(parents=True, exist_ok=True)
        sizes = [p.n_rows for p in partitions]
        chunk_rows = max([*sizes, 1])
        write_campaign_manifest(staging, partitions)
        create_store(staging.results_zarr, len(sizes), chunk_rows)
        if duplicate_index is not None and len(duplicate_index):
            duplicate_index.write(staging.duplicates_index)
        meta = CampaignMeta(
            sedscale_version=__version__,
            name=name,
            created_at=time.time(),
            catalog=catalog,
            profile=profile or {},
            profile_spec=profile_spec,
            workflow=workflow,
            site=site,
            n_rows=sum(sizes),
            n_partitions=len(sizes),
            chunk_rows=chunk_rows,
            task=task,
            fail_task=fail_task,
            has_duplicate_index=bool(duplicate_index is not None and len(duplicate_index)),
            grid_cache=str(grid_cache_dir(site.get("grid_cache"))),
        )
        write_meta(staging, meta)
        write_provenance(staging, build_provenance(workflow, site))  # once: resume never rewrites it
        fsync_dir(staging.root)
        if final.root.exists():  # an empty folder the user made: replace it
            final.root.rmdir()
        os.rename(staging.root, final.root)
        fsync_dir(final.root.parent)
    except BaseException:
        shutil.rmtree(staging.root, ignore_errors=True)
        raise
    return final


def check_llm_reachable(workflow: Any, site: Any) -> None:
    """Policy ``llm`` needs a server: the workflow's ``llm_url`` or the site's per-node service.

    Checked at submit, so a campaign is not planned only for every task to fail on a compute node.
    """
    from sedscale.errors import ConfigError

    if getattr(workflow, "policy", None) == "llm" and not getattr(workflow, "llm_url", None) \
            and getattr(site, "llm", None) is None:
        raise ConfigError(f"policy 'llm' needs an LLM: pass --llm-url URL (an OpenAI-compatible server) or "
                          f"use a site with an llm: section (site {site.name!r} has llm: null)")


def create_campaign(
    root: Path,
    catalog_spec: list[str],
    *,
    workflow: Any,
    site: Any,
    profile_spec: str,
    rows_per_partition: int,
) -> CampaignPaths:
    """Open and check the catalog, plan partitions, index duplicate ids, lay out the campaign."""
    from sedscale.catalog.duplicates import find_duplicate_ids
    from sedscale.catalog.plan import plan_partitions
    from sedscale.catalog.catalog_input import catalog_arg, open_for_profile

    refuse_existing(root)
    check_llm_reachable(workflow, site)
    source, profile = open_for_profile(catalog_arg(catalog_spec), profile_spec)
    partitions = plan_partitions(source, rows_per_partition)
    root.parent.mkdir(parents=True, exist_ok=True)
    # spill to hashed buckets beyond 2.5e5 rows: the driver's memory must not grow with the
    # catalog (in memory, 10^7 ids cost ~0.6 GB of triples and sort buffers)
    duplicates = find_duplicate_ids(source, profile.id, workdir=root.parent,
                                    in_memory_rows=DUPLICATES_IN_MEMORY_ROWS, rows_per_bucket=DUPLICATES_IN_MEMORY_ROWS)
    return create_from_manifest(
        root,
        partitions,
        name=Path(root).name,
        catalog=CatalogRecord(spec=[str(s) for s in catalog_spec], fingerprint=source.fingerprint()),
        workflow=workflow.model_dump(mode="json"),
        site=site.model_dump(mode="json"),
        profile=profile.model_dump(mode="json"),
        profile_spec=profile_spec,
        duplicate_index=duplicates,
    )
