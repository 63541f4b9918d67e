"""Grid-cache files: a torn or corrupt file is detected, removed and rebuilt, never fitted with;
concurrent writers of one entry leave a whole, verified file; a full disk stops with an error
naming the file and leaves nothing behind (issue 13)."""

from __future__ import annotations

import errno
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sedscale.sed import grid as grid_mod
from sedscale.sed.config import FitConfig
from sedscale.sed.grid_store import CHECKSUM_MEMBER, GridCacheWriteError, read_arrays, write_arrays

BANDS = ("lsst_g", "lsst_r", "euclid_j", "euclid_h")
CONFIG = FitConfig.from_dict({"sfh": {"age": [0.5, 2.0], "tau": [0.3, 3.0]},
                              "stellar": {"metallicity": [1.0]}, "dust_attenuation": {"av": [0.0, 1.0]},
                              "nebular": {"enabled": False}, "dust_emission": {"enabled": False}})
Z = [0.7, 0.8]


def _cached_file(cache: Path) -> Path:
    grid_mod.clear_memory_cache()
    grid_mod.build_grid(CONFIG, BANDS, Z, cache_dir=cache)
    (path,) = cache.glob("grid-*.npz")
    return path


def _assert_same_grid(a: grid_mod.ModelGrid, b: grid_mod.ModelGrid) -> None:
    np.testing.assert_array_equal(a.flux, b.flux)
    np.testing.assert_array_equal(a.valid, b.valid)
    for name in a.extensive:
        np.testing.assert_array_equal(a.extensive[name], b.extensive[name])


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _flip_bytes(path: Path) -> None:
    data = bytearray(path.read_bytes())
    for i in range(len(data) // 3, len(data) // 3 + 8):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def _forge_flux(path: Path) -> None:
    """A well-formed file whose flux changed but whose stored checksum did not (zip CRCs pass)."""
    with np.load(path) as data:
        arrays = {name: data[name] for name in data.files}
    arrays["flux"] = arrays["flux"] * np.float32(1.001)
    np.savez(path, **arrays)


@pytest.mark.parametrize("damage", [_truncate, _flip_bytes, _forge_flux])
def test_a_damaged_cache_file_is_removed_rebuilt_and_never_used(tmp_path: Path, damage, caplog) -> None:
    path = _cached_file(tmp_path)
    grid_mod.clear_memory_cache()
    good = grid_mod.build_grid(CONFIG, BANDS, Z, cache_dir=tmp_path)  # from disk
    damage(path)
    assert read_arrays(path.with_name("copy.npz")) is None  # a missing file: None, no warning
    grid_mod.clear_memory_cache()
    before = grid_mod.BUILD_COUNT["grids"]
    with caplog.at_level(logging.WARNING, logger="sedscale.sed.grid_store"):
        again = grid_mod.build_grid(CONFIG, BANDS, Z, cache_dir=tmp_path)
    assert grid_mod.BUILD_COUNT["grids"] == before + 1  # rebuilt, not read
    assert any(str(path) in r.getMessage() for r in caplog.records)
    _assert_same_grid(again, good)
    assert read_arrays(path) is not None  # the rebuilt file replaced the damaged one


def test_concurrent_writers_of_one_entry_leave_a_whole_verified_file(tmp_path: Path) -> None:
    path = tmp_path / "entry.npz"
    writer = ("import sys, numpy as np; from pathlib import Path\n"
              "from sedscale.sed.grid_store import write_arrays\n"
              "a = {'x': np.arange(2_000_000, dtype=np.float64) * float(sys.argv[2])}\n"
              "for _ in range(15): write_arrays(Path(sys.argv[1]), a)\n")
    procs = [subprocess.Popen([sys.executable, "-c", writer, str(path), str(k)]) for k in (1, 2)]
    seen = set()
    while any(p.poll() is None for p in procs):
        arrays = read_arrays(path)  # never torn: None (not yet written) or one writer's whole file
        if arrays is not None:
            seen.add(float(arrays["x"][1]))
    assert [p.returncode for p in procs] == [0, 0]
    final = read_arrays(path)
    assert final is not None and float(final["x"][1]) in (1.0, 2.0)
    assert seen <= {1.0, 2.0}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["entry.npz"]  # no temporaries left


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT])
def test_a_full_disk_fake_stops_with_the_path_and_leaves_nothing(tmp_path: Path, monkeypatch, code: int) -> None:
    import sedscale.fsutil as fsutil

    def no_space(fd: int, data: bytes) -> int:
        raise OSError(code, "simulated")

    monkeypatch.setattr(fsutil.os, "write", no_space)
    grid_mod.clear_memory_cache()
    with pytest.raises(GridCacheWriteError) as info:
        grid_mod.build_grid(CONFIG, BANDS, Z, cache_dir=tmp_path)
    monkeypatch.undo()
    assert info.value.errno == code
    (expected,) = [tmp_path / f"grid-{grid_mod.grid_cache_key(CONFIG, BANDS, np.array(Z))[:32]}.npz"]
    assert str(expected) in str(info.value) and info.value.filename == str(expected)
    assert list(tmp_path.iterdir()) == []  # no partial file, no temporary, no private folder


def test_a_really_full_tmpfs_stops_the_grid_write_with_the_path_then_builds_once_freed(tmp_path: Path) -> None:
    """The same on a real file system that runs out of space (a tmpfs of one page; needs root,
    as CI runs): ENOSPC names the cache file, nothing is left behind, and once there is room the
    same call writes a verified file."""
    fs = tmp_path / "fs"
    fs.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4096", "tmpfs", str(fs)], check=True)
    try:
        grid_mod.clear_memory_cache()
        with pytest.raises(GridCacheWriteError) as info:
            grid_mod.build_grid(CONFIG, BANDS, Z, cache_dir=fs)
        assert info.value.errno in (errno.ENOSPC, errno.EDQUOT)
        assert info.value.filename is not None and info.value.filename.startswith(str(fs))
        assert "free space" in str(info.value)
        assert list(fs.iterdir()) == []  # no partial file, no temporary, no private folder
        subprocess.run(["mount", "-o", "remount,size=16m", str(fs)], check=True)
        grid_mod.clear_memory_cache()
        grid = grid_mod.build_grid(CONFIG, BANDS, Z, cache_dir=fs)
        (written,) = fs.iterdir()
        np.testing.assert_array_equal(read_arrays(written)["flux"], grid.flux)
    finally:
        subprocess.run(["umount", "-l", str(fs)], check=False)


def test_written_files_carry_a_checksum_of_their_arrays(tmp_path: Path) -> None:
    path = tmp_path / "a.npz"
    write_arrays(path, {"x": np.arange(5.0)})
    with np.load(path) as data:
        assert CHECKSUM_MEMBER in data.files
    np.testing.assert_array_equal(read_arrays(path)["x"], np.arange(5.0))
