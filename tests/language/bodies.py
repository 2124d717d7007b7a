"""Hand-built test people with known joint coordinates (metres, world frame, +z up).

The base person stands at the origin facing +x, so the body frame equals the world frame:
forward = +x, the person's left = +y, up = +z. Tests edit single joints to build each
situation, so every expected answer follows from plain arithmetic on these numbers.
"""

from __future__ import annotations

import numpy as np

from p2l3d_core.skeleton import NUM_JOINTS, J

CAMERA_IN_FRONT = np.array([4.0, 0.0, 1.5])  # on the person's +x side: they face it

_STANDING = {
    "pelvis": (0.0, 0.0, 0.95),
    "r_hip": (0.0, -0.13, 0.95), "r_knee": (0.0, -0.13, 0.52), "r_ankle": (0.0, -0.13, 0.08),
    "l_hip": (0.0, 0.13, 0.95), "l_knee": (0.0, 0.13, 0.52), "l_ankle": (0.0, 0.13, 0.08),
    "spine": (0.0, 0.0, 1.20), "thorax": (0.0, 0.0, 1.45),
    "neck": (0.08, 0.0, 1.60), "head": (0.0, 0.0, 1.72),
    "l_shoulder": (0.0, 0.18, 1.42), "l_elbow": (0.0, 0.20, 1.14), "l_wrist": (0.0, 0.21, 0.88),
    "r_shoulder": (0.0, -0.18, 1.42), "r_elbow": (0.0, -0.20, 1.14),
    "r_wrist": (0.0, -0.21, 0.88),
}
_T_ARMS = {
    "l_elbow": (0.0, 0.46, 1.42), "l_wrist": (0.0, 0.72, 1.42),
    "r_elbow": (0.0, -0.46, 1.42), "r_wrist": (0.0, -0.72, 1.42),
}
UPPER_BODY = ("spine", "thorax", "neck", "head", "l_shoulder", "l_elbow", "l_wrist",
              "r_shoulder", "r_elbow", "r_wrist")


def standing(t_arms: bool = False) -> np.ndarray:
    """(17, 3) person standing at the origin facing +x: arms hanging at the sides, or held out
    horizontally to the sides (T-pose) with ``t_arms``."""
    joints = np.full((NUM_JOINTS, 3), np.nan)
    for name, xyz in {**_STANDING, **(_T_ARMS if t_arms else {})}.items():
        joints[J[name]] = xyz
    return joints


def put(joints: np.ndarray, **positions: tuple[float, float, float]) -> np.ndarray:
    """Copy of ``joints`` with the named joints moved to the given coordinates."""
    out = joints.copy()
    for name, xyz in positions.items():
        out[J[name]] = xyz
    return out


def shift(joints: np.ndarray, name: str, dx: float = 0.0, dy: float = 0.0, dz: float = 0.0
          ) -> np.ndarray:
    out = joints.copy()
    out[J[name]] += (dx, dy, dz)
    return out


def rotation(axis: str, degrees: float) -> np.ndarray:
    """Right-handed rotation matrix about a world axis."""
    a = np.radians(degrees)
    c, s = np.cos(a), np.sin(a)
    return {"x": np.array([[1, 0, 0], [0, c, -s], [0, s, c]]),
            "y": np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]]),
            "z": np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])}[axis]


def turn(joints: np.ndarray, degrees: float) -> np.ndarray:
    """The whole person turned about the vertical through the origin (+90: now facing +y)."""
    return joints @ rotation("z", degrees).T


def lean(joints: np.ndarray, degrees: float, axis: str) -> np.ndarray:
    """Upper body rotated about the pelvis: axis "y" with +degrees leans forward (+x), axis
    "x" with -degrees leans to the left (+y)."""
    out = joints.copy()
    pelvis = joints[J["pelvis"]]
    idx = [J[n] for n in UPPER_BODY]
    out[idx] = (joints[idx] - pelvis) @ rotation(axis, degrees).T + pelvis
    return out


def bend(joints: np.ndarray, joint: str, degrees: float) -> np.ndarray:
    """Set the angle at ``joint`` ("l_elbow", "r_knee", ...) by swinging the distal segment
    forward (+x) in the sagittal plane, keeping its length: 180 = straight."""
    parent = {"elbow": "shoulder", "knee": "hip"}[joint[2:]]
    child = {"elbow": "wrist", "knee": "ankle"}[joint[2:]]
    side = joint[:2]
    p, b, c = (joints[J[side + n]] for n in (parent, joint[2:], child))
    up = (p - b) / np.linalg.norm(p - b)
    fwd = np.array([1.0, 0.0, 0.0])
    fwd = fwd - up * (fwd @ up)
    fwd /= np.linalg.norm(fwd)
    a = np.radians(degrees)
    out = joints.copy()
    out[J[side + child]] = b + np.linalg.norm(c - b) * (np.cos(a) * up + np.sin(a) * fwd)
    return out


def lying_on_back(joints: np.ndarray) -> np.ndarray:
    """The person rotated to lie on their back (face up), head towards -x, resting at z ~ 0.1."""
    out = joints @ rotation("y", -90.0).T
    out[:, 2] += 0.10 - np.nanmin(out[:, 2])
    return out


def batch(*poses: np.ndarray) -> np.ndarray:
    return np.stack(poses)
