"""``sedscale export DIR --trail``: the agent's trail of a campaign as one Parquet file.

Why a separate export: the results say which policy produced each row; the trail says how — one
row per agent step (``sedscale.agent.trail.TRAIL_SCHEMA``), keyed by ``source_id``. Each task
writes its partition's trail before it commits (``trails/partition-<id>.parquet``), so a trail
file can exist for a partition whose commit never happened: only partitions with a ``done``
marker are read (``failed`` partitions fitted nothing and have none). Rows are sorted by
(source_id, step), whatever the partitioning or the order partitions finished in. The whole
trail is held in memory once for the sort: it holds agent sources only.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from sedscale.agent.trail import TRAIL_SCHEMA, empty_trail, sort_trail
from sedscale.campaign.paths import CampaignPaths
from sedscale.campaign.state import load_markers
from sedscale.errors import CampaignError
from sedscale.fsutil import atomic_output


def committed_trails(paths: CampaignPaths) -> list[Path]:
    """The trail files of the partitions committed as ``done``, in partition order.

    Raises :class:`CampaignError` when a done partition has no trail (the campaign, or that
    partition, was made by a sedscale that kept no trail), rather than export part of it."""
    done = sorted(pid for pid, m in load_markers(paths).items() if m.kind == "done")
    missing = [pid for pid in done if not paths.trail(pid).exists()]
    if missing and len(missing) == len(done):
        raise CampaignError(f"{paths.root}: the campaign has no agent trails (made by an older sedscale, which "
                            "kept none); rerun it with this version to get them")
    if missing:
        raise CampaignError(f"{paths.root}: {len(missing)} committed partitions have no agent trail "
                            f"(e.g. partition {missing[0]}: committed by an older sedscale)")
    return [paths.trail(pid) for pid in done]


def export_trail(root: str | Path, out: str | Path) -> int:
    """Write the committed partitions' trails, sorted by (source_id, step), to ``out``; returns
    the number of rows."""
    paths = CampaignPaths.at(root)
    if not paths.campaign_json.exists():
        raise CampaignError(f"{paths.root}: not a campaign directory (no campaign.json)")
    tables = [empty_trail()] + [pq.read_table(p, schema=TRAIL_SCHEMA) for p in committed_trails(paths)]
    trail = sort_trail(pa.concat_tables(tables))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(out) as tmp:
        pq.write_table(trail, tmp)
    return int(trail.num_rows)
