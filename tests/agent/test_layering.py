"""The agent layer knows nothing of engines, schedulers or campaigns (DESIGN.md §2)."""

from __future__ import annotations

import subprocess
import sys


def test_agent_imports_no_engine_scheduler_or_campaign() -> None:
    code = (
        "import sys, sedscale.agent, sedscale.agent.loop, sedscale.agent.llm\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('parsl', 'dask', 'distributed', 'dask_jobqueue')"
        " or m.startswith(('sedscale.engines', 'sedscale.campaign', 'sedscale.serve')))\n"
        "print(bad); sys.exit(1 if bad else 0)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
