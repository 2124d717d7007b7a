"""Posecodes on hand-built people: each code is right for the pose and flips with the geometry."""

from __future__ import annotations

import numpy as np
import pytest

from p2l3d_core.language.posecodes import (
    CODE_CATEGORIES,
    body_axes,
    facing_category,
    measure_posecodes,
)

from .bodies import CAMERA_IN_FRONT, batch, bend, lean, lying_on_back, put, shift, standing, turn


def label(pose: np.ndarray, code: str, camera: np.ndarray | None = CAMERA_IN_FRONT) -> str | None:
    cams = None if camera is None else camera[None]
    return measure_posecodes(pose[None], cams).label(code, 0)


ARM_UP = {"l_elbow": (0.0, 0.20, 1.70), "l_wrist": (0.0, 0.21, 1.96)}


def test_body_frame_handedness() -> None:
    forward, left = body_axes(standing()[None])
    np.testing.assert_allclose(forward[0], [1, 0, 0], atol=1e-9)
    np.testing.assert_allclose(left[0], [0, 1, 0], atol=1e-9)
    forward, left = body_axes(turn(standing(), 90)[None])
    np.testing.assert_allclose(forward[0], [0, 1, 0], atol=1e-9)
    np.testing.assert_allclose(left[0], [-1, 0, 0], atol=1e-9)


def test_shapes_and_vocabulary() -> None:
    poses = batch(standing(), standing(True), lean(standing(), 40, "y"))
    codes = measure_posecodes(poses, np.tile(CAMERA_IN_FRONT, (3, 1)))
    assert set(codes.codes) == set(CODE_CATEGORIES)
    for name, arr in codes.codes.items():
        assert arr.shape == (3,) and arr.dtype == np.int8
        assert arr.min() >= -1 and arr.max() < len(CODE_CATEGORIES[name])
    # batched measurement equals one pose at a time
    for i in range(3):
        single = measure_posecodes(poses[i:i + 1], CAMERA_IN_FRONT[None])
        assert single.pose(0) == codes.pose(i)


def test_rejects_wrong_shape() -> None:
    with pytest.raises(ValueError):
        measure_posecodes(np.zeros((2, 16, 3)))


@pytest.mark.parametrize("side", ["l", "r"])
@pytest.mark.parametrize("joint", ["elbow", "knee"])
@pytest.mark.parametrize("angle,expected", [(180, "straight"), (135, "slightly_bent"),
                                            (90, "bent"), (40, "fully_bent"), (150, None)])
def test_joint_bend(side: str, joint: str, angle: float, expected: str | None) -> None:
    pose = bend(standing(), f"{side}_{joint}", angle)
    assert label(pose, f"{side}_{joint}") == expected


def test_hand_height() -> None:
    base = standing()
    assert label(base, "l_hand_height") == "below_shoulder"
    assert label(put(base, l_wrist=(0.1, 0.25, 1.60)), "l_hand_height") == "above_shoulder"
    raised = put(base, **ARM_UP)
    assert label(raised, "l_hand_height") == "above_head"
    assert label(raised, "r_hand_height") == "below_shoulder"
    assert label(put(base, l_wrist=(0.1, 0.25, 1.44)), "l_hand_height") is None  # dead band
    # head top missing: the crown is estimated from the nose (1.60 + 0.12)
    no_top = put(base, head=(np.nan, np.nan, np.nan))
    assert label(put(no_top, l_wrist=(0.0, 0.2, 1.85)), "l_hand_height") == "above_head"
    assert label(put(no_top, l_wrist=(0.0, 0.2, 1.60)), "l_hand_height") == "above_shoulder"


@pytest.mark.parametrize("degrees", [0, 90, 180, 237])
def test_hand_depth_front_behind(degrees: float) -> None:
    front = shift(standing(), "l_wrist", dx=0.3)
    behind = shift(standing(), "l_wrist", dx=-0.3)
    assert label(turn(front, degrees), "l_hand_depth") == "in_front"
    assert label(turn(behind, degrees), "l_hand_depth") == "behind"
    assert label(turn(standing(), degrees), "l_hand_depth") is None  # hanging at the side
    assert label(turn(front, degrees), "r_hand_depth") is None


def test_hand_side_crossing() -> None:
    base = standing()
    assert label(base, "l_hand_side") == "own_side"
    assert label(put(base, l_wrist=(0.25, -0.25, 1.1)), "l_hand_side") == "crossed"
    assert label(put(base, r_wrist=(0.25, 0.25, 1.1)), "r_hand_side") == "crossed"
    assert label(put(base, l_wrist=(0.25, 0.02, 1.1)), "l_hand_side") is None  # on the midline
    assert label(turn(put(base, l_wrist=(0.25, -0.25, 1.1)), 135), "l_hand_side") == "crossed"


def test_hand_near_head() -> None:
    base = standing()
    assert label(base, "l_hand_head") == "far"
    assert label(put(base, l_wrist=(0.12, 0.12, 1.66)), "l_hand_head") == "near"
    assert label(put(base, r_wrist=(0.12, -0.12, 1.66)), "r_hand_head") == "near"


def test_upper_arm_direction() -> None:
    assert label(standing(), "l_upper_arm") == "down"
    assert label(standing(True), "l_upper_arm") == "horizontal"
    assert label(standing(True), "r_upper_arm") == "horizontal"
    assert label(put(standing(), **ARM_UP), "l_upper_arm") == "up"


def test_thigh_direction() -> None:
    base = standing()
    assert label(base, "r_thigh") == "down"
    knee_up = put(base, r_knee=(0.43, -0.13, 0.95), r_ankle=(0.43, -0.13, 0.52))
    assert label(knee_up, "r_thigh") == "horizontal"
    assert label(knee_up, "r_knee") == "bent"
    assert label(knee_up, "l_thigh") == "down"


def test_ground_contact() -> None:
    base = standing()
    assert label(base, "l_foot_ground") == label(base, "r_foot_ground") == "on_ground"
    lifted = shift(base, "r_ankle", dz=0.4)
    assert label(lifted, "r_foot_ground") == "off_ground"
    assert label(lifted, "l_foot_ground") == "on_ground"
    assert label(shift(base, "r_ankle", dz=0.1), "r_foot_ground") is None  # tiptoe-ish band


def test_knee_on_ground_and_knee_height() -> None:
    base = standing()
    assert label(base, "l_knee_ground") == "off_ground"
    kneel = put(base, l_knee=(0.0, 0.13, 0.06), l_ankle=(-0.42, 0.13, 0.08))
    assert label(kneel, "l_knee_ground") == "on_ground"
    assert label(base, "l_knee_height") == "below_hip"
    assert label(put(base, l_knee=(0.3, 0.13, 1.05)), "l_knee_height") == "above_hip"


def test_hands_and_feet_distance() -> None:
    base = standing()
    assert label(base, "hands_distance") == "apart"
    clasped = put(base, l_wrist=(0.3, 0.03, 1.1), r_wrist=(0.3, -0.03, 1.1))
    assert label(clasped, "hands_distance") == "together"
    assert label(standing(True), "hands_distance") == "far_apart"
    assert label(base, "feet_distance") == "apart"
    assert label(put(base, l_ankle=(0, 0.04, 0.08), r_ankle=(0, -0.04, 0.08)),
                 "feet_distance") == "together"
    assert label(put(base, l_ankle=(0, 0.4, 0.08), r_ankle=(0, -0.4, 0.08)),
                 "feet_distance") == "far_apart"


@pytest.mark.parametrize("degrees", [0, 60, 180])
def test_which_foot_and_hand_forward(degrees: float) -> None:
    base = standing()
    assert label(turn(base, degrees), "foot_forward") is None
    assert label(turn(shift(base, "l_ankle", dx=0.3), degrees), "foot_forward") == "left"
    assert label(turn(shift(base, "l_ankle", dx=-0.3), degrees), "foot_forward") == "right"
    assert label(turn(shift(base, "r_wrist", dx=0.3), degrees), "hand_forward") == "right"
    assert label(turn(shift(base, "l_wrist", dx=0.3), degrees), "hand_forward") == "left"


def test_torso_vs_vertical() -> None:
    base = standing()
    assert label(base, "torso") == "upright"
    assert label(lean(base, 40, "y"), "torso") == "leaning"
    assert label(lean(base, 90, "y"), "torso") == "horizontal"
    handstand = base @ np.diag([1.0, -1.0, -1.0]) + [0, 0, 2.0]  # rotated 180 about x
    assert label(handstand, "torso") == "upside_down"


@pytest.mark.parametrize("degrees", [0, 120])
def test_lean(degrees: float) -> None:
    base = standing()
    assert label(turn(base, degrees), "lean_fb") == "upright"
    assert label(turn(lean(base, 30, "y"), degrees), "lean_fb") == "forward"
    assert label(turn(lean(base, -30, "y"), degrees), "lean_fb") == "backward"
    assert label(turn(lean(base, -30, "x"), degrees), "lean_lr") == "left"
    assert label(turn(lean(base, 30, "x"), degrees), "lean_lr") == "right"
    assert label(turn(lean(base, 30, "y"), degrees), "lean_lr") == "upright"


def test_facing() -> None:
    base = standing()
    assert label(base, "facing") == "towards"
    assert label(turn(base, 180), "facing") == "away"
    assert label(base, "facing", np.array([0.0, 4.0, 1.5])) == "left_side"
    assert label(base, "facing", np.array([0.0, -4.0, 1.5])) == "right_side"
    assert label(turn(base, 90), "facing") == "right_side"  # facing +y, camera on +x: right
    assert label(turn(base, 45), "facing") is None  # three-quarter view: dead band
    assert label(base, "facing", None) is None
    assert label(base, "facing", np.array([0.1, 0.0, 5.0])) is None  # camera overhead
    assert label(lying_on_back(base), "facing") is None


def test_lying_disables_front_back_codes() -> None:
    lying = lying_on_back(shift(standing(), "l_ankle", dx=0.3))
    for code in ("foot_forward", "hand_forward", "lean_fb", "l_hand_depth"):
        assert label(lying, code) is None
    assert label(lying, "torso") == "horizontal"


def test_missing_joint_is_unknown() -> None:
    pose = put(standing(), l_wrist=(np.nan, np.nan, np.nan))
    codes = measure_posecodes(pose[None], CAMERA_IN_FRONT[None])
    for code in ("l_elbow", "l_hand_height", "l_hand_depth", "l_hand_side", "l_hand_head",
                 "hands_distance", "hand_forward"):
        assert codes.label(code, 0) is None
    assert codes.label("l_upper_arm", 0) == "down"
    assert codes.label("r_elbow", 0) == "straight"
    no_hips = put(standing(), l_hip=(np.nan,) * 3, l_shoulder=(np.nan,) * 3)
    assert label(no_hips, "facing") is None and label(no_hips, "torso") == "upright"


def decisive(pose: np.ndarray, code: str) -> str | None:
    return measure_posecodes(pose[None], CAMERA_IN_FRONT[None], decisive=True).label(code, 0)


def test_decisive_measurement_names_the_nearest_category() -> None:
    base = standing()
    assert decisive(bend(base, "l_elbow", 150), "l_elbow") == "straight"  # gap 145-155: nearer 155
    assert decisive(bend(base, "l_elbow", 148), "l_elbow") == "slightly_bent"
    assert decisive(turn(base, 45), "facing") == "towards"  # three-quarter view: nearer 40 than 50
    # the band where the range wraps (-140 = 220 to -130) splits at its middle too
    assert decisive(turn(base, 138), "facing") == "away"
    assert decisive(turn(base, 132), "facing") == "right_side"
    assert decisive(turn(base, -138), "facing") == "away"
    assert decisive(shift(base, "l_ankle", dx=0.03), "foot_forward") == "left"  # inside the band
    assert decisive(shift(base, "l_ankle", dx=-0.03), "foot_forward") == "right"
    # unchanged outside the dead bands; missing stays unknown
    assert decisive(base, "l_hand_height") == label(base, "l_hand_height")
    assert decisive(put(base, l_wrist=(np.nan, np.nan, np.nan)), "l_hand_depth") is None
    assert label(turn(base, 45), "facing") is None  # training language keeps the dead band


def test_facing_category_turns_the_circle_at_the_wrapping_band() -> None:
    cats = {c: k for k, c in enumerate(CODE_CATEGORIES["facing"])}
    angles = np.array([0.0, 180.0, -180.0, 200.0, -160.0, 90.0, -90.0, -138.0, -132.0, 136.0,
                       np.nan])
    assert facing_category(angles).tolist() == [
        cats["towards"], cats["away"], cats["away"], cats["away"], cats["away"],
        cats["left_side"], cats["right_side"], -1, -1, -1, -1]
    assert facing_category(angles, nearest=True)[7:].tolist() == [
        cats["away"], cats["right_side"], cats["away"], -1]
