"""Where the floor is under a body (floor.py): one convention for generated and real 3D."""

from __future__ import annotations

import numpy as np
import pytest

from p2l3d_core.poses import generator as g
from p2l3d_core.poses.floor import (
    CLEARANCE,
    CLIP_PERCENTILE,
    body_size,
    floor_gaps,
    floor_height,
)
from p2l3d_core.skeleton import J


def _standing(n: int) -> np.ndarray:
    return np.stack([g.generate_pose(np.random.default_rng([4, i]), "standing")[0]
                     for i in range(n)])


def test_a_generated_body_already_stands_on_the_floor_this_module_finds():
    """The generator and the real readers share the convention: a generated standing pose,
    read as a capture with no floor, keeps its floor (within its heel's raise and the size's
    estimate)."""
    for pose in _standing(20):
        assert abs(floor_height(pose[None])) < 0.03


def test_gaps_ignore_unseen_joints_and_a_pose_with_none_has_no_gap():
    pose = _standing(1)[0]
    hidden = pose.copy()
    lowest = int(np.argmin(pose[:, 2] - CLEARANCE))
    hidden[lowest] = np.nan
    assert floor_gaps(hidden, CLEARANCE) > floor_gaps(pose, CLEARANCE)
    assert np.isnan(floor_gaps(np.full((17, 3), np.nan), CLEARANCE))
    assert floor_height(np.full((3, 17, 3), np.nan)) == 0.0


def test_a_clips_floor_ignores_a_few_glitching_frames_and_airborne_ones():
    """A clip shares one floor. A marker glitch sinking 3 of 100 frames by 10 cm, or 30 frames
    in the air, must not move it: the clip's percentile of the frames' gaps, not their
    minimum."""
    clip = _standing(100)
    steady = floor_height(clip, CLIP_PERCENTILE)
    glitched = clip.copy()
    glitched[:3, :, 2] -= 0.10
    assert floor_height(glitched, CLIP_PERCENTILE) == pytest.approx(steady, abs=0.005)
    assert floor_height(glitched, 0.0) < steady - 0.09  # the minimum is sunk
    hopping = clip.copy()
    hopping[::3, :, 2] += 0.3
    assert floor_height(hopping, CLIP_PERCENTILE) == pytest.approx(steady, abs=0.005)


def test_body_size_is_the_thigh_against_the_nominal_adult():
    pose = np.zeros((17, 3))
    for s in ("l", "r"):
        pose[J[f"{s}_knee"], 2] = -0.396  # a 0.9-size body's thigh
    assert body_size(pose) == pytest.approx(0.9)
    assert body_size(np.full((17, 3), np.nan)) == 1.0
