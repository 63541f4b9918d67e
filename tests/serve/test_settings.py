"""LLMSettings, the shipped sites' llm: sections and the launch lines built from them (no server)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from sedscale.engines.site import load_site
from sedscale.serve.command import instance_command, instance_env
from sedscale.serve.settings import LLMSettings

GPU_SITES = {
    # name: (accelerator, instances, device variable, gpus_per_node)
    "frontier": ("amd", 8, "HIP_VISIBLE_DEVICES", 8),
    "perlmutter": ("nvidia", 4, "CUDA_VISIBLE_DEVICES", 4),
    "polaris": ("nvidia", 4, "CUDA_VISIBLE_DEVICES", 4),
    "aurora": ("intel", 12, "ZE_AFFINITY_MASK", 12),
}


@pytest.mark.parametrize("name", sorted(GPU_SITES))
def test_shipped_gpu_sites_validate_and_pin_one_device_per_instance(name: str) -> None:
    accelerator, instances, variable, gpus = GPU_SITES[name]
    site = load_site(name)
    llm = site.llm
    assert llm is not None
    assert llm.accelerator == accelerator and site.gpu_kind == accelerator
    assert llm.instances_per_node == instances and llm.tensor_parallel_size == 1
    assert llm.devices_per_node == gpus == site.gpus_per_node
    assert llm.served_model_name == "AstroMLab/AstroSage-8B"
    assert llm.host == "127.0.0.1"
    seen = set()
    for i in range(instances):
        env = instance_env(llm, i, cache_dir=Path("/tmp/c"), api_key="k", base={})
        assert env[variable] == str(i)
        assert env["HF_HUB_OFFLINE"] == "1" and env["VLLM_API_KEY"] == "k"
        argv = instance_command(llm, i, Path("/m"))
        assert argv[argv.index("--port") + 1] == str(llm.base_port + i)
        assert "--gpu-memory-utilization" in argv and "--api-key" not in argv  # key never in ps
        seen.add(env[variable])
    assert len(seen) == instances
    if name == "frontier":
        env = instance_env(llm, 3, cache_dir=Path("/tmp/c"), api_key=None, base={})
        assert "ROCR_VISIBLE_DEVICES" not in env  # HIP would index into ROCR's list and see nothing


def test_local_site_serves_no_llm() -> None:
    assert load_site("local").llm is None


def test_frontier_runs_in_apptainer_and_stages_to_burst_buffer() -> None:
    llm = load_site("frontier").llm
    assert llm is not None and llm.container is not None and llm.staging is not None
    argv = instance_command(llm, 0, Path("/mnt/bb/u/models/AstroSage-8B"))
    assert argv[:2] == ["apptainer", "exec"]
    assert "--fakeroot" in argv and "--writable-tmpfs" in argv
    assert argv.index("python3") < argv.index("vllm.entrypoints.openai.api_server")
    assert llm.staging.dest.startswith("/mnt/bb/$USER")


def test_cpu_instance_skips_gpu_memory_and_sets_cpu_env(tmp_path: Path) -> None:
    llm = LLMSettings(model_path=str(tmp_path), served_model_name="m", accelerator="cpu", cpu_kvcache_space_gib=2)
    argv = instance_command(llm, 0, tmp_path)
    assert argv[:3] == [sys.executable, "-m", "vllm.entrypoints.openai.api_server"]
    assert "--gpu-memory-utilization" not in argv and "--enforce-eager" in argv
    assert json.loads(argv[argv.index("--structured-outputs-config") + 1]) == {
        "backend": "xgrammar",
        "disable_any_whitespace": True,
    }
    assert "--enable-prefix-caching" in argv
    env = instance_env(llm, 0, cache_dir=tmp_path, api_key=None, base={"VLLM_API_KEY": "leak"})
    assert env["VLLM_TARGET_DEVICE"] == "cpu" and env["VLLM_CPU_KVCACHE_SPACE"] == "2"
    assert env["VLLM_CACHE_ROOT"].startswith(str(tmp_path))
    assert "VLLM_API_KEY" not in env  # an inherited key must not silently protect a keyless server
    assert llm.devices_per_instance == 0 and llm.instance_devices(0) == []


def test_tensor_parallel_groups_and_explicit_device_lists() -> None:
    llm = LLMSettings(model_path="/m", served_model_name="m", instances_per_node=2, tensor_parallel_size=2)
    assert llm.instance_devices(0) == ["0", "1"] and llm.instance_devices(1) == ["2", "3"]
    assert llm.devices_per_node == 4
    with pytest.raises(ValidationError, match="devices lists 2 ids"):
        LLMSettings(model_path="/m", served_model_name="m", instances_per_node=2, devices=["4", "5"],
                    tensor_parallel_size=2)  # fmt: skip


def test_unknown_llm_key_is_rejected() -> None:
    with pytest.raises(ValidationError, match="max_num_seq"):
        LLMSettings(model_path="/m", served_model_name="m", max_num_seq=8)  # type: ignore[call-arg]


def test_serve_dry_run_prints_frontier_launch_lines() -> None:
    from typer.testing import CliRunner

    from sedscale.cli import app

    result = CliRunner().invoke(app, ["serve", "--site", "frontier", "--dry-run"])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("[instance")]
    assert len(lines) == 8
    assert "HIP_VISIBLE_DEVICES=7" in lines[7] and "--port 8107" in lines[7]
    assert "/mnt/bb/$USER/models/AstroSage-8B" in lines[0]


def test_serve_on_a_site_without_llm_is_a_config_error() -> None:
    from typer.testing import CliRunner

    from sedscale.cli import app
    from sedscale.errors import ConfigError

    result = CliRunner().invoke(app, ["serve", "--site", "local", "--dry-run"])
    assert isinstance(result.exception, ConfigError) and "no llm" in str(result.exception)


def test_cpu_instances_get_disjoint_cores() -> None:
    from sedscale.serve.command import cpu_bind

    two = LLMSettings(model_path="/m", served_model_name="m", accelerator="cpu", instances_per_node=2)
    assert [cpu_bind(two, i, cores=[0, 1]) for i in range(2)] == ["0", "1"]
    assert [cpu_bind(two, i, cores=[0, 1, 2, 3, 4]) for i in range(2)] == ["0,1", "2,3"]
    assert cpu_bind(two, 0, cores=[0]) == "nobind"
    one = LLMSettings(model_path="/m", served_model_name="m", accelerator="cpu")
    assert cpu_bind(one, 0) is None  # vLLM's auto binding is right for a lone instance
    pinned = LLMSettings(model_path="/m", served_model_name="m", accelerator="cpu", instances_per_node=2,
                         devices=["0-3", "4-7"])  # fmt: skip
    assert cpu_bind(pinned, 1) == "4-7"
