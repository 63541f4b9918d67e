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
def test_hpc_sites_render_batch_scripts(name: str, engine: str, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    site = load_site(name).model_copy(update={"engine": engine})
    monkeypatch.chdir(tmp_path)
    script = render_batch_script(site)
    assert list(tmp_path.iterdir()) == []  # a preview creates nothing where it is run
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
    ({"scheduler_options": {"queue": "prod"}}, "scheduler_options.queue", "unknown key"),
    ({"scheduler_options": {"signal": "soon"}}, "scheduler_options.signal", "SIGNAL@SECONDS"),
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


def test_batch_scripts_never_requeue_and_trap_the_warning() -> None:
    """Rendered scripts (nothing submitted): Slurm --no-requeue and the B: warning with its
    background-and-wait trap; PBS -r n and no warning (PBS Pro sends none)."""
    for engine in ("parsl", "dask"):
        slurm = render_batch_script(load_site("slurm-local").model_copy(update={"engine": engine}))
        assert "--no-requeue" in slurm and "--signal=B:USR1@60" in slurm, slurm
        assert "trap 'sedscale_stop USR1' USR1" in slurm and "sedscale_workers &" in slurm
        assert slurm.index("sedscale_workers &") < slurm.index("wait $SEDSCALE_WORKERS")
        pbs = render_batch_script(load_site("polaris").model_copy(update={"engine": engine}))
        assert "-r n" in pbs and "trap" not in pbs


LEGACY_SLURM_OPTIONS = {  # scheduler_options as campaign.json stored them before the split by scheduler
    "account": None, "partition": "debug", "queue": None, "qos": None, "constraint": None,
    "walltime": "00:15:00", "nodes_per_block": 1, "init_blocks": 1, "min_blocks": 1, "max_blocks": 1,
    "launcher": "single", "worker_init": "", "venv": None, "mem_per_node_gb": 4, "exclusive": False,
    "directives": [], "filesystems": None, "select_options": None, "address": "127.0.0.1",
    "status_poll_s": 3, "strategy_period_s": 2.0, "heartbeat_period_s": 5, "heartbeat_threshold_s": 15,
    "worker_lifetime": "14m", "worker_lifetime_stagger": "30s", "dask_processes_per_node": None,
}


def test_campaigns_made_before_the_options_split_still_load() -> None:
    from sedscale.engines.schedulers import LocalOptions, SlurmOptions
    from sedscale.engines.site import site_from_dict

    slurm = site_from_dict({"name": "old", "scheduler": "slurm", "scheduler_options": LEGACY_SLURM_OPTIONS}, "old")
    assert isinstance(slurm.scheduler_options, SlurmOptions) and slurm.scheduler_options.partition == "debug"
    local = site_from_dict({"name": "old-local", "scheduler": "local", "scheduler_options": LEGACY_SLURM_OPTIONS},
                           "old")
    assert isinstance(local.scheduler_options, LocalOptions)
    with pytest.raises(ConfigError, match="scheduler_options.queue: unknown key"):
        site_from_dict({"name": "x", "scheduler": "slurm",
                        "scheduler_options": LEGACY_SLURM_OPTIONS | {"queue": "prod"}}, "x")


def test_scheduler_state_tables_share_one_vocabulary() -> None:
    from sedscale.engines.schedulers import JobState, batch_scheduler

    slurm, pbs = batch_scheduler("slurm"), batch_scheduler("pbs")
    assert {c for c in slurm.states if slurm.state(c).live} == {"PD", "CF", "RQ", "R", "RS", "S"}
    assert {c for c in pbs.states if pbs.state(c).live} == {"Q", "W", "R", "H"}
    assert slurm.state("CA") is JobState.CANCELLED and pbs.state("F") is JobState.COMPLETED
    assert slurm.state("??") is JobState.UNKNOWN and not JobState.UNKNOWN.live
    assert pbs.parse_status('{"Jobs": {"12.pbs01": {"job_state": "R"}}}') == [("12.pbs01", "R"), ("12", "R")]


@pytest.mark.parametrize("project,expect", [(None, "SEDSCALE_PROJECT"), ("ast000", "venv")])
def test_submit_checks_the_site_before_creating_anything(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         project: str | None, expect: str) -> None:
    """``submit --site frontier`` with the project unset (or a venv that does not exist) fails
    before the campaign directory exists, so a corrected rerun is not refused."""
    import shutil

    if project is None:
        monkeypatch.delenv("SEDSCALE_PROJECT", raising=False)
    else:
        if shutil.which("sbatch") is None:
            pytest.skip("the venv is checked after the Slurm tools, which this machine lacks")
        monkeypatch.setenv("SEDSCALE_PROJECT", project)
    catalog = Path(__file__).resolve().parents[2] / "examples" / "euclid_mock_2k.parquet"
    proc = sedscale("submit", str(catalog), "--site", "frontier", "--campaign", str(tmp_path / "camp"), cwd=tmp_path)
    err = proc.stdout + proc.stderr
    assert proc.returncode != 0 and expect in err, err[-2000:]
    assert "partitions" not in err, "a progress bar was drawn before the site check failed"
    assert not (tmp_path / "camp").exists()
