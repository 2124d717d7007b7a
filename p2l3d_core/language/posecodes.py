"""Posecodes: discrete, language-ready facts measured on 3D joints (the PoseScript way).

Every posecode is a small integer category per pose, measured on world joints in metres
(``+z`` up, ground at ``z = 0``), vectorised over a batch: :func:`measure_posecodes` turns
``(N, 17, 3)`` joints into arrays of shape ``(N,)``. ``-1`` means *unknown*: a joint the code
needs is missing (NaN), or the value falls in a dead band between two categories. Dead bands
exist so that every statement built on a posecode is clearly true: a hand 3 cm in front of the
chest is neither "in front of" nor "beside" the torso, so nothing is said about it.

Body frame (``x`` forward, ``y`` to the person's left, ``z`` up): ``left`` is the horizontal
direction from the right hip to the left hip, averaged with the same for the shoulders (robust to
one missing pair and to a twisted torso); ``up`` is world ``+z``; ``forward = left x up``. A
person facing ``+x`` has the left hip at ``+y`` and gets ``forward = +x``.

A lying person has no meaningful horizontal "forward" (the computed axis runs along the body), so
codes along the body's front/back axis, lean and facing are unknown for lying poses
(:data:`LYING_MIN_TORSO_TILT_DEG`, :data:`LYING_MAX_PELVIS_HEIGHT`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial

import numpy as np

from p2l3d_core.skeleton import NUM_JOINTS, J

# ---------------------------------------------------------------------------------------------
# Categories of every code (index = the integer stored; -1 = unknown).
BEND = ("straight", "slightly_bent", "bent", "fully_bent")
DIRECTION = ("down", "horizontal", "up")
CONTACT = ("on_ground", "off_ground")
SIDES = ("l", "r")

SIDE_CODE_CATEGORIES: dict[str, tuple[str, ...]] = {
    "elbow": BEND,
    "knee": BEND,
    "hand_height": ("above_head", "above_shoulder", "below_shoulder"),
    "hand_depth": ("in_front", "behind"),  # wrist vs torso along the body's forward axis
    "hand_side": ("own_side", "crossed"),  # wrist vs the body's midline
    "hand_head": ("near", "far"),
    "upper_arm": DIRECTION,
    "thigh": DIRECTION,
    "foot_ground": CONTACT,
    "knee_ground": CONTACT,
    "knee_height": ("above_hip", "below_hip"),
}
BODY_CODE_CATEGORIES: dict[str, tuple[str, ...]] = {
    "hands_distance": ("together", "apart", "far_apart"),
    "feet_distance": ("together", "apart", "far_apart"),
    "foot_forward": ("left", "right"),  # which foot is further forward
    "hand_forward": ("left", "right"),  # which hand is further forward
    "torso": ("upright", "leaning", "horizontal", "upside_down"),
    "lean_fb": ("forward", "upright", "backward"),
    "lean_lr": ("left", "upright", "right"),
    "facing": ("towards", "away", "left_side", "right_side"),  # relative to the camera
}
CODE_CATEGORIES: dict[str, tuple[str, ...]] = {
    **{f"{s}_{base}": cats for base, cats in SIDE_CODE_CATEGORIES.items() for s in SIDES},
    **BODY_CODE_CATEGORIES,
}
UNKNOWN = -1

# ---------------------------------------------------------------------------------------------
# Thresholds. Intervals are [low, high) per category, in category order; gaps are dead bands.

BEND_INTERVALS_DEG = ((155.0, 181.0), (125.0, 145.0), (70.0, 115.0), (0.0, 60.0))
"""Elbow/knee angle (180 = straight). A relaxed standing limb sits at 160-180; a right angle
is "bent"; a closed joint (hand at shoulder, heel at buttock) is below ~60. The 10-degree gaps
absorb mocap/marker noise of a few degrees so neighbouring words are never confused."""

DIRECTION_INTERVALS_DEG = ((0.0, 30.0), (65.0, 115.0), (150.0, 181.0))
"""Angle of a limb segment (upper arm, thigh) from straight down. Within 30 degrees of
vertical reads as hanging down; within 25 of horizontal as horizontal; the diagonals between are
left unnamed because "raised" or "lowered" would be a matter of opinion there."""

TORSO_INTERVALS_DEG = ((0.0, 12.0), (25.0, 60.0), (70.0, 110.0), (150.0, 181.0))
"""Tilt of pelvis->thorax from straight up: upright under 12 (normal posture sways ~5-10, and
below the 15-degree lean threshold so "upright" never meets "leans forward"), clearly leaning
25-60, horizontal within 20 of level (lying, bending right over), upside down beyond 150."""

LEAN_INTERVALS_DEG = ((15.0, 120.0), (-8.0, 8.0), (-120.0, -15.0))
"""Signed lean of the torso in the body's sagittal (forward/backward) or frontal (left/right)
plane, positive forward/left. Upright within 8 degrees; a visible lean from 15 degrees, the gap
covering ordinary posture."""

HAND_ABOVE_MARGIN = 0.05
"""Metres a wrist must clear the head top (or the shoulder) to be "above" it, and stay below it
to be "below": about a hand's thickness, so a hand resting on the crown is neither."""

HEAD_TOP_ABOVE_NOSE = 0.12
"""Used when the head top is missing (COCO/BlazePose sources): the crown is ~12 cm above the
nose joint in H36M subjects."""

HAND_DEPTH_DEAD_BAND = 0.12
"""Metres a wrist must be in front of / behind the thorax along the body's forward axis. The
thorax joint lies inside the chest, ~10 cm from the front and back surfaces, so a hand resting
on the belly or the lower back falls in the dead band rather than being called front/behind."""

HAND_SIDE_DEAD_BAND = 0.08
"""Metres a wrist must be left/right of the body's midline to be on a side: about half the
width of a hand, so hands clasped at the centre of the chest are on neither side."""

HAND_NEAR_HEAD = (0.0, 0.25)
HAND_FAR_FROM_HEAD = (0.40, np.inf)
"""Wrist to head-centre distance: within 25 cm the hand touches or frames the head or face
(head radius ~10 cm plus the hand's length); beyond 40 cm it is clearly away."""

HANDS_DISTANCE_INTERVALS = ((0.0, 0.15), (0.25, 0.9), (1.1, np.inf))
"""Wrist-to-wrist distance (m): touching/clasped hands leave wrists under 15 cm apart; arms
spread to the sides put them beyond 1.1 m (a T-pose is ~1.4 m)."""

FEET_DISTANCE_INTERVALS = ((0.0, 0.6), (0.8, 1.8), (2.2, np.inf))
"""Ankle-to-ankle distance in hip widths (so it scales with the body): under 0.6 the feet are
together; a natural stance is ~1; a stride or wide stance exceeds 2.2."""

MIN_HIP_WIDTH = 0.10
"""Floor on the hip width (m) used to normalise, so a degenerate skeleton cannot divide by 0."""

FORWARD_DEAD_BAND = 0.10
"""Metres one foot (or hand) must be ahead of the other along the body's forward axis to be
"further forward": a shoe is ~10 cm wide, smaller offsets are stance noise."""

ANKLE_ON_GROUND = (-np.inf, 0.15)
ANKLE_OFF_GROUND = (0.22, np.inf)
"""Ankle joint height (m). The ankle of a flat foot is 7-10 cm up and ~15 cm on tiptoe;
above 22 cm the foot is lifted."""

KNEE_ON_GROUND = (-np.inf, 0.15)
KNEE_OFF_GROUND = (0.25, np.inf)
"""Knee joint height (m): a kneeling knee's joint centre is 5-10 cm above the floor."""

KNEE_HEIGHT_DEAD_BAND = 0.05
"""Metres the knee must be above/below the hip joint: sitting puts it level (dead band)."""

FACING_INTERVALS_DEG = ((-40.0, 40.0), (140.0, 220.0), (50.0, 130.0), (-130.0, -50.0))
"""Horizontal angle from the body's forward axis to the camera, positive towards the person's
left: camera ahead within 40 degrees -> facing it; behind within 40 -> facing away; on the left
or right within 40 of perpendicular -> that side is turned to the camera. 10-degree gaps keep
three-quarter views out of every word."""

FACING_WRAP_DEG = (FACING_INTERVALS_DEG[1][1] - 360.0 + FACING_INTERVALS_DEG[3][0]) / 2
"""-135: the middle of the dead band where :func:`facing_degrees`' range wraps ("away" ends at
220 = -140, "right side" starts at -130). :func:`facing_category` turns the circle there, so a
nearest reading splits that band at its middle as it does every other."""

MIN_CAMERA_HORIZONTAL_DISTANCE = 0.3
"""Metres: a camera almost straight above the person has no horizontal direction to face."""

MIN_HORIZONTAL_FRACTION = 0.5
"""A hip or shoulder line contributes to the body's left axis only if at least half its length
is horizontal (tilted less than 60 degrees), otherwise its horizontal part is too short to
give a reliable direction (e.g. lying on one side)."""

LYING_MIN_TORSO_TILT_DEG = 60.0
LYING_MAX_PELVIS_HEIGHT = 0.5
"""A torso tilted beyond 60 degrees with the pelvis under 50 cm is lying (bending over keeps
the pelvis near 1 m). For lying poses the horizontal "forward" axis runs along the body, so
front/back relations, lean and facing are not defined."""


# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)  # arrays have no single truth value: identity equality
class Posecodes:
    """Posecodes of a batch: ``codes[name]`` int8 ``(N,)`` (category index or -1) and the raw
    measurements they were binned from in ``values`` (angles in degrees, lengths in metres)."""

    codes: dict[str, np.ndarray]
    values: dict[str, np.ndarray]
    num_poses: int
    _lists: dict[str, list[int]] = field(default_factory=dict, repr=False, compare=False)

    def __len__(self) -> int:
        return self.num_poses

    def __getitem__(self, name: str) -> np.ndarray:
        return self.codes[name]

    def pose(self, i: int) -> dict[str, int]:
        """Plain-int codes of pose ``i``. The arrays are converted to lists once per batch, so
        the per-pose text generation never touches numpy (it is the hot loop)."""
        if not self._lists:
            self._lists.update({k: v.tolist() for k, v in self.codes.items()})
        return {k: v[i] for k, v in self._lists.items()}

    def label(self, name: str, i: int) -> str | None:
        """Category name of code ``name`` for pose ``i``, or None when unknown."""
        value = int(self.codes[name][i])
        return None if value < 0 else CODE_CATEGORIES[name][value]


def _categorise(value: np.ndarray, intervals: tuple[tuple[float, float], ...],
                nearest: bool = False) -> np.ndarray:
    """Category index of the first interval ``[low, high)`` holding ``value``; -1 elsewhere
    (dead bands, NaN). ``nearest``: a value in a dead band takes the closest interval."""
    out = np.full(value.shape, UNKNOWN, dtype=np.int8)
    for k in range(len(intervals) - 1, -1, -1):
        low, high = intervals[k]
        out[(value >= low) & (value < high)] = k
    if nearest:
        gaps = np.stack([np.maximum(low - value, value - high) for low, high in intervals], -1)
        fill = (out == UNKNOWN) & ~np.isnan(value)
        out[fill] = np.nanargmin(np.where(np.isnan(gaps), np.inf, gaps), -1)[fill]
    return out


def _norm(v: np.ndarray) -> np.ndarray:
    return np.sqrt((v * v).sum(axis=-1))


def _angle_deg(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Angle between vectors ``(N, 3)``; NaN if either is missing or has zero length."""
    na, nb = _norm(a), _norm(b)
    denom = np.where((na > 1e-9) & (nb > 1e-9), na * nb, np.nan)
    return np.degrees(np.arccos(np.clip((a * b).sum(axis=-1) / denom, -1.0, 1.0)))


def _joint_angle(p: np.ndarray, a: str, b: str, c: str) -> np.ndarray:
    """Angle at joint ``b`` between the bones to ``a`` and ``c`` (180 = straight)."""
    return _angle_deg(p[:, J[a]] - p[:, J[b]], p[:, J[c]] - p[:, J[b]])


def _angle_from_down(v: np.ndarray) -> np.ndarray:
    return _angle_deg(v, np.broadcast_to(np.array([0.0, 0.0, -1.0]), v.shape))


def _horizontal_unit(v: np.ndarray) -> np.ndarray:
    """Unit horizontal part of ``v``; NaN where it is missing or too vertical to trust."""
    h = v.copy()
    h[:, 2] = 0.0
    nh, nv = _norm(h), _norm(v)
    ok = (nv > 1e-9) & (nh >= MIN_HORIZONTAL_FRACTION * nv)
    return np.where(ok[:, None], h / np.where(nh > 1e-12, nh, 1.0)[:, None], np.nan)


def body_axes(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit ``(forward, left)`` axes ``(N, 3)`` (horizontal) of each pose; NaN when neither the
    hips nor the shoulders give a horizontal left-right line."""
    hips = _horizontal_unit(p[:, J["l_hip"]] - p[:, J["r_hip"]])
    shoulders = _horizontal_unit(p[:, J["l_shoulder"]] - p[:, J["r_shoulder"]])
    both_missing = np.isnan(hips[:, 0]) & np.isnan(shoulders[:, 0])
    total = np.nan_to_num(hips) + np.nan_to_num(shoulders)
    n = _norm(total)
    bad = both_missing | (n < 1e-6)  # hips and shoulders pointing opposite ways
    left = np.where(bad[:, None], np.nan, total / np.where(n > 1e-12, n, 1.0)[:, None])
    # forward = left x up with up = +z: (ly, -lx, 0)
    forward = np.stack([left[:, 1], -left[:, 0], np.zeros(len(p))], axis=1)
    forward[bad] = np.nan
    return forward, left


def torso_tilt(p: np.ndarray) -> np.ndarray:
    """``(N,)`` degrees between each pose's pelvis->thorax line and the vertical."""
    torso = p[:, J["thorax"]] - p[:, J["pelvis"]]
    return _angle_deg(torso, np.broadcast_to(np.array([0.0, 0.0, 1.0]), torso.shape))


def upright_axes(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`body_axes`, NaN for a lying body (:data:`LYING_MIN_TORSO_TILT_DEG`), whose
    horizontal "forward" runs along it: the axes the front/back, lean and facing codes use."""
    return _upright(p, *body_axes(p), torso_tilt(p))


def _upright(p: np.ndarray, forward: np.ndarray, left: np.ndarray, tilt: np.ndarray
             ) -> tuple[np.ndarray, np.ndarray]:
    """:func:`upright_axes` given the poses' :func:`body_axes` and :func:`torso_tilt`
    (``measure_posecodes`` has them already)."""
    lying = (tilt > LYING_MIN_TORSO_TILT_DEG) & (p[:, J["pelvis"], 2] < LYING_MAX_PELVIS_HEIGHT)
    return (np.where(lying[:, None], np.nan, forward),
            np.where(lying[:, None], np.nan, left))


def facing_degrees(p: np.ndarray, camera_positions: np.ndarray) -> np.ndarray:
    """``(N,)`` horizontal angle from each body's forward axis to its camera (``(N, 3)`` world
    centres), positive towards the person's left, in ``[-140, 220)`` so that "away" is one
    interval (:data:`FACING_INTERVALS_DEG`); NaN for a lying body, a camera almost straight
    above (:data:`MIN_CAMERA_HORIZONTAL_DISTANCE`) or unknown axes. The value the facing family
    thresholds, and the direction the teacher's geometry carries
    (``models/keypoints.keypoint_features_3d``)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return _facing(p, camera_positions, *upright_axes(p))


def _facing(p: np.ndarray, camera_positions: np.ndarray, forward: np.ndarray,
            left: np.ndarray) -> np.ndarray:
    """:func:`facing_degrees` given the poses' :func:`upright_axes` (``measure_posecodes`` has
    them already)."""
    to_cam = np.asarray(camera_positions, dtype=np.float64).reshape(len(p), 3) - p[:, J["pelvis"]]
    to_cam[:, 2] = 0.0
    facing = np.degrees(np.arctan2(_dot(to_cam, left), _dot(to_cam, forward)))
    facing = np.where(_norm(to_cam) >= MIN_CAMERA_HORIZONTAL_DISTANCE, facing, np.nan)
    return np.where(facing < -140.0, facing + 360.0, facing)


def facing_category(degrees: np.ndarray, nearest: bool = False) -> np.ndarray:
    """Facing's category index (:data:`FACING_INTERVALS_DEG`) of angles in degrees
    (:func:`facing_degrees`' range, or ``arctan2``'s), -1 in a dead band or NaN; ``nearest``: a
    dead band's value takes the closest category around the circle. Why not ``_categorise``
    alone: it does not know the circle, and read -140 to -135, next to "away" (220), as "right
    side"."""
    degrees = np.asarray(degrees, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        degrees = np.where(degrees < FACING_WRAP_DEG, degrees + 360.0, degrees)
    return _categorise(degrees, FACING_INTERVALS_DEG, nearest)


def feet_distance(p: np.ndarray) -> np.ndarray:
    """``(N,)`` the ankles' distance of each pose in hip widths (the hip width floored at
    :data:`MIN_HIP_WIDTH`), NaN where an ankle or hip is unknown: the value the feet_distance
    family thresholds, and the number the teacher's geometry carries
    (``models/keypoints.keypoint_features_3d``)."""
    hip_width = np.maximum(_norm(p[:, J["l_hip"]] - p[:, J["r_hip"]]), MIN_HIP_WIDTH)
    return _norm(p[:, J["l_ankle"]] - p[:, J["r_ankle"]]) / hip_width


def _dot(v: np.ndarray, axis: np.ndarray) -> np.ndarray:
    return (v * axis).sum(axis=-1)


def _signed(value: np.ndarray, dead_band: float, positive: int, negative: int) -> np.ndarray:
    """``positive`` where value > dead_band, ``negative`` where value < -dead_band, else -1.
    A dead band of 0 decides every measured value (the sign)."""
    out = np.full(value.shape, UNKNOWN, dtype=np.int8)
    out[value > dead_band] = positive
    out[value < -dead_band] = negative
    return out


def measure_posecodes(joints_3d: np.ndarray, camera_positions: np.ndarray | None = None,
                      decisive: bool = False) -> Posecodes:
    """Measure every posecode for a batch of poses.

    ``joints_3d``: ``(N, 17, 3)`` world metres (NaN = missing joint). ``camera_positions``:
    ``(N, 3)`` camera centres in world coordinates, or None (then ``facing`` is unknown).
    ``decisive``: no dead bands, every measured value gets its nearest category. Language
    for training keeps the dead bands (no answer is a guess); a method that must answer every
    question it is asked (rules on lifted 3D) measures decisively.
    """
    band = 0.0 if decisive else 1.0  # dead-band scale
    cat = partial(_categorise, nearest=decisive)
    p = np.asarray(joints_3d, dtype=np.float64)
    if p.ndim != 3 or p.shape[1:] != (NUM_JOINTS, 3):
        raise ValueError(f"joints_3d must have shape (N, {NUM_JOINTS}, 3), got {p.shape}")
    n = len(p)
    codes: dict[str, np.ndarray] = {}
    values: dict[str, np.ndarray] = {}
    with np.errstate(invalid="ignore", divide="ignore"):
        forward, left = body_axes(p)
        tilt = torso_tilt(p)
        upright_frame, upright_left = _upright(p, forward, left, tilt)  # NaN if lying
        pelvis, thorax = p[:, J["pelvis"]], p[:, J["thorax"]]
        torso = thorax - pelvis

        head_top = p[:, J["head"]]
        nose = p[:, J["neck"]]
        head_top_z = np.where(np.isnan(head_top[:, 2]), nose[:, 2] + HEAD_TOP_ABOVE_NOSE,
                              head_top[:, 2])
        head_centre = np.where(np.isnan(head_top), nose, (nose + head_top) / 2.0)
        midline = (pelvis + thorax) / 2.0

        for s, side_sign in (("l", 1.0), ("r", -1.0)):
            wrist, elbow, shoulder = (p[:, J[f"{s}_{j}"]] for j in ("wrist", "elbow", "shoulder"))
            hip, knee, ankle = (p[:, J[f"{s}_{j}"]] for j in ("hip", "knee", "ankle"))

            v = values[f"{s}_elbow"] = _joint_angle(p, f"{s}_shoulder", f"{s}_elbow", f"{s}_wrist")
            codes[f"{s}_elbow"] = cat(v, BEND_INTERVALS_DEG)
            v = values[f"{s}_knee"] = _joint_angle(p, f"{s}_hip", f"{s}_knee", f"{s}_ankle")
            codes[f"{s}_knee"] = cat(v, BEND_INTERVALS_DEG)

            over_head = wrist[:, 2] - head_top_z
            over_shoulder = wrist[:, 2] - shoulder[:, 2]
            height = np.full(n, UNKNOWN, dtype=np.int8)
            height[over_shoulder < -band * HAND_ABOVE_MARGIN] = 2
            margin = band * HAND_ABOVE_MARGIN
            height[(over_shoulder > margin) & (over_head < -margin)] = 1
            height[over_head > band * HAND_ABOVE_MARGIN] = 0
            codes[f"{s}_hand_height"] = height
            values[f"{s}_hand_over_head"] = over_head

            v = values[f"{s}_hand_depth"] = _dot(wrist - thorax, upright_frame)
            codes[f"{s}_hand_depth"] = _signed(v, band * HAND_DEPTH_DEAD_BAND, 0, 1)
            v = values[f"{s}_hand_side"] = side_sign * _dot(wrist - midline, left)
            codes[f"{s}_hand_side"] = _signed(v, band * HAND_SIDE_DEAD_BAND, 0, 1)
            v = values[f"{s}_hand_head"] = _norm(wrist - head_centre)
            codes[f"{s}_hand_head"] = cat(v, (HAND_NEAR_HEAD, HAND_FAR_FROM_HEAD))

            v = values[f"{s}_upper_arm"] = _angle_from_down(elbow - shoulder)
            codes[f"{s}_upper_arm"] = cat(v, DIRECTION_INTERVALS_DEG)
            v = values[f"{s}_thigh"] = _angle_from_down(knee - hip)
            codes[f"{s}_thigh"] = cat(v, DIRECTION_INTERVALS_DEG)

            v = values[f"{s}_foot_ground"] = ankle[:, 2]
            codes[f"{s}_foot_ground"] = cat(v, (ANKLE_ON_GROUND, ANKLE_OFF_GROUND))
            v = values[f"{s}_knee_ground"] = knee[:, 2]
            codes[f"{s}_knee_ground"] = cat(v, (KNEE_ON_GROUND, KNEE_OFF_GROUND))
            v = values[f"{s}_knee_height"] = knee[:, 2] - hip[:, 2]
            codes[f"{s}_knee_height"] = _signed(v, band * KNEE_HEIGHT_DEAD_BAND, 0, 1)

        lw, rw = p[:, J["l_wrist"]], p[:, J["r_wrist"]]
        la, ra = p[:, J["l_ankle"]], p[:, J["r_ankle"]]
        v = values["hands_distance"] = _norm(lw - rw)
        codes["hands_distance"] = cat(v, HANDS_DISTANCE_INTERVALS)
        v = values["feet_distance"] = feet_distance(p)
        codes["feet_distance"] = cat(v, FEET_DISTANCE_INTERVALS)
        v = values["foot_forward"] = _dot(la - ra, upright_frame)
        codes["foot_forward"] = _signed(v, band * FORWARD_DEAD_BAND, 0, 1)
        v = values["hand_forward"] = _dot(lw - rw, upright_frame)
        codes["hand_forward"] = _signed(v, band * FORWARD_DEAD_BAND, 0, 1)

        values["torso"] = tilt
        codes["torso"] = cat(tilt, TORSO_INTERVALS_DEG)
        v = values["lean_fb"] = np.degrees(np.arctan2(_dot(torso, upright_frame), torso[:, 2]))
        codes["lean_fb"] = cat(v, LEAN_INTERVALS_DEG)
        v = values["lean_lr"] = np.degrees(np.arctan2(_dot(torso, upright_left), torso[:, 2]))
        codes["lean_lr"] = cat(v, LEAN_INTERVALS_DEG)

        facing = (np.full(n, np.nan) if camera_positions is None
                  else _facing(p, camera_positions, upright_frame, upright_left))
        values["facing"] = facing
        codes["facing"] = facing_category(facing, decisive)
    return Posecodes(codes=codes, values=values, num_poses=n)
