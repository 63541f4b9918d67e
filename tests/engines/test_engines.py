"""Engine conformance: the same checks against every back end (Parsl, Dask), on synthetic
campaigns that need neither a catalog nor the SED layer."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pyarrow.parquet as pq
import pytest

from sedscale.campaign.export import export_campaign
from sedscale.campaign.paths import CampaignPaths
from sedscale.campaign.resume import plan_resume
from sedscale.campaign.status import campaign_status
from sedscale.campaign.testing import make_synthetic_campaign, synthetic_results
from sedscale.engines import make_engine
from sedscale.engines.base import Engine
from sedscale.driver import run_campaign
from sedscale.engines.site import SiteConfig, load_site

pytestmark = pytest.mark.slow  # every test here starts Parsl or Dask

SIZES = [30] * 12 + [11]
SITES = {"parsl": "local", "dask": "local-dask"}


def _site(engine: str) -> SiteConfig:
    return load_site(SITES[engine]).model_copy(update={"workers_per_node": 2})


@pytest.fixture(scope="module")
def engines(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Engine]]:
    """Both back ends, started once for the module (each start costs seconds)."""
    started: dict[str, Engine] = {}
    try:
        for name in SITES:
            eng = make_engine(_site(name), CampaignPaths.at(tmp_path_factory.mktemp(f"engine-{name}")))
            eng.start()
            started[name] = eng
        yield started
    finally:
        for eng in started.values():
            eng.shutdown()


@pytest.fixture(params=list(SITES))
def engine(request: pytest.FixtureRequest, engines: dict[str, Engine]) -> Engine:
    return engines[request.param]


def _run(engine: Engine, root: Path, faults: dict | None = None) -> Path:
    paths = make_synthetic_campaign(root, SIZES, faults=faults or {})
    site = _site(engine.name)
    run_campaign(paths.root, site, engine=engine)
    out = root.parent / f"{root.name}.parquet"
    export_campaign(paths.root, out)
    return out


def test_every_partition_runs_once_and_export_is_complete(engine: Engine, tmp_path: Path) -> None:
    out = _run(engine, tmp_path / "c")
    assert pq.read_table(out).equals(synthetic_results(0, sum(SIZES)))
    st = campaign_status(str(tmp_path / "c"))
    assert (st.partitions_done, st.partitions_pending, st.partitions_failed) == (len(SIZES), 0, 0)
    assert st.sources_per_second and st.sources_per_second > 0


def test_transient_failures_are_retried(engine: Engine, tmp_path: Path) -> None:
    out = _run(engine, tmp_path / "c", {"fail_once": [2, 5]})
    assert pq.read_table(out).equals(synthetic_results(0, sum(SIZES)))


def test_a_worker_that_dies_is_replaced_and_its_partition_rerun(engine: Engine, tmp_path: Path) -> None:
    out = _run(engine, tmp_path / "c", {"die_once": [4]})
    assert pq.read_table(out).equals(synthetic_results(0, sum(SIZES)))
    assert (tmp_path / "c" / "died-once-4.flag").exists()


def test_a_task_that_always_raises_ends_as_failed_rows_with_reason(engine: Engine, tmp_path: Path) -> None:
    out = _run(engine, tmp_path / "c", {"always_fail": [7]})
    table = pq.read_table(out)
    assert table.num_rows == sum(SIZES)  # nothing lost
    part = table.slice(7 * 30, 30).to_pydict()
    assert set(part["status"]) == {"failed"}
    assert all("planted failure in partition 7" in r and "3 attempt" in r for r in part["reason"])
    assert part["source_id"] == synthetic_results(7 * 30, 30).column("source_id").to_pylist()
    others = table.slice(0, 7 * 30)
    assert others.equals(synthetic_results(0, 7 * 30))  # other partitions untouched
    assert plan_resume(CampaignPaths.at(tmp_path / "c"), len(SIZES)).failed == [7]  # resume retries it


def test_parsl_and_dask_give_identical_exports(engines: dict[str, Engine], tmp_path: Path) -> None:
    exports = {name: pq.read_table(_run(eng, tmp_path / name, {"fail_once": [1], "always_fail": [3]}))
               for name, eng in engines.items()}
    assert exports["parsl"].equals(exports["dask"])
    assert exports["parsl"].num_rows == sum(SIZES)


def test_resume_recomputes_only_missing_and_corrupt_partitions(engine: Engine, tmp_path: Path) -> None:
    from sedscale.campaign.paths import FLOAT_ARRAY
    from sedscale.campaign.state import read_marker

    paths = make_synthetic_campaign(tmp_path / "c", SIZES)
    first = run_campaign(paths.root, _site(engine.name), engine=engine)
    chunk = paths.chunk_path(FLOAT_ARRAY, 3)
    data = bytearray(chunk.read_bytes())
    data[-1] ^= 0x01  # same size, different bytes: only the checksum can tell
    chunk.write_bytes(bytes(data))
    paths.done_marker(9).unlink()  # and one partition never committed
    second = run_campaign(paths.root, _site(engine.name), engine=engine)
    assert second.plan is not None and second.plan.todo == [3, 9] and list(second.plan.corrupt) == [3]
    rerun = {pid for pid in range(len(SIZES)) if read_marker(paths, pid).run_id == second.run_id}
    assert rerun == {3, 9}
    assert all(read_marker(paths, p).run_id == first.run_id for p in set(range(len(SIZES))) - rerun)
    export_campaign(paths.root, tmp_path / "out.parquet")
    assert pq.read_table(tmp_path / "out.parquet").equals(synthetic_results(0, sum(SIZES)))
