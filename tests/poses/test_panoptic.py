"""CMU Panoptic scene reader: axis change, units, floor and camera consistency."""

from __future__ import annotations

import json

import numpy as np
import pytest

from p2l3d_core.poses.floor import CLEARANCE, body_size, floor_gaps
from p2l3d_core.poses.panoptic import (
    CM,
    PAN_TO_WORLD,
    load_panoptic_calibration,
    read_panoptic_scene,
)
from p2l3d_core.skeleton import J

SEQ = "poses/mmpose/panoptic_body3d/160906_band1/"
SCENE = SEQ + "hdPose3d_stage1_coco19/body3DScene_00000168.json"
CALIB = SEQ + "calibration_160906_band1.json"
ONE_TO_ONE = {"thorax": 0, "neck": 1, "pelvis": 2, "l_shoulder": 3, "l_elbow": 4, "l_wrist": 5,
              "l_hip": 6, "l_knee": 7, "l_ankle": 8, "r_shoulder": 9, "r_elbow": 10,
              "r_wrist": 11, "r_hip": 12, "r_knee": 13, "r_ankle": 14}


def _raw_projection(cam: dict, points_cm: np.ndarray) -> np.ndarray:
    """Pixels from the raw Panoptic cm coordinates with the raw K, R, t (no distortion)."""
    K, R = np.asarray(cam["K"]), np.asarray(cam["R"])
    x = (points_cm @ R.T + np.asarray(cam["t"]).reshape(3)) @ K.T
    return x[:, :2] / x[:, 2:]


@pytest.mark.parametrize("camera_name", [None, "00_16", "00_30"])
@pytest.mark.parametrize("floor_y_cm", [None, 0.0])
def test_projection_matches_raw_calibration(shared_file, camera_name, floor_y_cm) -> None:
    scene_path, cams = shared_file(SCENE), load_panoptic_calibration(shared_file(CALIB))
    records = read_panoptic_scene(scene_path, cams, camera_name, floor_y_cm=floor_y_cm)
    bodies = json.loads(scene_path.read_text())["bodies"]
    assert len(records) == len(bodies) == 3
    worst = 0.0
    for record, body in zip(records, bodies):
        raw = np.asarray(body["joints19"]).reshape(19, 4)
        cam = cams[record.meta["camera_name"]]
        assert cam["type"] == "hd"
        uv, _ = record.camera.project(record.joints_3d)
        expected = _raw_projection(cam, raw[:, :3])
        for name, idx in ONE_TO_ONE.items():
            if raw[idx, 3] < 0:
                assert np.isnan(record.joints_3d[J[name]]).all()  # conf -1 -> missing
            else:
                worst = max(worst, float(np.abs(uv[J[name]] - expected[idx]).max()))
    assert worst < 0.5  # measured ~1e-9 px
    assert records[0].meta["camera_name"] == (camera_name or "00_00")


def test_units_axes_and_floor(shared_file) -> None:
    scene_path, calib = shared_file(SCENE), shared_file(CALIB)
    records = read_panoptic_scene(scene_path, calib)
    raw = np.asarray(json.loads(scene_path.read_text())["bodies"][1]["joints19"]).reshape(19, 4)
    joints = records[1].joints_3d
    # same shape in metres after the rotation: bone lengths are the cm ones / 100
    np.testing.assert_allclose(np.linalg.norm(joints[J["l_knee"]] - joints[J["l_hip"]]),
                               CM * np.linalg.norm(raw[7, :3] - raw[6, :3]))
    # Panoptic y is down: larger raw y = lower; our z must order the joints the other way
    assert (raw[2, 1] < raw[14, 1]) and joints[J["pelvis"], 2] > joints[J["r_ankle"], 2]
    np.testing.assert_allclose(PAN_TO_WORLD @ [0, -1, 0], [0, 0, 1])  # Panoptic up -> +z
    assert np.linalg.det(PAN_TO_WORLD) == pytest.approx(1.0)  # no mirror
    # unknown floor: the scene's lowest body rests on z = 0 at its joints' clearance (a flat
    # foot's ankle ~8 cm up, as the generator's bodies), one shift for all bodies
    bodies = np.stack([r.joints_3d for r in records])
    gaps = floor_gaps(bodies, CLEARANCE * body_size(bodies))
    assert np.nanmin(gaps) == pytest.approx(0.0) and not records[0].meta["floor_known"]
    assert np.nanmin(bodies[..., 2]) > 0.02
    # known floor (the dome floor is near y = 0): z = -y / 100
    known = read_panoptic_scene(scene_path, calib, floor_y_cm=0.0)
    np.testing.assert_allclose(known[1].joints_3d[J["r_ankle"], 2], -CM * raw[14, 1])
    assert 0.0 < known[1].joints_3d[J["r_ankle"], 2] < 0.2
    for r in records:  # seated band members: head above pelvis
        assert r.joints_3d[J["neck"], 2] > r.joints_3d[J["pelvis"], 2]
    assert records[0].action == "band" and records[0].source == "panoptic"


def test_second_sequence_and_camera_errors(shared_file) -> None:
    seq2 = "poses/mmpose/panoptic_body3d/160906_band2/"
    scene = shared_file(seq2 + "hdPose3d_stage1_coco19/body3DScene_00000139.json")
    calib = shared_file(seq2 + "calibration_160906_band2.json")
    records = read_panoptic_scene(scene, calib, action="playing music")
    assert records and records[0].action == "playing music"
    with pytest.raises(KeyError):
        read_panoptic_scene(scene, calib, camera_name="99_99")
