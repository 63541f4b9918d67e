"""Every shipped site config loads and renders the batch script it would submit (nothing is
submitted); malformed site files fail with an error naming the file, the key and the expectation,
before anything reaches the scheduler."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from sedscale.engines.batch_script import render_batch_script
from sedscale.engines.site import load_site
from sedscale.errors import ConfigError
from sedscale.resources import site_configs_dir

from tests.hpc.conftest import sedscale

HPC_SITES = ["slurm-local", "frontier", "perlmutter", "polaris", "aurora"]


@pytest.mark.parametrize("name", sorted(p.stem for p in Path(site_configs_dir()).glob("*.yaml")))
def test_every_site_config_loads(name: str) -> None:
    site = load_site(name)
    assert site.name == name


@pytest.mark.parametrize("engine", ["parsl", "dask"])
@pytest.mark.parametrize("name", HPC_SITES)
def test_hpc_sites_render_batch_scripts(name: str, engine: str) -> None:
    site = load_site(name).model_copy(update={"engine": engine})
    script = render_batch_script(site)
    o = site.scheduler_options
    assert script.startswith("#!")
    assert 'export PATH="' in script and "OMP_NUM_THREADS=1" in script
    if site.scheduler == "slurm":
        assert "#SBATCH" in script and "#PBS" not in script
        if o.partition:
            assert o.partition in script
        if o.constraint:
            assert o.constraint in script
    else:
        assert "#PBS" in script and "#SBATCH" not in script
        assert f"filesystems={o.filesystems}" in script
    if engine == "parsl":
        assert "process_worker_pool.py" in script
        if o.launcher == "srun":
            assert "srun" in script
        if o.launcher == "mpiexec":
            assert "mpiexec" in script and "--ppn 1" in script
    else:
        assert "distributed.cli.dask_worker" in script
        assert f"--lifetime {o.worker_lifetime}" in script and "--lifetime-stagger" in script


def test_site_specifics() -> None:
    frontier = render_batch_script(load_site("frontier"))
    assert "--constraint=nvme" in frontier and "--gpus-per-node=8" in frontier and "--nodes=4" in frontier
    perlmutter = render_batch_script(load_site("perlmutter"))
    assert "--constraint=gpu" in perlmutter and "--gpus-per-node=4" in perlmutter
    polaris = render_batch_script(load_site("polaris"))
    assert "select=10:ncpus=32:ngpus=4" in polaris and "qsub" in polaris and "-q prod" in polaris
    aurora = load_site("aurora")
    assert aurora.gpus_per_node == 12 and aurora.llm is not None and aurora.llm.instances_per_node == 12


def test_sites_cli_lists_and_shows(tmp_path: Path) -> None:
    proc = sedscale("sites", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    for name in HPC_SITES + ["local", "local-dask"]:
        assert name in proc.stdout
    assert "INVALID" not in proc.stdout
    proc = sedscale("sites", "show", "frontier", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "SlurmProvider" in proc.stdout and "#SBATCH --constraint=nvme" in proc.stdout
    assert "not submitted" in proc.stdout


BAD = [
    ({"scheduler_options": {"walltime": "2 hours"}}, "scheduler_options.walltime", "HH:MM:SS"),
    ({"scheduler_options": {"partiton": "debug"}}, "scheduler_options.partiton", "unknown key"),
    ({"scheduler_options": {"max_blocks": 0}}, "scheduler_options.max_blocks", "greater than or equal to 1"),
    ({"scheduler_options": {"min_blocks": 3, "max_blocks": 2}}, "scheduler_options", "min_blocks"),
    ({"scheduler_options": {"launcher": "aprun"}}, "scheduler_options.launcher", "'single', 'srun' or 'mpiexec'"),
    ({"scheduler_options": {"worker_lifetime": "20m", "walltime": "00:15:00"}}, "scheduler_options",
     "shorter than walltime"),
    ({"scheduler_options": {"partition": None}}, "(top level)", "needs 'partition' or 'constraint'"),
    ({"scheduler": "pbs"}, "(top level)", "needs a queue"),
    ({"cores_per_node": "many"}, "cores_per_node", "valid integer"),
]


def _bad_site(tmp_path: Path, patch: dict) -> Path:
    data = yaml.safe_load((Path(site_configs_dir()) / "slurm-local.yaml").read_text())
    for key, value in patch.items():
        if isinstance(value, dict):
            data[key] = {**data.get(key, {}), **value}
        else:
            data[key] = value
    path = tmp_path / "bad-site.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize("patch,key,expect", BAD)
def test_malformed_site_names_file_key_and_expectation(tmp_path: Path, patch: dict, key: str, expect: str) -> None:
    path = _bad_site(tmp_path, patch)
    with pytest.raises(ConfigError) as err:
        load_site(str(path))
    msg = str(err.value)
    assert str(path) in msg and key in msg and expect in msg, msg


def test_unset_account_variable_is_an_error_before_submission(tmp_path: Path, monkeypatch) -> None:
    from sedscale.campaign.paths import CampaignPaths
    from sedscale.engines import make_engine

    monkeypatch.delenv("SEDSCALE_PROJECT", raising=False)
    with pytest.raises(ConfigError, match="SEDSCALE_PROJECT"):
        make_engine(load_site("frontier"), CampaignPaths.at(tmp_path / "c"))


@pytest.mark.slurm
@pytest.mark.slow
def test_malformed_site_submit_fails_before_any_job(tmp_path: Path, no_leftover_jobs: set[str]) -> None:
    from tests.hpc.conftest import squeue_ids

    path = _bad_site(tmp_path, {"scheduler_options": {"walltime": "soon"}})
    proc = sedscale("submit", str(Path(__file__).resolve().parents[2] / "examples" / "euclid_mock_2k.parquet"),
                    "--site", str(path), "--campaign", str(tmp_path / "camp"), cwd=tmp_path)
    assert proc.returncode != 0
    err = proc.stderr + proc.stdout
    assert "bad-site.yaml" in err and "scheduler_options.walltime" in err and "HH:MM:SS" in err, err[-2000:]
    assert squeue_ids() <= no_leftover_jobs
