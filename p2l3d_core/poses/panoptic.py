"""CMU Panoptic Studio ``body3DScene_*.json`` (coco19 joints) + calibration -> PoseRecords.

Panoptic world: centimetres, ``y`` DOWN (cameras' ``X_cam = R X + t`` with ``t`` in cm). Ours:
metres, ``z`` up. Axis change ``(x, y, z)_pan -> (x, z, -y)`` (a rotation, det +1, so left and
right are kept), scale 0.01, then a vertical shift putting the floor at ``z = 0``:

    P = 0.01 * A @ P_pan + o,   A = [[1,0,0],[0,0,1],[0,-1,0]],   o = (0, 0, -floor_z)

The camera follows so that it still sees the same picture: ``X_cam[m] = R A.T (P - o) +
0.01 t``, i.e. ``Camera.R = R @ A.T``, ``Camera.t = 0.01 t - R @ A.T @ o`` (projection is
unchanged by the common 0.01 scale). Floor: Panoptic's files do not state it; pass
``floor_y_cm`` (the floor's Panoptic ``y``; the dome floor is close to ``y = 0``) when known.
Otherwise the scene's lowest body stands on ``z = 0`` where its joints rest
(:func:`p2l3d_core.poses.floor.floor_height`: a flat foot's ankle 8 cm up, not 0; one shift
for the scene, so people keep their heights relative to each other). Lens distortion (``distCoef``)
is not applied by :class:`Camera`; it is kept in ``meta``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from p2l3d_core.poses.camera import Camera
from p2l3d_core.poses.floor import floor_height
from p2l3d_core.poses.record import PoseRecord
from p2l3d_core.skeleton import from_panoptic19

PAN_TO_WORLD = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])  # A above
CM = 0.01


def load_panoptic_calibration(path: str | Path) -> dict[str, dict[str, Any]]:
    """Calibration JSON -> ``{camera name: camera dict}`` (names like ``'00_03'``)."""
    data = json.loads(Path(path).read_text())
    return {cam["name"]: cam for cam in data["cameras"]}


def panoptic_camera(cam: dict[str, Any], floor_z: float = 0.0) -> Camera:
    """Our :class:`Camera` for one Panoptic camera dict, after the axis change, the cm -> m
    scale and a world shift of ``-floor_z`` metres in z (see the module docstring)."""
    K = np.asarray(cam["K"], dtype=np.float64)
    R = np.asarray(cam["R"], dtype=np.float64) @ PAN_TO_WORLD.T
    offset = np.array([0.0, 0.0, -floor_z])
    t = CM * np.asarray(cam["t"], dtype=np.float64).reshape(3) - R @ offset
    width, height = cam["resolution"]
    return Camera.from_matrices(K, R, t, int(width), int(height))


def read_panoptic_scene(scene_path: str | Path, calibration: str | Path | dict,
                        camera_name: str | None = None, floor_y_cm: float | None = None,
                        action: str | None = None, min_conf: float = 0.0) -> list[PoseRecord]:
    """One :class:`PoseRecord` per body of a ``body3DScene`` file, filmed by ``camera_name``
    (default: the first HD camera of the calibration, in file order).

    Joints with ``conf < min_conf`` (Panoptic writes -1 for unreconstructed joints) are
    missing. ``action`` defaults to the sequence name without its date (``'160906_band1'`` ->
    ``'band'``), the sequence being the folder holding ``hdPose3d_stage1_coco19``.
    """
    scene_path = Path(scene_path)
    cams = calibration if isinstance(calibration, dict) else load_panoptic_calibration(calibration)
    if camera_name is None:
        camera_name = next(name for name, cam in cams.items() if cam.get("type") == "hd")
    if camera_name not in cams:
        raise KeyError(f"no camera {camera_name!r} in the calibration")
    scene = json.loads(scene_path.read_text())
    bodies = []
    for body in scene["bodies"]:
        raw = np.asarray(body["joints19"], dtype=np.float64).reshape(19, 4)
        pts = np.where((raw[:, 3] >= min_conf)[:, None], raw[:, :3], np.nan)
        bodies.append((body, raw, from_panoptic19(CM * pts @ PAN_TO_WORLD.T)))
    if floor_y_cm is not None:
        floor_z = -CM * floor_y_cm
    else:  # bodies with no joint seen have no floor gap: floor_height leaves them out
        floor_z = floor_height(np.stack([j for _, _, j in bodies])) if bodies else 0.0
    camera = panoptic_camera(cams[camera_name], floor_z)
    sequence = scene_path.parent.parent.name
    label = action if action is not None else _sequence_action(sequence)
    records = []
    for body, raw, joints in bodies:
        records.append(PoseRecord(
            pose_id=f"panoptic/{sequence}/{scene_path.stem}/{body.get('id')}",
            joints_3d=joints - np.array([0.0, 0.0, floor_z]), camera=camera, action=label,
            source="panoptic",
            meta={"sequence": sequence, "split_group": f"panoptic/{sequence}",
                  "body_id": body.get("id"), "camera_name": camera_name,
                  "conf19": raw[:, 3].tolist(), "floor_z_shift": floor_z,
                  "floor_known": floor_y_cm is not None,
                  "distortion": list(cams[camera_name].get("distCoef", [])),
                  "file": str(scene_path)}))
    return records


def _sequence_action(sequence: str) -> str:
    """'160906_band1' -> 'band'; names without the date pattern are returned unchanged."""
    match = re.fullmatch(r"\d{6}_([A-Za-z]+?)\d*", sequence)
    return match.group(1) if match else sequence


__all__ = ["PAN_TO_WORLD", "load_panoptic_calibration", "panoptic_camera",
           "read_panoptic_scene"]
