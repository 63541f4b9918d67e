"""Unit checks of the individual physics modules (attenuation laws, IGM, dust emission, AGN)."""

from __future__ import annotations

import numpy as np
import pytest

from sedscale.sed import wavegrid
from sedscale.sed.agn import COVERING_FACTOR, agn_spectrum
from sedscale.sed.attenuation import calzetti, drude_bump, modified_starburst, smc
from sedscale.sed.config import FitConfig
from sedscale.sed.dust_emission import dust_emission_spectrum
from sedscale.sed.grid import build_grid
from sedscale.sed.igm import igm_transmission


def test_attenuation_laws_are_normalised_at_v() -> None:
    v = np.array([5500.0])
    assert calzetti(v)[0] == pytest.approx(1.0, abs=0.01)
    assert smc(v)[0] == pytest.approx(1.0, abs=1e-6)
    assert modified_starburst(v, -0.5, 3.0)[0] == pytest.approx(1.0, abs=0.02)
    w = np.geomspace(1000, 30000, 200)
    assert np.allclose(modified_starburst(w, 0.0, 0.0), calzetti(w))
    # steeper for δ < 0; the bump peaks at 2175 Å
    assert modified_starburst(np.array([1500.0]), -0.5, 0.0)[0] > calzetti(np.array([1500.0]))[0]
    bump = drude_bump(w, 3.0)
    assert w[np.argmax(bump)] == pytest.approx(2175, rel=0.02)
    assert np.all(np.diff(calzetti(w)) < 0)


def test_igm_is_transparent_redward_of_lya_and_darkens_with_z() -> None:
    w = np.array([1000.0, 1100.0, 1200.0, 1250.0, 3000.0])
    t2, t5 = igm_transmission(w, 2.0), igm_transmission(w, 5.0)
    assert np.all(t2[3:] == 1.0) and np.all(t5[3:] == 1.0)
    assert np.all(t5[:3] < t2[:3]) and np.all((t5 >= 0) & (t5 <= 1))
    assert np.all(igm_transmission(w, 0.0) == 1.0)


def test_dust_emission_is_unit_luminosity_in_the_far_ir() -> None:
    spec = dust_emission_spectrum(1.0, 2.5, 0.01)
    wave = wavegrid.wavelengths()
    assert np.sum(spec * wavegrid.widths()) == pytest.approx(1.0)
    peak = wave[np.argmax(spec * wave)]
    assert 5e5 < peak < 3e6  # νL_ν peaks near 100 µm for U_min = 1
    hot = dust_emission_spectrum(20.0, 2.5, 0.01)
    assert wave[np.argmax(hot * wave)] < peak  # hotter dust peaks bluer


def test_agn_energy_and_extinction() -> None:
    dw = wavegrid.widths()
    wave = wavegrid.wavelengths()
    clear, l_disk0 = agn_spectrum(0.0)
    red, l_disk3 = agn_spectrum(3.0)
    # unobscured: L_IR = covering factor × L_disk; obscured disks need less luminosity per L_IR
    assert l_disk0 == pytest.approx(1.0 / COVERING_FACTOR)
    assert l_disk3 < l_disk0
    opt = (wave > 3000) & (wave < 5000)
    ir = (wave > 1e5) & (wave < 1e6)  # 10–100 µm: torus-dominated
    assert np.sum(red[opt] * dw[opt]) < 0.1 * np.sum(clear[opt] * dw[opt])
    assert np.sum(red[ir] * dw[ir]) == pytest.approx(np.sum(clear[ir] * dw[ir]), rel=0.05)


def test_agn_brightens_the_near_ir() -> None:
    base = {"sfh": {"age": [1.0], "tau": [1.0]}, "stellar": {"metallicity": [1.0]},
            "dust_attenuation": {"av": [1.0]}}
    on = FitConfig.from_dict({**base, "agn": {"enabled": True, "frac_agn": [0.0, 0.5], "av_agn": [0.0]}})
    g = build_grid(on, ("euclid_vis", "roman_f213"), [0.5])
    assert g.n_models == 2
    assert np.all(g.flux[0, 1] > g.flux[0, 0])
    assert g.extensive["lagn_ir"][1] == pytest.approx(g.extensive["ldust"][1])  # frac 0.5
