"""The closed-vocabulary answer head, its losses and the question bank it is distilled on."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from p2l3d_core.language import describe_batch
from p2l3d_core.language.questions import FAMILY_ANSWERS, QUESTION_BANK
from p2l3d_core.models import Student
from p2l3d_core.models.answers import (
    ANSWER_INDEX,
    ANSWERS,
    AnswerHead,
    Asked,
    answer_ids,
    family_mask,
)
from p2l3d_core.models.config import preset
from p2l3d_core.models.keypoints import KEYPOINT_FEATURES
from p2l3d_core.models.losses import answer_kd, answer_loss
from p2l3d_core.poses.generator import generate_records

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_vocabulary_holds_every_family_answer_once():
    assert len(ANSWERS) == len(set(ANSWERS))
    for family, answers in FAMILY_ANSWERS.items():
        assert all(a in ANSWER_INDEX for a in answers), family
    assert answer_ids(["left", "behind"]).tolist() == [ANSWER_INDEX["left"], ANSWER_INDEX["behind"]]
    with pytest.raises(ValueError, match="outside the closed vocabulary.*maybe"):
        answer_ids(["left", "maybe"])


def test_family_mask_allows_only_the_family_answers():
    mask = family_mask(["foot_forward", "torso_lean"])
    assert mask.shape == (2, len(ANSWERS))
    assert [ANSWERS[i] for i in mask[0].nonzero().flatten()] == ["left", "right"]
    assert {ANSWERS[i] for i in mask[1].nonzero().flatten()} == {"forward", "upright", "backward"}
    with pytest.raises(ValueError, match="unknown question family 'colour'"):
        family_mask(["colour"])


def test_question_bank_covers_every_question_the_dataset_asks():
    records = generate_records(3, 0, 60)
    cams = np.stack([r.camera.position for r in records])
    texts = describe_batch(np.stack([r.joints_3d for r in records]), [r.action for r in records],
                           cams,
                           seeds=list(range(60)))
    bank = set(QUESTION_BANK)
    asked = {(qa.family, qa.question) for t in texts for qa in t.qas}
    assert asked and asked <= bank
    assert {f for f, _ in QUESTION_BANK} == set(FAMILY_ANSWERS)


def test_asked_bank_puts_every_question_to_every_row():
    bank = Asked.bank(3)
    assert len(bank) == 3 * len(QUESTION_BANK) and bank.answers is None
    assert bank.rows.tolist() == [r for r in range(3) for _ in QUESTION_BANK]
    assert bank.mask.sum(-1).min() >= 2  # every family offers a choice


def test_answer_loss_ignores_classes_outside_the_family():
    mask = family_mask(["foot_forward"])
    logits = torch.zeros(1, len(ANSWERS))
    logits[0, ANSWER_INDEX["left"]] = 10.0
    right = answer_loss(logits, answer_ids(["left"]), mask)
    logits[0, ANSWER_INDEX["standing"]] = 50.0  # not a foot_forward answer: no effect
    assert torch.isclose(answer_loss(logits, answer_ids(["left"]), mask), right)
    assert right < 1e-3
    assert answer_loss(logits, answer_ids(["right"]), mask) > 9.0


def test_answer_kd_is_zero_on_agreement_and_positive_otherwise():
    mask = family_mask(["torso_lean", "facing"])
    teacher = torch.randn(2, len(ANSWERS))
    assert answer_kd(teacher.clone(), teacher, mask).abs() < 1e-6
    student = teacher.clone()
    student[0, ANSWER_INDEX["forward"]] += 3.0
    assert answer_kd(student, teacher, mask) > 0.01
    student = teacher.clone()
    student[0, ANSWER_INDEX["standing"]] += 3.0  # outside the family
    assert answer_kd(student, teacher, mask).abs() < 1e-6


def test_head_learns_a_relation_the_embedding_holds():
    """A depth-like relation (sign of one coordinate), asked with two questions whose answers
    flip: the head must read the pose and the question together."""
    torch.manual_seed(0)
    d, n = 16, 256
    pose = torch.nn.functional.normalize(torch.randn(n, d), dim=-1)
    questions = torch.nn.functional.normalize(torch.randn(2, d), dim=-1)
    which = torch.randint(0, 2, (n,))
    truth = (pose[:, 0] > 0).long() ^ which  # question 1 asks the opposite
    target = torch.tensor([ANSWER_INDEX["left"], ANSWER_INDEX["right"]])[truth]
    mask = family_mask(["foot_forward"] * n)
    head = AnswerHead(d)
    opt = torch.optim.Adam(head.parameters(), lr=3e-3)
    for _ in range(300):
        loss = answer_loss(head(pose, questions[which]), target, mask)
        opt.zero_grad()
        loss.backward()
        opt.step()
    guess = head(pose, questions[which]).masked_fill(~mask, float("-inf")).argmax(-1)
    assert (guess == target).float().mean() > 0.95


def test_model_answers_within_the_family_and_distils_on_the_bank():
    torch.manual_seed(0)
    student = Student(preset("tiny", 32, pose_input="keypoints"))
    pose = student.encode_pose({"keypoints": torch.randn(3, KEYPOINT_FEATURES)})
    got = student.answer(pose, ["Which foot is further forward?", "How high is the left hand?",
                                "Is the person leaning forward or backward?"],
                         ["foot_forward", "hand_height", "torso_lean"])
    assert got[0] in FAMILY_ANSWERS["foot_forward"] and got[1] in FAMILY_ANSWERS["hand_height"]
    assert got[2] in FAMILY_ANSWERS["torso_lean"]

    bank = Asked.bank(3)
    teacher_answers = torch.randn(len(bank), len(ANSWERS))
    labelled = torch.tensor([True, False, False])
    asked = Asked.of([0, 0], ["Which foot is further forward?", "How high is the left hand?"],
                     ["foot_forward", "hand_height"], ["left", "below the shoulder"])
    out = student({"keypoints": torch.randn(3, KEYPOINT_FEATURES)}, labelled, [], [],
                  teacher_pose=pose.detach(), asked=asked, bank=bank,
                  teacher_answers=teacher_answers)
    assert out["answer"] > 0 and out["answer_kd"] > 0
    out["loss"].backward()
    assert student.answers.net[1].weight.grad.abs().sum() > 0


def test_pairs_match_the_head_on_the_concatenation_values_and_gradients():
    """``AnswerHead.pairs`` splits the first layer by input block; it must give the numbers of
    the network on ``[p, q, p * q]`` (the head as defined, ``forward``), gradients included,
    also with a layer norm whose affine terms have been trained."""
    torch.manual_seed(0)
    d = 24
    head = AnswerHead(d)
    with torch.no_grad():
        head.net[0].weight.uniform_(0.5, 1.5)
        head.net[0].bias.normal_(0.0, 0.3)
    poses = torch.nn.functional.normalize(torch.randn(5, d), dim=-1).requires_grad_(True)
    questions = torch.nn.functional.normalize(torch.randn(3, d), dim=-1).requires_grad_(True)
    # Every pose asked every question, twice: enough pairs for the split to be taken.
    rows = torch.arange(5).repeat_interleave(3).repeat(2)
    which = torch.arange(3).repeat(10)

    got = head.pairs(poses, questions, rows, which)
    p, q = poses[rows], questions[which]
    want = head.net(torch.cat([p, q, p * q], dim=-1))
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)

    weights = torch.randn_like(want)
    grads_got = torch.autograd.grad((got * weights).sum(), [poses, questions, head.net[0].weight,
                                                              head.net[1].weight])
    grads_want = torch.autograd.grad((want * weights).sum(), [poses, questions, head.net[0].weight,
                                                                head.net[1].weight])
    for g, w in zip(grads_got, grads_want):
        torch.testing.assert_close(g, w, atol=1e-5, rtol=1e-4)
    # A single pair (a service's question) takes the concatenation itself.
    torch.testing.assert_close(head.pairs(poses, questions, rows[:1], which[:1]), want[:1])


def test_pairs_with_geometry_match_the_head_values_and_gradients():
    """The geometry enters the first layer outside the layer norm; ``pairs`` adds it per pose
    and must equal ``forward`` on each pair, gradients to the geometry included."""
    torch.manual_seed(0)
    d, g = 24, 11
    head = AnswerHead(d, geometry=g)
    states = torch.cat([torch.nn.functional.normalize(torch.randn(5, d), dim=-1),
                        torch.randn(5, g)], -1).requires_grad_(True)
    questions = torch.nn.functional.normalize(torch.randn(3, d), dim=-1)
    rows = torch.arange(5).repeat_interleave(3).repeat(2)
    which = torch.arange(3).repeat(10)
    got = head.pairs(states, questions, rows, which)
    want = head(states[rows], questions[which])
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    weights = torch.randn_like(want)
    grads_got = torch.autograd.grad((got * weights).sum(), [states, head.geometry.weight])
    grads_want = torch.autograd.grad((want * weights).sum(), [states, head.geometry.weight])
    for a, b in zip(grads_got, grads_want):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)
    with pytest.raises(ValueError, match="reads a 24-wide embedding and 11 geometry numbers"):
        head(states[:, :d], questions[:5])


def test_head_learns_bend_thresholds_from_the_geometry_the_embedding_lacks():
    """The joint_bend categories are thresholds on a limb's angle. With the bends given as
    geometry, in tens of degrees as ``geometry.geometry_of_3d`` gives them (embeddings random:
    they hold nothing), the head learns which limb a question asks about and that limb's four
    categories with their dead bands."""
    from p2l3d_core.language.posecodes import BEND_INTERVALS_DEG

    torch.manual_seed(0)
    d, n = 16, 2048
    angles = torch.rand(n, 2) * 180.0
    category = torch.full((n, 2), -1)
    for c, (low, high) in enumerate(BEND_INTERVALS_DEG):
        category[(angles >= low) & (angles < high)] = c
    which = torch.randint(0, 2, (n,))
    truth = category[torch.arange(n), which]
    keep = truth >= 0
    names = ["straight", "slightly bent", "bent", "fully bent"]
    target = torch.tensor([ANSWER_INDEX[a] for a in names])[truth[keep]]
    states = torch.cat([torch.nn.functional.normalize(torch.randn(n, d), dim=-1),
                        angles / 10.0], -1)[keep]
    questions = torch.nn.functional.normalize(torch.randn(2, d), dim=-1)[which[keep]]
    mask = family_mask(["joint_bend"] * len(target))
    head = AnswerHead(d, geometry=2)
    opt = torch.optim.Adam(head.parameters(), lr=3e-3)
    for _ in range(300):
        loss = answer_loss(head(states, questions), target, mask)
        opt.zero_grad()
        loss.backward()
        opt.step()
    guess = head(states, questions).masked_fill(~mask, float("-inf")).argmax(-1)
    assert (guess == target).float().mean() > 0.95


def _geometry_student_and_states() -> tuple[Student, int, torch.Tensor]:
    """A tiny keypoint student whose head reads the geometry, its embedding width, and four
    random pose states (a normalised embedding, then geometry in the rules' units)."""
    import dataclasses

    from p2l3d_core.models.geometry import GEOMETRY_FEATURES

    torch.manual_seed(0)
    cfg = dataclasses.replace(preset("tiny", 32, pose_input="keypoints"), geometry=True)
    d = cfg.embed_dim
    student = Student(cfg).eval()
    return student, d, torch.cat([torch.nn.functional.normalize(torch.randn(4, d), dim=-1),
                                  10 * torch.rand(4, GEOMETRY_FEATURES)], -1)


def _one_question_at_a_time(student: Student, state: torch.Tensor, bank: Asked) -> torch.Tensor:
    """The bank's logits asked one question at a time (the head's concatenation path)."""
    return torch.cat([student.answer_logits(state[r:r + 1], Asked(
        torch.zeros(1, dtype=torch.long), [bank.questions[k]], bank.mask[k:k + 1],
        bank.families[k:k + 1])) for k, r in enumerate(bank.rows.tolist())])


def test_geometry_families_are_answered_blind_to_the_embedding():
    """With geometry, the GEOMETRY_FAMILIES (bends, lean, ground contact, feet distance, facing,
    the front/back families) are answered from the question and the geometry alone: another
    embedding leaves their logits as they were (the action it carries cannot decide them), other
    families still read it. The many-pairs path agrees."""

    from p2l3d_core.models.geometry import GEOMETRY_FAMILIES, GEOMETRY_FEATURES

    student, d, state = _geometry_student_and_states()
    other = state.clone()
    other[:, :d] = torch.nn.functional.normalize(torch.randn(4, d), dim=-1)
    moved = state.clone()
    moved[:, d:] = 10 * torch.rand(4, GEOMETRY_FEATURES)
    bank = Asked.bank(4)
    families = [f for _ in range(4) for f, _ in QUESTION_BANK]
    blind = torch.tensor([f in GEOMETRY_FAMILIES for f in families])
    with torch.no_grad():
        base, z_changed, g_changed = (student.answer_logits(s, bank) for s in (state, other, moved))
        one_by_one = _one_question_at_a_time(student, state, bank)
    torch.testing.assert_close(base, one_by_one, atol=1e-5, rtol=1e-5)  # pairs = forward
    torch.testing.assert_close(base[blind], z_changed[blind])
    assert not torch.allclose(base[~blind], z_changed[~blind])
    assert not torch.allclose(base[blind], g_changed[blind])


def test_each_geometry_family_reads_only_its_own_geometry_columns():
    """A blind family's question is answered from the columns its rules read
    (geometry.FAMILY_COLUMNS): moving every other number leaves its logits as they were, moving
    its own changes them; other families read every column. The many-pairs path agrees."""

    from p2l3d_core.models.geometry import FAMILY_COLUMNS, GEOMETRY_COLUMNS

    student, d, state = _geometry_student_and_states()
    bank = Asked.bank(4)
    families = [f for _ in range(4) for f, _ in QUESTION_BANK]
    with torch.no_grad():
        base = student.answer_logits(state, bank)
        one_by_one = _one_question_at_a_time(student, state, bank)
        torch.testing.assert_close(base, one_by_one, atol=1e-5, rtol=1e-5)
        for family, columns in FAMILY_COLUMNS.items():
            own = torch.tensor([c in columns for c in GEOMETRY_COLUMNS])
            asked = torch.tensor([f == family for f in families])
            others, mine = state.clone(), state.clone()
            others[:, d:][:, ~own] += 5.0
            mine[:, d:][:, own] += 5.0
            torch.testing.assert_close(student.answer_logits(others, bank)[asked], base[asked])
            assert not torch.allclose(student.answer_logits(mine, bank)[asked], base[asked])
        everyone = torch.tensor([f not in FAMILY_COLUMNS for f in families])
        moved = state.clone()
        moved[:, -1] += 5.0  # hand_forward's offset: read by the families that read all
        assert not torch.allclose(student.answer_logits(moved, bank)[everyone], base[everyone])
        # hand_side shares foot_forward's answers (left, right) but is not a geometry family:
        # known by its name, it still reads the embedding
        hand_side = torch.tensor([f == "hand_side" for f in families])
        other = state.clone()
        other[:, :d] = torch.nn.functional.normalize(torch.randn(4, d), dim=-1)
        assert not torch.allclose(student.answer_logits(other, bank)[hand_side], base[hand_side])
