"""sedscale owns the fused kernel's numba cache: a directory per (kernel source, numba, Python,
CPU target) under the user's cache dir, so two installs of one checkout never overwrite each
other's entries; :func:`kernel_provenance` says what this process loaded or compiled."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numba
import pytest

from sedscale.sed.kernel_cache import CACHE_DIR_ENV, cache_key, cache_root


def test_cache_root_follows_sedscale_cache_dir_then_xdg_then_home(monkeypatch: pytest.MonkeyPatch,
                                                                  tmp_path: Path) -> None:
    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path / "own"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_root() == tmp_path / "own" / "numba"
    monkeypatch.delenv(CACHE_DIR_ENV)
    assert cache_root() == tmp_path / "xdg" / "sedscale" / "numba"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert cache_root() == Path.home() / ".cache" / "sedscale" / "numba"


def test_cache_key_changes_with_the_source_and_with_numba(monkeypatch: pytest.MonkeyPatch,
                                                          tmp_path: Path) -> None:
    a, b = tmp_path / "a.py", tmp_path / "b.py"
    a.write_text("x = 1\n")
    b.write_text("x = 2\n")
    assert cache_key(a) == cache_key(a)
    assert cache_key(a) != cache_key(b)
    before = cache_key(a)
    monkeypatch.setattr(numba, "__version__", "0.0.0-other-install")
    assert cache_key(a) != before  # another environment's numba gets another directory


PROBE = r"""
import json
import sedscale.sed.kernel_numba as kn
print(json.dumps({"paths": [f.stats.cache_path for f in (kn.pilot_block, kn.scan_block)],
                  "provenance": kn.kernel_provenance(), "source": kn.__file__}))
"""


def test_the_kernel_entry_points_use_the_owned_directory(tmp_path: Path) -> None:
    env = os.environ | {CACHE_DIR_ENV: str(tmp_path)}
    env.pop("NUMBA_CACHE_DIR", None)
    proc = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    expected = tmp_path / "numba" / cache_key(Path(out["source"]))
    assert out["paths"] == [str(expected)] * 2
    assert expected.is_dir()
    prov = out["provenance"]
    assert prov["cache_dir"] == str(expected)
    assert prov["cache_key"] == expected.name
    assert prov["numba"] == numba.__version__
    assert prov["entry_points"] == {name: {"loaded": 0, "compiled": 0, "origin": "unused"}
                                    for name in ("pilot_block", "scan_block")}
