"""Mock catalogs: deterministic, in the generic profile, with consistent truth and noise."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sedscale.bands import is_builtin_band
from sedscale.sed.mock import DEPTHS_5SIGMA, HARD_CLASSES, LRD_Z, make_mock, sigma_ujy


@pytest.fixture(scope="module")
def euclid() -> pa.Table:
    return make_mock("euclid", 60, seed=7, hard_fraction=0.4)


def test_deterministic_given_seed(euclid: pa.Table) -> None:
    again = make_mock("euclid", 60, seed=7, hard_fraction=0.4)
    assert again.equals(euclid)
    other = make_mock("euclid", 60, seed=8, hard_fraction=0.4)
    assert not np.array_equal(other["flux_euclid_h"].to_numpy(), euclid["flux_euclid_h"].to_numpy())


def test_generic_profile_columns(euclid: pa.Table) -> None:
    schema = euclid.schema
    assert schema.field("source_id").type == pa.int64()
    assert len(set(euclid["source_id"].to_pylist())) == euclid.num_rows
    bands = [c.removeprefix("flux_") for c in euclid.column_names if c.startswith("flux_")]
    assert set(bands) == set(DEPTHS_5SIGMA["euclid"])
    for b in bands:
        assert is_builtin_band(b)
        assert schema.field(f"fluxerr_{b}").type == pa.float64()
        assert np.all(euclid[f"fluxerr_{b}"].to_numpy() == pytest.approx(sigma_ujy(DEPTHS_5SIGMA["euclid"][b])))
    assert np.array_equal(euclid["redshift"].to_numpy(), euclid["truth_z"].to_numpy())
    for col in ("truth_logmstar", "truth_logsfr", "truth_av", "truth_z", "truth_metallicity", "truth_frac_agn"):
        assert np.all(np.isfinite(euclid[col].to_numpy())), col


def test_hard_classes(euclid: pa.Table) -> None:
    klass = np.array(euclid["truth_class"].to_pylist())
    n_hard = int(round(0.4 * euclid.num_rows))
    assert (klass != "normal").sum() == n_hard
    assert set(klass) == {"normal", *HARD_CLASSES}
    agn = euclid["truth_frac_agn"].to_numpy()
    assert np.all(agn[klass == "agn"] >= 0.3) and np.all(agn[klass == "normal"] == 0)
    assert np.all(euclid["truth_av"].to_numpy()[klass == "very_dusty"] >= 3.0)
    lrd = klass == "lrd"
    assert np.all((euclid["truth_z"].to_numpy()[lrd] >= LRD_Z[0]) & (euclid["truth_z"].to_numpy()[lrd] <= LRD_Z[1]))
    assert np.all(euclid["truth_frac_agn"].to_numpy()[lrd] >= 0.97)  # AGN-dominated rest optical
    assert np.all(euclid["truth_av_agn"].to_numpy()[lrd] >= 1.0)  # ... seen through dust: red
    assert np.all(euclid["truth_av"].to_numpy()[lrd] <= 0.6)  # ... beside a blue host


def test_hard_classes_can_be_chosen() -> None:
    t = make_mock("roman", 8, seed=2, hard_fraction=1.0, hard_classes=("lrd",))
    assert set(t["truth_class"].to_pylist()) == {"lrd"}
    with pytest.raises(ValueError, match="hard_classes"):
        make_mock("roman", 3, seed=0, hard_fraction=1.0, hard_classes=("quasar",))


def test_noise_matches_errors(euclid: pa.Table) -> None:
    pulls = []
    for b in DEPTHS_5SIGMA["euclid"]:
        f = euclid[f"flux_{b}"].to_numpy()
        pulls.append((f - euclid[f"truth_flux_{b}"].to_numpy()) / euclid[f"fluxerr_{b}"].to_numpy())
    pulls = np.concatenate(pulls)
    assert abs(pulls.mean()) < 0.15 and 0.85 < pulls.std() < 1.15


def test_roman_space_only_and_depth_offset() -> None:
    t = make_mock("roman", 10, seed=1, ground=False, depth_offset=2.5)
    bands = [c.removeprefix("flux_") for c in t.column_names if c.startswith("flux_")]
    assert bands == ["roman_f106", "roman_f129", "roman_f158", "roman_f184", "roman_f213"]
    assert t["fluxerr_roman_f106"].to_numpy()[0] == pytest.approx(sigma_ujy(26.5 + 2.5))
    assert set(t["truth_class"].to_pylist()) == {"normal"}


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="survey"):
        make_mock("lsst", 3, seed=0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="hard_fraction"):
        make_mock("euclid", 3, seed=0, hard_fraction=1.5)


def test_mock_command(tmp_path) -> None:
    from typer.testing import CliRunner

    from sedscale.cli import app

    out = tmp_path / "mock.parquet"
    result = CliRunner().invoke(app, ["mock", str(out), "--survey", "euclid", "--n", "12", "--seed", "3",
                                      "--hard-fraction", "0.25"])
    assert result.exit_code == 0, result.output
    table = pq.read_table(out)
    assert table.num_rows == 12
    assert table.equals(make_mock("euclid", 12, seed=3, hard_fraction=0.25))
