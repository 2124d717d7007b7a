"""Pose sources named on the command line: ``synthetic``, ``h36m:FILE[@ACTION]``,
``bvh:FILE[@ACTION]`` and ``panoptic:PATH[@ACTION]``.

- ``h36m:FILE``: an mmpose body3d npz (Human3.6M, or MPI-INF-3DHP in the same layout, told
  apart by its image names) or a VideoPose3D ``data_3d_h36m.npz``; the action of each pose is
  the file's own (H36M action; ``'unknown'`` for 3DHP).
- ``bvh:FILE``: a BVH clip read every ``BVH_EVERY``-th frame (120 fps mocap -> 30 fps:
  neighbouring frames are near-duplicates); its action label is the file name.
- ``panoptic:PATH``: CMU Panoptic ``body3DScene_*.json`` bodies (one pose per body), PATH being
  one scene file, a sequence folder (``<seq>/hdPose3d_stage1_coco19/*.json`` beside
  ``<seq>/calibration_<seq>.json``) or a folder of sequences; each body is filmed by the
  sequence's first HD camera, and its action is the sequence name without its date
  (``160906_band1`` -> ``band``).

``@ACTION`` after a file replaces its action labels (``bvh:131_03.bvh@jumping``). The label is
kept as written: the language (:mod:`p2l3d_core.language.actions`) decides whether it is a known
action. To compare a real set's action answers with a model trained on the generator, name the
generator's action (``@walking``, ``@jumping``), or a real label the language answers as one
(``@hop`` is answered "jumping", ``WalkDog`` "walking").

A source yields poses by index, so any shard can be built on any worker: the generator makes
pose ``i`` from ``(seed, i)``; a file source reads its file and slices it (files are small next
to the rendering work; a long mocap archive is split into one source per clip).
"""

from __future__ import annotations

import json
import pickle
import zipfile
from functools import lru_cache
from pathlib import Path

from p2l3d_core.poses.generator import GeneratorConfig, generate_records
from p2l3d_core.poses.record import PoseRecord

KINDS = ("synthetic", "h36m", "bvh", "panoptic")
FILE_KINDS = KINDS[1:]
# Poses a synthetic source can produce: more than any dataset will ask for.
SYNTHETIC_CAPACITY = 10**9


BVH_EVERY = 4

def parse_source(spec: str) -> tuple[str, Path | None, str | None]:
    """``'bvh:clips/131_01.bvh@walk'`` -> ``('bvh', Path(...), 'walk')``, checking the kind and
    that the file (for ``panoptic``: file or folder) exists. ``@ACTION`` is split off only when
    the whole path does not exist itself."""
    kind, _, path = spec.partition(":")
    if kind not in KINDS:
        raise ValueError(f"unknown pose source {spec!r}: use synthetic, h36m:FILE, bvh:FILE "
                         "or panoptic:PATH")
    if kind == "synthetic":
        if path:
            raise ValueError(f"pose source {spec!r}: 'synthetic' takes no file")
        return kind, None, None
    action = None
    if "@" in path and not Path(path).expanduser().exists():
        path, _, action = path.rpartition("@")
    if not path:
        raise ValueError(f"pose source {spec!r} needs a file: {kind}:FILE")
    file = Path(path).expanduser()
    if not (file.is_file() or (kind == "panoptic" and file.is_dir())):
        raise FileNotFoundError(f"pose source {spec!r}: no such file {file}")
    return kind, file.resolve(), action or None


@lru_cache(maxsize=4)
def _read_file(kind: str, file: Path, action: str | None, seed: int) -> tuple[PoseRecord, ...]:
    """All records of a file source; an unreadable file is a ``ValueError`` naming it."""
    try:
        return _parse_file(kind, file, action, seed)
    except (zipfile.BadZipFile, EOFError, KeyError, IndexError, OSError, StopIteration,
            json.JSONDecodeError, pickle.UnpicklingError) as err:  # a refused pickle included
        raise ValueError(f"{kind} source {file} cannot be read: "
                         f"{type(err).__name__}: {err}") from err


def _parse_file(kind: str, file: Path, action: str | None, seed: int) -> tuple[PoseRecord, ...]:
    if kind == "bvh":
        from p2l3d_core.poses.bvh import read_bvh

        return tuple(read_bvh(file, action=action, every=BVH_EVERY, seed=seed))
    if kind == "panoptic":
        return tuple(_read_panoptic(file, action))
    records = _read_npz(file, seed)
    if action is not None:
        for r in records:
            r.action = action
    return tuple(records)


def _read_npz(file: Path, seed: int) -> list[PoseRecord]:
    import numpy as np

    from p2l3d_core.poses import h36m

    with zipfile.ZipFile(file) as zf:
        names = {n.removesuffix(".npy") for n in zf.namelist()}
    if "positions_3d" in names:
        return h36m.read_videopose3d(file, seed=seed)
    if {"S", "part", "imgname"} <= names:
        with np.load(file, allow_pickle=False) as data:
            first = str(data["imgname"][0]) if len(data["imgname"]) else ""
        try:
            h36m.parse_h36m_imgname(first)
        except ValueError:  # not a Human3.6M frame: the MPI-INF-3DHP npz of the same layout
            return h36m.read_3dhp_body3d(file)
        return h36m.read_h36m_body3d(file)
    raise ValueError(f"{file}: neither a VideoPose3D data_3d npz (positions_3d) nor an mmpose "
                     f"body3d npz (imgname, part, S); keys found: {sorted(names)}")


def panoptic_scenes(path: Path) -> list[tuple[Path, Path]]:
    """``(scene file, calibration file)`` of every ``body3DScene_*.json`` at or under ``path``,
    sorted; the calibration is the sequence folder's ``calibration_*.json``."""
    scenes = [path] if path.is_file() else sorted(path.rglob("body3DScene_*.json"))
    if not scenes:
        raise ValueError(f"panoptic source {path}: no body3DScene_*.json file found")
    out = []
    for scene in scenes:
        sequence = scene.parent.parent
        calibs = sorted(sequence.glob("calibration_*.json"))
        if not calibs:
            raise ValueError(f"panoptic source {path}: no calibration_*.json in {sequence} "
                             f"for {scene.name}")
        out.append((scene, calibs[0]))
    return out


def _read_panoptic(path: Path, action: str | None) -> list[PoseRecord]:
    from p2l3d_core.poses.panoptic import load_panoptic_calibration, read_panoptic_scene

    calibrations: dict[Path, dict] = {}
    records: list[PoseRecord] = []
    for scene, calib in panoptic_scenes(path):
        if calib not in calibrations:
            calibrations[calib] = load_panoptic_calibration(calib)
        records += read_panoptic_scene(scene, calibrations[calib], action=action)
    return records


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
