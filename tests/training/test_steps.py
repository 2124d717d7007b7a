"""Dataset rows -> the arguments of one teacher or student training step (no Ray needed)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from p2l3d_core.config import DatasetConfig
from p2l3d_core.dataset.build import build_table, labelled_mask
from p2l3d_core.models.answers import Asked
from p2l3d_core.models.config import preset
from p2l3d_core.models.decoder import CAPTION_PROMPT
from p2l3d_core.models.geometry import GEOMETRY_FEATURES
from p2l3d_core.models.inputs import pose_inputs, pose_inputs_3d
from p2l3d_core.models.pose_models import Student, Teacher
from p2l3d_core.poses.generator import generate_records
from p2l3d_core.training.config import TrainConfig
from p2l3d_core.training.steps import TeacherTargets, labelled_only, student_step, teacher_step

FRACTION = 0.5


@pytest.fixture(scope="module")
def batch() -> dict:
    table = build_table(generate_records(3, 0, 16),
                        DatasetConfig(num_poses=16, image_size=32)).table
    return {k: v.to_numpy(zero_copy_only=False) for k, v in zip(table.column_names, table.columns)}


@pytest.fixture(scope="module")
def models() -> tuple[Teacher, Student]:
    torch.manual_seed(0)
    cfg = preset("tiny", 32)
    teacher, student = Teacher(cfg).eval(), Student(cfg)
    student.adopt_language(teacher)
    return teacher, student


def test_labelled_only_keeps_the_labelled_rows_and_refuses_a_batch_without_two(batch):
    keep = labelled_mask(batch["pose_id"], FRACTION)
    assert 2 <= keep.sum() < len(keep)
    rows = labelled_only(batch, FRACTION)
    assert list(rows["pose_id"]) == list(batch["pose_id"][keep])
    one = {k: v[np.flatnonzero(keep)[:1]] for k, v in batch.items()}
    with pytest.raises(ValueError, match="a batch with 1 labelled rows"):
        labelled_only(one, FRACTION)


def test_teacher_step_trains_on_labelled_rows_with_the_runs_weights(batch, models):
    teacher, _ = models
    cfg = TrainConfig(model=teacher.cfg, labelled_fraction=FRACTION, lm_weight=0.25)
    args = teacher_step(batch, cfg, np.random.default_rng(0))
    n = int(labelled_mask(batch["pose_id"], FRACTION).sum())
    assert len(args["texts"]) == n and args["inputs_2d"]["image"].shape[0] == n
    assert args["lm_weight"] == 0.25
    out = teacher(**args)
    assert torch.isfinite(out["loss"]) and {"lm", "answer"} <= set(out)


def test_distilled_student_step_targets_every_row_with_the_teachers_outputs(batch, models):
    teacher, student = models
    cfg = TrainConfig(model=student.cfg, labelled_fraction=FRACTION, answer_kd_weight=3.0,
                      rkd_weight=0.0)
    args = student_step(batch, cfg, np.random.default_rng(0), TeacherTargets(teacher))
    n, labelled = len(batch["pose_id"]), labelled_mask(batch["pose_id"], FRACTION)
    assert args["teacher_pose"].shape[0] == n  # the pool too
    assert args["teacher_text"].shape[0] == int(labelled.sum())  # text of labelled rows only
    assert args["labelled"].tolist() == labelled.tolist()
    assert args["answer_kd_weight"] == 3.0 and args["rkd_weight"] == 0.0
    out = student(**args)
    assert torch.isfinite(out["loss"]) and {"match", "answer_kd", "contrastive"} <= set(out)
    # The teacher's targets equal what it computes on its own inputs: no gradient reaches it.
    assert not args["teacher_pose"].requires_grad


def test_teacher_targets_are_the_teachers_outputs_computed_once_per_pose(batch, models,
                                                                        monkeypatch):
    """Cached targets equal the teacher's own outputs on the same rows (the answer logits
    within each question's family, all that answer KD reads); poses met before, here in a
    batch of another size and order, never reach the teacher again."""
    teacher, _ = models
    targets = TeacherTargets(teacher)
    first = {k: v[:10] for k, v in batch.items()}
    fused, answers, geometry = targets(first)
    assert geometry is None  # a teacher without geometry
    with torch.no_grad():
        own = teacher.encode_all(pose_inputs(first, teacher.cfg.pose_input),
                                 pose_inputs_3d(first, teacher.cfg.pose_input_3d))["fused"]
        bank = Asked.bank(10)
        own_answers = teacher.answer_logits(own, bank)
    torch.testing.assert_close(fused, own)
    torch.testing.assert_close(answers[bank.mask], own_answers[bank.mask])
    assert not answers[~bank.mask].any() and len(targets) == 10

    seen = {k: v[[7, 2, 5]] for k, v in batch.items()}
    calls, encode_all = [], teacher.encode_all
    monkeypatch.setattr(teacher, "encode_all", lambda *a: calls.append(a) or encode_all(*a))
    again, again_answers, _ = targets(seen)
    assert not calls
    torch.testing.assert_close(again, fused[[7, 2, 5]])
    assert again_answers.shape == (3 * bank.mask.shape[0] // 10, bank.mask.shape[1])

    monkeypatch.undo()
    fused_all, _, _ = targets(batch)  # only the six new poses are computed
    assert len(targets) == len(batch["pose_id"]) == 16
    torch.testing.assert_close(fused_all[:10], fused)


@pytest.fixture(scope="module")
def geometry_models() -> tuple[Teacher, Student]:
    torch.manual_seed(0)
    cfg = dataclasses.replace(preset("tiny", 32, "image+keypoints", "image+keypoints"),
                              geometry=True)
    teacher, student = Teacher(cfg).eval(), Student(cfg)
    student.adopt_language(teacher)
    return teacher, student


def test_a_teacher_with_geometry_answers_with_the_exact_one_and_the_student_reads_its_regressor(
        batch, geometry_models):
    """The teacher's targets carry the geometry of its 3D keypoint features (their last
    columns, not a regression), its answers are computed with it, and the student step passes
    it on; the student's head learns on that exact geometry, and at inference reads the
    regressor it took from the teacher, kept frozen (the prefit, geometry_fit.py)."""
    teacher, student = geometry_models
    targets = TeacherTargets(teacher)
    _, answers, geometry = targets(batch)
    x2 = pose_inputs(batch, "image+keypoints")
    x3 = pose_inputs_3d(batch, "image+keypoints")
    assert geometry.shape == (16, GEOMETRY_FEATURES)
    tail = x3["keypoints"][:, -GEOMETRY_FEATURES:]  # cosines, then direction and metres
    torch.testing.assert_close(geometry[:, :4], torch.rad2deg(torch.arccos(tail[:, :4])) / 10)
    torch.testing.assert_close(geometry[:, 4:], 10 * tail[:, 4:])
    with torch.no_grad():
        state = teacher.pose_state(x2, x3)
        bank = Asked.bank(16)
        torch.testing.assert_close(answers[bank.mask],
                                   teacher.answer_logits(state, bank)[bank.mask])
    cfg = TrainConfig(model=student.cfg, labelled_fraction=FRACTION)
    args = student_step(batch, cfg, np.random.default_rng(0), targets)
    assert args["teacher_geometry"] is geometry or torch.equal(args["teacher_geometry"], geometry)
    # the student's regressor is the teacher's, frozen: no loss of the student reaches it
    for mine, theirs in zip(student.geometry.parameters(), teacher.geometry.parameters()):
        assert torch.equal(mine, theirs) and not mine.requires_grad
    out = student(**args)
    assert torch.isfinite(out["loss"]) and "geometry" not in out
    out["loss"].backward()
    assert all(p.grad is None for p in student.geometry.parameters())
    assert student.answers.geometry.weight.grad.abs().sum() > 0
    # The head's training answers read the teacher's geometry, not the regressor's: replacing
    # the regressor leaves the answer losses as they were.
    with torch.no_grad():
        before = student(**args)
        for p in student.geometry.parameters():
            p.add_(1.0)
        after = student(**args)
        for p in student.geometry.parameters():
            p.sub_(1.0)
    torch.testing.assert_close(after["answer_kd"], before["answer_kd"])
    torch.testing.assert_close(after["answer"], before["answer"])
    # at inference the head reads the regressed geometry
    with torch.no_grad():
        regressed = student.geometry(x2["keypoints"])
        torch.testing.assert_close(student.pose_state(x2)[:, -GEOMETRY_FEATURES:], regressed)


def test_a_student_with_geometry_needs_a_teacher_and_a_state_without_it_is_refused(
        batch, geometry_models, models):
    _, student = geometry_models
    cfg = TrainConfig(model=student.cfg, labelled_fraction=FRACTION)
    with pytest.raises(ValueError, match="learns it from a teacher"):
        student(**student_step(batch, cfg, np.random.default_rng(0)))
    z = student.encode_pose(pose_inputs(batch, "image+keypoints"))
    with pytest.raises(ValueError, match=f"{GEOMETRY_FEATURES} geometry numbers"):
        student.answer(z, ["Is the left knee bent?"] * len(z), ["joint_bend"] * len(z))
    with pytest.raises(ValueError, match="differ in reading the pose's geometry"):
        student.adopt_language(models[0])


def test_student_step_in_bf16_keeps_the_teachers_targets_from_float32(batch, models):
    """On a GPU the student trains in bf16 while the frozen teacher stays float32: its inputs are
    its own (float32), only its outputs are cast to the student's dtype."""
    teacher, student = models
    cfg = TrainConfig(model=student.cfg, labelled_fraction=FRACTION)
    args = student_step(batch, cfg, np.random.default_rng(0), TeacherTargets(teacher),
                        dtype=torch.bfloat16)
    assert all(v.dtype == torch.bfloat16 for v in args["inputs_2d"].values())
    assert args["teacher_pose"].dtype == torch.bfloat16


def test_baseline_student_steps_learn_from_the_labelled_rows_alone(batch, models):
    _, student = models
    n = int(labelled_mask(batch["pose_id"], FRACTION).sum())
    for language in ("3d", "2d"):
        cfg = TrainConfig(model=student.cfg, labelled_fraction=FRACTION, language=language)
        args = student_step(batch, cfg, np.random.default_rng(0))
        assert "teacher_pose" not in args and len(args["captions"]) == n
        assert bool(args["labelled"].all()) and args["labelled"].shape[0] == n
        assert torch.isfinite(student(**args)["loss"])


def test_pool_rows_drawn_for_captions_learn_the_teachers_greedy_caption(batch, models, monkeypatch):
    """``pool_captions`` unlabelled rows a step get the teacher's caption of the pose as a
    decoder target, after the labelled rows' own targets; each pose is captioned once."""
    teacher, student = models
    cfg = TrainConfig(model=student.cfg, labelled_fraction=FRACTION, pool_captions=3)
    targets = TeacherTargets(teacher)
    plain = student_step(batch, TrainConfig(model=student.cfg, labelled_fraction=FRACTION),
                         np.random.default_rng(0), TeacherTargets(teacher))
    args = student_step(batch, cfg, np.random.default_rng(0), targets)
    labelled = labelled_mask(batch["pose_id"], FRACTION)
    n = int(labelled.sum())
    assert "language_rows" not in plain and len(plain["prompts"]) == n
    rows = args["language_rows"].tolist()
    assert rows[:n] == np.flatnonzero(labelled).tolist()
    drawn = rows[n:]
    assert len(drawn) == 3 == len(set(drawn)) and not labelled[drawn].any()
    assert args["prompts"][:n] == plain["prompts"] and args["targets"][:n] == plain["targets"]
    assert args["prompts"][n:] == [CAPTION_PROMPT] * 3
    with torch.no_grad():
        fused, _, _ = targets(batch)
        own = teacher.decoder.generate(fused[drawn], [CAPTION_PROMPT] * 3,
                                       grammar=teacher.decoder.caption_grammar)
    assert args["targets"][n:] == own and all(own)
    out = student(**args)
    assert torch.isfinite(out["lm"]) and torch.isfinite(out["loss"])

    calls, generate = [], teacher.decoder.generate
    monkeypatch.setattr(teacher.decoder, "generate",
                        lambda *a, **k: calls.append(a) or generate(*a, **k))
    assert targets.captions(batch, drawn[::-1]) == own[::-1]
    assert not calls  # kept, not written again
