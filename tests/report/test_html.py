"""The HTML report renders in a real headless Chromium: every plot decodes, no script errors.

Chromium is Debian's ``chromium`` (``scripts/install-chromium.sh``). The page's inline script sets
``document.title`` to ``report: <decoded>/<images> images, <n> errors`` after load; ``--dump-dom``
returns the DOM after scripts ran. A screenshot is kept as a test artefact beside the campaign.
"""

from __future__ import annotations

import base64
import io
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from sedscale.report.html import PLOT_NAMES
from tests.report.conftest import sedscale

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# Not a skip: without a browser these tests fail, naming the install script (CI runs it).
needs_chromium = pytest.mark.usefixtures("chromium_present")


@pytest.fixture
def chromium_present() -> None:
    if CHROMIUM is None:
        pytest.fail("chromium is not installed: run scripts/install-chromium.sh")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--hide-scrollbars", "--virtual-time-budget=10000"]


def _chromium(args: list[str], tmp: Path) -> subprocess.CompletedProcess:
    profile = tmp / "chromium-profile"
    profile.mkdir(exist_ok=True)
    return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True,
                          text=True, timeout=120)


@pytest.fixture(scope="module")
def html_report(real_campaign) -> Path:
    root, _ = real_campaign
    proc = sedscale("report", str(root), "--html")
    assert proc.returncode == 0, proc.stderr
    path = Path(proc.stdout.strip().splitlines()[-1])
    assert path == root / "report" / "index.html" and path.is_file()
    return path


def _gallery_images(real_campaign: tuple[Path, Path]) -> int:
    """Thumbnails the report's gallery holds besides the plots (tests/report/test_gallery.py)."""
    import pyarrow.parquet as pq

    from sedscale.report.gallery import select_gallery

    return sum(len(rows) for rows in select_gallery(pq.read_table(real_campaign[1])).values())


def test_html_is_self_contained_and_every_plot_is_a_png(html_report: Path, real_campaign) -> None:
    text = html_report.read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text), "external asset in the report"
    imgs = re.findall(r'<img[^>]*src="data:image/png;base64,([^"]+)"', text)
    assert len(imgs) == len(PLOT_NAMES) + _gallery_images(real_campaign)
    from PIL import Image  # matplotlib depends on pillow

    for b64 in imgs:
        im = Image.open(io.BytesIO(base64.b64decode(b64)))
        im.verify()
        assert im.size[0] > 100 and im.size[1] > 100
    for name in PLOT_NAMES:
        assert f'id="plot-{name}"' in text
    assert "CPU-only run" in text and "frontier" in text


@needs_chromium
def test_html_renders_in_headless_chromium_with_every_image_decoded(html_report: Path, real_campaign,
                                                                    tmp_path: Path) -> None:
    url = html_report.as_uri()
    dom = _chromium(["--dump-dom", url], tmp_path)
    assert dom.returncode == 0, dom.stderr[-2000:]
    m = re.search(r"<title>report: (\d+)/(\d+) images, (\d+) errors</title>", dom.stdout)
    assert m, f"the page's load script did not run: {dom.stdout[:300]!r}"
    ok, total, errors = map(int, m.groups())
    assert total == len(PLOT_NAMES) + _gallery_images(real_campaign) and ok == total, f"{ok} of {total} images decoded"
    assert errors == 0
    # the screenshot: a test artefact kept beside the report (and in pytest's tmp dir)
    shot = tmp_path / "report.png"
    proc = _chromium([f"--screenshot={shot}", "--window-size=1200,4200", url], tmp_path)
    assert proc.returncode == 0 and shot.is_file() and shot.stat().st_size > 10_000, proc.stderr[-2000:]
    shutil.copy(shot, html_report.parent / "screenshot.png")
    from PIL import Image

    im = Image.open(shot)
    assert im.size == (1200, 4200)
    # not a blank page: the rendered page has many distinct colours (plots, text)
    assert len(im.convert("RGB").resize((300, 1050)).getcolors(maxcolors=1_000_000)) > 50


@needs_chromium
def test_a_broken_image_is_caught(html_report: Path, tmp_path: Path) -> None:
    """The check can fail: corrupt one plot and the title reports it."""
    bad = tmp_path / "bad.html"
    text = html_report.read_text()
    bad.write_text(re.sub(r'(src="data:image/png;base64,)[A-Za-z0-9+/]{40}', r"\1AAAA", text, count=1))
    dom = _chromium(["--dump-dom", bad.as_uri()], tmp_path)
    m = re.search(r"<title>report: (\d+)/(\d+) images", dom.stdout)
    assert m and int(m.group(1)) == int(m.group(2)) - 1
