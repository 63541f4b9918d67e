"""What is left to do in a campaign, and whether it may be resumed at all.

Finding the work left is a directory scan of done-markers plus, per marker, a stat (sizes) or a
CRC-32 of the chunk files (``verify="checksum"``, the default): a torn or corrupted partition is
detected and recomputed, never trusted. The catalog must be the one the campaign was planned
from — same paths, sizes, modification times and row counts — or resume refuses.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Literal

from sedscale.campaign.meta import CampaignMeta
from sedscale.catalog import storage
from sedscale.catalog.catalog_input import catalog_arg
from sedscale.catalog.forms import open_catalog
from sedscale.campaign.paths import CampaignPaths
from sedscale.campaign.state import DoneMarker, load_markers, verify_markers
from sedscale.errors import CampaignError, ConfigError

Verify = Literal["none", "size", "checksum"]
VERIFY_MODES: tuple[Verify, ...] = ("none", "size", "checksum")


def parse_verify(value: str) -> Verify:
    """``value`` (a ``--verify`` option, a plain string on the command line) as a :data:`Verify`
    mode, so a typo is refused instead of silently checking less."""
    for mode in VERIFY_MODES:
        if value == mode:
            return mode
    raise ConfigError(f"--verify must be one of {', '.join(VERIFY_MODES)}, not {value!r}")


@dataclass
class ResumePlan:
    """Partition ids by state; ``todo`` is what a resume runs, in id order."""

    done: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)  # committed as failed: retried by resume
    pending: list[int] = field(default_factory=list)  # no marker
    corrupt: dict[int, str] = field(default_factory=dict)  # marker present, files do not match
    markers: dict[int, DoneMarker] = field(default_factory=dict)

    @property
    def todo(self) -> list[int]:
        return sorted(self.pending + self.failed + list(self.corrupt))


def plan_resume(paths: CampaignPaths, n_partitions: int, *, verify: Verify = "checksum") -> ResumePlan:
    """Classify every partition of the campaign."""
    # Serial by default: on a local disk this is CPU-bound (JSON, stat) and threads only add GIL
    # contention (measured 2-4x slower on 2 cores). On a parallel file system (Lustre), where
    # each open/stat is a network round trip, set SEDSCALE_IO_THREADS=8 to overlap them.
    threads = int(os.environ.get("SEDSCALE_IO_THREADS", "1"))
    pool = ThreadPoolExecutor(threads) if threads > 1 else None
    try:
        markers = {pid: m for pid, m in load_markers(paths, pool).items() if 0 <= pid < n_partitions}
        problems: dict[int, str | None] = {}
        if verify != "none" and markers:
            found = verify_markers(paths, list(markers.values()), checksums=verify == "checksum", pool=pool)
            problems = dict(zip(markers, found))
    finally:
        if pool is not None:
            pool.shutdown()
    plan = ResumePlan(markers=markers)
    for pid in range(n_partitions):
        marker = markers.get(pid)
        if marker is None:
            plan.pending.append(pid)
        elif problem := problems.get(pid):
            plan.corrupt[pid] = problem
        elif marker.kind == "failed":
            plan.failed.append(pid)
        else:
            plan.done.append(pid)
    return plan


def catalog_changes(meta: CampaignMeta) -> list[str]:
    """How the catalog differs from the one planned at submit (empty list = unchanged)."""
    recorded = meta.catalog.fingerprint
    if not recorded:  # synthetic campaigns (tests, benchmarks) have no catalog files
        return []
    changes = []
    for entry in recorded:
        path = str(entry["path"])
        if int(entry["size"]) < 0:  # a HATS pixel file: its catalog's _metadata stands for it
            continue
        try:
            st = storage.stat(path)
        except FileNotFoundError:
            changes.append(f"{path} is gone")
            continue
        if st.size != entry["size"]:
            changes.append(f"{path} changed size ({entry['size']} -> {st.size} bytes)")
        elif st.mtime_ns != entry["mtime_ns"]:
            changes.append(f"{path} was modified after the campaign was planned")
    if not changes:
        spec = meta.catalog.spec
        try:
            now = {str(f["path"]) for f in open_catalog(catalog_arg(spec)).fingerprint()}
        except Exception as exc:  # noqa: BLE001 - any catalog fault is a change here
            return [f"the catalog no longer opens: {exc}"]
        added = sorted(now - {str(e["path"]) for e in recorded})
        changes.extend(f"{p} is new" for p in added)
    return changes


def check_catalog_unchanged(paths: CampaignPaths, meta: CampaignMeta) -> None:
    """Refuse to resume a campaign whose catalog changed since submit."""
    changes = catalog_changes(meta)
    if changes:
        shown = "; ".join(changes[:5]) + (f"; and {len(changes) - 5} more" if len(changes) > 5 else "")
        raise CampaignError(
            f"{paths.root}: the catalog changed since this campaign was planned ({shown}); "
            "results would mix two catalogs, so resume refuses. Restore the files or submit a new campaign."
        )
