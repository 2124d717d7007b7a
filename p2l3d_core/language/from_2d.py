"""Language measured from a 2D skeleton alone: the paper's "2D-only" supervision.

The image-plane joints are lifted to a flat pseudo-3D pose (image right = x, image up = z,
depth = 0, scaled so the torso is ``TORSO_METRES`` long, the lowest joint on the ground) and
described by the same rules as true 3D. Whatever needs depth then falls in the posecodes' dead
bands or is declared unknown (``DEPTH_CODES``), so it is never asked; heights, bends and
distances are measured as they look in the image.
The ``baseline_2d_no3d`` ablation trains on this text, so it never sees any 3D.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from p2l3d_core.language import PoseText, ask, describe, measure_posecodes
from p2l3d_core.language.posecodes import UNKNOWN
from p2l3d_core.skeleton import NUM_JOINTS, J

TORSO_METRES = 0.5


def flat_pose(keypoints_2d: np.ndarray, visible: np.ndarray | None = None) -> np.ndarray:
    """``(N, 17, 2)`` pixels -> ``(N, 17, 3)`` flat pseudo-3D metres (NaN where unseen)."""
    kp = np.asarray(keypoints_2d, dtype=np.float64).reshape(-1, NUM_JOINTS, 2)
    if visible is not None:
        kp = np.where(np.asarray(visible, dtype=bool).reshape(-1, NUM_JOINTS)[..., None], kp,
                      np.nan)
    torso = np.linalg.norm(kp[:, J["thorax"]] - kp[:, J["pelvis"]], axis=-1)
    with np.errstate(invalid="ignore"):
        height = np.nanmax(kp[..., 1], axis=1) - np.nanmin(kp[..., 1], axis=1)
    torso = np.where(np.isfinite(torso) & (torso > 1.0), torso, height / 3.4)
    scale = TORSO_METRES / np.where(np.isfinite(torso) & (torso > 1.0), torso, 1.0)
    x = (kp[..., 0] - np.nanmean(kp[..., 0], axis=1, keepdims=True)) * scale[:, None]
    z = (np.nanmax(kp[..., 1], axis=1, keepdims=True) - kp[..., 1]) * scale[:, None]
    return np.stack([x, np.where(np.isnan(x), np.nan, 0.0), z], axis=-1)


# Posecodes along the body's front/back axis: with no depth they read 0, which for a lean is
# "upright" (inside its interval, not a dead band), so they are declared unknown instead.
DEPTH_CODES = ("l_hand_depth", "r_hand_depth", "foot_forward", "hand_forward", "lean_fb")


def describe_batch_2d(keypoints_2d: np.ndarray, actions: Sequence[str],
                      visible: np.ndarray | None = None, seeds: Sequence[int] | None = None,
                      num_captions: int = 3) -> list[PoseText]:
    """Captions and QAs measured from 2D keypoints only (no camera, so no facing; nothing
    along depth)."""
    codes = measure_posecodes(flat_pose(keypoints_2d, visible), None)
    for name in DEPTH_CODES:
        codes.codes[name] = np.full_like(codes.codes[name], UNKNOWN)
    if len(actions) != len(codes) or (seeds is not None and len(seeds) != len(codes)):
        raise ValueError("actions and seeds need one entry per pose")
    out = []
    for i, action in enumerate(actions):
        rng = None if seeds is None else np.random.default_rng(seeds[i])
        out.append(PoseText(describe(codes, i, action, rng, num_captions),
                            ask(codes, i, action, rng)))
    return out
