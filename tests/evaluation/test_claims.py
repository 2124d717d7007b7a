"""Caption precision: captions parsed back into posecode claims and checked on the true 3D."""

from __future__ import annotations

import numpy as np
import pytest

from p2l3d_core.evaluation.claims import (
    _INTERVALS,
    _bordering,
    caption_claims,
    caption_precision,
    claim_verdict,
    code_truth,
)
from p2l3d_core.language import describe_batch
from p2l3d_core.language.captions import pose_facts
from p2l3d_core.language.posecodes import CODE_CATEGORIES, FACING_INTERVALS_DEG, measure_posecodes
from p2l3d_core.poses.generator import ACTIONS, generate_records
from tests.language.bodies import CAMERA_IN_FRONT, bend, put, standing

CATS = {name: {c: k for k, c in enumerate(cats)} for name, cats in CODE_CATEGORIES.items()}


@pytest.fixture(scope="module")
def poses():
    """Generator poses, every action several times over, with their cameras and labels."""
    records = generate_records(5, 0, 12 * len(ACTIONS))
    return (np.array([r.joints_3d for r in records]),
            np.array([r.camera.position for r in records]), [r.action for r in records])


def precision_of(caption: str, pose: np.ndarray, action: str | None = "standing") -> dict:
    return caption_precision([caption], pose[None], CAMERA_IN_FRONT[None],
                             None if action is None else [action])


# --- round trip ----------------------------------------------------------------------------------


@pytest.mark.parametrize("seeded", [True, False])
def test_rule_captions_parse_back_and_are_all_true(poses, seeded):
    joints, cams, actions = poses
    seeds = list(range(len(actions))) if seeded else None
    texts = describe_batch(joints, actions, cams, seeds=seeds, num_captions=3)
    for k in range(3):
        captions = [t.captions[k] for t in texts]
        for caption in captions:
            assert not any(c.malformed for c in caption_claims(caption)), caption
        out = caption_precision(captions, joints, cams, actions)
        assert out["caption_precision"] == 1.0
        assert out["caption_malformed"] == 0.0 and out["caption_unscored"] == 0.0
        assert out["caption_claims"] >= 3 * len(captions)
        assert out["caption_action_precision"] == 1.0
        assert out["caption_action_claims"] == len(captions)


def test_every_clause_of_a_pose_parses_to_the_codes_it_restates(poses):
    joints, cams, _ = poses
    codes = measure_posecodes(joints, cams)
    for i in range(len(joints)):
        pose = codes.pose(i)
        for key, clauses, _ in pose_facts(codes, i):
            for clause in clauses:
                (claim,) = caption_claims(clause[0].upper() + clause[1:] + ".")
                names = [key] if key in pose else [f"l_{key}", f"r_{key}"]  # "both" clauses
                assert claim.codes == tuple(sorted((n, pose[n]) for n in names))


def test_a_caption_is_read_whatever_its_case_spacing_and_connectors():
    claims = caption_claims("  SOMEONE is walking.The LEFT knee is straight , while both "
                            "arms are straight; the feet are apart and the torso is upright")
    assert [c.action for c in claims] == ["walking", None, None, None, None]
    assert [c.codes for c in claims[1:]] == [
        (("l_knee", 0),), (("l_elbow", 0), ("r_elbow", 0)), (("feet_distance", 1),),
        (("torso", 0),)]
    assert not any(c.malformed for c in claims)


# --- false claims ---------------------------------------------------------------------------------


def test_a_flipped_claim_counts_false():
    pose = standing()  # straight limbs, feet on the ground
    assert precision_of("The left knee is straight.", pose)["caption_precision"] == 1.0
    out = precision_of("The left knee is straight. Both knees are bent.", pose)
    assert out["caption_precision"] == 0.5 and out["caption_claims"] == 2
    assert out["caption_malformed"] == 0.0
    # a "both" clause is false when one side is
    out = precision_of("Both feet are off the ground.", pose)
    assert out["caption_precision"] == 0.0


def test_a_self_contradicting_sentence_counts_false():
    pose = put(standing(), l_ankle=(0.3, 0.13, 0.08))  # the left foot well ahead
    assert precision_of("The left foot is further forward than the right.",
                        pose)["caption_precision"] == 1.0
    (claim,) = caption_claims("The right foot is further forward than the right.")
    assert claim.malformed
    out = precision_of("The right foot is further forward than the right. The person is "
                       "standing.", pose)
    assert out["caption_precision"] == 0.0 and out["caption_malformed"] == 1.0
    assert out["caption_action_precision"] == 1.0  # the action sentence is scored apart


@pytest.mark.parametrize("garbage", ["Purple elephants dance quietly.",
                                     "The left knee is bent at the",  # truncated
                                     "The person is flying.",  # no action's phrase
                                     "the the the."])
def test_a_garbage_sentence_is_malformed_and_false(garbage):
    out = precision_of(f"The left knee is straight. {garbage}", standing())
    assert out["caption_malformed"] == 1.0
    assert out["caption_claims"] == 2.0 and out["caption_precision"] == 0.5


def test_a_caption_without_claims_has_no_precision():
    out = precision_of("", standing())
    assert "caption_precision" not in out and out["caption_claims"] == 0.0


# --- dead bands and unmeasurable codes ----------------------------------------------------------


def test_a_dead_band_claim_is_unscored_when_it_borders_the_band_and_false_beyond():
    pose = bend(standing(), "l_elbow", 150.0)  # between straight (>= 155) and slightly bent
    codes = measure_posecodes(pose[None], CAMERA_IN_FRONT[None])
    assert code_truth(codes, 0, "l_elbow") == frozenset({CATS["l_elbow"]["straight"],
                                                         CATS["l_elbow"]["slightly_bent"]})
    for clause in ("The left arm is straight.", "The left elbow is slightly bent."):
        out = precision_of(clause, pose)
        assert out["caption_claims"] == 0.0 and out["caption_unscored"] == 1.0
    for clause in ("The left elbow is bent.", "The left elbow is fully bent."):
        assert precision_of(clause, pose)["caption_precision"] == 0.0
    # a "both" clause with one side in the band and the other true is not scored either
    out = precision_of("Both arms are straight.", pose)
    assert out["caption_unscored"] == 1.0 and out["caption_claims"] == 0.0


def test_hand_height_dead_bands_border_the_right_categories():
    cats = CATS["l_hand_height"]
    # wrist level with the shoulder (1.42 m): between above and below the shoulder
    pose = put(standing(), l_elbow=(0.0, 0.46, 1.42), l_wrist=(0.0, 0.72, 1.43))
    codes = measure_posecodes(pose[None])
    assert code_truth(codes, 0, "l_hand_height") == frozenset(
        {cats["above_shoulder"], cats["below_shoulder"]})
    # wrist level with the head top (1.72 m): between above the head and above the shoulder
    pose = put(standing(), l_elbow=(0.0, 0.25, 1.65), l_wrist=(0.0, 0.30, 1.73))
    codes = measure_posecodes(pose[None])
    assert code_truth(codes, 0, "l_hand_height") == frozenset(
        {cats["above_head"], cats["above_shoulder"]})
    assert precision_of("The left hand is below the shoulder.", pose)["caption_precision"] == 0.0


def test_a_claim_on_a_missing_joint_is_not_scored():
    pose = put(standing(), l_ankle=(np.nan, np.nan, np.nan))
    out = precision_of("The left knee is bent. The right knee is bent.", pose)
    assert out["caption_unscored"] == 1.0 and out["caption_claims"] == 1.0
    assert out["caption_precision"] == 0.0  # the right knee is straight
    # facing without a camera cannot be checked
    out = caption_precision(["The person faces the camera."], standing()[None])
    assert out["caption_unscored"] == 1.0 and "caption_precision" not in out


def test_interval_tables_match_the_posecodes_measured(poses):
    joints, cams, _ = poses
    codes = measure_posecodes(joints, cams)
    for name, intervals in _INTERVALS.items():
        for i, (code, value) in enumerate(zip(codes.codes[name], codes.values[name])):
            if code >= 0:
                low, high = intervals[code]
                assert low <= value < high, (name, value)
            elif not np.isnan(value):
                truth = code_truth(codes, i, name)
                assert truth and all(k < len(CODE_CATEGORIES[name]) for k in truth)


def test_facing_dead_bands_wrap_around_the_circle():
    cats = CATS["facing"]
    assert _bordering(-135.0, FACING_INTERVALS_DEG, 360.0) == {cats["away"], cats["right_side"]}
    assert _bordering(-138.0, FACING_INTERVALS_DEG, 360.0) == {cats["away"], cats["right_side"]}
    assert _bordering(45.0, FACING_INTERVALS_DEG, 360.0) == {cats["towards"], cats["left_side"]}
    assert _bordering(135.0, FACING_INTERVALS_DEG, 360.0) == {cats["left_side"], cats["away"]}


# --- actions -------------------------------------------------------------------------------------


def test_action_sentences_are_checked_against_the_label_apart_from_the_body():
    pose = standing()
    out = precision_of("The person is sitting. The left knee is straight.", pose)
    assert out["caption_action_precision"] == 0.0 and out["caption_precision"] == 1.0
    # another label's phrase with the same answer: "walking along" for a CMU "walk" clip
    assert precision_of("Someone is walking along.", pose, "walk")["caption_action_precision"] == 1
    # a set's own unknown label is read in its quoted form
    out = precision_of('The action is "pick up box".', pose, "PickUpBox_2")
    assert out["caption_action_precision"] == 1.0 and out["caption_malformed"] == 0.0
    # no true label: an action sentence is not scored
    out = precision_of("The person is sitting.", pose, None)
    assert out["caption_action_claims"] == 0.0 and out["caption_malformed"] == 0.0


def test_claim_verdict_of_a_malformed_claim_is_false():
    codes = measure_posecodes(standing()[None])
    (claim,) = caption_claims("The knee of the left is very straight.")
    assert claim.malformed and claim_verdict(claim, codes, 0) is False


# --- what the metric tells apart ---------------------------------------------------------------


def test_captions_of_other_poses_score_well_below_their_own(poses):
    joints, cams, actions = poses
    texts = describe_batch(joints, actions, cams, seeds=list(range(len(actions))))
    captions = [t.captions[0] for t in texts]
    shuffled = np.roll(np.arange(len(joints)), 7)
    out = caption_precision(captions, joints[shuffled], cams[shuffled],
                            [actions[i] for i in shuffled])
    assert out["caption_precision"] < 0.8
    assert out["caption_action_precision"] < 0.2  # actions cycle: another pose, another action
    assert out["caption_malformed"] == 0.0


def test_lengths_must_match(poses):
    joints, cams, actions = poses
    with pytest.raises(ValueError):
        caption_precision(["a"], joints[:2], cams[:2])
    with pytest.raises(ValueError):
        caption_precision(["a", "b"], joints[:2], cams[:2], actions[:1])
