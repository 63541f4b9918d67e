"""The independent hard mocks (bagpipes): generic-profile columns, truth, classes, reproducibility,
and the shipped catalogs (examples/hard_mocks) are what the documented command writes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from sedscale.sed.hard_mocks import CLASSES, HARD_MOCK_BANDS, main, make_hard_mocks

SHIPPED = Path(__file__).resolve().parents[2] / "examples" / "hard_mocks"


def test_columns_truth_and_determinism() -> None:
    a = make_hard_mocks(3, seed=5)
    b = make_hard_mocks(3, seed=5)
    for k in a:
        assert np.array_equal(a[k], b[k]), k
    assert list(a["truth_class"]) == list(CLASSES)
    assert a["source_id"].dtype == np.int64
    for band in HARD_MOCK_BANDS:
        assert np.all(np.isfinite(a[f"flux_{band}"])) and np.all(a[f"fluxerr_{band}"] > 0)
        snr = np.abs(a[f"flux_{band}"]) / a[f"fluxerr_{band}"]
        assert np.all(snr > 10)  # S/N 20-25 before noise
    assert np.all((a["redshift"] >= 0.3) & (a["redshift"] <= 1.5))
    assert 8.0 < a["truth_logmstar"].min() and a["truth_logmstar"].max() < 11.5
    assert a["truth_av"][0] >= 1.0 and a["truth_av"][2] <= 0.3  # dusty; AGN host nearly dust-free
    assert a["truth_agn_fraction_5100"][2] >= 0.3


def test_shipped_catalogs_have_balanced_classes_and_dusty_sources_beyond_av_3() -> None:
    t = pq.read_table(SHIPPED / "hard_mocks_400.parquet").to_pandas()
    assert len(t) == 400 and t.source_id.is_unique
    counts = t.truth_class.value_counts()
    assert set(counts.index) == set(CLASSES) and counts.max() - counts.min() <= 1
    dusty = t[t.truth_class == "dusty"]
    assert 0.35 < float((dusty.truth_av > 3.0).mean()) < 0.65 and dusty.truth_av.max() > 4.5
    assert len(pq.read_table(SHIPPED / "hard_mocks_60.parquet")) == 60


@pytest.mark.slow
def test_shipped_small_catalog_is_what_the_documented_command_writes(tmp_path: Path) -> None:
    out = tmp_path / "h60.parquet"
    main([str(out), "--n", "60", "--seed", "2"])
    assert pq.read_table(out).equals(pq.read_table(SHIPPED / "hard_mocks_60.parquet"))
