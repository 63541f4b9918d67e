"""The report's gallery: which sources it picks, and that it is on the page and renders in a real
headless Chromium with the right number of thumbnails per group."""

from __future__ import annotations

import base64
import io
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sedscale.report.gallery import GROUPS, PER_GROUP, select_gallery
from sedscale.report.html import PLOT_NAMES
from sedscale.results import RESULTS_SCHEMA
from tests.report.test_html import _chromium, chromium_present, html_report, needs_chromium  # noqa: F401 - fixtures


def _fake_results(n: int, seed: int = 1) -> pa.Table:
    """A results table with only the columns the selection reads filled in."""
    rng = np.random.default_rng(seed)
    status = np.where(np.arange(n) % 10 == 0, "quarantined", "fitted")
    chi2 = rng.lognormal(0.0, 1.0, n)
    steps = np.where(np.arange(n) % 7 == 0, 1, 0)
    accepted = chi2 < 3.0
    cols = {f.name: pa.nulls(n, f.type) for f in RESULTS_SCHEMA}
    cols.update(status=pa.array(status), chi2_red=pa.array(np.where(status == "fitted", chi2, np.nan)),
                agent_steps=pa.array(steps, pa.int32()), accepted=pa.array(accepted),
                source_id=pa.array(np.arange(n), pa.int64()))
    return pa.table([cols[f.name] for f in RESULTS_SCHEMA], schema=RESULTS_SCHEMA)


def test_gallery_selection_on_a_fake_results_table() -> None:
    t = _fake_results(300)
    d = t.to_pandas()
    sel = select_gallery(t)
    assert [len(sel[g]) for g, _ in GROUPS] == [PER_GROUP] * 3
    assert all((d.status.iloc[sel[g]] == "fitted").all() for g, _ in GROUPS)
    fitted_chi2 = d.chi2_red[d.status == "fitted"]
    assert sorted(d.chi2_red.iloc[sel["worst_chi2"]]) == sorted(fitted_chi2.nlargest(PER_GROUP))
    rescued = d.iloc[sel["rescued"]]
    assert (rescued.agent_steps > 0).all() and rescued.accepted.all()
    assert select_gallery(t) == sel  # seeded: the same campaign shows the same sources
    assert select_gallery(t, seed=7)["random"] != sel["random"]
    few = select_gallery(_fake_results(15))  # fewer candidates than a group holds: all of them
    assert len(few["rescued"]) == int(((np.arange(15) % 7 == 0) & (np.arange(15) % 10 != 0)
                                       & (_fake_results(15).to_pandas().chi2_red < 3)).sum())


def _expected_counts(real_campaign: tuple[Path, Path]) -> dict[str, int]:
    sel = select_gallery(pq.read_table(real_campaign[1]))  # the export: the report's rows, same order
    return {g: len(rows) for g, rows in sel.items()}


@pytest.mark.slow
def test_the_gallery_is_on_the_page_with_every_thumbnail(html_report: Path,  # noqa: F811
                                                        real_campaign: tuple[Path, Path]) -> None:
    text = html_report.read_text()
    counts = _expected_counts(real_campaign)
    assert counts["random"] == counts["worst_chi2"] == PER_GROUP and counts["rescued"] > 0
    from PIL import Image

    for group, n in counts.items():
        section = re.search(rf'<div class="plots gallery" id="gallery-{group}">(.*?)</div>', text, re.S)
        assert section, f"gallery group {group} missing"
        imgs = re.findall(r'<figure class="sed-thumb"><img[^>]*src="data:image/png;base64,([^"]+)"', section.group(1))
        assert len(imgs) == n
        for b64 in imgs:
            im = Image.open(io.BytesIO(base64.b64decode(b64)))
            assert im.size == (336, 240)
            assert len(im.convert("RGB").getcolors(maxcolors=1_000_000)) > 20  # a drawing, not a blank


@pytest.mark.slow
@needs_chromium
def test_the_gallery_renders_in_headless_chromium(html_report: Path, real_campaign: tuple[Path, Path],  # noqa: F811
                                                  tmp_path: Path) -> None:
    dom = _chromium(["--dump-dom", html_report.as_uri()], tmp_path)
    assert dom.returncode == 0, dom.stderr[-2000:]
    m = re.search(r"<title>report: (\d+)/(\d+) images, (\d+) errors</title>", dom.stdout)
    assert m, f"the page's load script did not run: {dom.stdout[:300]!r}"
    ok, total, errors = map(int, m.groups())
    assert total == len(PLOT_NAMES) + sum(_expected_counts(real_campaign).values())
    assert ok == total and errors == 0
    assert dom.stdout.count('class="sed-thumb"') == sum(_expected_counts(real_campaign).values())
