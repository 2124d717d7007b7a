"""COCO and MPII 2D annotation readers on the real sample files."""

import numpy as np

from p2l3d_core.poses.keypoints_json import read_coco_keypoints, read_mpii_json
from p2l3d_core.skeleton import J


def test_coco_reader_maps_keypoints_and_marks_missing(shared_data):
    path = shared_data / "poses/mmpose/coco/test_coco.json"
    poses = read_coco_keypoints(path)
    assert len(poses) >= 10 and all(p.source == "coco" for p in poses)
    raw = __import__("json").loads(path.read_text())
    ann = next(a for a in raw["annotations"] if str(a["id"]) == poses[0].person_id)
    kp = np.asarray(ann["keypoints"], dtype=float).reshape(17, 3)
    p = poses[0]
    assert np.isnan(p.joints_2d[J["head"]]).all()  # COCO has no head top
    for coco_idx, name in ((5, "l_shoulder"), (10, "r_wrist"), (15, "l_ankle"), (0, "neck")):
        if kp[coco_idx, 2] > 0:
            assert np.allclose(p.joints_2d[J[name]], kp[coco_idx, :2])
            assert p.visible[J[name]] == (kp[coco_idx, 2] == 2)
        else:
            assert np.isnan(p.joints_2d[J[name]]).all() and not p.visible[J[name]]
    if kp[11, 2] > 0 and kp[12, 2] > 0:
        assert np.allclose(p.joints_2d[J["pelvis"]], (kp[11, :2] + kp[12, :2]) / 2)
    assert p.image.endswith(".jpg") and p.meta["width"]


def test_mpii_reader_maps_all_sixteen_joints(shared_data):
    path = shared_data / "poses/mmpose/mpii/test_mpii.json"
    poses = read_mpii_json(path)
    entries = __import__("json").loads(path.read_text())
    assert len(poses) == len(entries) == 5
    joints = np.asarray(entries[0]["joints"])
    p = poses[0]
    assert np.allclose(p.joints_2d[J["r_ankle"]], joints[0])
    assert np.allclose(p.joints_2d[J["pelvis"]], joints[6])
    assert np.allclose(p.joints_2d[J["head"]], joints[9])
    assert np.allclose(p.joints_2d[J["l_wrist"]], joints[15])
    assert np.isnan(p.joints_2d[J["neck"]]).all()  # MPII's upper neck is not the nose
    assert p.person_id == f"{entries[0]['image']}#0"
