"""Pose sources named on the command line: ``synthetic``, ``h36m:FILE``, ``bvh:FILE[@ACTION]``.

A BVH clip is read every ``BVH_EVERY``-th frame (120 fps mocap -> 30 fps: neighbouring frames
are near-duplicates); its action label is ``@ACTION`` if given, else the file name.

A source yields poses by index, so any shard can be built on any worker: the generator makes
pose ``i`` from ``(seed, i)``; a file source reads its file and slices it (files are small next
to the rendering work; a long mocap archive is split into one source per clip).
"""

from __future__ import annotations

import pickle
import zipfile
from functools import lru_cache
from pathlib import Path

from p2l3d_core.poses.generator import GeneratorConfig, generate_records
from p2l3d_core.poses.record import PoseRecord

KINDS = ("synthetic", "h36m", "bvh")
# Poses a synthetic source can produce: more than any dataset will ask for.
SYNTHETIC_CAPACITY = 10**9


BVH_EVERY = 4


def parse_source(spec: str) -> tuple[str, Path | None, str | None]:
    """``'bvh:clips/131_01.bvh@walk'`` -> ``('bvh', Path(...), 'walk')``, checking the kind and
    that the file exists."""
    kind, _, path = spec.partition(":")
    action = None
    if kind == "bvh" and "@" in path:
        path, _, action = path.rpartition("@")
    if kind not in KINDS:
        raise ValueError(f"unknown pose source {spec!r}: use synthetic, h36m:FILE or bvh:FILE")
    if kind == "synthetic":
        if path:
            raise ValueError(f"pose source {spec!r}: 'synthetic' takes no file")
        return kind, None, None
    if not path:
        raise ValueError(f"pose source {spec!r} needs a file: {kind}:FILE")
    file = Path(path).expanduser()
    if not file.is_file():
        raise FileNotFoundError(f"pose source {spec!r}: no such file {file}")
    return kind, file.resolve(), action or None


@lru_cache(maxsize=4)
def _read_file(kind: str, file: Path, action: str | None, seed: int) -> tuple[PoseRecord, ...]:
    """All records of a file source; an unreadable file is a ``ValueError`` naming it."""
    try:
        return _parse_file(kind, file, action, seed)
    except (zipfile.BadZipFile, EOFError, KeyError, IndexError, OSError,
            pickle.UnpicklingError) as err:  # a refused pickle (cameras.pkl) included
        raise ValueError(f"{kind} source {file} cannot be read: "
                         f"{type(err).__name__}: {err}") from err


def _parse_file(kind: str, file: Path, action: str | None, seed: int) -> tuple[PoseRecord, ...]:
    if kind == "bvh":
        from p2l3d_core.poses.bvh import read_bvh

        return tuple(read_bvh(file, action=action, every=BVH_EVERY, seed=seed))
    from p2l3d_core.poses import h36m

    with zipfile.ZipFile(file) as zf:
        names = {n.removesuffix(".npy") for n in zf.namelist()}
    if "positions_3d" in names:
        return tuple(h36m.read_videopose3d(file, seed=seed))
    if {"S", "part", "imgname"} <= names:
        return tuple(h36m.read_h36m_body3d(file))
    raise ValueError(f"{file}: neither a VideoPose3D data_3d npz (positions_3d) nor an mmpose "
                     f"body3d npz (imgname, part, S); keys found: {sorted(names)}")


def count_records(spec: str, seed: int = 0) -> int:
    """How many poses the source can provide."""
    kind, file, action = parse_source(spec)
    if kind == "synthetic":
        return SYNTHETIC_CAPACITY
    return len(_read_file(kind, file, action, seed))


def load_records(spec: str, seed: int, start: int, count: int, twin_prob: float = 0.3
                 ) -> list[PoseRecord]:
    """Poses ``start .. start + count - 1`` of the source."""
    kind, file, action = parse_source(spec)
    if kind == "synthetic":
        return generate_records(seed, start, count, GeneratorConfig(twin_prob=twin_prob))
    return list(_read_file(kind, file, action, seed)[start:start + count])
