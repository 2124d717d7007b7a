"""Keypoints from other estimators: COCO-17, BlazePose-33, MPII-16 or H36M-17, to the joints a
model reads (H36M-17, NaN = missing) and to the COCO-17 ``[x, y, confidence]`` a user gets back.

A joint whose confidence (or visibility) is below the threshold counts as missing, which the
renderer and the keypoint features already handle. Only the joints the formats share are
converted (``skeleton.py`` holds the mappings); a person needs at least :data:`MIN_JOINTS`
of the 17 to be described.
"""

from __future__ import annotations

import numpy as np

from p2l3d_core import skeleton
from p2l3d_core.inference.blazepose import COCO17_FROM_BLAZEPOSE33
from p2l3d_core.inference.images import BadInput
from p2l3d_core.skeleton import JOINT_NAMES, J

FORMATS: dict[str, int] = {"coco17": 17, "blazepose33": 33, "mpii16": 16, "h36m17": 17}
MIN_CONFIDENCE = 0.2  # MoveNet scores true joints of small or side-on people 0.2-0.3
MIN_JOINTS = 6  # of the 17 a model reads: fewer is not a pose to describe
COCO17_NAMES = ("nose", "l_eye", "r_eye", "l_ear", "r_ear", "l_shoulder", "r_shoulder",
                "l_elbow", "r_elbow", "l_wrist", "r_wrist", "l_hip", "r_hip", "l_knee", "r_knee",
                "l_ankle", "r_ankle")
# H36M-17 joint of each COCO-17 keypoint the layouts share (the nose is H36M's neck/nose).
_COCO_FROM_H36M = {0: J["neck"], **{i: J[n] for i, n in enumerate(COCO17_NAMES)
                                    if n in JOINT_NAMES and i > 4}}
_TO_H36M = {"coco17": skeleton.from_coco17, "blazepose33": skeleton.from_blazepose33,
            "mpii16": skeleton.from_mpii16, "h36m17": lambda kp: np.array(kp, dtype=np.float64)}


def check_keypoints(keypoints, keypoint_format: str, name: str = "keypoints") -> np.ndarray:
    """``(J, 2)`` or ``(J, 3)`` in ``keypoint_format`` -> ``(J, 3)`` float64 ``[x, y, c]``
    (c = 1 where none was given; above 1 read as 1, as COCO's visibility 2); :class:`BadInput`
    on a wrong shape, NaN or infinity."""
    if keypoint_format not in FORMATS:
        raise BadInput(f"{name}: unknown keypoint format {keypoint_format!r}; one of "
                       f"{', '.join(FORMATS)}")
    try:
        kp = np.asarray(keypoints, dtype=np.float64)
    except (TypeError, ValueError):
        raise BadInput(f"{name}: not a numeric array of keypoints") from None
    joints = FORMATS[keypoint_format]
    if kp.ndim != 2 or kp.shape[0] != joints or kp.shape[1] not in (2, 3):
        hint = ("; an image must be (H, W, 3) BGR" if kp.ndim == 2 and min(kp.shape) > 3
                else "")
        raise BadInput(f"{name}: {keypoint_format} keypoints must have shape ({joints}, 2) or "
                       f"({joints}, 3); got {kp.shape}{hint}")
    if not np.isfinite(kp).all():
        rows = sorted({int(r) for r in np.argwhere(~np.isfinite(kp))[:, 0]})
        raise BadInput(f"{name}: NaN or infinite values at joints {rows[:8]}; mark a missing "
                       "joint with confidence 0 instead")
    if kp.shape[1] == 2:
        return np.concatenate([kp, np.ones((joints, 1))], axis=1)
    if (kp[:, 2] < 0).any():
        raise BadInput(f"{name}: negative confidence at joints "
                       f"{np.flatnonzero(kp[:, 2] < 0)[:8].tolist()}")
    kp[:, 2] = np.minimum(kp[:, 2], 1.0)  # COCO's visibility 2 ("visible") reads as 1
    return kp


def to_model_joints(kp: np.ndarray, keypoint_format: str,
                    min_confidence: float = MIN_CONFIDENCE) -> np.ndarray:
    """Checked ``(J, 3)`` keypoints -> ``(17, 2)`` H36M-17 pixels, NaN where missing."""
    xy = np.where((kp[:, 2] >= min_confidence)[:, None], kp[:, :2], np.nan)
    return _TO_H36M[keypoint_format](xy)


def to_coco17(kp: np.ndarray, keypoint_format: str, joints: np.ndarray) -> np.ndarray:
    """The COCO-17 ``[x, y, confidence]`` a person is reported with: the input's own keypoints
    where the format has them, else the H36M joints ``joints`` (confidence 1 where known);
    ``[0, 0, 0]`` for a joint the input lacks."""
    if keypoint_format == "coco17":
        return kp.astype(np.float32)
    if keypoint_format == "blazepose33":
        return kp[list(COCO17_FROM_BLAZEPOSE33)].astype(np.float32)
    out = np.zeros((17, 3), dtype=np.float32)
    for coco, h36m in _COCO_FROM_H36M.items():
        if np.isfinite(joints[h36m]).all():
            out[coco] = (*joints[h36m], 1.0)
    return out


def box_of(coco17: np.ndarray, min_confidence: float = MIN_CONFIDENCE) -> list[float]:
    """``[x0, y0, x1, y1]`` around the keypoints at or above ``min_confidence``."""
    seen = coco17[coco17[:, 2] >= min_confidence, :2]
    if not len(seen):
        return [0.0, 0.0, 0.0, 0.0]
    return [float(v) for v in (*seen.min(axis=0), *seen.max(axis=0))]


def joints_known(joints: np.ndarray) -> int:
    return int(np.isfinite(joints).all(-1).sum())


def read_keypoint_file(data: bytes, name: str) -> list[tuple[str, np.ndarray]]:
    """People in a keypoints JSON file: COCO ``person_keypoints`` (``annotations``, each with a
    flat ``keypoints`` list of 17 x (x, y, v)), a list of such objects, or one object. Returns
    ``(label, (17, 3) array)`` per person; COCO's ``v`` (0 missing, 1 occluded, 2 visible)
    becomes the confidence 0 or 1."""
    import json

    try:
        doc = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise BadInput(f"{name}: not valid JSON ({err})") from None
    people = doc.get("annotations", [doc]) if isinstance(doc, dict) else doc
    if not isinstance(people, list) or not people:
        raise BadInput(f"{name}: no people (expected COCO annotations with 'keypoints')")
    out = []
    for k, person in enumerate(people):
        if not isinstance(person, dict) or "keypoints" not in person:
            raise BadInput(f"{name}: entry {k} has no 'keypoints'")
        kp = np.asarray(person["keypoints"], dtype=np.float64)
        if kp.size != 51:
            raise BadInput(f"{name}: entry {k} has {kp.size} keypoint values, COCO-17 has 51")
        kp = kp.reshape(17, 3)
        kp[:, 2] = kp[:, 2] > 0
        label = f"{name}#{person.get('id', k)}"
        out.append((label, kp))
    return out
