"""Mock hard sources for the agent's physics tests (the SED layer's ``make_mock``)."""

from __future__ import annotations

import numpy as np

from sedscale.catalog.photometry import Photometry
from sedscale.sed.config import FitConfig

#: A small triage grid (336 models per redshift) so the tests stay within CI's time budget; the
#: hard classes still fail it the way they fail the default grid (no AGN, no young burst,
#: A_V ≤ 3, log U = −3).
SMALL_TRIAGE = {
    "sfh": {"age": [0.1, 0.3, 0.6, 1.0, 2.0, 4.0, 8.0], "tau": [0.1, 1.0, 10.0]},
    "stellar": {"metallicity": [0.2, 1.0]},
    "dust_attenuation": {"av": [0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0]},
}


def small_triage_config() -> FitConfig:
    return FitConfig.model_validate(SMALL_TRIAGE)


def table_to_photometry(table) -> Photometry:
    bands = [c[5:] for c in table.column_names if c.startswith("flux_")]
    flux = np.column_stack([table[f"flux_{b}"].to_numpy() for b in bands])
    err = np.column_stack([table[f"fluxerr_{b}"].to_numpy() for b in bands])
    n = table.num_rows
    return Photometry(table["source_id"].to_numpy().astype(np.int64), flux, err,
                      table["redshift"].to_numpy().astype(np.float64), tuple(bands), np.arange(n))


def hard_mock(n: int = 60, seed: int = 1, survey: str = "roman", depth_offset: float = 3.0):
    """(photometry, table) of ``n`` hard sources (agn, strong_lines, very_dusty, lrd in equal shares),
    3 mag deeper than the survey so the classes fail the standard fit by more than the noise."""
    from sedscale.sed.mock import make_mock

    table = make_mock(survey, n, seed=seed, hard_fraction=1.0, depth_offset=depth_offset)
    return table_to_photometry(table), table
