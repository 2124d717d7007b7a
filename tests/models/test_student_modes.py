"""Student.forward in its training modes: own text (no teacher), distillation, one labelled row."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from p2l3d_core.models import Student
from p2l3d_core.models.config import preset
from p2l3d_core.models.decoder import CAPTION_PROMPT, question_prompt
from p2l3d_core.models.inputs import images_to_tensor
from p2l3d_core.models.keypoints import keypoint_features
from p2l3d_core.poses.generator import generate_records

B = 4
CAPTIONS = ["The person is kneeling.", "The left hand is raised above the head.",
            "The feet are far apart.", "The person is leaning forward."]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _inputs(pose_input: str, n: int = B) -> dict[str, torch.Tensor]:
    rng = np.random.default_rng(0)
    kp = np.stack([r.project()[0] for r in generate_records(1, 0, n)])
    out = {"image": images_to_tensor(rng.integers(0, 255, (n, 32, 32, 3), dtype=np.uint8)),
           "keypoints": torch.from_numpy(keypoint_features(kp))}
    return {k: v for k, v in out.items() if k in pose_input.split("+")}


@pytest.fixture(scope="module", params=["image", "keypoints", "image+keypoints"])
def pose_input(request) -> str:
    return request.param


@pytest.fixture(scope="module")
def student(pose_input) -> Student:
    torch.manual_seed(0)
    return Student(preset("tiny", 32, pose_input=pose_input))


def _decoder_inputs(labelled: torch.Tensor) -> tuple[list[str], list[str]]:
    rows = labelled.nonzero().flatten().tolist()
    prompts = [CAPTION_PROMPT if i % 2 == 0 else question_prompt("Which foot is on the ground?")
               for i in rows]
    targets = [CAPTIONS[i] if i % 2 == 0 else "both" for i in rows]
    return prompts, targets


def _teacher(n_labelled: int, embed: int = 32, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    pose = torch.nn.functional.normalize(torch.randn(B, embed, generator=g), dim=-1)
    text = torch.nn.functional.normalize(torch.randn(n_labelled, embed, generator=g), dim=-1)
    return pose, text


def test_without_a_teacher_the_student_learns_its_own_text(student, pose_input):
    student.train()
    student.zero_grad()
    labelled = torch.tensor([True, False, True, True])
    prompts, targets = _decoder_inputs(labelled)
    captions = [CAPTIONS[i] for i in labelled.nonzero().flatten().tolist()]
    out = student(_inputs(pose_input), labelled, prompts, targets, captions=captions)
    assert {"contrastive", "lm", "loss"} <= set(out)
    assert "match" not in out and "rkd" not in out
    assert torch.isfinite(out["loss"]) and out["loss"] > 0
    assert torch.allclose(out["loss"], 0.5 * out["contrastive"] + out["lm"])
    out["loss"].backward()
    proj = student.text.proj.weight.grad
    assert proj is not None and torch.isfinite(proj).all() and proj.abs().sum() > 0
    assert student.logit_scale.value.grad is not None
    # the frozen text backbone stays out of it; the 2D encoder learns
    assert all(p.grad is None for p in student.text.backbone.parameters())
    enc = [p.grad for p in student.encoder_2d.parameters() if p.requires_grad]
    assert any(g is not None and g.abs().sum() > 0 for g in enc)


def test_without_a_teacher_a_step_moves_the_text_projection(student, pose_input):
    labelled = torch.tensor([True, True, False, True])
    prompts, targets = _decoder_inputs(labelled)
    captions = [CAPTIONS[i] for i in labelled.nonzero().flatten().tolist()]
    before = student.text.proj.weight.detach().clone()
    opt = torch.optim.SGD([p for p in student.parameters() if p.requires_grad], lr=0.1)
    opt.zero_grad()
    student(_inputs(pose_input), labelled, prompts, targets, captions=captions)["loss"].backward()
    opt.step()
    assert not torch.equal(student.text.proj.weight, before)


def test_distillation_has_every_term(student, pose_input):
    student.zero_grad()
    labelled = torch.tensor([True, False, True, False])
    prompts, targets = _decoder_inputs(labelled)
    teacher_pose, teacher_text = _teacher(int(labelled.sum()))
    out = student(_inputs(pose_input), labelled, prompts, targets,
                  teacher_pose=teacher_pose, teacher_text=teacher_text)
    assert {"match", "rkd", "contrastive", "lm", "loss"} <= set(out)
    for key in ("match", "rkd", "contrastive", "lm", "loss"):
        assert torch.isfinite(out[key]), key
    expected = out["match"] + out["rkd"] + 0.5 * out["contrastive"] + out["lm"]
    assert torch.allclose(out["loss"], expected, atol=1e-6)
    out["loss"].backward()
    # the teacher's text anchors the student: its own text projection takes no part
    assert student.text.proj.weight.grad is None or not student.text.proj.weight.grad.any()


def test_distillation_without_labels_is_match_and_rkd_only(student, pose_input):
    labelled = torch.zeros(B, dtype=torch.bool)
    teacher_pose, _ = _teacher(0)
    out = student(_inputs(pose_input), labelled, [], [], teacher_pose=teacher_pose)
    assert {"match", "rkd", "loss"} <= set(out)
    assert "contrastive" not in out and "lm" not in out
    assert torch.allclose(out["loss"], out["match"] + out["rkd"])


@pytest.mark.parametrize("with_teacher", [False, True])
def test_a_single_labelled_row_has_no_contrastive_term(student, pose_input, with_teacher):
    labelled = torch.tensor([False, False, True, False])
    prompts, targets = _decoder_inputs(labelled)
    kwargs = {"captions": [CAPTIONS[2]]}
    if with_teacher:
        teacher_pose, teacher_text = _teacher(1)
        kwargs = {"teacher_pose": teacher_pose, "teacher_text": teacher_text}
    out = student(_inputs(pose_input), labelled, prompts, targets, **kwargs)
    assert "contrastive" not in out
    assert "lm" in out and torch.isfinite(out["loss"])
    assert ("match" in out and "rkd" in out) == with_teacher
    if not with_teacher:
        assert torch.allclose(out["loss"], out["lm"])
