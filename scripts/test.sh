#!/usr/bin/env bash
# Install everything the tests need (scripts/install.sh test) and run the whole suite, slow
# end-to-end tests included. Extra arguments go to pytest (e.g. -m "not slow" for the fast set).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh test
bash scripts/install-chromium.sh  # headless Chromium renders the HTML report in tests/report
. .venv/bin/activate
# The Slurm tests run against a real single-node cluster (installed from Debian's packages if missing),
# the multi-node tests (tests/cluster, -m cluster) against the namespace cluster of 3 nodes beside it.
if [ "${SEDSCALE_NO_SLURM:-0}" != "1" ]; then
  bash scripts/slurm-local.sh start
  bash scripts/slurm-cluster.sh up 3
  export SEDSCALE_REQUIRE_CLUSTERS=1  # the Slurm tests fail, not skip, if a cluster is missing
fi
# Types first: the package is type-checked by mypy (configuration in pyproject.toml).
python -m mypy
set +e
python -m pytest --durations=30 "$@"  # the 30 slowest tests, to see where the suite's time goes
code=$?
set -e
if [ "$code" -eq 5 ]; then
  echo "pytest collected no tests: failing" >&2
  exit 1
fi
exit "$code"
