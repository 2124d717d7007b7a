"""2D keypoints as network input: the coordinates themselves, beside or instead of the image.

Features are translation- and scale-free (centred on the pelvis, divided by the skeleton's
extent) so a network sees the pose, not where the person stood in the frame; unseen joints are
zeros with a visibility flag of 0.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from torch import nn

from p2l3d_core.skeleton import NUM_JOINTS, J

# The limbs whose bend the language describes (joint_bend): (upper end, joint, lower end).
LIMBS = tuple(tuple(J[f"{side}_{name}"] for name in names) for names in (
    ("shoulder", "elbow", "wrist"), ("hip", "knee", "ankle")) for side in ("l", "r"))
# Per joint x, y, visible; then the cosine of each limb's bend as the image shows it.
KEYPOINT_FEATURES = NUM_JOINTS * 3 + len(LIMBS)
# Per joint camera frame x, y, z, body frame x, y, z, known; then each limb's bend (cosine),
# the torso's direction in the body frame, ankle and knee heights above the ground (m), the
# feet's distance (hip widths), the camera's direction (:data:`FACING_COLUMNS`) and the
# front/back offsets the depth families ask (m, :data:`DEPTH_OFFSETS`).
DEPTH_OFFSETS = ("l_hand_depth", "r_hand_depth", "foot_forward", "hand_forward")
"""Along the body's forward axis, as ``posecodes`` measures them: each wrist ahead of the thorax,
the left ankle ahead of the right, the left wrist ahead of the right."""
FEET_DISTANCE_CAP = 3.0
"""The feet's distance is carried up to this many hip widths: "far apart" starts at 2.2, and a
walker's stride (3-4 hip widths) would otherwise dominate the regressor's loss: uncapped, one
fit read the ankles' ground contact 4-6 points worse on two CMU clips
(``benchmarks/reports/2026-12-07-feet-distance.md``)."""
FACING_COLUMNS = ("camera_ahead", "camera_left")
"""The horizontal direction from the pelvis to the camera in the body's forward/left axes (a
unit vector: the cosine and sine of ``posecodes.facing_degrees``; zeros where the rules leave
facing unknown, e.g. lying). The one camera-dependent part of the geometry: the rest is the
body's, the same from every side."""
GEOMETRY_FEATURES = len(LIMBS) + 3 + 4 + 1 + len(FACING_COLUMNS) + len(DEPTH_OFFSETS)
KEYPOINT_FEATURES_3D = NUM_JOINTS * 7 + GEOMETRY_FEATURES
"""The last :data:`GEOMETRY_FEATURES` of the 3D features are the pose's geometry
(``models/geometry.py``)."""


def bend_cosines(points: np.ndarray, seen: np.ndarray) -> np.ndarray:
    """``(N, 17, D)`` joints -> ``(N, 4)`` cosine of the angle at each of :data:`LIMBS`' middle
    joint (-1 straight, 1 folded flat), 0 where a joint is unseen. Why as a feature: the bend
    categories are thresholds on this angle, which an MLP would otherwise have to learn to
    compute from coordinates with a few thousand labelled poses (it did not: issue 27)."""
    out = np.zeros((len(points), len(LIMBS)))
    for k, (a, b, c) in enumerate(LIMBS):
        u, v = points[:, a] - points[:, b], points[:, c] - points[:, b]
        norm = np.linalg.norm(u, axis=-1) * np.linalg.norm(v, axis=-1)
        ok = seen[:, a] & seen[:, b] & seen[:, c] & (norm > 1e-9)
        out[ok, k] = (u[ok] * v[ok]).sum(-1) / norm[ok]
    return out


def keypoint_features(keypoints_2d: np.ndarray, visible: np.ndarray | None = None) -> np.ndarray:
    """``(N, 17, 2)`` pixels (NaN = unseen) -> ``(N, KEYPOINT_FEATURES)`` float32 features: the
    normalised coordinates with a visibility flag per joint, then :func:`bend_cosines`.

    Written with masks rather than NaN-aware reductions: a service computes this for one pose
    per request, where ``np.nanmean``/``np.nanmax`` and their warning filters cost ~0.1 ms."""
    kp = np.asarray(keypoints_2d, dtype=np.float64).reshape(-1, NUM_JOINTS, 2)
    seen = ~np.isnan(kp).any(-1)
    if visible is not None:
        seen &= np.asarray(visible, dtype=bool).reshape(-1, NUM_JOINTS)
    pts = np.where(seen[..., None], kp, 0.0)
    mean = pts.sum(1) / np.maximum(seen.sum(1), 1)[:, None]  # of the seen joints (0 if none)
    centre = np.where(seen[:, J["pelvis"], None], pts[:, J["pelvis"]], mean)
    rel = np.where(seen[..., None], pts - centre[:, None], 0.0)
    scale = np.abs(rel).reshape(len(kp), -1).max(axis=1)
    scale = np.where(np.isfinite(scale) & (scale > 1e-6), scale, 1.0)
    rel = rel / scale[:, None, None]
    joints = np.concatenate([rel, seen[..., None].astype(np.float64)], -1).reshape(len(kp), -1)
    return np.concatenate([joints, bend_cosines(pts, seen)], -1).astype(np.float32)


def keypoint_features_3d(joints_cam: np.ndarray, joints_world: np.ndarray,
                         camera_positions: np.ndarray) -> np.ndarray:
    """The teacher's 3D joints (``joints_world`` seen by cameras centred at
    ``camera_positions`` ``(N, 3)``, world frame, giving ``joints_cam``) -> ``(N,
    KEYPOINT_FEATURES_3D)`` float32 features: pelvis-centred and divided by the skeleton's
    extent, with a known flag per joint, in two frames:

    * camera frame (``joints_cam``): keeps what the 2D view shares with 3D (image axes) and adds
      depth;
    * body frame (``joints_world``, z up, turned into the body's forward/left/up axes of
      ``posecodes.body_axes``): front/back relations ("which foot is further forward") become
      one coordinate instead of a rotation the network would have to learn from ~2k poses.
    """
    from p2l3d_core.language.posecodes import body_axes, facing_degrees, feet_distance

    cam = np.asarray(joints_cam, dtype=np.float64).reshape(-1, NUM_JOINTS, 3)
    world = np.asarray(joints_world, dtype=np.float64).reshape(-1, NUM_JOINTS, 3)
    known = ~np.isnan(cam).any(-1)
    rel = cam - cam[:, J["pelvis"], None]
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        scale = np.nanmax(np.abs(rel).reshape(len(cam), -1), axis=1)
        forward, left = body_axes(world)
        up = np.broadcast_to(np.array([0.0, 0.0, 1.0]), forward.shape)
        rel_world = world - world[:, J["pelvis"], None]
        body = np.einsum("njc,nkc->njk", rel_world, np.stack([forward, left, up], axis=1))
    scale = np.where(np.isfinite(scale) & (scale > 1e-6), scale, 1.0)[:, None, None]
    frames = [np.nan_to_num(rel / scale, nan=0.0), np.nan_to_num(body / scale, nan=0.0)]
    joints = np.concatenate([*frames, known[..., None]], -1).reshape(len(cam), -1)
    # What the rules threshold, given as numbers (as the body frame gives front/back): each
    # limb's bend, the pelvis->thorax direction (lean), ankle and knee heights (contact), the
    # ankles' distance in hip widths (feet_distance), the camera's direction (facing), and the
    # depth families' front/back offsets (DEPTH_OFFSETS, metres along the forward axis).
    spine = np.nan_to_num(body[:, J["thorax"]], nan=0.0)
    spine /= np.maximum(np.linalg.norm(spine, axis=-1, keepdims=True), 1e-9)
    heights = world[:, [J["l_ankle"], J["r_ankle"], J["l_knee"], J["r_knee"]], 2]
    feet = np.minimum(feet_distance(world), FEET_DISTANCE_CAP)
    facing = np.radians(facing_degrees(world, camera_positions))
    camera = np.stack([np.cos(facing), np.sin(facing)], -1)
    ahead = body[..., 0]
    offsets = np.stack([ahead[:, J["l_wrist"]] - ahead[:, J["thorax"]],
                        ahead[:, J["r_wrist"]] - ahead[:, J["thorax"]],
                        ahead[:, J["l_ankle"]] - ahead[:, J["r_ankle"]],
                        ahead[:, J["l_wrist"]] - ahead[:, J["r_wrist"]]], -1)
    geometry = [bend_cosines(np.nan_to_num(world, nan=0.0), known), spine,
                np.nan_to_num(heights, nan=0.0), np.nan_to_num(feet, nan=0.0)[:, None],
                np.nan_to_num(camera, nan=0.0), np.nan_to_num(offsets, nan=0.0)]
    return np.concatenate([joints, *geometry], -1).astype(np.float32)


class KeypointEncoder(nn.Module):
    """Keypoint features -> normalised embedding (an MLP: the inputs are a few dozen numbers)."""

    def __init__(self, embed_dim: int, hidden: int = 512, layers: int = 3,
                 in_features: int = KEYPOINT_FEATURES):
        super().__init__()
        blocks: list[nn.Module] = []
        width = in_features
        for _ in range(layers - 1):
            blocks += [nn.Linear(width, hidden), nn.LayerNorm(hidden), nn.GELU()]
            width = hidden
        self.mlp = nn.Sequential(*blocks, nn.Linear(width, embed_dim))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return nn.functional.normalize(self.mlp(features), dim=-1)
