"""Language from 2D keypoints alone (flat pseudo-3D), and the answer table of the QA families."""

from __future__ import annotations

import numpy as np
import pytest

from p2l3d_core.language import describe_batch
from p2l3d_core.language.from_2d import TORSO_METRES, describe_batch_2d, flat_pose
from p2l3d_core.language.posecodes import measure_posecodes
from p2l3d_core.language.questions import answer_table, ask
from p2l3d_core.poses.generator import generate_records
from p2l3d_core.skeleton import NUM_JOINTS, J


@pytest.fixture(scope="module")
def records():
    return generate_records(3, 0, 60)  # every action family several times


@pytest.fixture(scope="module")
def projected(records):
    """``(keypoints (N, 17, 2) pixels, visible (N, 17))`` as each record's camera sees it."""
    uv, visible = zip(*(r.project() for r in records))
    return np.stack(uv), np.stack(visible)


def test_flat_pose_geometry(projected):
    kp, _ = projected
    flat = flat_pose(kp)
    assert flat.shape == (len(kp), NUM_JOINTS, 3)
    assert np.isfinite(flat).all()
    assert (flat[..., 1] == 0.0).all()  # no depth
    assert np.allclose(flat[..., 2].min(axis=1), 0.0)  # lowest joint on the ground
    torso = np.linalg.norm(flat[:, J["thorax"]] - flat[:, J["pelvis"]], axis=-1)
    assert np.allclose(torso, TORSO_METRES)
    # image up is world up: the head is above the ankles for the standing poses
    heads_up = flat[:, J["head"], 2] > flat[:, [J["l_ankle"], J["r_ankle"]], 2].max(axis=1)
    assert heads_up.mean() > 0.5
    # x is centred on the mean image column
    assert np.allclose(flat[..., 0].mean(axis=1), 0.0, atol=1e-9)


def test_flat_pose_is_free_of_image_translation_and_scale(projected):
    kp, _ = projected
    assert np.allclose(flat_pose(kp * 0.4 + np.array([300.0, -50.0])), flat_pose(kp), atol=1e-9)


def test_flat_pose_unseen_joints_are_nan(projected):
    kp, _ = projected
    kp = kp[:4].copy()
    kp[0, J["l_wrist"]] = np.nan
    visible = np.ones((4, NUM_JOINTS), dtype=bool)
    visible[1, J["r_knee"]] = False
    visible[2, [J["head"], J["neck"]]] = False
    flat = flat_pose(kp, visible)
    unseen = np.zeros((4, NUM_JOINTS), dtype=bool)
    unseen[0, J["l_wrist"]] = unseen[1, J["r_knee"]] = True
    unseen[2, [J["head"], J["neck"]]] = True
    assert np.isnan(flat[unseen]).all()  # all three coordinates, depth included
    assert (flat[~unseen][:, 1] == 0.0).all()
    assert np.isfinite(flat[~unseen]).all()
    assert np.allclose(np.nanmin(flat[..., 2], axis=1), 0.0)
    assert np.allclose(np.linalg.norm(flat[:, J["thorax"]] - flat[:, J["pelvis"]], axis=-1),
                       TORSO_METRES)


def test_no_2d_description_asks_where_only_depth_tells(records, projected):
    """Front/back relations (hand in front of the torso, which foot / hand is further
    forward) are measured along the depth axis, which the flat pose does not have: from 2D
    they fall in the dead bands and are never asked, while the true 3D asks them."""
    kp, visible = projected
    actions = [r.action for r in records]
    seeds = list(range(len(records)))
    from_2d = describe_batch_2d(kp, actions, visible, seeds)
    asked_2d = {qa.family for text in from_2d for qa in text.qas}
    front_back = {"hand_front_back", "foot_forward", "hand_forward"}
    assert not asked_2d & front_back
    assert {"hand_height", "joint_bend", "action"} <= asked_2d  # 2D still says plenty
    assert all(text.captions for text in from_2d)
    assert "facing" not in asked_2d  # no camera, no facing

    true_3d = describe_batch(np.stack([r.joints_3d for r in records]), actions,
                             np.stack([r.camera.position for r in records]), seeds)
    asked_3d = {qa.family for text in true_3d for qa in text.qas if qa.needs_depth}
    assert front_back <= asked_3d
    assert sum(qa.needs_depth for text in true_3d for qa in text.qas) > len(records) // 2


# --- answer_table ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def codes(records):
    return measure_posecodes(np.stack([r.joints_3d for r in records]),
                             np.stack([r.camera.position for r in records]))


@pytest.mark.parametrize("seed", [None, 0, 1, 7, 12345])
def test_answer_table_agrees_with_every_asked_question(records, codes, seed):
    asked = 0
    for i, record in enumerate(records):
        table = answer_table(codes, i, record.action)
        rng = None if seed is None else np.random.default_rng([seed, i])
        for qa in ask(codes, i, record.action, rng):
            assert table[qa.question] == qa.answer, (record.pose_id, qa)
            asked += 1
    assert asked > 5 * len(records)


def test_answer_table_holds_every_paraphrase_and_nothing_unasked(records, codes):
    for i, record in enumerate(records[:20]):
        table = answer_table(codes, i, record.action)
        # many seeds reach every paraphrase of every askable question, and nothing else
        seen = {qa.question: qa.answer for s in range(200)
                for qa in ask(codes, i, record.action, np.random.default_rng(s))}
        assert seen == table

