"""The Predictor end to end with real parts: a tiny untrained student saved with save_pretrained
and loaded with Predictor.from_pretrained, MoveNet on the real photos and videos of
../shared/data, and keypoints of every supported format from the real annotation files.

The student reads both the skeleton image and the keypoints (``image+keypoints``) so that its
(untrained) answers still differ between poses: batch-versus-alone comparisons then mean
something."""

import json
import struct
import time
import zlib

import cv2
import numpy as np
import pytest
import torch

from p2l3d_core.inference.asking import MAX_QUESTION_CHARS
from p2l3d_core.inference.images import BadInput
from p2l3d_core.inference.keypoint_formats import MIN_JOINTS, joints_known, to_model_joints
from p2l3d_core.inference.predictor import Predictor
from p2l3d_core.models import Student, Teacher, save_pretrained
from p2l3d_core.models.config import preset

COCO_PHOTOS = ("000000000785.jpg", "000000040083.jpg", "000000196141.jpg", "000000197388.jpg")
BLAZEPOSE_OF_COCO = (0, 2, 5, 7, 8, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28)
PERSON_FIELDS = {"bbox", "score", "keypoints", "caption", "answers"}
ANSWER_FIELDS = {"question", "matched_question", "family", "answer", "sentence", "free_form",
                 "similarity"}
QUESTIONS = ["Is the left knee bent?", "Which way is the person facing relative to the camera?",
             "What colour is the shirt?"]


# -- fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory, one_torch_thread):
    torch.manual_seed(1)
    return save_pretrained(Student(preset("tiny", 32, pose_input="image+keypoints")),
                           tmp_path_factory.mktemp("student") / "model")


@pytest.fixture(scope="module")
def predictor(model_folder, shared_data):
    return Predictor.from_pretrained(str(model_folder))


@pytest.fixture(scope="module")
def coco(shared_file):
    return json.loads(shared_file("poses/mmpose/coco/test_coco.json").read_text())


@pytest.fixture(scope="module")
def coco_people(coco) -> list[np.ndarray]:
    """(17, 3) COCO keypoints of the annotated people with at least 6 labelled joints, COCO's
    visibility (0 unlabelled, 1 occluded, 2 visible) as confidence 0 or 1, as
    ``read_keypoint_file`` does."""
    people = [np.asarray(a["keypoints"], dtype=np.float64).reshape(17, 3)
              for a in coco["annotations"] if a["num_keypoints"] >= 6]
    for kp in people:
        kp[:, 2] = kp[:, 2] > 0
    return people


@pytest.fixture(scope="module")
def mpii_people(shared_file) -> list[np.ndarray]:
    data = json.loads(shared_file("poses/mmpose/mpii/test_mpii.json").read_text())
    return [np.concatenate([np.asarray(p["joints"], float),
                            np.asarray(p["joints_vis"], float)[:, None]], axis=1) for p in data]


@pytest.fixture(scope="module")
def h36m_people(shared_file) -> np.ndarray:
    return np.load(shared_file("poses/mmpose/h36m/test_h36m_body3d.npz"))["part"]


@pytest.fixture(scope="module")
def photo(shared_file) -> np.ndarray:
    """A real photo of two people (BGR)."""
    return cv2.imread(str(shared_file("poses/mmpose/coco/000000040083.jpg")))


def _blazepose33(coco17: np.ndarray) -> np.ndarray:
    out = np.zeros((33, 3))
    out[list(BLAZEPOSE_OF_COCO)] = coco17
    return out


def _png_header(width: int, height: int) -> bytes:
    """A PNG's signature and IHDR chunk declaring ``width`` x ``height``, and nothing else."""
    ihdr = struct.pack(">II5B", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr
            + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr)))


def _video(predictor, source, questions=None, stride=1) -> list:
    """``(frame index, Described)`` rows of ``describe_video`` (which also yields the frame)."""
    return [(row[0], row[-1]) for row in predictor.describe_video(source, questions, stride)]


def _summary(people) -> list:
    return [(p.caption, [(a.question, a.matched_question, a.answer, a.sentence)
                         for a in p.answers], p.keypoints, p.bbox) for p in people]


def _check_person(person, n_questions: int) -> None:
    row = person.to_dict()
    assert set(row) == PERSON_FIELDS
    json.loads(json.dumps(row))
    assert len(row["keypoints"]) == 17 and all(len(k) == 3 for k in row["keypoints"])
    assert isinstance(row["caption"], str) and row["caption"]
    assert len(row["bbox"]) == 4 and row["bbox"][0] <= row["bbox"][2]
    assert row["bbox"][1] <= row["bbox"][3]
    assert 0 < row["score"] <= 1
    assert len(row["answers"]) == n_questions
    for answer in row["answers"]:
        assert set(answer) == ANSWER_FIELDS


# -- inputs of every kind -------------------------------------------------------------------


def test_coco17_keypoints_are_one_person_reported_as_given(predictor, coco_people):
    for kp in coco_people:
        (person,) = predictor.describe(kp, QUESTIONS)
        _check_person(person, len(QUESTIONS))
        np.testing.assert_allclose(person.keypoints, kp, atol=0.01)
        seen = kp[kp[:, 2] > 0, :2]
        np.testing.assert_allclose(person.bbox, [*seen.min(0), *seen.max(0)], atol=0.01)
        assert person.score == 1.0


def test_a_list_and_an_array_give_the_same_person(predictor, coco_people):
    kp = coco_people[0]
    assert _summary(predictor.describe(kp.tolist(), QUESTIONS)) == _summary(
        predictor.describe(kp, QUESTIONS))


def test_blazepose33_is_read_at_its_coco_landmarks(predictor, coco_people):
    for kp in coco_people[:4]:
        (blaze,) = predictor.describe(_blazepose33(kp), QUESTIONS, keypoint_format="blazepose33")
        _check_person(blaze, len(QUESTIONS))
        np.testing.assert_allclose(blaze.keypoints, kp, atol=0.01)
        # The model reads the same joints, so it says the same as for the COCO keypoints.
        (same,) = predictor.describe(kp, QUESTIONS)
        assert _summary([blaze]) == _summary([same])


def test_mpii16_keypoints(predictor, mpii_people):
    for kp in mpii_people:
        (person,) = predictor.describe(kp, QUESTIONS, keypoint_format="mpii16")
        _check_person(person, len(QUESTIONS))
        coco = np.asarray(person.keypoints)
        # MPII has no face: nose, eyes and ears are reported missing; the limbs are MPII's own.
        assert (coco[1:5] == 0).all()
        for coco_joint, mpii_joint in ((5, 13), (6, 12), (9, 15), (10, 10), (15, 5), (16, 0)):
            if kp[mpii_joint, 2] > 0:
                np.testing.assert_allclose(coco[coco_joint], [*kp[mpii_joint, :2], 1.0],
                                           atol=0.01)


def test_h36m17_keypoints_and_two_columns_mean_fully_confident(predictor, h36m_people):
    for kp in h36m_people:
        three = predictor.describe(kp, QUESTIONS, keypoint_format="h36m17")
        two = predictor.describe(kp[:, :2], QUESTIONS, keypoint_format="h36m17")
        _check_person(three[0], len(QUESTIONS))
        assert len(three) == 1 and _summary(three) == _summary(two)


def test_two_columns_equal_three_with_confidence_one_for_every_format(predictor, coco_people,
                                                                       mpii_people):
    for kp, fmt in ((coco_people[0], "coco17"), (mpii_people[0], "mpii16")):
        full = kp.copy()
        full[:, 2] = 1.0
        assert _summary(predictor.describe(full[:, :2], keypoint_format=fmt)) == _summary(
            predictor.describe(full, keypoint_format=fmt))


def test_an_image_array_and_its_encoded_files_give_the_same_people(predictor, photo):
    alone = predictor.describe(photo, QUESTIONS)
    assert len(alone) == 2
    for person in alone:
        _check_person(person, len(QUESTIONS))
    h, w = photo.shape[:2]
    for suffix, lossless in ((".png", True), (".bmp", True), (".jpg", False), (".webp", False)):
        ok, data = cv2.imencode(suffix, photo)
        assert ok
        people = predictor.describe(data.tobytes(), QUESTIONS)
        assert len(people) == len(alone), suffix
        if lossless:
            assert _summary(people) == _summary(alone), suffix
            continue
        for got, want in zip(people, alone):  # re-compressed: the same people, nearly the same
            np.testing.assert_allclose(got.bbox, want.bbox, atol=0.03 * max(h, w),
                                       err_msg=suffix)
    # bytearray and memoryview are bytes too.
    data = cv2.imencode(".png", photo)[1].tobytes()
    for value in (bytearray(data), memoryview(data)):
        assert _summary(predictor.describe(value, QUESTIONS)) == _summary(alone)


# -- batches --------------------------------------------------------------------------------


def test_a_batch_equals_one_at_a_time(predictor, shared_file, coco_people, mpii_people):
    photos = [cv2.imread(str(shared_file(f"poses/mmpose/coco/{name}")))
              for name in COCO_PHOTOS[:2]]
    values = [photos[0], coco_people[0], photos[1], coco_people[1], coco_people[2]]
    questions = QUESTIONS + ["Is the right elbow bent?", "Why?"]
    batch = predictor.describe_batch(values, questions)
    assert [r.error for r in batch] == [None] * len(values)
    alone = [predictor.describe(v, questions) for v in values]
    for k, (got, want) in enumerate(zip(batch, alone)):
        assert _summary(got.people) == _summary(want), f"input {k + 1}"
    # The model does tell these people apart (else the comparison would prove little).
    everyone = [p for r in batch for p in r.people]
    assert len(everyone) >= 6
    assert len({tuple(a.answer for a in p.answers) for p in everyone}) > 1

    # Formats other than COCO in a batch too.
    batch = predictor.describe_batch(mpii_people, questions, keypoint_format="mpii16")
    for got, kp in zip(batch, mpii_people):
        assert _summary(got.people) == _summary(
            predictor.describe(kp, questions, keypoint_format="mpii16"))


@pytest.mark.timeout(120)  # issue 25: bad data never hangs
def test_a_bad_input_in_a_batch_is_its_own_error(predictor, photo, coco_people):
    values = [coco_people[0], b"not an image", photo, np.full((17, 3), np.nan), coco_people[1]]
    results = predictor.describe_batch(values, QUESTIONS,
                                       names=["a", "junk.jpg", "c", "broken", "e"])
    assert [r.error is None for r in results] == [True, False, True, False, True]
    assert "junk.jpg" in results[1].error and "not an image" in results[1].error
    assert "broken" in results[3].error and "NaN" in results[3].error
    assert results[1].people == results[3].people == []
    good = [coco_people[0], photo, coco_people[1]]
    for result, value in zip([results[0], results[2], results[4]], good):
        assert _summary(result.people) == _summary(predictor.describe(value, QUESTIONS))
    # Default names number the inputs from 1.
    assert predictor.describe_batch([b"x"])[0].error.startswith("input 1:")
    assert predictor.describe_batch([]) == []


# -- questions ------------------------------------------------------------------------------


def test_every_bank_question_matches_itself(predictor):
    bank = [q for _, q in predictor.vocab.bank]
    for match, (family, question) in zip(predictor.match(bank), predictor.vocab.bank):
        assert (match.matched_question, match.family, match.similarity) == (
            question, family, 1.0)
    # Extra spaces are not a different question.
    (match,) = predictor.match(["  " + bank[0].replace(" ", "   ") + " "])
    assert match.matched_question == bank[0] and match.similarity == 1.0


def test_a_paraphrase_matches_its_side_and_family(predictor, coco_people):
    left, right = predictor.match(["Is the left knee bent?", "Is the right knee bent?"])
    for match, side, other in ((left, "left", "right"), (right, "right", "left")):
        assert match.family == "joint_bend" and not match.free_form
        assert f"{side} knee" in match.matched_question
        assert other not in match.matched_question
        assert 0.6 <= match.similarity < 1.0
    (person,) = predictor.describe(coco_people[0], ["Is the left knee bent?"])
    (answer,) = person.answers
    assert answer.matched_question == left.matched_question and not answer.free_form
    assert answer.answer in predictor.vocab.families["joint_bend"]
    assert answer.sentence == predictor.vocab.sentences[left.matched_question][answer.answer]


def test_an_unrelated_question_is_answered_free_form(predictor, coco_people):
    (match,) = predictor.match(["What colour is the shirt?"])
    assert match.free_form and match.matched_question is None and match.family is None
    assert match.similarity < 0.6
    (person,) = predictor.describe(coco_people[0], ["What colour is the shirt?"])
    (answer,) = person.to_dict()["answers"]
    assert answer["free_form"] is True and answer["matched_question"] is None
    assert answer["family"] is None and answer["sentence"] == answer["answer"]


def test_questions_lists_every_family_with_examples(predictor):
    listed = predictor.questions()
    assert set(listed) == set(predictor.vocab.families)
    bank = {q: f for f, q in predictor.vocab.bank}
    for family, examples in listed.items():
        assert 1 <= len(examples) <= 3
        assert all(bank[q] == family for q in examples)


# -- bad inputs -----------------------------------------------------------------------------


@pytest.mark.parametrize(("make", "message"), [
    (lambda jpg: b"", "empty"),
    (lambda jpg: b"hello, this is text", "not an image"),
    (lambda jpg: np.random.default_rng(0).bytes(4096), "not an image"),
    (lambda jpg: jpg[:len(jpg) // 2], "truncated jpeg"),
    (lambda jpg: cv2.imencode(".png", np.zeros((1, 1, 3), np.uint8))[1].tobytes(), "too small"),
    (lambda jpg: np.zeros((8, 8, 3), np.uint8), "too small"),
    # A 2D array is read as keypoints: a greyscale image is refused for its shape.
    (lambda jpg: np.zeros((64, 64), np.uint8),
     "keypoints must have shape (17, 2) or (17, 3); got (64, 64)"),
    (lambda jpg: np.zeros((64, 64, 3), np.float32), "(H, W, 3) uint8"),
])
def test_a_bad_image_is_named(predictor, photo, make, message):
    jpg = cv2.imencode(".jpg", photo)[1].tobytes()
    with pytest.raises(BadInput, match=message.replace("(", r"\(").replace(")", r"\)")):
        predictor.describe(make(jpg))
    assert issubclass(BadInput, ValueError)


def test_a_huge_image_is_refused_from_its_header_alone(predictor):
    header = _png_header(20000, 20000)
    assert len(header) == 33
    start = time.perf_counter()
    with pytest.raises(BadInput, match="20000x20000 pixels is over the limit"):
        predictor.describe(header)
    assert time.perf_counter() - start < 0.5


@pytest.mark.parametrize(("value", "fmt", "message"), [
    (np.zeros((16, 3)), "coco17", r"coco17 keypoints must have shape \(17, 2\) or \(17, 3\)"),
    (np.zeros((17, 4)), "coco17", r"got \(17, 4\)"),
    ([[1, 2, 3]] * 17 + [[1]], "coco17", "not a numeric array"),
    (np.zeros((17, 3)), "mpii16", r"mpii16 keypoints must have shape \(16, 2\)"),
    (np.zeros((17, 3)), "openpose25", "unknown keypoint format 'openpose25'"),
    ("nose", "coco17", r"an image array must be \(H, W, 3\) uint8 BGR; got \(\) <U4"),
])
def test_keypoints_of_the_wrong_shape_or_format_are_named(predictor, value, fmt, message):
    with pytest.raises(BadInput, match=message):
        predictor.describe(value, keypoint_format=fmt)


@pytest.mark.timeout(120)  # issue 25: bad data never hangs
def test_keypoints_with_nan_inf_or_nothing_confident_are_named(predictor, coco_people):
    kp = coco_people[0].copy()
    for bad, joint in ((np.nan, 3), (np.inf, 7), (-np.inf, 0)):
        broken = kp.copy()
        broken[joint, 1] = bad
        with pytest.raises(BadInput, match=rf"NaN or infinite values at joints \[{joint}\]"):
            predictor.describe(broken)
    faint = kp.copy()
    faint[:, 2] = 0.1
    with pytest.raises(BadInput, match=f"only 0 of 17 joints .* at least {MIN_JOINTS}"):
        predictor.describe(faint)
    few = kp.copy()
    few[:, 2] = 0.0
    few[[5, 6, 11], 2] = 1.0  # shoulders and a hip: thorax is derived, still too few
    with pytest.raises(BadInput, match="joints at or above confidence"):
        predictor.describe(few)


def test_bad_questions_are_named(predictor, coco_people):
    with pytest.raises(BadInput, match="question 2: empty"):
        predictor.describe(coco_people[0], ["Is the left knee bent?", "   "])
    with pytest.raises(BadInput, match=f"over the limit of {MAX_QUESTION_CHARS}"):
        predictor.describe(coco_people[0], ["why " * MAX_QUESTION_CHARS])
    with pytest.raises(BadInput, match="question 1: text expected, got int"):
        predictor.describe(coco_people[0], [7])
    # Exactly at the limit is fine.
    (person,) = predictor.describe(coco_people[0], ["a" * MAX_QUESTION_CHARS])
    assert person.answers[0].free_form


def test_a_video_without_readable_frames_is_named(predictor, tmp_path):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(np.random.default_rng(0).bytes(20000))
    for source, message in ((b"", "empty"), (np.random.default_rng(1).bytes(20000),
                                             "not a readable video"),
                            (str(empty), "not a readable video"),
                            (str(junk), "not a readable video")):
        with pytest.raises(BadInput, match=message):
            _video(predictor, source)
    assert not list(tmp_path.glob("*.video")) and sorted(tmp_path.iterdir()) == [empty, junk]


# -- several people, videos -----------------------------------------------------------------


def test_every_person_the_estimator_finds_in_the_coco_photos(predictor, coco, shared_file):
    for image in coco["images"]:
        photo = cv2.imread(str(shared_file(f"poses/mmpose/coco/{image['file_name']}")))
        h, w = photo.shape[:2]
        estimated = [pose for pose in predictor.people_finder(photo) if joints_known(
            to_model_joints(pose.keypoints.astype(np.float64), "coco17")) >= MIN_JOINTS]
        annotated = [a for a in coco["annotations"]
                     if a["image_id"] == image["id"] and a["num_keypoints"] >= 6]
        people = predictor.describe(photo, QUESTIONS[:1])
        assert len(people) == len(estimated) >= len(annotated), image["file_name"]
        assert [p.score for p in people] == sorted((p.score for p in people), reverse=True)
        for person in people:
            _check_person(person, 1)
            x0, y0, x1, y1 = person.bbox
            assert -1 <= x0 < x1 <= w + 1 and -1 <= y0 < y1 <= h + 1, (image["file_name"],
                                                                        person.bbox)


def test_boxes_lie_strictly_inside_the_photo(predictor, shared_file):
    for name in COCO_PHOTOS:
        photo = cv2.imread(str(shared_file(f"poses/mmpose/coco/{name}")))
        h, w = photo.shape[:2]
        for person in predictor.describe(photo):
            x0, y0, x1, y1 = person.bbox
            assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h, (name, person.bbox)


def test_two_people_keep_their_tracks_through_a_video(predictor, shared_file):
    path = shared_file("videos/two_people_indoor.mp4")
    frames = _video(predictor, str(path), ["Is the left knee bent?"], stride=12)
    total = int(cv2.VideoCapture(str(path)).get(cv2.CAP_PROP_FRAME_COUNT))
    assert [i for i, _ in frames] == list(range(0, total, 12))
    tracks = [[p.track for p in result.people] for _, result in frames]
    assert all(result.error is None for _, result in frames)
    assert {t for ids in tracks for t in ids} == {0, 1}
    for track in (0, 1):
        assert sum(track in ids for ids in tracks) >= 0.8 * len(frames)
    for ids in tracks:
        assert len(ids) == len(set(ids))  # never two people with one id in a frame
    (index, frame, _), *_ = predictor.describe_video(str(path), stride=1000)
    assert index == 0 and frame.shape == (1080, 1920, 3) and frame.dtype == np.uint8
    person = frames[0][1].people[0]
    assert person.to_dict()["track"] == person.track
    assert set(person.to_dict()) == PERSON_FIELDS | {"track"}
    # The same bytes give the same rows.
    again = _video(predictor, path.read_bytes(), ["Is the left knee bent?"], stride=24)
    assert [(i, _summary(r.people)) for i, r in again] == [
        (i, _summary(r.people)) for i, r in frames if i % 24 == 0]


# -- a teacher ------------------------------------------------------------------------------


def test_a_teacher_is_refused_with_the_reason(tmp_path, coco_people, one_torch_thread):
    torch.manual_seed(0)
    folder = save_pretrained(Teacher(preset("tiny", 32)), tmp_path / "teacher")
    teacher = Predictor.from_pretrained(str(folder))
    with pytest.raises(ValueError, match="a teacher reads 3D joints too: describe photos and "
                                         "keypoints with a student"):
        teacher.describe(coco_people[0])


def test_every_caption_clause_is_one_the_answer_head_backs(model_folder, h36m_people):
    """Captions say only what the model's own answer head answers when asked: each clause
    fixes a bank question's answer, and the head gives that answer at least the threshold."""
    from p2l3d_core.evaluation.claims import caption_claims
    from p2l3d_core.language.grammar import unit_answers

    predictor = Predictor.from_pretrained(str(model_folder))
    predictor.guide_threshold = 0.3  # an untrained head is unsure of everything
    z = predictor.embed(h36m_people[..., :2])
    captions = predictor.captions(z)
    family = {q: f for f, q in predictor.vocab.bank}
    checked = 0
    for row, caption in enumerate(captions):
        for claim in caption_claims(caption):
            assert not claim.malformed, caption
            for question, agreeing in unit_answers()[claim.text]:
                dist = predictor.model.answer_distribution(z[row:row + 1], [question],
                                                           [family[question]])[0]
                backing = sum(float(dist[predictor.vocab.answers.index(a)]) for a in agreeing)
                assert backing >= 0.3, (claim.text, question, backing)
                checked += 1
    assert checked >= 4, captions
