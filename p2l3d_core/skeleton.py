"""Joint layouts and conversions into the canonical Human3.6M 17-joint skeleton.

Every pose in the platform is an array of shape ``(..., 17, D)`` in the H36M-17 order below.
A joint that a source format does not have, or did not see, is ``NaN`` in every coordinate:
converters derive a joint only where anatomy defines it (the pelvis is the mid-point of the
hips) and otherwise mark it missing. Nothing is invented silently.

World frame convention (3D): metres, right-handed, ``+z`` up, ground at ``z = 0``.
Body frame (used by posecodes): ``x`` forward, ``y`` to the person's left, ``z`` up.
"""

from __future__ import annotations

import numpy as np

JOINT_NAMES: tuple[str, ...] = (
    "pelvis",  # 0
    "r_hip",  # 1
    "r_knee",  # 2
    "r_ankle",  # 3
    "l_hip",  # 4
    "l_knee",  # 5
    "l_ankle",  # 6
    "spine",  # 7
    "thorax",  # 8
    "neck",  # 9  (H36M "neck/nose": roughly the nose)
    "head",  # 10 (top of the head)
    "l_shoulder",  # 11
    "l_elbow",  # 12
    "l_wrist",  # 13
    "r_shoulder",  # 14
    "r_elbow",  # 15
    "r_wrist",  # 16
)
NUM_JOINTS = len(JOINT_NAMES)
J = {name: i for i, name in enumerate(JOINT_NAMES)}

PARENTS: tuple[int, ...] = (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15)

# (child, parent) bones; every joint but the pelvis has exactly one.
BONES: tuple[tuple[int, int], ...] = tuple((c, p) for c, p in enumerate(PARENTS) if p >= 0)

# Mirror partner of each joint (itself for the midline joints): used for left/right flips.
FLIP_INDEX: tuple[int, ...] = (0, 4, 5, 6, 1, 2, 3, 7, 8, 9, 10, 14, 15, 16, 11, 12, 13)
LEFT_RIGHT_PAIRS: tuple[tuple[int, int], ...] = ((4, 1), (5, 2), (6, 3), (11, 14), (12, 15),
                                                 (13, 16))

# Which side each bone belongs to, for rendering: "left", "right" or "centre".
def _side(joint: int) -> str:
    name = JOINT_NAMES[joint]
    return "left" if name.startswith("l_") else "right" if name.startswith("r_") else "centre"


BONE_SIDES: tuple[str, ...] = tuple(_side(c) for c, _ in BONES)


def missing_mask(joints: np.ndarray) -> np.ndarray:
    """True where a joint is missing (any coordinate NaN). Shape ``joints.shape[:-1]``."""
    return np.isnan(joints).any(axis=-1)


def _empty(shape_prefix: tuple[int, ...], dim: int) -> np.ndarray:
    return np.full((*shape_prefix, NUM_JOINTS, dim), np.nan, dtype=np.float64)


def _midpoint(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a + b) / 2.0  # NaN if either is NaN: a derived joint needs both sources


# ---------------------------------------------------------------------------------------------
# COCO-17: nose, l_eye, r_eye, l_ear, r_ear, l_shoulder, r_shoulder, l_elbow, r_elbow, l_wrist,
#          r_wrist, l_hip, r_hip, l_knee, r_knee, l_ankle, r_ankle
# Mapping: limbs map one to one; pelvis = mid-hips; thorax = mid-shoulders; neck/nose = nose;
# spine = mid-point of pelvis and thorax (H36M's spine joint sits there within ~3 cm);
# head top = missing (COCO has no point on the crown; eyes/ears do not define it).
COCO17_NAMES: tuple[str, ...] = (
    "nose", "l_eye", "r_eye", "l_ear", "r_ear", "l_shoulder", "r_shoulder", "l_elbow",
    "r_elbow", "l_wrist", "r_wrist", "l_hip", "r_hip", "l_knee", "r_knee", "l_ankle", "r_ankle",
)
_COCO_DIRECT = {
    "r_hip": 12, "r_knee": 14, "r_ankle": 16, "l_hip": 11, "l_knee": 13, "l_ankle": 15,
    "neck": 0, "l_shoulder": 5, "l_elbow": 7, "l_wrist": 9, "r_shoulder": 6, "r_elbow": 8,
    "r_wrist": 10,
}


def _with_torso(out: np.ndarray) -> np.ndarray:
    """Derive pelvis, thorax and spine (each only if not set) from the hips and shoulders.

    The spine is derived from the final pelvis and thorax, so a source's own pelvis (MPII,
    Panoptic body centre) is the one the spine is the mid-point of.
    """
    pelvis = out[..., J["pelvis"], :]
    derived_pelvis = _midpoint(out[..., J["l_hip"], :], out[..., J["r_hip"], :])
    out[..., J["pelvis"], :] = np.where(np.isnan(pelvis), derived_pelvis, pelvis)
    thorax = out[..., J["thorax"], :]
    derived_thorax = _midpoint(out[..., J["l_shoulder"], :], out[..., J["r_shoulder"], :])
    out[..., J["thorax"], :] = np.where(np.isnan(thorax), derived_thorax, thorax)
    spine = out[..., J["spine"], :]
    derived_spine = _midpoint(out[..., J["pelvis"], :], out[..., J["thorax"], :])
    out[..., J["spine"], :] = np.where(np.isnan(spine), derived_spine, spine)
    return out


def _direct(src: np.ndarray, mapping: dict[str, int]) -> np.ndarray:
    src = np.asarray(src, dtype=np.float64)
    out = _empty(src.shape[:-2], src.shape[-1])
    for name, idx in mapping.items():
        out[..., J[name], :] = src[..., idx, :]
    return out


def from_coco17(keypoints: np.ndarray) -> np.ndarray:
    """COCO-17 ``(..., 17, D)`` -> H36M-17. Mark unseen COCO joints NaN before calling."""
    return _with_torso(_direct(keypoints, _COCO_DIRECT))


# ---------------------------------------------------------------------------------------------
# MPII-16: 0 r_ankle 1 r_knee 2 r_hip 3 l_hip 4 l_knee 5 l_ankle 6 pelvis 7 thorax 8 upper_neck
#          9 head_top 10 r_wrist 11 r_elbow 12 r_shoulder 13 l_shoulder 14 l_elbow 15 l_wrist
# Mapping: one to one for limbs, pelvis, thorax and head top; neck/nose = missing (MPII's upper
# neck lies below the nose, ~8 cm, so it is not substituted); spine = mid pelvis-thorax.
_MPII_DIRECT = {
    "r_ankle": 0, "r_knee": 1, "r_hip": 2, "l_hip": 3, "l_knee": 4, "l_ankle": 5,
    "pelvis": 6, "thorax": 7, "head": 9, "r_wrist": 10, "r_elbow": 11, "r_shoulder": 12,
    "l_shoulder": 13, "l_elbow": 14, "l_wrist": 15,
}


def from_mpii16(keypoints: np.ndarray) -> np.ndarray:
    """MPII-16 ``(..., 16, D)`` -> H36M-17 (pelvis kept from MPII when present)."""
    return _with_torso(_direct(keypoints, _MPII_DIRECT))


# ---------------------------------------------------------------------------------------------
# BlazePose-33 (mediapipe order): 0 nose, 1-6 eyes, 7 l_ear, 8 r_ear, 9-10 mouth, 11 l_shoulder,
# 12 r_shoulder, 13 l_elbow, 14 r_elbow, 15 l_wrist, 16 r_wrist, 17-22 hand points, 23 l_hip,
# 24 r_hip, 25 l_knee, 26 r_knee, 27 l_ankle, 28 r_ankle, 29-30 heels, 31-32 foot index.
# Mapping: limbs one to one; pelvis = mid-hips; thorax = mid-shoulders; neck/nose = nose;
# spine = mid pelvis-thorax; head top = missing (no crown landmark).
BLAZEPOSE33_NUM = 33
_BLAZE_DIRECT = {
    "r_hip": 24, "r_knee": 26, "r_ankle": 28, "l_hip": 23, "l_knee": 25, "l_ankle": 27,
    "neck": 0, "l_shoulder": 11, "l_elbow": 13, "l_wrist": 15, "r_shoulder": 12, "r_elbow": 14,
    "r_wrist": 16,
}


def from_blazepose33(landmarks: np.ndarray) -> np.ndarray:
    """BlazePose-33 ``(..., 33, D)`` -> H36M-17."""
    return _with_torso(_direct(landmarks, _BLAZE_DIRECT))


# ---------------------------------------------------------------------------------------------
# CMU Panoptic "coco19": 0 neck, 1 nose, 2 body centre (mid-hip), 3 l_shoulder, 4 l_elbow,
# 5 l_wrist, 6 l_hip, 7 l_knee, 8 l_ankle, 9 r_shoulder, 10 r_elbow, 11 r_wrist, 12 r_hip,
# 13 r_knee, 14 r_ankle, 15 l_eye, 16 l_ear, 17 r_eye, 18 r_ear.
# Mapping: limbs one to one; pelvis = body centre; thorax = Panoptic neck (its "neck" sits at
# the base of the neck, where H36M's thorax is); neck/nose = nose; spine = mid pelvis-thorax;
# head top = missing.
_PANOPTIC_DIRECT = {
    "pelvis": 2, "thorax": 0, "neck": 1, "l_shoulder": 3, "l_elbow": 4, "l_wrist": 5,
    "l_hip": 6, "l_knee": 7, "l_ankle": 8, "r_shoulder": 9, "r_elbow": 10, "r_wrist": 11,
    "r_hip": 12, "r_knee": 13, "r_ankle": 14,
}


def from_panoptic19(joints: np.ndarray) -> np.ndarray:
    """Panoptic-19 ``(..., 19, D)`` -> H36M-17 (pelvis kept from the body centre)."""
    return _with_torso(_direct(joints, _PANOPTIC_DIRECT))


# ---------------------------------------------------------------------------------------------
# CMU mocap BVH (31 joints, cgspeed conversion): joints are looked up by name after forward
# kinematics. Mapping: the pelvis is the hips' mid-point, as for a photo's keypoints (CMU's root,
# "Hips", sits 9-10 cm above it on 131_01/03, where the generator's pelvis is 2 cm above: a
# 2D student read the difference as the torso leaning forward, issue 27); LeftHip/LeftKnee/
# LeftAnkle (BVH names the joint at the *start* of each bone, so "LeftKnee" is the knee) ->
# l_hip/l_knee/l_ankle; Chest -> spine and
# Neck -> thorax (the CMU joints nearest H36M's: on 131_01 Chest sits 18 cm below the shoulder
# line and Neck 1 cm above it, where H36M has spine 17-24 cm below and thorax 1-8 cm above;
# "lowerneck" has a zero offset from Chest2, 8 cm below the shoulders, so it is not used);
# Head (base of the skull) -> neck/nose;
# the Head's end site -> head top; LeftShoulder/LeftElbow/LeftWrist -> l_shoulder/l_elbow/
# l_wrist (and right).
CMU31_TO_H36M: dict[str, str] = {
    "RightHip": "r_hip", "RightKnee": "r_knee", "RightAnkle": "r_ankle",
    "LeftHip": "l_hip", "LeftKnee": "l_knee", "LeftAnkle": "l_ankle",
    "Chest": "spine", "Neck": "thorax", "Head": "neck", "Head_end": "head",
    "LeftShoulder": "l_shoulder", "LeftElbow": "l_elbow", "LeftWrist": "l_wrist",
    "RightShoulder": "r_shoulder", "RightElbow": "r_elbow", "RightWrist": "r_wrist",
}


def from_cmu31(positions: dict[str, np.ndarray]) -> np.ndarray:
    """Named CMU joint positions ``{name: (..., 3)}`` (from BVH forward kinematics) -> H36M-17.

    Joints absent from ``positions`` are NaN.
    """
    any_value = next(iter(positions.values()))
    out = _empty(np.shape(any_value)[:-1], np.shape(any_value)[-1])
    for cmu_name, h36m_name in CMU31_TO_H36M.items():
        if cmu_name in positions:
            out[..., J[h36m_name], :] = positions[cmu_name]
    return _with_torso(out)


# ---------------------------------------------------------------------------------------------
# Normalisation


def normalize_2d(keypoints_2d: np.ndarray, margin: float = 0.1) -> np.ndarray:
    """Map 2D keypoints (pixels) into ``[0, 1]^2``: centred on the bounding box of the present
    joints, scaled by its longer side so the aspect ratio is kept, with ``margin`` on each side.

    Why: a 2D skeleton image must not depend on where the person stood in the photo or how large
    they appeared; shape and proportions are the signal. Missing joints stay NaN.
    """
    kp = np.asarray(keypoints_2d, dtype=np.float64)
    lo = np.nanmin(kp, axis=-2, keepdims=True)
    hi = np.nanmax(kp, axis=-2, keepdims=True)
    centre = (lo + hi) / 2.0
    extent = np.max(hi - lo, axis=-1, keepdims=True)
    extent = np.where(extent > 1e-9, extent, 1.0)
    return 0.5 + (kp - centre) / extent * (1.0 - 2.0 * margin)


def root_centre_3d(joints_3d: np.ndarray) -> np.ndarray:
    """Subtract the pelvis from every joint, keeping metres (metric 3D is the teacher's input)."""
    joints = np.asarray(joints_3d, dtype=np.float64)
    return joints - joints[..., J["pelvis"] : J["pelvis"] + 1, :]


def flip_left_right(joints: np.ndarray, axis: int = 0) -> np.ndarray:
    """Mirror a pose along coordinate ``axis`` and swap left/right labels (a valid pose again)."""
    out = np.asarray(joints, dtype=np.float64)[..., list(FLIP_INDEX), :].copy()
    out[..., axis] = -out[..., axis]
    return out
