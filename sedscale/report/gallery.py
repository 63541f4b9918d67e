"""The report's gallery: a few sources' SEDs, drawn by the code of ``sedscale show``.

Three groups of :data:`PER_GROUP` fitted sources, chosen from the committed results alone (so the
same campaign always shows the same sources):

* ``random`` — drawn with a fixed seed (:data:`GALLERY_SEED`) from every fitted source;
* ``worst_chi2`` — the largest reduced χ² (ties by row order);
* ``rescued`` — sources the agent worked on (``agent_steps > 0``) whose final fit is accepted,
  drawn with the same seed.

Each thumbnail needs the source's photometry, read again from the catalog (one read per
partition that holds a chosen source); a source whose input or model cannot be had is drawn
with the reason instead of the model, so the gallery never breaks the report.
"""

from __future__ import annotations

import base64
import html
import io
import textwrap
from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from sedscale.campaign.manifest import read_manifest
from sedscale.errors import SedscaleError
from sedscale.pipeline import campaign_context
from sedscale.report.sed_figure import render_png
from sedscale.report.source_sed import SourceSED, input_photometry, result_rows, source_sed
from sedscale.results import STATUS_FITTED

if TYPE_CHECKING:
    from sedscale.catalog.partition import Partition
    from sedscale.pipeline import CampaignContext
    from sedscale.report.campaign_data import CampaignData

#: Sources per group, and the seed of the random choices.
PER_GROUP = 6
GALLERY_SEED = 20_150
#: (group name, heading) in page order.
GROUPS = (
    ("random", "Random fitted sources"),
    ("worst_chi2", "Worst reduced χ²"),
    ("rescued", "Rescued by the agent (agent steps > 0, accepted)"),
)


def _floats(t: pa.Table, name: str) -> np.ndarray:
    return np.asarray(t.column(name).to_numpy(zero_copy_only=False), dtype=float)


def select_gallery(results: pa.Table, per_group: int = PER_GROUP, seed: int = GALLERY_SEED) -> dict[str, list[int]]:
    """Row indices of ``results`` per group (see the module docstring), each sorted."""
    status = np.asarray(results.column("status").to_pylist(), dtype=object)
    fitted = status == STATUS_FITTED
    chi2 = _floats(results, "chi2_red")
    steps = np.nan_to_num(_floats(results, "agent_steps"))
    accepted = np.asarray([bool(a) for a in results.column("accepted").to_pylist()], dtype=bool)
    rng = np.random.default_rng(seed)

    def draw(mask: np.ndarray) -> list[int]:
        rows = np.flatnonzero(mask)
        return sorted(int(i) for i in rng.choice(rows, size=min(per_group, rows.size), replace=False))

    finite = fitted & np.isfinite(chi2)
    worst = np.flatnonzero(finite)[np.argsort(-chi2[finite], kind="stable")[:per_group]]
    return {"random": draw(fitted), "worst_chi2": sorted(int(i) for i in worst),
            "rescued": draw(fitted & (steps > 0) & accepted)}


@dataclass(frozen=True)
class Thumbnail:
    """One drawn source of the gallery."""

    group: str
    source_id: int | None
    png: bytes
    note: str  # why the model is missing ("" when drawn with it)


def _row_locations(ctx: CampaignContext, data: CampaignData) -> tuple[list[Partition], np.ndarray]:
    """The committed partitions in results order, and the first results row of each."""
    manifest = {p.partition_id: p for p in read_manifest(ctx.paths.manifest)}
    parts = [manifest[m.partition_id] for m in data.markers]
    starts = np.cumsum([0] + [p.n_rows for p in parts])
    return parts, starts


def _seds(ctx: CampaignContext, data: CampaignData, rows: list[int]) -> dict[int, SourceSED | str]:
    """Each results row's :class:`SourceSED`, or the reason it could not be gathered."""
    parts, starts = _row_locations(ctx, data)
    by_part: dict[int, list[int]] = defaultdict(list)
    for r in rows:
        by_part[int(np.searchsorted(starts, r, side="right")) - 1].append(r)
    out: dict[int, SourceSED | str] = {}
    for k, members in sorted(by_part.items()):
        local = [r - int(starts[k]) for r in members]
        try:
            phot = input_photometry(ctx, parts[k], local)
            values = result_rows(data.results, members)
            for i, r in enumerate(members):
                out[r] = source_sed(ctx, values[i], phot, i)
        except (SedscaleError, OSError, ValueError) as exc:
            out.update({r: f"{type(exc).__name__}: {exc}" for r in members})
    return out


def gallery_thumbnails(ctx: CampaignContext, data: CampaignData,
                       selection: dict[str, list[int]] | None = None) -> list[Thumbnail]:
    """The thumbnails of ``selection`` (default :func:`select_gallery`), group by group."""
    chosen = selection if selection is not None else select_gallery(data.results)
    seds = _seds(ctx, data, sorted({r for rows in chosen.values() for r in rows}))
    ids = data.results.column("source_id").to_pylist()
    out = []
    for group, _ in GROUPS:
        for r in chosen.get(group, []):
            sed = seds[r]
            if isinstance(sed, str):
                out.append(Thumbnail(group, ids[r], _message_png(f"source {ids[r]}: {sed}"), sed))
            else:
                out.append(Thumbnail(group, ids[r], render_png(sed, compact=True), sed.note))
    return out


def _message_png(text: str) -> bytes:
    """A thumbnail-sized PNG that says why a source could not be drawn."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(4.2, 3.0), dpi=80)
    try:
        fig.text(0.05, 0.5, textwrap.fill(text, 60), fontsize=7, va="center")
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
    finally:
        plt.close(fig)
    return buf.getvalue()


def gallery_html(thumbs: list[Thumbnail]) -> str:
    """The gallery section's body: one row of figures per group (an empty group says so)."""
    parts = []
    for group, heading in GROUPS:
        figures = [t for t in thumbs if t.group == group]
        parts.append(f'<h3>{html.escape(heading)} ({len(figures)})</h3><div class="plots gallery" '
                     f'id="gallery-{group}">')
        if not figures:
            parts.append("<p>(no such source in this campaign)</p>")
        for t in figures:
            b64 = base64.b64encode(t.png).decode("ascii")
            caption = f"source {t.source_id}" + (f" — {t.note}" if t.note else "")
            parts.append(f'<figure class="sed-thumb"><img alt="SED of source {t.source_id}" '
                         f'src="data:image/png;base64,{b64}"><figcaption>{html.escape(caption)}</figcaption></figure>')
        parts.append("</div>")
    return "".join(parts)


def gallery_section(data: CampaignData) -> str:
    """The whole gallery of a campaign as HTML; a campaign whose context cannot be read gets a
    sentence saying why instead."""
    try:
        ctx = campaign_context(str(data.root))
    except (SedscaleError, OSError, ValueError) as exc:
        return f"<p>gallery unavailable: {html.escape(str(exc))}</p>"
    return gallery_html(gallery_thumbnails(ctx, data))
