"""Stale extension build locks: the one left by a killed build goes, a live build's stays."""

import logging
import os
import time

from p2l3d_core.training.build_locks import clear_stale_build_locks, extensions_root


def _lock(root, name: str, age_s: float) -> str:
    folder = root / name
    folder.mkdir()
    lock = folder / "lock"
    lock.touch()
    os.utime(lock, (time.time() - age_s, time.time() - age_s))
    return str(lock)


def test_old_lock_is_removed_and_named_a_fresh_one_is_kept(tmp_path, caplog):
    stale = _lock(tmp_path, "deepspeed_shm_comm", age_s=3600)
    building = _lock(tmp_path, "cpu_adam", age_s=30)
    with caplog.at_level(logging.WARNING):
        assert clear_stale_build_locks(max_age_s=900, root=str(tmp_path)) == [stale]
    assert not os.path.exists(stale) and os.path.exists(building)
    assert stale in caplog.text and "stale" in caplog.text
    assert clear_stale_build_locks(max_age_s=900, root=str(tmp_path)) == []  # nothing left to do


def test_extensions_root_follows_torch_rule(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path))
    assert extensions_root() == str(tmp_path)
    monkeypatch.delenv("TORCH_EXTENSIONS_DIR")
    from torch.utils.cpp_extension import _get_build_directory  # where torch really builds

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert _get_build_directory("probe", verbose=False) == os.path.join(extensions_root(), "probe")
