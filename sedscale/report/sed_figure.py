"""The drawing of one source's SED: photometry, best-fit spectrum, residuals, log M* posterior.

One function draws it into a matplotlib figure, so ``sedscale show`` (a full-size PNG) and the
report's gallery (thumbnails) show the same thing:

* top: the photometry at the bands' pivot wavelengths with 1σ error bars; a band with S/N < 3
  (:data:`LIMIT_SNR`) is drawn as a 3σ upper limit (a downward arrow from max(f, 0) + 3σ), a band
  the profile declares an upper limit as an arrow from its limit; the best-fit model's spectrum
  and its band fluxes (open squares);
* bottom: residuals (f − model) / σ_eff in σ, σ_eff with the fit's error floor (a declared limit:
  only the model's excess above it, as in the fit);
* right, where the results carry them: the log M* posterior as an interval plot (2.5–97.5 % thin,
  16–84 % thick, median dot; the point estimate ``logmstar`` as a cross) — the store keeps
  percentiles, not the full posterior.

Matplotlib runs with the Agg backend (no display on a login node).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from sedscale.fsutil import atomic_write
from sedscale.results import PERCENTILES
from sedscale.sed.filters import load_filters

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from sedscale.report.source_sed import SourceSED

#: Below this S/N a band is drawn as an upper limit of ``LIMIT_SIGMA`` σ above max(flux, 0).
LIMIT_SNR = 3.0
LIMIT_SIGMA = 3.0
#: Figure sizes (inches) of ``sedscale show`` and of a gallery thumbnail.
FULL_SIZE = (8.0, 5.5)
THUMB_SIZE = (4.2, 3.0)


def posterior_percentiles(sed: SourceSED, quantity: str = "logmstar") -> dict[str, float] | None:
    """``{p025: …, …, p975: …}`` of ``quantity`` from the results row, or None if any is null."""
    out = {}
    for suffix in PERCENTILES:
        value = sed.row.get(f"{quantity}_{suffix}")
        if value is None or not np.isfinite(float(str(value))):
            return None
        out[suffix] = float(str(value))
    return out


def _title(sed: SourceSED) -> str:
    r = sed.row
    parts = [f"source {sed.source_id}"]
    if r.get("redshift") is not None:
        parts.append(f"z = {float(str(r['redshift'])):.3f}")
    if r.get("chi2_red") is not None:
        parts.append(f"χ²_red = {float(str(r['chi2_red'])):.2f}")
    if r.get("accepted") is not None:
        parts.append("accepted" if r["accepted"] else "not accepted")
    if int(str(r.get("agent_steps") or 0)) > 0:
        parts.append(f"agent steps {r['agent_steps']}")
    return ", ".join(parts)


def _photometry(ax: Axes, sed: SourceSED, lam_um: np.ndarray, compact: bool) -> list[float]:
    """Detections with error bars, non-detections as arrows; returns the y values drawn."""
    f, e = sed.flux, sed.error
    observed = np.isfinite(f) & np.isfinite(e) & (e > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        snr = np.where(observed, f / e, np.nan)
    declared = observed & sed.limits  # the catalog's own upper limits: drawn at their value
    det = observed & ~declared & (snr >= LIMIT_SNR)
    lim = observed & ~declared & ~det
    size = 4 if compact else 6
    ax.errorbar(lam_um[det], f[det], yerr=e[det], fmt="o", color="C0", ms=size, capsize=2, label="observed", zorder=3)
    upper = np.maximum(f[lim], 0.0) + LIMIT_SIGMA * e[lim]
    if lim.any():
        ax.errorbar(lam_um[lim], upper, yerr=0.35 * upper, uplims=True, fmt="v", color="C3", ms=size,
                    capsize=2, label=f"{LIMIT_SIGMA:g}σ upper limit", zorder=3)
    given = f[declared]
    if declared.any():
        ax.errorbar(lam_um[declared], given, yerr=0.35 * np.abs(given), uplims=True, fmt="v", color="C4",
                    ms=size, capsize=2, label="catalog upper limit", zorder=3)
    return [*f[det][f[det] > 0], *upper, *given[given > 0]]


def _model(ax: Axes, sed: SourceSED, lam_um: np.ndarray, xlim: tuple[float, float]) -> list[float]:
    """The best-fit spectrum and its band fluxes; returns the band values drawn."""
    model = sed.model
    if model is None or not np.isfinite(model.scale) or model.scale <= 0:
        note = sed.note or "best normalisation <= 0: no model to draw"
        ax.text(0.02, 0.04, note, transform=ax.transAxes, fontsize=7, color="0.3", wrap=True)
        return []
    wave_um = model.wavelength / 1e4
    keep = (wave_um >= xlim[0]) & (wave_um <= xlim[1]) & (model.spectrum > 0)
    ax.plot(wave_um[keep], model.spectrum[keep], color="0.45", lw=0.8, label="best-fit model", zorder=1)
    ax.plot(lam_um, model.band_flux, "s", mfc="none", color="C1", ms=6, label="model photometry", zorder=2)
    return [float(v) for v in model.band_flux if v > 0]


def _residuals(ax: Axes, sed: SourceSED, lam_um: np.ndarray) -> None:
    res = sed.residual_sigma()
    ok = np.isfinite(res)
    ax.axhline(0.0, color="0.3", lw=0.8)
    ax.axhspan(-1.0, 1.0, color="0.9", zorder=0)
    if ok.any():
        ax.plot(lam_um[ok], res[ok], "o", color="C0", ms=4)
        top = max(3.0, float(np.max(np.abs(res[ok]))) * 1.2)
        ax.set_ylim(-top, top)
    ax.set_xscale("log")
    ax.set_ylabel("(f − model)/σ", fontsize=8)
    ax.set_xlabel("observed wavelength [µm]", fontsize=8)


def _posterior(ax: Axes, sed: SourceSED, pct: dict[str, float]) -> None:
    ax.vlines(0.0, pct["p025"], pct["p975"], color="C2", lw=1.2, label="95%")
    ax.vlines(0.0, pct["p16"], pct["p84"], color="C2", lw=5.0, label="68%")
    ax.plot([0.0], [pct["p50"]], "o", color="white", mec="C2", ms=6, label="median")
    estimate = sed.row.get("logmstar")
    if estimate is not None:
        ax.plot([0.0], [float(str(estimate))], "x", color="k", ms=6, label="logmstar")
    ax.set_xlim(-1.0, 1.0)
    ax.set_xticks([])
    pad = max(0.1, 0.15 * (pct["p975"] - pct["p025"]))
    ax.set_ylim(pct["p025"] - pad, pct["p975"] + pad)
    ax.set_title("log M* [M☉]", fontsize=8)
    ax.yaxis.tick_right()
    ax.tick_params(labelsize=7)


def draw_sed(fig: Figure, sed: SourceSED, *, compact: bool = False) -> None:
    """Draw ``sed`` into ``fig`` (see the module docstring); ``compact`` for gallery thumbnails."""
    pct = posterior_percentiles(sed)
    grid = fig.add_gridspec(2, 2 if pct else 1, height_ratios=(3, 1), width_ratios=(5, 1) if pct else None,
                            hspace=0.05, wspace=0.05, left=0.12, right=0.9 if pct else 0.97, top=0.92,
                            bottom=0.13)
    ax = fig.add_subplot(grid[0, 0])
    axr = fig.add_subplot(grid[1, 0], sharex=ax)
    lam_um = (sed.model.pivots if sed.model is not None else _pivots(sed.filters)) / 1e4
    xlim = (float(np.min(lam_um)) / 1.6, float(np.max(lam_um)) * 1.6)
    ys = _photometry(ax, sed, lam_um, compact) + _model(ax, sed, lam_um, xlim)
    ax.set_xscale("log")
    ax.set_yscale("log")
    _plain_log_labels(ax)
    ax.set_xlim(*xlim)
    if ys:
        ax.set_ylim(min(ys) / 5.0, max(ys) * 5.0)
    ax.set_ylabel("f_ν [µJy]", fontsize=8)
    ax.tick_params(which="both", labelbottom=False, labelsize=7)
    axr.tick_params(labelsize=7)
    ax.set_title(_title(sed), fontsize=7 if compact else 9)
    ax.legend(fontsize=6 if compact else 7, loc="best")
    _residuals(axr, sed, lam_um)
    _plain_log_labels(axr)
    if pct:
        _posterior(fig.add_subplot(grid[:, 1]), sed, pct)


def _plain_log_labels(ax: Axes) -> None:
    """Tick labels of log axes as plain numbers, minor ones hidden: the default ``10^{n}`` labels
    go through mathtext, which took most of a thumbnail's drawing time."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    for axis in (ax.xaxis, ax.yaxis):
        if axis.get_scale() == "log":
            axis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
            axis.set_minor_formatter(NullFormatter())


def _pivots(filters: tuple[str, ...]) -> np.ndarray:
    """Pivot wavelengths (Å) of ``filters``, for a drawing without a model."""
    return np.array([f.pivot for f in load_filters(list(filters))])


def render_png(sed: SourceSED, *, compact: bool = False) -> bytes:
    """The drawing as PNG bytes (full size, or a gallery thumbnail with ``compact``)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=THUMB_SIZE if compact else FULL_SIZE, dpi=80 if compact else 100)
    try:
        draw_sed(fig, sed, compact=compact)
        buf = io.BytesIO()
        fig.savefig(buf, format="png")  # fixed margins: a tight bounding box draws everything twice
    finally:
        plt.close(fig)
    return buf.getvalue()


def write_png(sed: SourceSED, out: Path) -> Path:
    """Write the full-size drawing to ``out`` atomically and return the path."""
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(out, render_png(sed))
    return out
