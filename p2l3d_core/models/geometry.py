"""The pose's geometry as numbers the answer head reads: what the describer's rules threshold.

Eighteen numbers (:data:`GEOMETRY_FEATURES`): each limb's bend (elbows, knees), the torso's
direction in the body frame, the ankle and knee heights above the ground, the feet's distance
in hip widths, the camera's direction in the body frame (``keypoints.FACING_COLUMNS``), and the
front/back offsets the depth families ask (``keypoints.DEPTH_OFFSETS``: each hand ahead of the
chest, the left foot and hand ahead of the right). They come from the
tail of the teacher's 3D keypoint features, so a teacher reads them exactly; a
:class:`GeometryRegressor` estimates them from the 2D keypoints, trained against the teacher's.

Why: the answer head read the pose only through the normalised embedding, and did not learn
the bend categories' thresholds from it. On the quickstart the teacher, which has the true
knee angle's cosine among its inputs, answered joint_bend 0.70 on synthetic poses. The student
scored 0.31-0.54 on the CMU walks, below the 2D angle read by rule (0.60-0.67)
(``benchmarks/reports/2026-12-07-geometry-head.md``). Given the numbers beside the
embedding, a threshold is one unit of the head's first layer.
"""

from __future__ import annotations

import torch
from torch import nn

from p2l3d_core.models.keypoints import (
    DEPTH_OFFSETS,
    FACING_COLUMNS,
    GEOMETRY_FEATURES,
    KEYPOINT_FEATURES,
    LIMBS,
)

GEOMETRY_COLUMNS: tuple[str, ...] = (
    "l_elbow", "r_elbow", "l_knee", "r_knee",  # bends (LIMBS' order)
    "torso_forward", "torso_left", "torso_up",  # the pelvis->thorax direction, body frame
    "l_ankle_height", "r_ankle_height", "l_knee_height", "r_knee_height",
    "feet_distance",  # between the ankles, in hip widths
    *FACING_COLUMNS,  # the horizontal direction to the camera, body frame
    *DEPTH_OFFSETS)
"""The name of each of the :data:`GEOMETRY_FEATURES` numbers, in order."""
assert len(GEOMETRY_COLUMNS) == GEOMETRY_FEATURES == (len(LIMBS) + 8 + len(FACING_COLUMNS)
                                                      + len(DEPTH_OFFSETS))

GEOMETRY_FAMILIES: tuple[str, ...] = ("joint_bend", "torso_lean", "ground_contact",
                                      "feet_distance", "facing", "hand_front_back",
                                      "foot_forward", "hand_forward")
"""The question families the geometry decides alone (bends, the torso's direction, the ankle
heights, the feet's distance, the camera's direction, the front/back offsets), which the
answer head answers from the question and the geometry without the pose embedding. Why: the
embedding carries the action, and on the generator the action gave these answers away
(``benchmarks/reports/2026-12-07-real-motion-cause.md``); a head that can read it learns the
shortcut, which fails on real motion. The depth families joined when the offsets did: read from
the embedding, the teacher's answers to them on the CMU clips changed from one training run to
the next (hand_forward 0.29-0.99) and the student's followed; the regressor's offsets, read by
the rules, answer them 0.87-0.96 on the synthetic split and 0.86-1.00 on the CMU clips
(``benchmarks/reports/2026-12-07-depth-as-geometry.md``). feet_distance joined the same way:
from the embedding the student answered it 0.56-0.82 on the CMU clips (0.56 +- 0.19 over three
seeds on one), where a regressor reads it from the 2D keypoints 0.86-0.93
(``benchmarks/reports/2026-12-07-feet-distance.md``). facing too: from the embedding the
student answered it 0.82-0.87 and the teacher, with the true 3D, 0.72-0.81 on the CMU clips;
from the camera's direction, 0.97-1.00 and 1.00
(``benchmarks/reports/2026-12-07-facing-as-geometry.md``)."""


FAMILY_COLUMNS: dict[str, tuple[str, ...]] = {
    "joint_bend": GEOMETRY_COLUMNS[:len(LIMBS)],
    "torso_lean": ("torso_forward", "torso_left", "torso_up"),
    "ground_contact": ("l_ankle_height", "r_ankle_height"),
    "feet_distance": ("feet_distance",),
    "facing": FACING_COLUMNS,
    "hand_front_back": ("l_hand_depth", "r_hand_depth"),
    "foot_forward": ("foot_forward",),
    "hand_forward": ("hand_forward",),
}
"""The geometry columns each of :data:`GEOMETRY_FAMILIES` is answered from: those the rules
read for it. Why not all: the head learned on exact geometry, where every family's own column
decides it, yet also leaned on columns that go with it on the generator's bodies; at inference,
on the regressed numbers, it answered hand_forward 5-14 points below the sign of its own
regressed offset, and ground contact 5-7 points below the rules on its regressed ankles on two
CMU clips. Reading its own columns, each family's answers follow the rules on the regressed
numbers; over 3 seeds hand_forward rose 5-12 points and ground_contact 5-11 on the synthetic
split and two CMU clips (``benchmarks/reports/2026-12-07-depth-as-geometry.md``)."""
assert set(FAMILY_COLUMNS) == set(GEOMETRY_FAMILIES)


def family_columns(families: list[str]) -> torch.Tensor:
    """``(len(families), GEOMETRY_FEATURES)`` 0/1: the columns each family's questions read
    (:data:`FAMILY_COLUMNS`; every column for a family outside it)."""
    out = torch.ones(len(families), GEOMETRY_FEATURES)
    for k, family in enumerate(families):
        if family in FAMILY_COLUMNS:
            out[k] = torch.tensor([c in FAMILY_COLUMNS[family] for c in GEOMETRY_COLUMNS],
                                  dtype=out.dtype)
    return out


def geometry_of_3d(features_3d: torch.Tensor) -> torch.Tensor:
    """The geometry within the teacher's 3D keypoint features (their last columns), in the
    rules' units: each bend as its angle in tens of degrees (18 = straight), the torso's
    direction and the camera's times ten, the heights and the front/back offsets times ten
    (decimetres), the feet's distance in tenths of a hip width.

    Why these units: the rules' categories are a few degrees or centimetres apart (straight
    from 155 degrees, slightly bent below 145; an ankle on the ground under 0.15 m, off it
    over 0.22 m; feet apart from 0.8 hip widths, together under 0.6). As cosines and metres
    those gaps are 0.07-0.09, a slope the head's first layer did not reach in a quickstart
    teacher's 640 steps (joint_bend 0.75 with the exact cosines); in these units the gaps are
    about one or more."""
    raw = features_3d[..., -GEOMETRY_FEATURES:]
    bends = torch.rad2deg(torch.arccos(raw[..., :len(LIMBS)].clamp(-1.0, 1.0))) / 10.0
    return torch.cat([bends, 10.0 * raw[..., len(LIMBS):]], -1)


def with_geometry(embedding: torch.Tensor, geometry: torch.Tensor | None) -> torch.Tensor:
    """A pose state: the embedding, then the geometry (in the embedding's dtype) for a model
    whose answer head reads one; the embedding alone when ``geometry`` is None."""
    if geometry is None:
        return embedding
    return torch.cat([embedding, geometry.to(embedding.dtype)], -1)


class GeometryRegressor(nn.Module):
    """2D keypoint features -> the pose's geometry (MLPs). The bend seen in the image is among
    its inputs; depth, from the rest of the body, is what it learns.

    Two MLPs: one for the body's geometry, one for the camera's direction (the facing columns).
    Why apart: fitted by one MLP beside the rest, the camera's direction cost the front/back
    offsets 2-7 points on the CMU clips, and still 3 on one with its loss weighted a fiftieth
    (``benchmarks/reports/2026-12-07-facing-as-geometry.md``)."""

    def __init__(self, hidden: int = 256, in_features: int = KEYPOINT_FEATURES):
        super().__init__()
        self.net = _mlp(in_features, hidden, GEOMETRY_FEATURES - len(FACING_COLUMNS))
        self.facing = _mlp(in_features, hidden, len(FACING_COLUMNS))

    def forward(self, keypoint_features: torch.Tensor) -> torch.Tensor:
        body = self.net(keypoint_features)
        return torch.cat([body[..., :_FACING_AT], self.facing(keypoint_features),
                          body[..., _FACING_AT:]], -1)


_FACING_AT = GEOMETRY_COLUMNS.index(FACING_COLUMNS[0])
assert GEOMETRY_COLUMNS[_FACING_AT:_FACING_AT + len(FACING_COLUMNS)] == FACING_COLUMNS


def _mlp(in_features: int, hidden: int, out_features: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(in_features, hidden), nn.GELU(),
                         nn.Linear(hidden, hidden), nn.GELU(), nn.Linear(hidden, out_features))
