"""Restricted unpickling for dataset files that only hold numpy arrays in plain containers.

Why: several public pose datasets ship pickles (mmpose ``cameras.pkl``) or ``.npz`` files with
object arrays (VideoPose3D ``data_3d_h36m.npz``). ``pickle.load`` / ``np.load(allow_pickle=True)``
on such a file runs whatever callable it names, so a file from a user or a mirror could run
``os.system``. This unpickler resolves only the globals needed to rebuild numpy arrays, dtypes
and scalars, and a few builtin containers; any other global raises :class:`UnsafePickleError`
naming the file and the global, before anything is called.
"""

from __future__ import annotations

import importlib
import io
import pickle
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np


class UnsafePickleError(pickle.UnpicklingError):
    """A pickle referenced a global outside the allow-list (nothing was executed)."""


def _numpy_core(submodule: str, name: str) -> Callable[[], Any]:
    """Lazily resolve ``numpy._core.<submodule>.<name>`` (numpy 2) or ``numpy.core...`` (1.x).

    Pickles written by numpy 1.x say ``numpy.core.multiarray``, those by numpy 2 say
    ``numpy._core.multiarray``; both names map to the object of the installed numpy, without
    importing the deprecated ``numpy.core`` alias on numpy 2.
    """

    def resolve() -> Any:
        try:
            module = importlib.import_module(f"numpy._core.{submodule}")
        except ImportError:  # numpy < 1.26 has no numpy._core
            module = importlib.import_module(f"numpy.core.{submodule}")
        return getattr(module, name)

    return resolve


# (module, name) -> resolver. Array reconstruction (protocols 2-3: _reconstruct + ndarray +
# dtype; protocol 5: _frombuffer), numpy scalars (scalar), builtin containers that have no
# pickle opcode in older protocols (set, frozenset), and _codecs.encode, which Python-2-era
# pickles use to carry raw bytes (it only encodes a string, it calls nothing else).
_ALLOWED: dict[tuple[str, str], Callable[[], Any]] = {}
for _prefix in ("numpy.core", "numpy._core"):
    _ALLOWED[(f"{_prefix}.multiarray", "_reconstruct")] = _numpy_core("multiarray", "_reconstruct")
    _ALLOWED[(f"{_prefix}.multiarray", "scalar")] = _numpy_core("multiarray", "scalar")
    _ALLOWED[(f"{_prefix}.numeric", "_frombuffer")] = _numpy_core("numeric", "_frombuffer")
_ALLOWED[("numpy", "ndarray")] = lambda: np.ndarray
_ALLOWED[("numpy", "dtype")] = lambda: np.dtype
for _builtins in ("builtins", "__builtin__"):
    _ALLOWED[(_builtins, "set")] = lambda: set
    _ALLOWED[(_builtins, "frozenset")] = lambda: frozenset
_ALLOWED[("_codecs", "encode")] = lambda: importlib.import_module("_codecs").encode

ALLOWED_GLOBALS: frozenset[tuple[str, str]] = frozenset(_ALLOWED)


class RestrictedUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` that refuses every global not in :data:`ALLOWED_GLOBALS`."""

    def __init__(self, file: io.BufferedIOBase, source: str, encoding: str = "ASCII") -> None:
        super().__init__(file, encoding=encoding)
        self.source = source

    def find_class(self, module: str, name: str) -> Any:
        resolver = _ALLOWED.get((module, name))
        if resolver is None:
            raise UnsafePickleError(
                f"refusing to unpickle {self.source}: global '{module}.{name}' is not allowed "
                "(only numpy arrays, dtypes, scalars and builtin containers may be loaded)")
        return resolver()

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError(f"refusing to unpickle {self.source}: persistent id {pid!r}")


def safe_loads(data: bytes, source: str = "<bytes>", encoding: str = "ASCII") -> Any:
    """Unpickle ``data`` with the restricted unpickler. ``source`` names it in errors.

    ``encoding='latin1'`` reads numpy arrays pickled by Python 2.
    """
    return RestrictedUnpickler(io.BytesIO(data), source, encoding).load()


def safe_load(path: str | Path, encoding: str = "ASCII") -> Any:
    """Unpickle the file at ``path`` with the restricted unpickler."""
    path = Path(path)
    return safe_loads(path.read_bytes(), str(path), encoding)


def load_npz_object(path: str | Path, key: str, encoding: str = "ASCII") -> Any:
    """Read the object array ``key`` from an ``.npz`` without ``np.load(allow_pickle=True)``.

    An ``.npz`` is a zip of ``.npy`` files; an object ``.npy`` is a header followed by a pickle
    of the whole array. The header is parsed with :mod:`numpy.lib.format` and the pickle goes
    through the restricted unpickler. A 0-d object array (how ``np.savez`` stores a dict) is
    unwrapped to the object itself; other arrays are returned as arrays.
    """
    path = Path(path)
    source = f"{path}[{key}]"
    with zipfile.ZipFile(path) as archive:
        member = key if key.endswith(".npy") else f"{key}.npy"
        if member not in archive.namelist():
            raise KeyError(f"{path} has no array '{key}' (has {archive.namelist()})")
        with archive.open(member) as fh:
            version = np.lib.format.read_magic(fh)
            if version == (1, 0):
                shape, _fortran, dtype = np.lib.format.read_array_header_1_0(fh)
            elif version == (2, 0):
                shape, _fortran, dtype = np.lib.format.read_array_header_2_0(fh)
            else:
                raise ValueError(f"{source}: unsupported .npy format version {version}")
            payload = fh.read()
    if not dtype.hasobject:
        raise ValueError(f"{source} is a plain {dtype} array; read it with np.load")
    array = safe_loads(payload, source, encoding)
    if not isinstance(array, np.ndarray):
        raise UnsafePickleError(f"{source}: payload is a {type(array).__name__}, not an array")
    if array.shape != tuple(shape):
        raise ValueError(f"{source}: header says shape {shape}, payload has {array.shape}")
    return array.item() if array.shape == () else array
