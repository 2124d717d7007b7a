"""Overlays: people drawn over a copy of the picture, near where their keypoints are."""

import json

import cv2
import numpy as np
import pytest

from p2l3d_core.inference.keypoint_formats import MIN_CONFIDENCE
from p2l3d_core.inference.overlay import draw_people
from p2l3d_core.inference.predictor import Answer, Person


@pytest.fixture(scope="module")
def photo(shared_file) -> np.ndarray:
    return cv2.imread(str(shared_file("poses/mmpose/coco/000000040083.jpg")))


@pytest.fixture(scope="module")
def people(shared_file) -> list[Person]:
    """The two annotated people of the photo, as the predictor reports them."""
    coco = json.loads(shared_file("poses/mmpose/coco/test_coco.json").read_text())
    out = []
    for a in coco["annotations"]:
        if a["image_id"] == 40083 and a["num_keypoints"] >= 6:
            kp = np.asarray(a["keypoints"], float).reshape(17, 3)
            kp[:, 2] = kp[:, 2] > 0
            x, y, w, h = a["bbox"]
            answer = Answer("Is the left knee bent?", "How bent is the left knee?", "joint_bend",
                            "bent", "The left knee is bent.", False, 0.91)
            out.append(Person([x, y, x + w, y + h], 0.9, kp.tolist(),
                              "the person is crouching and reaching forward", [answer]))
    assert len(out) == 2
    return out


def _changed_near(before: np.ndarray, after: np.ndarray, x: float, y: float, r: int = 4) -> bool:
    y0, x0 = max(0, int(y) - r), max(0, int(x) - r)
    return bool((before[y0:int(y) + r + 1, x0:int(x) + r + 1]
                 != after[y0:int(y) + r + 1, x0:int(x) + r + 1]).any())


@pytest.mark.parametrize("tracked", [False, True])
@pytest.mark.parametrize("as_dicts", [False, True])
def test_people_are_drawn_on_a_copy_near_their_keypoints(photo, people, tracked, as_dicts):
    original = photo.copy()
    given = []
    for k, person in enumerate(people):
        person = Person(**{**person.__dict__, "track": 7 + k if tracked else None})
        given.append(person.to_dict() if as_dicts else person)
    if as_dicts:
        assert ("track" in given[0]) == tracked
        given = json.loads(json.dumps(given))  # exactly what a JSON reader gets back
    out = draw_people(photo, given)
    assert out.shape == photo.shape and out.dtype == photo.dtype
    assert out is not photo and not np.shares_memory(out, photo)
    np.testing.assert_array_equal(photo, original)  # the input is untouched
    for person in people:
        kp = np.asarray(person.keypoints)
        seen = kp[kp[:, 2] >= MIN_CONFIDENCE]
        assert len(seen) >= 6
        for x, y, _ in seen:
            assert _changed_near(photo, out, x, y), (x, y)
    # Far from everyone (the top-right corner, above both boxes) nothing is drawn.
    assert (out[:40, -40:] == photo[:40, -40:]).all()


def test_ids_and_captions_make_the_drawings_differ(photo, people):
    plain = draw_people(photo, people, answers=False)
    with_answers = draw_people(photo, people)
    assert not np.array_equal(plain, with_answers)
    tracked = [Person(**{**p.__dict__, "track": 3}) for p in people[:1]]
    assert not np.array_equal(draw_people(photo, tracked), draw_people(photo, people[:1]))


def test_nobody_to_draw_and_people_near_the_edges(photo, people):
    out = draw_people(photo, [])
    np.testing.assert_array_equal(out, photo)
    assert out is not photo
    # A person whose box touches the image's corner: the caption band stays inside the image.
    h, w = photo.shape[:2]
    edge = Person(**{**people[0].__dict__, "bbox": [w - 20.0, h - 20.0, w - 1.0, h - 1.0]})
    out = draw_people(photo, [edge])
    assert out.shape == photo.shape
    assert not np.array_equal(out[h - 60:, w - 200:], photo[h - 60:, w - 200:])


def test_low_confidence_joints_are_not_drawn(photo, people):
    faint = np.asarray(people[0].keypoints)
    faint[:, 2] = MIN_CONFIDENCE / 2
    person = Person([0.0, 0.0, 1.0, 1.0], 0.5, faint.tolist(), "")
    out = draw_people(photo, [person], answers=False)
    for x, y, _ in faint[faint[:, 0] > 0]:
        if x > 120 or y > 80:  # away from the label band at the top-left corner
            assert not _changed_near(photo, out, x, y, r=1), (x, y)
