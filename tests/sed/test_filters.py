"""Filter curves: every built-in band loads, user files work, photon counting is exact."""

from __future__ import annotations

import numpy as np
import pytest

from sedscale.bands import BUILTIN_BANDS
from sedscale.errors import InputError
from sedscale.sed import wavegrid
from sedscale.sed.builder import response_matrix
from sedscale.sed.filters import filter_identity, load_filter


@pytest.mark.parametrize("band", sorted(BUILTIN_BANDS))
def test_builtin_band_loads_with_sensible_pivot(band: str) -> None:
    f = load_filter(band)
    assert f.wavelength.size > 10 and np.all(np.diff(f.wavelength) > 0)
    assert np.all(f.throughput >= 0) and f.throughput.max() > 0
    # the pivot lies within 6 % of the nominal wavelength listed in sedscale.bands
    assert f.pivot == pytest.approx(BUILTIN_BANDS[band].approx_wavelength_aa, rel=0.06)


def test_loader_is_cached_by_string() -> None:
    assert load_filter("euclid_h") is load_filter("euclid_h")


def test_user_filter_file(tmp_path) -> None:
    path = tmp_path / "tophat.dat"
    wave = np.arange(4000.0, 6001.0, 10.0)
    thr = np.where((wave > 4500) & (wave < 5500), 0.8, 0.0)
    np.savetxt(path, np.c_[wave, thr], header="wavelength_AA throughput")
    f = load_filter(str(path))
    assert f.wavelength[0] >= 4490 and f.wavelength[-1] <= 5510  # zero rows trimmed
    assert f.pivot == pytest.approx(np.sqrt((5500**2 - 4500**2) / (2 * np.log(5500 / 4500))), rel=2e-3)
    ident = filter_identity(str(path))
    np.savetxt(path, np.c_[wave, thr * 0.5])
    assert filter_identity(str(path)) != ident  # edited file → new grid cache key


def test_bad_filters_raise_input_error(tmp_path) -> None:
    with pytest.raises(InputError, match="neither a built-in band"):
        load_filter("euclid_q")
    bad = tmp_path / "bad.dat"
    bad.write_text("a b\nc d\n")
    with pytest.raises(InputError, match="bad.dat"):
        load_filter(str(bad))
    empty = tmp_path / "zero.dat"
    np.savetxt(empty, np.c_[[1000.0, 2000.0, 3000.0], [0.0, 0.0, 0.0]])
    with pytest.raises(InputError, match="positive throughput"):
        load_filter(str(empty))


@pytest.mark.parametrize("z", [0.3, 2.0])
def test_flat_fnu_source_gives_its_fnu_in_every_band(z: float) -> None:
    """Photon-counting convention: a source with constant f_ν has ⟨f_ν⟩ = f_ν in any band,
    whatever the curve's shape. Checks the response matrix's λ-weighting, pivot and units."""
    bands = ("euclid_vis", "euclid_h", "lsst_u", "lsst_y", "roman_f062", "roman_f213")
    resp = response_matrix(bands, z, "Planck18", igm=False)
    wave = wavegrid.wavelengths()
    # rest-frame L_λ ∝ λ^-2  ⇔ observed f_ν constant
    spec = wave**-2.0
    fnu = spec @ resp
    assert np.allclose(fnu / fnu[0], 1.0, atol=2e-4)
