"""``campaign.json``: the frozen inputs of a campaign, written once, last, at submit.

Its presence is what makes a folder a campaign (submit refuses to write into one; resume,
status and export refuse folders without one). It records what resume must compare (the catalog
fingerprint) and what every task must use unchanged (resolved profile, workflow, site at submit,
task references), so a later edit of a shipped workflow cannot change a running campaign.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

from pydantic import BaseModel, ConfigDict, Field

from sedscale.fsutil import atomic_write
from sedscale.campaign.paths import CampaignPaths
from sedscale.errors import CampaignError

META_VERSION = 1
DEFAULT_TASK = "sedscale.pipeline:process_partition"
DEFAULT_FAIL_TASK = "sedscale.pipeline:fail_partition"


class CatalogRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")

    spec: list[str] = Field(description="what the user passed (paths, directory or glob)")
    fingerprint: list[dict[str, Any]] = Field(default_factory=list, description="path, size, mtime_ns, num_rows per file")


class CampaignMeta(BaseModel):
    model_config = ConfigDict(extra="forbid")

    meta_version: int = META_VERSION
    sedscale_version: str
    name: str
    created_at: float
    catalog: CatalogRecord
    profile: dict[str, Any] = Field(default_factory=dict, description="the resolved CatalogProfile")
    profile_spec: str = "generic"
    workflow: dict[str, Any]
    site: dict[str, Any]
    n_rows: int
    n_partitions: int
    chunk_rows: int
    task: str = DEFAULT_TASK
    fail_task: str = DEFAULT_FAIL_TASK
    has_duplicate_index: bool = False
    notes: Optional[str] = None
    grid_cache: Optional[str] = Field(None, description="the shared model-grid cache resolved at submit "
                                      "(sedscale.cache_dirs.grid_cache_dir); None: the campaign's own cache/")

    def grid_cache_dir(self, paths: CampaignPaths) -> Path:
        """Where this campaign's tasks cache model grids: the shared cache resolved once at submit
        (so tasks on compute nodes use the same one, whatever their environment), or the
        campaign's own ``cache/`` for campaigns made before grids were shared."""
        return Path(self.grid_cache) if self.grid_cache else paths.cache_dir


def write_meta(paths: CampaignPaths, meta: CampaignMeta) -> None:
    atomic_write(paths.campaign_json, meta.model_dump_json(indent=2).encode())


def is_campaign(paths: CampaignPaths) -> bool:
    return paths.campaign_json.is_file()


def read_meta(paths: CampaignPaths) -> CampaignMeta:
    """The campaign's frozen inputs; a clear error when ``paths.root`` is not a campaign."""
    try:
        data = json.loads(paths.campaign_json.read_text())
    except FileNotFoundError:
        raise CampaignError(
            f"{paths.root}: not a sedscale campaign (no campaign.json); start one with `sedscale submit`"
        ) from None
    except ValueError as exc:
        raise CampaignError(f"{paths.campaign_json}: unreadable ({exc})") from None
    return CampaignMeta.model_validate(data)
