"""COCO and MPII 2D keypoint readers (real mmpose sample annotations)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from p2l3d_core.poses.keypoints_json import Pose2D, read_coco_keypoints, read_mpii_json
from p2l3d_core.skeleton import J

COCO = "poses/mmpose/coco/test_coco.json"
MPII = "poses/mmpose/mpii/test_mpii.json"


def test_coco_reader(shared_file) -> None:
    path = shared_file(COCO)
    poses = read_coco_keypoints(path)
    # 14 annotations, two of which label no keypoint at all (skipped by default)
    assert len(poses) == 12 and all(isinstance(p, Pose2D) for p in poses)
    assert len(read_coco_keypoints(path, min_keypoints=0)) == 14
    by_id = {p.person_id: p for p in poses}
    raw = {str(a["id"]): np.asarray(a["keypoints"], float).reshape(17, 3)
           for a in json.loads(path.read_text())["annotations"]}

    first = by_id["442619"]  # all 17 visible
    assert first.image == "000000000785.jpg" and first.source == "coco"
    assert first.meta["width"] == 640 and first.meta["height"] == 425
    kp = raw["442619"]
    np.testing.assert_array_equal(first.joints_2d[J["l_wrist"]], kp[9, :2])
    np.testing.assert_array_equal(first.joints_2d[J["neck"]], kp[0, :2])  # nose
    np.testing.assert_allclose(first.joints_2d[J["pelvis"]], (kp[11, :2] + kp[12, :2]) / 2)
    assert np.isnan(first.joints_2d[J["head"]]).all()  # COCO has no head top
    assert first.visible.sum() == 16 and not first.visible[J["head"]]

    occluded = by_id["198196"]  # v=1 on both hips and the right ankle, v=0 on three joints
    kp = raw["198196"]
    assert not np.isnan(occluded.joints_2d[J["r_ankle"]]).any()  # labelled: position kept
    assert not occluded.visible[J["r_ankle"]] and not occluded.visible[J["pelvis"]]
    for coco_idx, h36m in ((13, "l_knee"), (14, "r_knee"), (15, "l_ankle"), (16, "r_ankle")):
        if kp[coco_idx, 2] == 0:
            assert np.isnan(occluded.joints_2d[J[h36m]]).all()


def test_coco_v0_is_nan(tmp_path: Path) -> None:
    kp = [10.0 * i for i in range(51)]
    kp[11 * 3 + 2] = 0  # l_hip not labelled
    data = {"images": [{"id": 1, "file_name": "a.jpg", "width": 100, "height": 80}],
            "annotations": [{"id": 7, "image_id": 1, "keypoints": kp, "iscrowd": 0}]}
    path = tmp_path / "coco.json"
    path.write_text(json.dumps(data))
    (pose,) = read_coco_keypoints(path)
    assert np.isnan(pose.joints_2d[[J["l_hip"], J["pelvis"], J["spine"], J["head"]]]).all()
    assert np.isnan(pose.joints_2d).any(axis=1).sum() == 4


def test_mpii_reader(shared_file) -> None:
    path = shared_file(MPII)
    poses = read_mpii_json(path)
    raw = json.loads(path.read_text())
    assert len(poses) == 5 and poses[0].source == "mpii"
    assert poses[0].image == "005808361.jpg" and poses[0].person_id == "005808361.jpg#0"
    joints = np.asarray(raw[0]["joints"])
    np.testing.assert_array_equal(poses[0].joints_2d[J["r_ankle"]], joints[0])
    np.testing.assert_array_equal(poses[0].joints_2d[J["pelvis"]], joints[6])
    np.testing.assert_array_equal(poses[0].joints_2d[J["head"]], joints[9])
    np.testing.assert_array_equal(poses[0].joints_2d[J["l_wrist"]], joints[15])
    assert np.isnan(poses[0].joints_2d[J["neck"]]).all()  # upper neck is not the nose
    assert poses[0].visible.sum() == 16
    # 051423444.jpg: both ankles not annotated (joints_vis 0) -> NaN and not visible
    third = poses[2]
    assert third.image == "051423444.jpg"
    assert np.isnan(third.joints_2d[[J["r_ankle"], J["l_ankle"]]]).all()
    assert not third.visible[[J["r_ankle"], J["l_ankle"]]].any()
    assert not np.isnan(third.joints_2d[J["r_knee"]]).any()
