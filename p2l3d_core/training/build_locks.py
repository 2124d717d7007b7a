"""Stale build locks of PyTorch C++ extensions, which hang DeepSpeed silently.

DeepSpeed compiles its ops (on CPU: ``deepspeed_shm_comm``) with
``torch.utils.cpp_extension.load`` the first time they are used. The build holds a lock file in
the extension's build folder; other processes wait, without a timeout, until it goes. A process
killed mid-build (a Ctrl-C, a worker Ray restarts, a job stopped) leaves the lock behind, and every
later training then stops after "Setting accelerator to CPU" and never says why. Each worker calls
:func:`clear_stale_build_locks` before ``deepspeed.initialize``: a lock older than any real build
is removed, with a warning that names it.
"""

from __future__ import annotations

import glob
import logging
import os
import sys
import time

import torch
from torch.utils.cpp_extension import get_default_build_root

logger = logging.getLogger(__name__)

# A real build of a DeepSpeed op takes one to three minutes on these machines; a lock this old
# belongs to a process that died.
STALE_AFTER_S = 15 * 60


def extensions_root() -> str:
    """The folder under which torch builds extensions (the rule of
    ``torch.utils.cpp_extension``: ``$TORCH_EXTENSIONS_DIR``, else a per-Python, per-accelerator
    folder under the default build root)."""
    explicit = os.environ.get("TORCH_EXTENSIONS_DIR")
    if explicit:
        return explicit
    if torch.version.hip is not None:
        accelerator = f"rocm{torch.version.hip.replace('.', '')}"
    elif torch.version.cuda is not None:
        accelerator = f"cu{torch.version.cuda.replace('.', '')}"
    else:
        accelerator = "cpu"
    python = f"py{sys.version_info.major}{sys.version_info.minor}{getattr(sys, 'abiflags', '')}"
    return os.path.join(get_default_build_root(), f"{python}_{accelerator}")


def clear_stale_build_locks(max_age_s: float = STALE_AFTER_S, root: str | None = None) -> list[str]:
    """Remove extension build locks older than ``max_age_s``; returns the paths removed.

    A younger lock is left alone: another worker may be building the op right now.
    """
    removed = []
    for lock in glob.glob(os.path.join(root or extensions_root(), "*", "lock")):
        try:
            age = time.time() - os.path.getmtime(lock)
        except FileNotFoundError:  # released meanwhile
            continue
        if age < max_age_s:
            continue
        try:
            os.remove(lock)
        except FileNotFoundError:  # another worker removed it first
            continue
        logger.warning("removed a stale extension build lock %s (%.0f min old, left by a build "
                       "that was killed)", lock, age / 60)
        removed.append(lock)
    return removed
