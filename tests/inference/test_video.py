"""Videos: sampled frames of a real clip, and people kept as tracks across frames."""

import cv2
import numpy as np
import pytest

from p2l3d_core.inference.images import BadInput
from p2l3d_core.inference.predictor import Person
from p2l3d_core.inference.video import MAX_MISSED, Tracker, iou, read_frames


def _person(x: float, y: float, w: float = 100, h: float = 200) -> Person:
    """A standing person whose box's top-left is (x, y), with keypoints inside the box."""
    kp = np.zeros((17, 3))
    kp[:, 0] = x + w * np.linspace(0.2, 0.8, 17)
    kp[:, 1] = y + h * np.linspace(0.05, 0.95, 17)
    kp[:, 2] = 0.9
    return Person([x, y, x + w, y + h], 0.8, kp.tolist())


# -- Tracker --------------------------------------------------------------------------------


def test_iou():
    assert iou([0, 0, 10, 10], [0, 0, 10, 10]) == 1.0
    assert iou([0, 0, 10, 10], [20, 20, 30, 30]) == 0.0
    assert iou([0, 0, 10, 10], [5, 0, 15, 10]) == pytest.approx(50 / 150)
    assert iou([0, 0, 0, 0], [0, 0, 0, 0]) == 0.0


def test_people_keep_their_ids_when_the_list_order_changes():
    tracker = Tracker()
    a, b = _person(0, 0), _person(400, 0)
    tracker.update([a, b])
    assert (a.track, b.track) == (0, 1)
    b2, a2 = _person(405, 3), _person(6, 2)  # moved a little, listed the other way round
    tracker.update([b2, a2])
    assert (a2.track, b2.track) == (0, 1)
    a3, b3 = _person(12, 4), _person(410, 5)
    tracker.update([a3, b3])
    assert (a3.track, b3.track) == (0, 1)


def test_a_person_unseen_for_two_frames_resumes_the_same_id():
    tracker = Tracker()
    a, b = _person(0, 0), _person(400, 0)
    tracker.update([a, b])
    for _ in range(2):  # b is hidden for two sampled frames
        only_a = _person(3, 0)
        tracker.update([only_a])
        assert only_a.track == 0
    b_again, a_again = _person(402, 2), _person(5, 0)
    tracker.update([b_again, a_again])
    assert (a_again.track, b_again.track) == (0, 1)


def test_a_track_unseen_for_too_long_is_dropped():
    tracker = Tracker()
    first = _person(0, 0)
    tracker.update([first])
    for _ in range(MAX_MISSED + 1):
        tracker.update([])
    back = _person(0, 0)
    tracker.update([back])
    assert back.track == 1


def test_a_new_person_gets_a_new_id():
    tracker = Tracker()
    a = _person(0, 0)
    tracker.update([a])
    a2, newcomer = _person(2, 0), _person(600, 300)
    tracker.update([newcomer, a2])
    assert (a2.track, newcomer.track) == (0, 1)
    a3, newcomer2, third = _person(4, 0), _person(603, 300), _person(1200, 0)
    tracker.update([third, a3, newcomer2])
    assert (a3.track, newcomer2.track, third.track) == (0, 1, 2)


def test_two_people_in_one_frame_never_share_an_id():
    tracker = Tracker()
    a = _person(0, 0)
    tracker.update([a])
    near1, near2 = _person(5, 0), _person(10, 0)  # both overlap the one track
    tracker.update([near1, near2])
    assert {near1.track, near2.track} == {0, 1}


def test_a_fast_mover_is_followed_by_its_keypoints():
    """Boxes that barely overlap between sampled frames: the keypoints still match."""
    tracker = Tracker()
    a = _person(0, 0)
    tracker.update([a])
    moved = _person(70, 0)  # boxes overlap by 30 of 100 pixels: IoU 0.18; joints moved 0.35 h
    assert iou(a.bbox, moved.bbox) < 0.2
    tracker.update([moved])
    assert moved.track == 0


def test_person_dicts_without_track_and_people_from_the_predictor():
    p = _person(0, 0)
    assert "track" not in p.to_dict()
    Tracker().update([p])
    assert p.to_dict()["track"] == 0


# -- reading frames -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def clip(shared_file):
    return shared_file("videos/arm_wrestling.mp4")


def _frame_count(path) -> int:
    capture = cv2.VideoCapture(str(path))
    try:
        count = 0
        while capture.grab():
            count += 1
        return count
    finally:
        capture.release()


def test_every_kth_frame_with_its_index(clip):
    total = _frame_count(clip)
    assert total > 100
    frames = list(read_frames(clip, stride=40))
    assert [i for i, _ in frames] == list(range(0, total, 40))
    for _, frame in frames:
        assert frame.dtype == np.uint8 and frame.shape == (256, 340, 3)
    # Stride 1 gives the same pictures at those indices.
    every = dict(read_frames(str(clip), stride=1))
    assert len(every) == total
    for index, frame in frames:
        np.testing.assert_array_equal(every[index], frame)


def test_a_video_as_bytes_reads_the_same_and_leaves_no_file(clip, tmp_path, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    from_file = list(read_frames(clip, stride=70))
    from_bytes = list(read_frames(clip.read_bytes(), stride=70))
    assert [i for i, _ in from_bytes] == [i for i, _ in from_file]
    for (_, a), (_, b) in zip(from_bytes, from_file):
        np.testing.assert_array_equal(a, b)
    assert list(tmp_path.iterdir()) == []  # the temporary copy is removed


def test_a_stride_past_the_end_gives_the_first_frame_only(clip):
    assert [i for i, _ in read_frames(clip, stride=100_000)] == [0]


def test_unreadable_videos_and_bad_strides(tmp_path, clip):
    with pytest.raises(BadInput, match="clip.mp4: empty"):
        list(read_frames(b"", name="clip.mp4"))
    with pytest.raises(BadInput, match="video: not a readable video"):
        list(read_frames(b"\x00" * 5000))
    text = tmp_path / "notes.mp4"
    text.write_text("no video here\n" * 100)
    with pytest.raises(BadInput, match="notes.mp4: not a readable video"):
        list(read_frames(text))
    with pytest.raises(BadInput, match="not a readable video"):
        list(read_frames(tmp_path / "missing.mp4"))
    with pytest.raises(ValueError, match="stride must be >= 1, got 0"):
        list(read_frames(clip, stride=0))
