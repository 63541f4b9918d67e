"""What a policy sees of one source: a compact, numbers-only state, and the residual patterns in it.

The state is rendered as a few short lines (token count matters: it is the per-source suffix of
every prompt). Everything in it is a number, a built-in band name, a config keyword or a pattern
flag; the two places where catalog text could enter — user filter-file names and free-text
columns passed as ``note`` — are sanitised to ``[A-Za-z0-9_ .,-]``, truncated and quoted as data.

Residual convention: ``r = (observed − model) / σ``; r < 0 means the model over-predicts the band.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from sedscale.agent.acceptance import EDGE_PARAMS, SourceFit, edge_params

#: Rest-frame wavelengths (Å) of the strong lines the ``line_excess`` pattern looks for.
LINES_AA = {"Ha": 6563.0, "OIII": 5007.0, "Hb": 4861.0, "OII": 3727.0}
UV_MAX_AA = 4000.0  # rest UV / blue
EDGE_FIELDS = tuple(EDGE_PARAMS)  # the grid parameters an ``<field>_edge`` pattern may name
IR_MIN_AA = 7000.0  # rest red / near-IR: where hot AGN dust starts to show
BAND_LABEL_MAX = 16
NOTE_MAX = 60
_UNSAFE = re.compile(r"[^A-Za-z0-9_ .,-]+")


def sanitize(text: str, limit: int) -> str:
    """Only ``[A-Za-z0-9_ .,-]``, single spaces, at most ``limit`` characters."""
    text = " ".join(_UNSAFE.sub(" ", str(text)).split())
    return text[:limit]


@lru_cache(maxsize=512)
def band_label(spec: str) -> str:
    """Short label of a band: its built-in name, or a sanitised file stem."""
    from sedscale.bands import BUILTIN_BANDS

    if spec in BUILTIN_BANDS:
        survey, _, band = spec.partition("_")
        if survey == "lsst":
            return band
        if survey == "euclid":
            return band.upper()
        if survey == "roman":
            return band.upper()
        return survey[0] + band
    stem = Path(spec).stem
    return sanitize(stem, BAND_LABEL_MAX).replace(" ", "_") or "band"


@lru_cache(maxsize=512)
def pivot_aa(spec: str) -> float:
    """Observed pivot wavelength of a band in Å."""
    from sedscale.sed.filters import load_filter

    return load_filter(spec).pivot


@lru_cache(maxsize=512)
def _band_edges(spec: str) -> tuple[float, float]:
    """Wavelengths (Å) where the throughput is ≥ 40% of its peak (the band's core)."""
    from sedscale.sed.filters import load_filter

    f = load_filter(spec)
    core = f.wavelength[f.throughput >= 0.4 * f.throughput.max()]
    return float(core.min()), float(core.max())


@dataclass(frozen=True)
class Attempt:
    """One configuration tried for a source and how it did."""

    action: str  # brief form of the action
    chi2_red: float
    accepted: bool
    improved: bool


@dataclass
class SourceState:
    """Everything a policy may use to choose the next action for one source."""

    source_id: int
    redshift: float  # known z, or the current photo-z estimate; NaN if neither
    filters: tuple[str, ...]
    flux: np.ndarray  # (B,) observed µJy
    error: np.ndarray  # (B,)
    fit: SourceFit  # the current (best so far) fit
    config_brief: str
    history: list[Attempt] = field(default_factory=list)
    note: str = ""  # sanitised free text from the catalog (data, never instructions)
    step: int = 0
    photoz: bool = False
    seen_patterns: tuple[str, ...] = ()  # patterns of earlier steps of this source
    axes: dict[str, list[float]] = field(default_factory=dict)  # the current config's grid axes

    @property
    def rest_aa(self) -> np.ndarray:
        z = self.redshift if math.isfinite(self.redshift) else 0.0
        return np.array([pivot_aa(f) for f in self.filters]) / (1.0 + z)

    @property
    def patterns(self) -> tuple[str, ...]:
        if self._patterns is None:
            self._patterns = detect_patterns(self)
        return self._patterns

    _patterns: tuple[str, ...] | None = field(default=None, repr=False, compare=False)


def _mean(x: np.ndarray) -> float:
    return float(np.mean(x)) if x.size else 0.0


def detect_patterns(state: SourceState, thr: float = 2.0) -> tuple[str, ...]:
    """Residual / colour patterns of a failed fit, sorted; ``("generic",)`` when none matches.

    * ``uv_over`` — rest UV/optical (< 5500 Å) over-predicted: some r < −thr and mean r < −0.5
      (or the two bluest rest-UV bands below −thr on average);
    * ``uv_under`` — rest UV (< 4000 Å) under-predicted: some r > thr, mean r > 1;
    * ``ir_under`` — rest red / near-IR (≥ 0.7 µm) under-predicted: some r > thr, mean r > 1;
    * ``line_excess`` — a band whose core holds Hα, [OIII], Hβ or [OII] at z has r > thr and
      exceeds its neighbours' mean residual by > thr;
    * ``v_shape`` — the little-red-dot "V": a blue rest UV (f_λ slope β < −0.37) and a red rest
      optical (β > −0.5), after the LRD selection of Kocevski et al. 2024, with a kink between the two (or
      residuals high at both ends, low between);
    * ``old_blue`` — ``uv_under`` while the fit's mass-weighted age is above 1 Gyr;
    * ``<field>_edge`` — the estimate of ``av``, ``frac_agn``, ``av_agn`` or ``logu`` lies in the top
      cell of its grid axis below the physical bound (:func:`~sedscale.agent.acceptance.edge_params`,
      the acceptance test's ``edge:<field>``): the grid likely ends too early.
    """
    r = state.fit.residual
    lam = state.rest_aa
    ok = np.isfinite(r)
    found: set[str] = set()
    uvopt, uv, ir = ok & (lam < 5500.0), ok & (lam < UV_MAX_AA), ok & (lam >= IR_MIN_AA)
    bluest = np.flatnonzero(uv)[np.argsort(lam[uv])][:2]
    if uvopt.any() and r[uvopt].min() < -thr and (_mean(r[uvopt]) < -0.5 or (bluest.size == 2 and _mean(r[bluest]) < -thr)):
        found.add("uv_over")
    if uv.any() and r[uv].max() > thr and _mean(r[uv]) > 1.0:
        found.add("uv_under")
        age = state.fit.estimates.get("age_mw", (float("nan"), 0.0))[0]
        if math.isfinite(age) and age > 1.0:
            found.add("old_blue")
    if ir.any() and r[ir].max() > thr and _mean(r[ir]) > 1.0:
        found.add("ir_under")
    if math.isfinite(state.redshift) and _line_excess(state, r, ok, thr):
        found.add("line_excess")
    if _v_shape(state, r, lam, ok):
        found.add("v_shape")
    # the posterior piles up at the top of a grid axis: the acceptance test's own criterion
    found.update(f"{name}_edge" for name in edge_params(state.axes, state.fit.estimates))
    return tuple(sorted(found)) or ("generic",)


def _line_excess(state: SourceState, r: np.ndarray, ok: np.ndarray, thr: float) -> bool:
    order = np.argsort([pivot_aa(f) for f in state.filters])
    z1 = 1.0 + state.redshift
    for k, b in enumerate(order):
        if not ok[b] or r[b] <= thr:
            continue
        lo, hi = _band_edges(state.filters[b])
        if not any(lo <= line * z1 <= hi for line in LINES_AA.values()):
            continue
        neigh = [r[order[j]] for j in (k - 1, k + 1) if 0 <= j < len(order) and ok[order[j]]]
        if not neigh or r[b] - float(np.mean(neigh)) > thr:
            return True
    return False


#: f_nu slopes (d log f_nu / d log lambda) of the LRD "V": f_lambda slope beta = slope - 2, and
#: Kocevski et al. (2024) select little red dots by beta_UV < -0.37 (rest 1250-3500 A) and
#: beta_opt > 0 (rest 3700 A - 1.2 um). The optical limit is relaxed to beta_opt > -0.5: at z >~ 3
#: Euclid / Roman reach only the blue end of the rest optical, where the host still dilutes the
#: reddened AGN.
V_UV_MAX = 2.0 - 0.37
V_OPT_MIN = 1.5


def _v_shape(state: SourceState, r: np.ndarray, lam: np.ndarray, ok: np.ndarray) -> bool:
    f, e = state.flux, state.error
    good = ok & np.isfinite(f) & np.isfinite(e) & (f > 3.0 * np.abs(e))
    uvb = good & (lam >= 1250.0) & (lam < 3500.0)
    opt = good & (lam >= 3700.0) & (lam < 12000.0)
    if uvb.sum() >= 2 and opt.sum() >= 2:
        s_uv = np.polyfit(np.log10(lam[uvb]), np.log10(f[uvb]), 1)[0]
        s_opt = np.polyfit(np.log10(lam[opt]), np.log10(f[opt]), 1)[0]
        # f_lambda slopes beta = s - 2: Kocevski et al. (2024) select LRDs by beta_UV < -0.37 and
        # beta_opt > 0; a kink of > 1 between the two keeps smooth red or blue SEDs out
        if s_uv < V_UV_MAX and s_opt > V_OPT_MIN and s_opt - s_uv > 1.0:
            return True
    # residual V: both ends under-predicted, the middle over-predicted
    sel = np.flatnonzero(ok)
    if sel.size >= 5:
        srt = sel[np.argsort(lam[sel])]
        k = max(1, srt.size // 4)
        blue, red, mid = r[srt[:k]], r[srt[-k:]], r[srt[k:-k]]
        if blue.mean() > 1.5 and red.mean() > 1.5 and mid.size and mid.min() < -1.5:
            return True
    return False


# ------------------------------------------------------------------------------------------------
# rendering
# ------------------------------------------------------------------------------------------------

#: Estimates shown to the LLM, with short labels.
KEY_ESTIMATES = (("logmstar", "logM"), ("logsfr", "logSFR"), ("av", "Av"), ("age_mw", "age"),
                 ("metallicity", "Z"), ("frac_agn", "fAGN"))


def _g(x: float, digits: int = 2) -> str:
    if not math.isfinite(x):
        return "nan"
    return f"{x:.{digits}g}" if abs(x) < 100 else f"{x:.0f}"


def _r(x: float) -> str:
    t = f"{x:.1f}" if abs(x) < 9.95 else f"{x:.0f}"
    t = t.removesuffix(".0")
    if t.startswith(("0.", "-0.")):
        t = t.replace("0.", ".", 1)
    return "0" if t in ("0", "-0", ".0", "-.0") else t


def render_state(state: SourceState, max_history: int = 5) -> str:
    """The per-source prompt suffix: a few compact lines (the start config is in the prefix;
    ``tried`` lists every action with its χ²_red, ``*`` marking those kept in the current config)."""
    fit = state.fit
    z = "nan" if not math.isfinite(state.redshift) else f"{state.redshift:.2f}"
    lines = [f"z={z}{'(phot)' if state.photoz else ''} chi2r={_g(fit.chi2_red, 3)} dof={fit.dof}"]
    lam = state.rest_aa
    cells = [f"{band_label(f)} {l / 100:.0f} {_r(res)}"
             for f, l, res in sorted(zip(state.filters, lam, fit.residual), key=lambda t: t[1]) if math.isfinite(res)]
    lines.append("w r: " + " ".join(cells))
    est = []
    for name, label in KEY_ESTIMATES:
        if name in fit.estimates and math.isfinite(fit.estimates[name][0]):
            est.append(f"{label} {_g(fit.estimates[name][0])}")
    if est:
        lines.append("est: " + " ".join(est))
    lines.append("flags: " + " ".join(state.patterns))
    if state.history:
        tried = [f"{a.action} {_g(a.chi2_red, 3)}{'*' if a.improved else ''}{' ok' if a.accepted else ''}"
                 for a in state.history[-max_history:]]
        lines.append("tried: " + ", ".join(tried))
    note = sanitize(state.note, NOTE_MAX) if state.note else ""
    if note:
        lines.append(f'note: "{note}"')
    return "\n".join(lines)
