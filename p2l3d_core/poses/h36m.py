"""Readers for Human3.6M-style 3D pose files: mmpose ``body3d`` npz, VideoPose3D
``data_3d_h36m.npz`` and the MPI-INF-3DHP npz of the same mmpose layout.

Camera convention of mmpose's ``cameras.pkl`` (checked numerically on the four H36M samples
against ``h36m_coco.json``'s world joints, max error 3e-7 m, the JSON's precision): ``R``
rotates camera to world and ``T`` is the camera POSITION in world metres, i.e.
``X_world = R @ X_cam + T`` and
``X_cam = R.T @ (X_world - T)`` (this is mmpose's ``SimpleCamera``: ``R_w2c = R.T``). Our
:class:`Camera` stores world -> camera, so ``Camera.R = R.T`` and ``Camera.t = -R.T @ T``.

Ground: the H36M world frame is already metres, ``+z`` up, with the floor at ``z ~ 0`` (ankles
read 3-9 cm on the samples); it is kept as is, not shifted, so poses from the same capture stay
comparable and the recorded extrinsics stay the dataset's own. Lens distortion (``k``, ``p``)
is not applied by :class:`Camera`; it is kept in ``meta`` (the annotated 2D includes it:
mean reprojection error of the undistorted projection is ~1 px on the samples).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from p2l3d_core.poses.camera import Y_UP_TO_Z_UP, Camera, framing_camera
from p2l3d_core.poses.floor import floor_height
from p2l3d_core.poses.record import PoseRecord
from p2l3d_core.poses.safe_pickle import load_npz_object, safe_load
from p2l3d_core.skeleton import JOINT_NAMES

# The 15 official Human3.6M actions; file and key names use a few short forms (S2-S11 say
# "Photo" and "WalkDog" where S1 says "TakingPhoto" and "WalkingDog").
H36M_ACTIONS: tuple[str, ...] = (
    "Directions", "Discussion", "Eating", "Greeting", "Phoning", "Posing", "Purchases",
    "Sitting", "SittingDown", "Smoking", "TakingPhoto", "Waiting", "Walking", "WalkingDog",
    "WalkTogether",
)
_ACTION_ALIASES = {"Photo": "TakingPhoto", "WalkDog": "WalkingDog"}

# VideoPose3D's 32-joint H36M skeleton -> H36M-17 (the joints VideoPose3D keeps): hip, RHip,
# RKnee, RFoot, LHip, LKnee, LFoot, Spine, Thorax, Neck/Nose, Head, LShoulder, LElbow, LWrist,
# RShoulder, RElbow, RWrist.
H36M32_TO_17: tuple[int, ...] = (0, 1, 2, 3, 6, 7, 8, 12, 13, 14, 15, 17, 18, 19, 25, 26, 27)

# MPI-INF-3DHP 17-joint order used by mmpose's 3DHP npz (not H36M order!): 0 head_top, 1 neck,
# 2 r_shoulder, 3 r_elbow, 4 r_wrist, 5 l_shoulder, 6 l_elbow, 7 l_wrist, 8 r_hip, 9 r_knee,
# 10 r_ankle, 11 l_hip, 12 l_knee, 13 l_ankle, 14 pelvis, 15 spine, 16 head.
# H36M-17 slot i takes 3DHP joint MPI3DHP17_TO_H36M[i]: 3DHP's "neck" (base of the neck, ~6 cm
# above the shoulder line, as H36M's thorax) -> thorax; its "head" (head centre) -> neck/nose;
# head_top -> head. All one to one; nothing derived.
MPI3DHP17_TO_H36M: tuple[int, ...] = (14, 8, 9, 10, 11, 12, 13, 15, 1, 16, 0, 5, 6, 7, 2, 3, 4)

# 'S1/S1_Directions_1.54138969/S1_Directions_1.54138969_000001.jpg' -> S1, Directions, 1,
# 54138969, 1. Original H36M video names are '<Action>[ <take>].<camera>'; mmpose replaced the
# space by '_'.
_H36M_IMG = re.compile(r"(?P<subject>S\d+)_(?P<action>[A-Za-z]+?)(?:[_ ](?P<take>\d+))?"
                       r"\.(?P<camera>\d+)_(?P<frame>\d+)\.\w+$")
# '[S1_Seq1_Cam0_]001033.jpg' (train) or 'TS1_002001.jpg' (test).
_3DHP_IMG = re.compile(r"(?P<key>(?:S\d+_Seq\d+_Cam\d+)|(?:TS\d+))_(?P<frame>\d+)\.\w+$")

# Camera frame (x right, y down, z forward) to a z-up frame at the camera: (x, y, z) -> (x, z, -y).
CAM_TO_Z_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])


def canonical_action(raw: str) -> str:
    """H36M action label from a file/key name: drops a take suffix ('Directions 1',
    'Directions_1') and maps the short forms ('Photo', 'WalkDog') to the official names."""
    name = re.sub(r"[ _]\d+$", "", raw.strip())
    return _ACTION_ALIASES.get(name, name)


def parse_h36m_imgname(imgname: str) -> dict[str, Any]:
    """Subject, action (canonical and raw), take, camera id and frame from an mmpose H36M
    image name such as ``S1/S1_Directions_1.54138969/S1_Directions_1.54138969_000001.jpg``."""
    match = _H36M_IMG.search(imgname)
    if match is None:
        raise ValueError(f"not a Human3.6M image name: {imgname!r}")
    take = match["take"]
    return {"subject": match["subject"], "action": canonical_action(match["action"]),
            "action_raw": match["action"] + (f"_{take}" if take else ""),
            "take": int(take) if take else 0, "camera_id": match["camera"],
            "frame": int(match["frame"])}


def load_h36m_cameras(path: str | Path) -> dict[Any, dict]:
    """mmpose camera pickle (dict key -> {R, T, c, f, k, p, w, h, ...}), via the restricted
    unpickler (only numpy arrays and builtin containers can come out of it)."""
    cameras = safe_load(path)
    if not isinstance(cameras, dict):
        raise TypeError(f"{path}: expected a dict of cameras, got {type(cameras).__name__}")
    return cameras


def camera_from_mmpose(params: Mapping[str, Any], width: int | None = None,
                       height: int | None = None) -> Camera:
    """:class:`Camera` from one mmpose camera dict (``R`` camera->world, ``T`` position)."""
    R_c2w = np.asarray(params["R"], dtype=np.float64).reshape(3, 3)
    position = np.asarray(params["T"], dtype=np.float64).reshape(3)
    R = R_c2w.T
    return Camera.from_matrices(_intrinsics(params), R, -R @ position,
                                int(width or params["w"]), int(height or params["h"]))


def _intrinsics(params: Mapping[str, Any]) -> np.ndarray:
    """3x3 K from mmpose's ``f`` (fx, fy) and ``c`` (cx, cy), pixels."""
    f = np.asarray(params["f"], dtype=np.float64).reshape(2)
    c = np.asarray(params["c"], dtype=np.float64).reshape(2)
    return np.array([[f[0], 0.0, c[0]], [0.0, f[1], c[1]], [0.0, 0.0, 1.0]])


def _masked(points: np.ndarray, vis: np.ndarray, where: str) -> np.ndarray:
    """Copy of ``points`` with rows whose visibility flag is 0 set to NaN. A NaN or infinite
    coordinate of a joint marked visible (or a NaN visibility) is refused, naming ``where``
    and the joints: these files mark a missing joint with visibility 0, so such a value is
    damage, and it would otherwise be read as a missing joint without a word."""
    out = np.array(points, dtype=np.float64)
    vis = np.asarray(vis, dtype=np.float64)
    bad = ~np.isfinite(vis) | ((vis > 0) & ~np.isfinite(out).all(axis=-1))
    if bad.any():
        joints = [JOINT_NAMES[j] for j in np.flatnonzero(bad)]
        raise ValueError(f"{where}: NaN or infinite values at visible joint(s) {joints} (a "
                         "missing joint has visibility 0): the file is damaged")
    out[vis <= 0] = np.nan
    return out


def read_h36m_body3d(npz_path: str | Path, cameras: str | Path | Mapping | None = None,
                     every: int = 1) -> list[PoseRecord]:
    """mmpose H36M ``body3d`` npz (``imgname``, ``part`` (N,17,3), ``S`` (N,17,4)) -> records.

    ``S`` (camera frame, metres) is moved to the H36M world with the sample's camera from
    ``cameras`` (a path to ``cameras.pkl``, an already loaded dict, default the
    ``cameras.pkl`` beside the npz). Annotated 2D (``part``) is kept as ``joints_2d``. Joints
    whose visibility is 0 are NaN. Action = canonical H36M action parsed from ``imgname``.
    """
    npz_path = Path(npz_path)
    cams = _cameras_arg(cameras, npz_path.parent / "cameras.pkl")
    with np.load(npz_path, allow_pickle=False) as data:
        imgnames, parts, S = data["imgname"], data["part"], data["S"]
    if S.ndim != 3 or S.shape[1:] != (17, 4) or parts.shape[1:] != (17, 3):
        raise ValueError(f"{npz_path}: 'S' has shape {S.shape} and 'part' {parts.shape}; expected "
                         "(N, 17, 4) and (N, 17, 3) (the 17-joint H36M body3d layout)")
    records = []
    for i in range(0, len(imgnames), every):
        info = parse_h36m_imgname(str(imgnames[i]))
        key = (info["subject"], info["camera_id"])
        if key not in cams:
            raise KeyError(f"{npz_path}: no camera {key} in the camera file")
        params = cams[key]
        camera = camera_from_mmpose(params)
        sample = f"{npz_path}: sample {i} ({imgnames[i]})"
        joints_cam = _masked(S[i, :, :3], S[i, :, 3], f"{sample}, 'S'")
        joints_2d = _masked(parts[i, :, :2], parts[i, :, 2], f"{sample}, 'part'")
        meta = {**info, "split_group": f"h36m/{info['subject']}", "imgname": str(imgnames[i]),
                "file": str(npz_path),
                "distortion_k": np.asarray(params.get("k", np.zeros(3))).reshape(-1).tolist(),
                "distortion_p": np.asarray(params.get("p", np.zeros(2))).reshape(-1).tolist()}
        records.append(PoseRecord(
            pose_id=f"h36m/{Path(str(imgnames[i])).stem}", joints_3d=camera.to_world(joints_cam),
            camera=camera, action=info["action"], source="h36m", joints_2d=joints_2d, meta=meta))
    return records


def _cameras_arg(cameras: str | Path | Mapping | None, default: Path) -> Mapping:
    if cameras is None:
        cameras = default
    return load_h36m_cameras(cameras) if isinstance(cameras, (str, Path)) else cameras


def read_videopose3d(npz_path: str | Path, cameras: Mapping | None = None,
                     camera_id: str | None = None, every: int = 1, seed: int = 0,
                     subjects: Sequence[str] | None = None) -> list[PoseRecord]:
    """VideoPose3D ``data_3d_h36m.npz`` (``positions_3d``: pickled ``{subject: {action:
    (frames, 32, 3)}}``, H36M world metres, z up) -> H36M-17 records, every ``every``-th frame.

    The file has no cameras. With ``cameras`` (mmpose-style dict keyed ``(subject, camera_id)``
    holding R/T/f/c/w/h dicts or :class:`Camera` objects) each record gets that subject's
    camera ``camera_id`` (default: its first camera id in sorted order); without, a random
    camera per record (:func:`p2l3d_core.poses.camera.framing_camera`,
    ``np.random.default_rng(seed)``) aimed at and framing the pose. The object array is read with
    the restricted unpickler, never ``allow_pickle``.
    """
    npz_path = Path(npz_path)
    positions = load_npz_object(npz_path, "positions_3d")
    if not isinstance(positions, dict):
        raise TypeError(f"{npz_path}: positions_3d holds a {type(positions).__name__}, not a dict")
    rng = np.random.default_rng(seed)
    records = []
    for subject in sorted(positions):
        if subjects is not None and subject not in subjects:
            continue
        for action_raw in sorted(positions[subject]):
            clip = np.asarray(positions[subject][action_raw], dtype=np.float64)
            if clip.ndim != 3 or clip.shape[1:] != (32, 3):
                raise ValueError(f"{npz_path}: {subject}/{action_raw} has shape {clip.shape}, "
                                 "expected (frames, 32, 3)")
            joints17 = clip[:, list(H36M32_TO_17), :]
            broken = ~np.isfinite(joints17).all(axis=-1)
            if broken.any():  # mocap has no missing joints: a NaN is damage, not "unseen"
                frame = int(np.flatnonzero(broken.any(axis=1))[0])
                joints = [JOINT_NAMES[j] for j in np.flatnonzero(broken[frame])]
                raise ValueError(f"{npz_path}: {subject}/{action_raw} frame {frame}: NaN or "
                                 f"infinite positions of {joints}: the file is damaged")
            for frame in range(0, len(clip), every):
                joints = joints17[frame]
                camera, cam_name = _pick_camera(cameras, subject, camera_id, joints, rng)
                records.append(PoseRecord(
                    pose_id=f"h36m_vp3d/{subject}/{action_raw}/{frame:06d}",
                    joints_3d=joints, camera=camera, action=canonical_action(action_raw),
                    source="h36m_videopose3d",
                    meta={"subject": subject, "split_group": f"h36m/{subject}",
                          "action_raw": action_raw, "frame": frame,
                          "camera_id": cam_name, "file": str(npz_path)}))
    return records


def _pick_camera(cameras: Mapping | None, subject: str, camera_id: str | None,
                 joints: np.ndarray, rng: np.random.Generator) -> tuple[Camera, str]:
    if cameras is None:
        return framing_camera(joints, rng), "random"
    ids = sorted(cam for subj, cam in cameras if subj == subject)
    if not ids:
        raise KeyError(f"no camera for subject {subject}")
    cam_name = camera_id if camera_id is not None else ids[0]
    params = cameras[(subject, cam_name)]
    return (params if isinstance(params, Camera) else camera_from_mmpose(params)), cam_name


def read_3dhp_body3d(npz_path: str | Path, cameras: str | Path | Mapping | None = None,
                     every: int = 1) -> list[PoseRecord]:
    """mmpose MPI-INF-3DHP npz (same keys as the H36M one, 3DHP joint order) -> records.

    The camera pickle is ``cameras_train.pkl`` / ``cameras_test.pkl`` beside the npz (chosen by
    the file name) unless given. Train cameras are keyed ``'S4_Seq2_Cam0'`` and have
    extrinsics with the same convention as H36M (``X_world = R X_cam + T``), but the 3DHP
    world is y-up: it is turned to z-up with ``(x, y, z) -> (x, -z, y)``. Test cameras
    (``'TS1'``...) have intrinsics only, so no world frame exists: the pose stays in its camera
    frame with y-down turned into z-up, ``(x, y, z)_cam -> (x, z, -y)`` (the camera at the
    origin looking along ``+y``; "up" is then the camera's up, off by the camera's tilt).
    3DHP gives no floor: in both cases each pose stands on ``z = 0`` where its joints rest
    (:func:`p2l3d_core.poses.floor.floor_height`: a flat foot's ankle 8 cm up, not 0) and the
    camera's translation is shifted to match. Action labels are not in this layout: ``'unknown'``.
    """
    npz_path = Path(npz_path)
    split = "test" if "test" in npz_path.stem.split("_")[-1] else "train"
    cams = _cameras_arg(cameras, npz_path.parent / f"cameras_{split}.pkl")
    with np.load(npz_path, allow_pickle=False) as data:
        imgnames, parts, S = data["imgname"], data["part"], data["S"]
    order = list(MPI3DHP17_TO_H36M)
    records = []
    for i in range(0, len(imgnames), every):
        name = str(imgnames[i])
        match = _3DHP_IMG.search(name)
        if match is None or match["key"] not in cams:
            raise KeyError(f"{npz_path}: no camera for image {name!r}")
        params = cams[match["key"]]
        joints_cam = _masked(S[i, order, :3], S[i, order, 3], f"{npz_path}: sample {i} "
                             f"({name}), 'S'")
        width, height = _3dhp_image_size(params)
        if "R" in params and "T" in params:  # world frame: cam -> 3DHP world (y up) -> z up
            R_c2w = Y_UP_TO_Z_UP @ np.asarray(params["R"], dtype=np.float64)
            origin = Y_UP_TO_Z_UP @ np.asarray(params["T"], dtype=np.float64).reshape(3)
            frame = "world"
        else:  # camera frame turned z-up
            R_c2w, origin, frame = CAM_TO_Z_UP, np.zeros(3), "camera"
        joints = joints_cam @ R_c2w.T + origin
        shift = np.array([0.0, 0.0, -floor_height(joints[None])])
        joints = joints + shift
        R = R_c2w.T  # world -> camera
        camera = Camera.from_matrices(_intrinsics(params), R, -R @ (origin + shift), width,
                                       height)
        records.append(PoseRecord(
            pose_id=f"3dhp/{Path(name).stem}", joints_3d=joints, camera=camera,
            action="unknown", source="mpi_inf_3dhp",
            joints_2d=_masked(parts[i, order, :2], parts[i, order, 2],
                              f"{npz_path}: sample {i} ({name}), 'part'"),
            meta={"imgname": name, "camera_key": match["key"], "frame": int(match["frame"]),
                  "split_group": f"3dhp/{match['key'].split('_Cam')[0]}",
                  "frame_of_reference": frame, "file": str(npz_path)}))
    return records


def _3dhp_image_size(params: Mapping[str, Any]) -> tuple[int, int]:
    """Image size; mmpose's ``cameras_train.pkl`` stores ``h = 204.0`` for every 2048x2048
    training camera (a truncated 2048: the annotated 2D reaches y > 1600), corrected here."""
    width, height = int(params["w"]), int(params["h"])
    if (width, height) == (2048, 204):
        height = 2048
    return width, height


__all__ = ["H36M32_TO_17", "H36M_ACTIONS", "MPI3DHP17_TO_H36M", "camera_from_mmpose",
           "canonical_action", "load_h36m_cameras", "parse_h36m_imgname",
           "read_3dhp_body3d", "read_h36m_body3d", "read_videopose3d"]
