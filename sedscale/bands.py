"""The photometric band names sedscale knows, shared by the catalog and SED layers.

Only names and where each curve comes from live here (no curves, no physics), so the catalog
layer can recognise ``flux_<BAND>`` columns without importing the SED layer. The curves
themselves are loaded by :mod:`sedscale.sed.filters`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class BandInfo:
    """A built-in band: its sedscale name, the package that ships its curve, and its key there."""

    name: str
    provider: Literal["speclite", "sedpy"]
    key: str
    approx_wavelength_aa: float  # for ordering and display only; the SED layer computes the pivot


def _band(name: str, provider: Literal["speclite", "sedpy"], key: str, wl: float) -> BandInfo:
    return BandInfo(name, provider, key, wl)


BUILTIN_BANDS: dict[str, BandInfo] = {
    b.name: b
    for b in [
        _band("euclid_vis", "speclite", "Euclid-VIS", 7150.0),
        _band("euclid_y", "speclite", "Euclid-Y", 10810.0),
        _band("euclid_j", "speclite", "Euclid-J", 13670.0),
        _band("euclid_h", "speclite", "Euclid-H", 17710.0),
        _band("roman_f062", "sedpy", "roman_wfi_f062", 6200.0),
        _band("roman_f087", "sedpy", "roman_wfi_f087", 8690.0),
        _band("roman_f106", "sedpy", "roman_wfi_f106", 10560.0),
        _band("roman_f129", "sedpy", "roman_wfi_f129", 12900.0),
        _band("roman_f146", "sedpy", "roman_wfi_f146", 14640.0),
        _band("roman_f158", "sedpy", "roman_wfi_f158", 15770.0),
        _band("roman_f184", "sedpy", "roman_wfi_f184", 18420.0),
        _band("roman_f213", "sedpy", "roman_wfi_f213", 21290.0),
        _band("lsst_u", "speclite", "lsst2023-u", 3690.0),
        _band("lsst_g", "speclite", "lsst2023-g", 4840.0),
        _band("lsst_r", "speclite", "lsst2023-r", 6220.0),
        _band("lsst_i", "speclite", "lsst2023-i", 7560.0),
        _band("lsst_z", "speclite", "lsst2023-z", 8690.0),
        _band("lsst_y", "speclite", "lsst2023-y", 9710.0),
        # Ground-based bands of the Euclid Q1 MER catalogue's external photometry
        # (FLUX_<B>_EXT_<INSTRUMENT>_TEMPLFIT); extensions to DESIGN.md's list.
        _band("decam_u", "speclite", "decam2014-u", 3850.0),
        _band("decam_g", "speclite", "decam2014-g", 4820.0),
        _band("decam_r", "speclite", "decam2014-r", 6420.0),
        _band("decam_i", "speclite", "decam2014-i", 7830.0),
        _band("decam_z", "speclite", "decam2014-z", 9260.0),
        _band("megacam_u", "speclite", "cfht_megacam-u", 3740.0),
        _band("megacam_g", "speclite", "cfht_megacam-g", 4860.0),
        _band("megacam_r", "speclite", "cfht_megacam-r", 6270.0),
        _band("megacam_i", "speclite", "cfht_megacam-i", 7650.0),
        _band("megacam_z", "speclite", "cfht_megacam-z", 8840.0),
        _band("hsc_g", "speclite", "hsc2017-g", 4750.0),
        _band("hsc_r", "speclite", "hsc2017-r", 6170.0),
        _band("hsc_i", "speclite", "hsc2017-i", 7700.0),
        _band("hsc_z", "speclite", "hsc2017-z", 8900.0),
        _band("hsc_y", "speclite", "hsc2017-y", 9780.0),
        _band("panstarrs_g", "speclite", "panstarrs-g", 4810.0),
        _band("panstarrs_r", "speclite", "panstarrs-r", 6170.0),
        _band("panstarrs_i", "speclite", "panstarrs-i", 7520.0),
        _band("panstarrs_z", "speclite", "panstarrs-z", 8660.0),
    ]
}

EUCLID_BANDS = ("euclid_vis", "euclid_y", "euclid_j", "euclid_h")
ROMAN_BANDS = tuple(n for n in BUILTIN_BANDS if n.startswith("roman_"))
LSST_BANDS = tuple(n for n in BUILTIN_BANDS if n.startswith("lsst_"))


def is_builtin_band(name: str) -> bool:
    """True when ``name`` is one of sedscale's built-in band names (DESIGN.md section 4)."""
    return name in BUILTIN_BANDS
