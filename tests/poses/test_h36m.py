"""Human3.6M / VideoPose3D / MPI-INF-3DHP readers.

The real samples are research-only and read from ../shared/data; those tests skip without it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from p2l3d_core.poses.camera import Camera
from p2l3d_core.poses.h36m import (
    H36M32_TO_17,
    camera_from_mmpose,
    canonical_action,
    load_h36m_cameras,
    parse_h36m_imgname,
    read_3dhp_body3d,
    read_h36m_body3d,
    read_videopose3d,
)
from p2l3d_core.poses.safe_pickle import UnsafePickleError
from p2l3d_core.skeleton import J

H36M = "poses/mmpose/h36m/"
MPI3DHP = "poses/mmpose/mpi_inf_3dhp/"


@pytest.mark.parametrize("name, subject, action, take, camera, frame", [
    ("S1/S1_Directions_1.54138969/S1_Directions_1.54138969_000001.jpg", "S1", "Directions", 1,
     "54138969", 1),
    ("S5_SittingDown.54138969_002061.jpg", "S5", "SittingDown", 0, "54138969", 2061),
    ("S8/S8_WalkDog_1.55011271/S8_WalkDog_1.55011271_000026.jpg", "S8", "WalkingDog", 1,
     "55011271", 26),
    ("S11_Photo 2.60457274_000100.jpg", "S11", "TakingPhoto", 2, "60457274", 100),
])
def test_parse_imgname(name, subject, action, take, camera, frame) -> None:
    info = parse_h36m_imgname(name)
    assert (info["subject"], info["action"], info["take"], info["camera_id"], info["frame"]) \
        == (subject, action, take, camera, frame)


def test_canonical_action() -> None:
    assert canonical_action("Directions 1") == "Directions"
    assert canonical_action("WalkTogether") == "WalkTogether"
    assert canonical_action("Photo_1") == "TakingPhoto"
    with pytest.raises(ValueError):
        parse_h36m_imgname("frame_000001.jpg")


def _reprojection_px(record) -> np.ndarray:
    uv, _ = record.camera.project(record.joints_3d)
    return np.linalg.norm(uv - record.joints_2d, axis=-1)


def test_h36m_world_joints_reproject_onto_annotated_2d(shared_file) -> None:
    """KEY TEST: world joints through our Camera land on the annotated 2D. Distortion is
    ignored, so a pixel or so remains (measured: mean 0.37, 0.57, 1.10, 1.24 px)."""
    records = read_h36m_body3d(shared_file(H36M + "test_h36m_body3d.npz"))
    assert [r.action for r in records] == ["Directions", "SittingDown", "Greeting", "WalkingDog"]
    errors = np.stack([_reprojection_px(r) for r in records])
    assert errors.mean() < 1.5 and errors.mean(axis=1).max() < 2.0 and errors.max() < 5.0


def test_h36m_world_frame_matches_published_world_joints(shared_file) -> None:
    """h36m_coco.json holds the same frames' world joints: our camera->world must equal them
    (this pins the convention X_world = R X_cam + T, T = camera position)."""
    records = read_h36m_body3d(shared_file(H36M + "test_h36m_body3d.npz"))
    anns = json.loads(shared_file(H36M + "h36m_coco.json").read_text())["annotations"]
    for record, ann in zip(records, anns):
        world = np.asarray(ann["keypoints_3d"]).reshape(17, 4)[:, :3]
        np.testing.assert_allclose(record.joints_3d, world, atol=1e-6)
        joints = record.joints_3d  # z up, floor kept at ~0: ankles a few cm above it
        assert 0.0 < np.nanmin(joints[:, 2]) < 0.15
        assert joints[J["head"], 2] > joints[J["pelvis"], 2] > joints[J["r_ankle"], 2]
    cams = load_h36m_cameras(shared_file(H36M + "cameras.pkl"))
    np.testing.assert_allclose(records[0].camera.position, cams[("S1", "54138969")]["T"].ravel())


def test_h36m_vis_zero_is_nan(shared_file, tmp_path: Path) -> None:
    src = shared_file(H36M + "test_h36m_body3d.npz")
    with np.load(src) as data:
        arrays = {k: data[k].copy() for k in data.files}
    arrays["S"][0, J["l_wrist"], 3] = 0
    arrays["part"][0, J["r_knee"], 2] = 0
    np.savez(tmp_path / "body3d.npz", **arrays)
    record = read_h36m_body3d(tmp_path / "body3d.npz", shared_file(H36M + "cameras.pkl"))[0]
    assert np.isnan(record.joints_3d[J["l_wrist"]]).all()
    assert np.isnan(record.joints_2d[J["r_knee"]]).all()
    assert not np.isnan(record.joints_3d[J["r_knee"]]).any()


def _vp3d_file(path: Path, positions: dict) -> Path:
    np.savez(path, positions_3d=np.array(positions, dtype=object))
    return path


def test_videopose3d_layout_random_cameras(tmp_path: Path) -> None:
    clip = np.zeros((5, 32, 3))
    clip[:, :, 0] = np.arange(32) * 0.02  # x encodes the 32-joint index (a 0.62 m wide body)
    clip[:, :, 2] = 1.0
    path = _vp3d_file(tmp_path / "data_3d_h36m.npz",
                      {"S1": {"Directions 1": clip, "WalkDog": clip[:2]}, "S9": {"Eating": clip}})
    records = read_videopose3d(path, every=2, seed=3)
    assert len(records) == 3 + 1 + 3
    np.testing.assert_allclose(records[0].joints_3d[:, 0], np.array(H36M32_TO_17) * 0.02)
    assert [r.action for r in records[:4]] == ["Directions"] * 3 + ["WalkingDog"]
    assert records[0].meta["frame"] == 0 and records[1].meta["frame"] == 2
    again = read_videopose3d(path, every=2, seed=3)
    assert [r.camera for r in again] == [r.camera for r in records]  # seeded
    assert records[0].camera != records[1].camera  # one camera per record
    for r in records:  # the random camera frames the whole pose
        assert r.camera.project(r.joints_3d)[1].all()
    assert len(read_videopose3d(path, subjects=["S9"])) == 5


def test_videopose3d_refuses_malicious_payload(tmp_path: Path) -> None:
    import os

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'pwned'}",))

    path = _vp3d_file(tmp_path / "data_3d_h36m.npz", {"S1": {"Walking": Evil()}})
    with pytest.raises(UnsafePickleError, match="system"):
        read_videopose3d(path)
    assert not (tmp_path / "pwned").exists()


def test_videopose3d_with_dataset_cameras(shared_file, tmp_path: Path) -> None:
    """The H36M samples' world joints, written in VideoPose3D's 32-joint layout, come back
    identical and, with the H36M camera, project onto the annotated 2D."""
    records = read_h36m_body3d(shared_file(H36M + "test_h36m_body3d.npz"))
    cams = load_h36m_cameras(shared_file(H36M + "cameras.pkl"))
    first = records[0]
    full = np.full((1, 32, 3), 9.0)
    full[0, list(H36M32_TO_17)] = first.joints_3d
    path = _vp3d_file(tmp_path / "data_3d_h36m.npz", {"S1": {"Directions 1": full}})
    out = read_videopose3d(path, cameras=cams, camera_id="54138969")
    assert len(out) == 1 and out[0].meta["camera_id"] == "54138969"
    np.testing.assert_allclose(out[0].joints_3d, first.joints_3d)
    assert out[0].camera == first.camera
    uv, _ = out[0].camera.project(out[0].joints_3d)
    assert np.linalg.norm(uv - first.joints_2d, axis=-1).mean() < 1.0
    # Camera objects are accepted as well as raw dicts; default id = first sorted
    as_objects = {k: camera_from_mmpose(v) for k, v in cams.items()}
    assert read_videopose3d(path, cameras=as_objects)[0].meta["camera_id"] == "54138969"


def test_3dhp_train_world_frame(shared_file) -> None:
    records = read_3dhp_body3d(shared_file(MPI3DHP + "test_3dhp_train.npz"))
    assert [r.meta["frame_of_reference"] for r in records] == ["world", "world"]
    for r in records:
        assert np.nanmean(_reprojection_px(r)) < 1.0
        assert _resting_on_the_floor(r.joints_3d)
        assert r.joints_3d[J["head"], 2] > r.joints_3d[J["pelvis"], 2]
        assert (r.camera.width, r.camera.height) == (2048, 2048)  # the pickle says h=204
        # left/right kept: the nose lies in front of the body (body frame x forward)
        left = r.joints_3d[J["l_hip"]] - r.joints_3d[J["r_hip"]]
        up = r.joints_3d[J["thorax"]] - r.joints_3d[J["pelvis"]]
        nose = r.joints_3d[J["neck"]] - (r.joints_3d[J["head"]] + r.joints_3d[J["thorax"]]) / 2
        assert nose @ np.cross(left, up) > 0


def test_3dhp_test_camera_frame(shared_file) -> None:
    records = read_3dhp_body3d(shared_file(MPI3DHP + "test_3dhp_test.npz"))
    assert [r.meta["frame_of_reference"] for r in records] == ["camera", "camera"]
    for r in records:
        assert np.nanmean(_reprojection_px(r)) < 1.0
        assert _resting_on_the_floor(r.joints_3d)
        assert r.joints_3d[J["head"], 2] > r.joints_3d[J["pelvis"], 2]
        assert isinstance(r.camera, Camera)
    # TS2's right wrist and left wrist are outside the image: visibility 0 -> NaN
    assert np.isnan(records[1].joints_3d[[J["r_wrist"], J["l_wrist"]]]).all()


def _resting_on_the_floor(joints: np.ndarray) -> bool:
    """3DHP gives no floor: the pose stands where its joints rest (a flat foot's ankle ~8 cm up,
    as the generator's bodies do), not with its lowest joint at 0."""
    from p2l3d_core.poses.floor import CLEARANCE, body_size, floor_gaps

    gap = floor_gaps(joints, CLEARANCE * body_size(joints))
    return bool(abs(gap) < 1e-9 and np.nanmin(joints[:, 2]) > 0.02)
