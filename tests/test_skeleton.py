"""Converters into H36M-17: slots, derived joints, missing joints, normalisation, flips.

Expected slots are written out here from each format's published joint order (not read from
skeleton.py's tables), so a wrong table entry fails.
"""

from __future__ import annotations

import numpy as np
import pytest

from p2l3d_core import skeleton as sk
from p2l3d_core.skeleton import J

COCO = ["nose", "l_eye", "r_eye", "l_ear", "r_ear", "l_shoulder", "r_shoulder", "l_elbow",
        "r_elbow", "l_wrist", "r_wrist", "l_hip", "r_hip", "l_knee", "r_knee", "l_ankle",
        "r_ankle"]
MPII = ["r_ankle", "r_knee", "r_hip", "l_hip", "l_knee", "l_ankle", "pelvis", "thorax",
        "upper_neck", "head_top", "r_wrist", "r_elbow", "r_shoulder", "l_shoulder", "l_elbow",
        "l_wrist"]
PANOPTIC = ["neck", "nose", "body_centre", "l_shoulder", "l_elbow", "l_wrist", "l_hip",
            "l_knee", "l_ankle", "r_shoulder", "r_elbow", "r_wrist", "r_hip", "r_knee",
            "r_ankle", "l_eye", "l_ear", "r_eye", "r_ear"]
LIMBS = ["r_hip", "r_knee", "r_ankle", "l_hip", "l_knee", "l_ankle", "l_shoulder", "l_elbow",
         "l_wrist", "r_shoulder", "r_elbow", "r_wrist"]
# mediapipe BlazePose landmark indices of the limb joints
BLAZE = {"l_shoulder": 11, "r_shoulder": 12, "l_elbow": 13, "r_elbow": 14, "l_wrist": 15,
         "r_wrist": 16, "l_hip": 23, "r_hip": 24, "l_knee": 25, "r_knee": 26, "l_ankle": 27,
         "r_ankle": 28}


def distinct(n: int, dim: int = 2, seed: int = 0) -> np.ndarray:
    """Source keypoints with a distinct, recognisable value per joint."""
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 500, size=(n, dim))


def mid(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a + b) / 2


def test_coco_slots_and_derived_joints() -> None:
    src = distinct(17)
    out = sk.from_coco17(src)
    assert out.shape == (17, 2)
    for name in LIMBS:
        np.testing.assert_array_equal(out[J[name]], src[COCO.index(name)])
    np.testing.assert_array_equal(out[J["neck"]], src[COCO.index("nose")])
    np.testing.assert_allclose(out[J["pelvis"]], mid(src[11], src[12]))
    np.testing.assert_allclose(out[J["thorax"]], mid(src[5], src[6]))
    np.testing.assert_allclose(out[J["spine"]], mid(out[J["pelvis"]], out[J["thorax"]]))
    assert np.isnan(out[J["head"]]).all(), "COCO has no head-top point"


def test_coco_missing_stays_missing() -> None:
    src = distinct(17)
    src[COCO.index("l_hip")] = np.nan
    src[COCO.index("r_wrist")] = np.nan
    out = sk.from_coco17(src)
    missing = set(np.flatnonzero(sk.missing_mask(out)))
    # a derived joint needs both of its sources: no pelvis, so no spine either
    assert missing == {J["l_hip"], J["r_wrist"], J["pelvis"], J["spine"], J["head"]}


def test_coco_batched_shapes() -> None:
    src = distinct(17, 3).reshape(1, 17, 3).repeat(4, axis=0).reshape(2, 2, 17, 3)
    out = sk.from_coco17(src)
    assert out.shape == (2, 2, 17, 3)
    np.testing.assert_array_equal(out[1, 0, J["r_knee"]], src[1, 0, COCO.index("r_knee")])


def test_mpii_slots_pelvis_kept_and_neck_missing() -> None:
    src = distinct(16)
    out = sk.from_mpii16(src)
    for name in LIMBS + ["pelvis", "thorax"]:
        np.testing.assert_array_equal(out[J[name]], src[MPII.index(name)])
    np.testing.assert_array_equal(out[J["head"]], src[MPII.index("head_top")])
    assert np.isnan(out[J["neck"]]).all(), "MPII's upper neck is not the H36M nose"
    np.testing.assert_allclose(out[J["spine"]], mid(src[6], src[7]))
    # MPII's own pelvis wins over mid-hips; without it, mid-hips is used
    assert not np.allclose(out[J["pelvis"]], mid(src[2], src[3]))
    src[MPII.index("pelvis")] = np.nan
    np.testing.assert_allclose(sk.from_mpii16(src)[J["pelvis"]], mid(src[2], src[3]))


def test_blazepose_slots() -> None:
    src = distinct(33, 3)
    out = sk.from_blazepose33(src)
    for name, idx in BLAZE.items():
        np.testing.assert_array_equal(out[J[name]], src[idx])
    np.testing.assert_array_equal(out[J["neck"]], src[0])
    np.testing.assert_allclose(out[J["pelvis"]], mid(src[23], src[24]))
    np.testing.assert_allclose(out[J["thorax"]], mid(src[11], src[12]))
    assert np.isnan(out[J["head"]]).all()


def test_panoptic_slots_pelvis_from_body_centre() -> None:
    src = distinct(19, 3)
    out = sk.from_panoptic19(src)
    for name in LIMBS:
        np.testing.assert_array_equal(out[J[name]], src[PANOPTIC.index(name)])
    np.testing.assert_array_equal(out[J["pelvis"]], src[PANOPTIC.index("body_centre")])
    np.testing.assert_array_equal(out[J["thorax"]], src[PANOPTIC.index("neck")])
    np.testing.assert_array_equal(out[J["neck"]], src[PANOPTIC.index("nose")])
    np.testing.assert_allclose(out[J["spine"]], mid(src[2], src[0]))
    assert np.isnan(out[J["head"]]).all()
    src[2] = np.nan  # no body centre -> mid-hips
    np.testing.assert_allclose(sk.from_panoptic19(src)[J["pelvis"]], mid(src[6], src[12]))


def test_panoptic_real_body_missing_joint(shared_file) -> None:
    import json

    path = shared_file("poses/mmpose/panoptic_body3d/160906_band1/hdPose3d_stage1_coco19/"
                       "body3DScene_00000168.json")
    body = json.loads(path.read_text())["bodies"][0]
    raw = np.asarray(body["joints19"]).reshape(19, 4)
    pts = np.where(raw[:, 3:] >= 0, raw[:, :3], np.nan)
    assert raw[PANOPTIC.index("l_ankle"), 3] < 0  # this body's left ankle was not reconstructed
    out = sk.from_panoptic19(pts)
    assert np.isnan(out[J["l_ankle"]]).all()
    np.testing.assert_array_equal(out[J["r_ankle"]], pts[PANOPTIC.index("r_ankle")])


def test_cmu_names_to_slots() -> None:
    names = ["Hips", "RightHip", "RightKnee", "RightAnkle", "LeftHip", "LeftKnee", "LeftAnkle",
             "Chest", "Neck", "Head", "Head_end", "LeftShoulder", "LeftElbow", "LeftWrist",
             "RightShoulder", "RightElbow", "RightWrist"]
    positions = {n: np.full((5, 3), float(i)) for i, n in enumerate(names)}
    positions["lowerneck"] = np.full((5, 3), -1.0)  # present in the files, not used
    out = sk.from_cmu31(positions)
    assert out.shape == (5, 17, 3)
    # H36M order is: pelvis, r_hip, r_knee, r_ankle, l_hip, l_knee, l_ankle, spine, thorax,
    # neck/nose, head, l_shoulder, l_elbow, l_wrist, r_shoulder, r_elbow, r_wrist
    np.testing.assert_array_equal(out[:, 1:, 0], np.tile(np.arange(1.0, 17.0), (5, 1)))
    # The pelvis is the hips' mid-point, as a photo's (CMU's root "Hips" sits above it).
    np.testing.assert_array_equal(out[:, J["pelvis"], 0], np.full(5, (1.0 + 4.0) / 2))
    del positions["LeftWrist"]
    assert np.isnan(sk.from_cmu31(positions)[:, J["l_wrist"]]).all()


def test_normalize_2d_range_and_aspect() -> None:
    kp = np.array([[100.0, 200.0], [300.0, 250.0], [200.0, 600.0], [np.nan, np.nan]])
    kp = np.vstack([kp, np.full((13, 2), [200.0, 400.0])])
    out = sk.normalize_2d(kp, margin=0.1)
    present = out[:3]
    assert np.nanmin(out) >= 0.1 - 1e-12 and np.nanmax(out) <= 0.9 + 1e-12
    extent = present.max(axis=0) - present.min(axis=0)
    assert extent[1] == pytest.approx(0.8)  # the longer side (y, 400 px) spans 1 - 2 margin
    assert extent[0] / extent[1] == pytest.approx(200 / 400)  # aspect kept
    assert np.isnan(out[3]).all()
    # translation and scale invariant
    np.testing.assert_allclose(sk.normalize_2d(kp * 3 + 7), out)


def test_flip_left_right_twice_is_identity_and_swaps_sides() -> None:
    pose = distinct(17, 3, seed=3)
    flipped = sk.flip_left_right(pose)
    np.testing.assert_allclose(sk.flip_left_right(flipped), pose)
    np.testing.assert_allclose(flipped[J["l_wrist"]], pose[J["r_wrist"]] * [-1, 1, 1])
    np.testing.assert_allclose(flipped[J["head"]], pose[J["head"]] * [-1, 1, 1])


def test_tables_are_consistent() -> None:
    assert len(sk.PARENTS) == len(sk.FLIP_INDEX) == sk.NUM_JOINTS == 17
    assert all(sk.FLIP_INDEX[sk.FLIP_INDEX[i]] == i for i in range(17))
    for left, right in sk.LEFT_RIGHT_PAIRS:
        assert sk.JOINT_NAMES[left].startswith("l_") and sk.JOINT_NAMES[right].startswith("r_")
        assert sk.JOINT_NAMES[left][2:] == sk.JOINT_NAMES[right][2:]
