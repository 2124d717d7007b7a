"""CMU Panoptic reader: unit and axis conversion must not change what the camera sees."""

import json

import numpy as np
import pytest

from p2l3d_core.poses.panoptic import load_panoptic_calibration, read_panoptic_scene
from p2l3d_core.skeleton import J

SEQ = "poses/mmpose/panoptic_body3d/160906_band1"


@pytest.fixture
def scene(shared_data):
    scene = sorted((shared_data / SEQ / "hdPose3d_stage1_coco19").glob("*.json"))[0]
    return scene, shared_data / SEQ / "calibration_160906_band1.json"


def test_projection_matches_the_raw_panoptic_camera(scene):
    scene_path, calib_path = scene
    records = read_panoptic_scene(scene_path, calib_path)
    raw = json.loads(scene_path.read_text())["bodies"]
    cam = next(c for c in load_panoptic_calibration(calib_path).values() if c["type"] == "hd")
    K, R, t = (np.asarray(cam[k], dtype=float) for k in ("K", "R", "t"))
    assert len(records) == len(raw) >= 2
    for record, body in zip(records, raw):
        j19 = np.asarray(body["joints19"]).reshape(19, 4)
        x = (R @ j19[:, :3].T + t).T  # raw Panoptic: cm, y down
        uv_raw = (K @ x.T).T
        uv_raw = uv_raw[:, :2] / uv_raw[:, 2:]
        uv, _ = record.camera.project(record.joints_3d)
        # pelvis = body centre (2), l_wrist = 5, r_ankle = 14 in Panoptic order
        for pan, name in ((2, "pelvis"), (5, "l_wrist"), (14, "r_ankle"), (1, "neck")):
            if j19[pan, 3] >= 0:
                assert np.abs(uv[J[name]] - uv_raw[pan]).max() < 0.5


def test_metres_z_up_floor_and_missing_joints(scene):
    scene_path, calib_path = scene
    records = read_panoptic_scene(scene_path, calib_path)
    lowest = min(np.nanmin(r.joints_3d[:, 2]) for r in records)
    assert abs(lowest) < 1e-9  # the scene's lowest joint is on the floor
    for r in records:
        pose = r.joints_3d
        if not np.isnan(pose[[J["head"], J["neck"], J["pelvis"], J["l_ankle"]]]).any():
            assert pose[J["neck"], 2] > pose[J["pelvis"], 2] > pose[J["l_ankle"], 2]  # upright
        thigh = np.linalg.norm(pose[J["l_knee"]] - pose[J["l_hip"]])
        if np.isfinite(thigh):
            assert 0.25 < thigh < 0.6  # metres, not centimetres
        assert np.isnan(pose[J["head"]]).all()  # Panoptic has no head top
    assert records[0].action == "band" and records[0].source == "panoptic"


def test_unknown_camera_is_named(scene):
    scene_path, calib_path = scene
    with pytest.raises(KeyError, match="no camera 'zz'"):
        read_panoptic_scene(scene_path, calib_path, camera_name="zz")
