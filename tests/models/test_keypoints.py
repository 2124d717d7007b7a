"""2D keypoint features and the keypoint / image+keypoint branches of the 2D encoder."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from p2l3d_core.models.config import preset
from p2l3d_core.models.encoders import ImageEncoder, Pose2DEncoder
from p2l3d_core.models.inputs import images_to_tensor
from p2l3d_core.models.keypoints import KEYPOINT_FEATURES, KeypointEncoder, keypoint_features
from p2l3d_core.poses.generator import generate_records
from p2l3d_core.skeleton import NUM_JOINTS, J

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def keypoints() -> np.ndarray:
    """``(N, 17, 2)`` pixels of generated poses as their cameras see them."""
    return np.stack([r.project()[0] for r in generate_records(11, 0, 12)])


def _xy(features: np.ndarray) -> np.ndarray:
    return features[:, :NUM_JOINTS * 3].reshape(len(features), NUM_JOINTS, 3)[..., :2]


def _flags(features: np.ndarray) -> np.ndarray:
    return features[:, :NUM_JOINTS * 3].reshape(len(features), NUM_JOINTS, 3)[..., 2]


def test_shape_dtype_and_all_seen(keypoints):
    f = keypoint_features(keypoints)
    assert f.shape == (len(keypoints), KEYPOINT_FEATURES) == (len(keypoints), 55)
    assert f.dtype == np.float32
    assert np.isfinite(f).all()
    assert (_flags(f) == 1).all()
    # centred on the pelvis, scaled so the farthest coordinate is at +-1
    assert np.allclose(_xy(f)[:, J["pelvis"]], 0.0)
    assert np.allclose(np.abs(_xy(f)).reshape(len(f), -1).max(axis=1), 1.0, atol=1e-6)
    # a single pose (17, 2) is accepted too
    assert np.array_equal(keypoint_features(keypoints[0]), f[:1])


@pytest.mark.parametrize("shift, scale", [((250.0, -80.0), 1.0), ((0.0, 0.0), 3.7),
                                          ((-1234.5, 987.0), 0.21)])
def test_translation_and_scale_invariant(keypoints, shift, scale):
    moved = keypoints * scale + np.array(shift)
    assert np.allclose(keypoint_features(moved), keypoint_features(keypoints), atol=1e-5)


def test_invariant_with_the_pelvis_unseen(keypoints):
    """Without the pelvis the centre is the mean of the seen joints: still invariant."""
    kp = keypoints.copy()
    kp[:, J["pelvis"]] = np.nan
    f = keypoint_features(kp)
    assert np.isfinite(f).all()
    assert (_flags(f)[:, J["pelvis"]] == 0).all()
    assert np.allclose(keypoint_features(kp * 2.5 + np.array([40.0, -700.0])), f, atol=1e-5)


def test_the_features_tell_poses_apart(keypoints):
    f = keypoint_features(keypoints)
    assert not np.allclose(f[0], f[1])
    mirrored = keypoints.copy()
    mirrored[..., 0] *= -1  # a mirror is not a translation or a scale
    assert not np.allclose(keypoint_features(mirrored), f)


def test_unseen_joints_are_zeros_with_flag_zero(keypoints):
    kp = keypoints.copy()
    kp[0, J["l_wrist"]] = np.nan  # NaN: unseen
    kp[0, J["r_ankle"], 1] = np.nan  # one NaN coordinate is enough
    visible = np.ones(kp.shape[:2], dtype=bool)
    visible[1, J["head"]] = False  # seen coordinates but flagged invisible
    f = keypoint_features(kp, visible)
    xy, flags = _xy(f), _flags(f)
    for row, joint in ((0, "l_wrist"), (0, "r_ankle"), (1, "head")):
        assert np.array_equal(xy[row, J[joint]], [0.0, 0.0])
        assert flags[row, J[joint]] == 0
    assert flags.sum() == flags.size - 3
    # an invisible joint does not count: its (far away) pixels leave the others unchanged
    far = kp.copy()
    far[1, J["head"]] = [1e6, -1e6]
    assert np.array_equal(keypoint_features(far, visible), f)


def test_all_nan_row_gives_finite_zeros(keypoints):
    kp = keypoints[:3].copy()
    kp[1] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "mean of empty slice" escapes either
        f = keypoint_features(kp)
    assert np.isfinite(f).all()
    assert np.array_equal(f[1], np.zeros(KEYPOINT_FEATURES, dtype=np.float32))
    assert np.array_equal(f[[0, 2]], keypoint_features(keypoints[[0, 2]]))
    # nothing visible at all: same answer
    assert np.array_equal(keypoint_features(keypoints[:1], np.zeros((1, NUM_JOINTS), bool)),
                          np.zeros((1, KEYPOINT_FEATURES), dtype=np.float32))


def test_keypoint_encoder_is_l2_normalised(keypoints):
    torch.manual_seed(0)
    enc = KeypointEncoder(embed_dim=16, hidden=32, layers=3)
    z = enc(torch.from_numpy(keypoint_features(keypoints)))
    assert z.shape == (len(keypoints), 16)
    assert torch.allclose(z.norm(dim=-1), torch.ones(len(keypoints)), atol=1e-5)
    assert not torch.allclose(z[0], z[1])


# --- Pose2DEncoder --------------------------------------------------------------------------


def _inputs(keypoints: np.ndarray) -> dict[str, torch.Tensor]:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (len(keypoints), 32, 32, 3), dtype=np.uint8)
    return {"image": images_to_tensor(images),
            "keypoints": torch.from_numpy(keypoint_features(keypoints))}


@pytest.mark.parametrize("pose_input, has_image, has_keypoints", [
    ("image", True, False), ("keypoints", False, True), ("image+keypoints", True, True)])
def test_pose2d_encoder_builds_the_right_branches(keypoints, pose_input, has_image, has_keypoints):
    torch.manual_seed(0)
    enc = Pose2DEncoder(preset("tiny", 32, pose_input=pose_input))
    assert isinstance(enc.image, ImageEncoder) if has_image else enc.image is None
    assert isinstance(enc.keypoints, KeypointEncoder) if has_keypoints else enc.keypoints is None
    inputs = _inputs(keypoints[:4])
    z = enc(inputs)
    assert z.shape == (4, 32)
    assert torch.allclose(z.norm(dim=-1), torch.ones(4), atol=1e-5)
    # an input the branch does not read is ignored; one it reads changes the embedding
    if not has_keypoints:
        assert torch.equal(enc({"image": inputs["image"]}), z)
    if not has_image:
        assert torch.equal(enc({"keypoints": inputs["keypoints"]}), z)
    if has_keypoints:
        other = dict(inputs, keypoints=inputs["keypoints"].flip(0))
        assert not torch.allclose(enc(other), z)
    if has_image:
        other = dict(inputs, image=inputs["image"].flip(0))
        assert not torch.allclose(enc(other), z)


@pytest.mark.parametrize("pose_input, given, missing", [
    ("image", "keypoints", "image"), ("keypoints", "image", "keypoints"),
    ("image+keypoints", "image", "keypoints"), ("image+keypoints", "keypoints", "image")])
def test_pose2d_encoder_names_a_missing_input(keypoints, pose_input, given, missing):
    enc = Pose2DEncoder(preset("tiny", 32, pose_input=pose_input))
    inputs = _inputs(keypoints[:2])
    with pytest.raises(ValueError, match=rf"missing \['{missing}'\]"):
        enc({given: inputs[given]})


@pytest.mark.parametrize("pose_input", ["depth", "keypoints+image", "", "Image"])
def test_pose2d_encoder_rejects_an_unknown_pose_input(pose_input):
    with pytest.raises(ValueError, match="unknown pose_input"):
        Pose2DEncoder(preset("tiny", 32, pose_input=pose_input))


def test_3d_features_put_front_back_relations_on_one_body_axis():
    from p2l3d_core.language.posecodes import measure_posecodes
    from p2l3d_core.models.keypoints import KEYPOINT_FEATURES_3D, keypoint_features_3d
    from p2l3d_core.poses.generator import generate_records

    records = generate_records(5, 0, 200)
    world = np.stack([r.joints_3d for r in records])
    cam = np.stack([r.camera.to_camera(r.joints_3d) for r in records])
    centres = np.stack([r.camera.position for r in records])
    feats = keypoint_features_3d(cam, world, centres)
    assert feats.shape == (200, KEYPOINT_FEATURES_3D) and feats.dtype == np.float32
    per_joint = feats[:, :NUM_JOINTS * 7].reshape(200, NUM_JOINTS, 7)
    # body frame x is "forward": the sign of left ankle minus right ankle is the foot_forward code
    codes = measure_posecodes(world).codes["foot_forward"]
    ahead = per_joint[:, J["l_ankle"], 3] - per_joint[:, J["r_ankle"], 3]
    decided = codes >= 0
    assert decided.sum() > 20
    assert np.array_equal(ahead[decided] > 0, codes[decided] == 0)  # 0 = "left" is ahead
    # turning the whole scene (camera with it) about the vertical changes no feature
    turn = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    np.testing.assert_allclose(keypoint_features_3d(cam, world @ turn.T, centres @ turn.T),
                               feats, atol=1e-5)
    # a missing joint is zeros with its known flag off
    world[0, J["l_wrist"]] = cam[0, J["l_wrist"]] = np.nan
    row = keypoint_features_3d(cam, world, centres)[:, :NUM_JOINTS * 7].reshape(200, NUM_JOINTS, 7)[
        0, J["l_wrist"]]
    assert not row.any()


def test_limb_bends_are_cosines_of_the_joint_angle():
    """A straight arm is -1, a right angle 0; an unseen joint gives 0 (no claim)."""
    from p2l3d_core.models.keypoints import LIMBS, bend_cosines

    points = np.zeros((1, NUM_JOINTS, 2))
    (ls, le, lw), (rs, re_, rw) = LIMBS[0], LIMBS[1]
    points[0, [ls, le, lw]] = [[0, 0], [1, 0], [2, 0]]  # left arm straight
    points[0, [rs, re_, rw]] = [[0, 0], [1, 0], [1, 1]]  # right elbow at 90 degrees
    seen = np.ones((1, NUM_JOINTS), dtype=bool)
    cosines = bend_cosines(points, seen)
    assert np.allclose(cosines[0, :2], [-1.0, 0.0])
    seen[0, lw] = False
    assert bend_cosines(points, seen)[0, 0] == 0.0


def test_3d_features_carry_bends_lean_and_heights():
    from p2l3d_core.models.geometry import GEOMETRY_COLUMNS
    from p2l3d_core.models.keypoints import (
        GEOMETRY_FEATURES,
        KEYPOINT_FEATURES_3D,
        keypoint_features_3d,
    )
    from p2l3d_core.poses.generator import generate_records

    records = generate_records(0, 0, 8)
    world = np.stack([r.joints_3d for r in records])
    f = keypoint_features_3d(world, world, np.stack([r.camera.position for r in records]))
    assert f.shape == (8, KEYPOINT_FEATURES_3D) and np.isfinite(f).all()
    geometry = f[:, -GEOMETRY_FEATURES:]
    for name, joint in (("l_ankle_height", "l_ankle"), ("r_knee_height", "r_knee")):
        assert np.allclose(geometry[:, GEOMETRY_COLUMNS.index(name)], world[:, J[joint], 2],
                           atol=1e-6)


def test_3d_features_carry_the_depth_families_offsets_as_the_rules_measure_them():
    """The last four numbers are the front/back offsets hand_front_back, foot_forward and
    hand_forward threshold: the same values as ``measure_posecodes``, so the teacher reads
    exactly what the rules decide (lying bodies, which the rules leave unasked, aside)."""
    from p2l3d_core.language.posecodes import measure_posecodes
    from p2l3d_core.models.keypoints import DEPTH_OFFSETS, keypoint_features_3d
    from p2l3d_core.poses.generator import generate_records

    records = generate_records(3, 0, 300)
    world = np.stack([r.joints_3d for r in records])
    cam = np.stack([r.camera.to_camera(r.joints_3d) for r in records])
    centres = np.stack([r.camera.position for r in records])
    offsets = keypoint_features_3d(cam, world, centres)[:, -len(DEPTH_OFFSETS):]
    values = measure_posecodes(world).values
    for k, name in enumerate(DEPTH_OFFSETS):
        measured = np.isfinite(values[name])
        assert measured.sum() > 250
        np.testing.assert_allclose(offsets[measured, k], values[name][measured], atol=1e-5)
        assert np.abs(values[name][measured]).max() > 0.2  # real offsets, not zeros


def test_3d_features_carry_the_feet_distance_as_the_rules_measure_it():
    """The number before the offsets is the ankles' distance in hip widths, the value
    feet_distance's rules threshold (``measure_posecodes``), named so in the geometry, up to
    FEET_DISTANCE_CAP (past "far apart")."""
    from p2l3d_core.language.posecodes import FEET_DISTANCE_INTERVALS, measure_posecodes
    from p2l3d_core.models.geometry import GEOMETRY_COLUMNS
    from p2l3d_core.models.keypoints import (
        FEET_DISTANCE_CAP,
        GEOMETRY_FEATURES,
        keypoint_features_3d,
    )
    from p2l3d_core.poses.generator import generate_records

    assert FEET_DISTANCE_CAP > FEET_DISTANCE_INTERVALS[-1][0]  # the cap keeps every category
    records = generate_records(4, 0, 300)
    world = np.stack([r.joints_3d for r in records])
    cam = np.stack([r.camera.to_camera(r.joints_3d) for r in records])
    column = GEOMETRY_FEATURES - GEOMETRY_COLUMNS.index("feet_distance")
    feet = keypoint_features_3d(cam, world, np.stack([r.camera.position for r in records]))[
        :, -column]
    values = measure_posecodes(world).values["feet_distance"]
    np.testing.assert_allclose(feet, np.minimum(values, FEET_DISTANCE_CAP), atol=1e-5)
    assert values.min() < 0.6 and values.max() > 2.2  # together and far apart both occur


def test_3d_features_carry_the_cameras_direction_as_facing_measures_it():
    """The facing columns are the cosine and sine of the angle the facing family thresholds
    (``posecodes.facing_degrees``, as ``measure_posecodes`` with the cameras), zeros where the
    rules leave facing unknown; every facing category occurs among the generator's views."""
    from p2l3d_core.language.posecodes import FACING_INTERVALS_DEG, measure_posecodes
    from p2l3d_core.models.geometry import GEOMETRY_COLUMNS
    from p2l3d_core.models.keypoints import FACING_COLUMNS, GEOMETRY_FEATURES, keypoint_features_3d
    from p2l3d_core.poses.generator import generate_records

    records = generate_records(6, 0, 300)
    world = np.stack([r.joints_3d for r in records])
    cam = np.stack([r.camera.to_camera(r.joints_3d) for r in records])
    centres = np.stack([r.camera.position for r in records])
    geometry = keypoint_features_3d(cam, world, centres)[:, -GEOMETRY_FEATURES:]
    ahead, left = (geometry[:, GEOMETRY_COLUMNS.index(c)] for c in FACING_COLUMNS)
    measured = measure_posecodes(world, centres)
    angle = measured.values["facing"]
    known = np.isfinite(angle)
    assert 250 < known.sum() < 300  # lying bodies have no facing
    np.testing.assert_allclose(np.degrees(np.arctan2(left, ahead))[known] % 360,
                               angle[known] % 360, atol=1e-3)
    assert not ahead[~known].any() and not left[~known].any()
    assert set(measured.codes["facing"][known]) >= set(range(len(FACING_INTERVALS_DEG)))
    # the camera moved to the body's other side turns the direction round
    behind = 2 * world[:, J["pelvis"]] - centres
    turned = keypoint_features_3d(cam, world, behind)[:, -GEOMETRY_FEATURES:]
    np.testing.assert_allclose(turned[known, GEOMETRY_COLUMNS.index("camera_ahead")],
                               -ahead[known], atol=1e-5)
    # a camera straight above the pelvis has no horizontal direction: zeros, as the rules say
    overhead = world[:, J["pelvis"]] + np.array([0.0, 0.0, 3.0])
    above = keypoint_features_3d(cam, world, overhead)[:, -GEOMETRY_FEATURES:]
    assert np.isnan(measure_posecodes(world, overhead).values["facing"]).all()
    assert not above[:, [GEOMETRY_COLUMNS.index(c) for c in FACING_COLUMNS]].any()
