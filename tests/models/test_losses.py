import math

import torch
from torch.nn import functional as F

from p2l3d_core.models.losses import (
    LogitScale,
    clip_loss,
    distill_loss,
    embedding_match,
    relational_kd,
)


def _unit(x):
    return F.normalize(x, dim=-1)


def test_clip_loss_matches_a_hand_computation():
    a = _unit(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
    b = _unit(torch.tensor([[1.0, 0.1], [0.2, 1.0]]))
    s = 10.0
    logits = s * a @ b.t()
    manual = 0.5 * (-(logits.log_softmax(1).diag().mean())
                    - (logits.t().log_softmax(1).diag().mean()))
    assert torch.allclose(clip_loss(a, b, s), manual)


def test_clip_loss_is_low_when_aligned_and_high_when_shuffled():
    torch.manual_seed(0)
    x = _unit(torch.randn(16, 32))
    aligned = clip_loss(x, x, 50.0)
    shuffled = clip_loss(x, x.roll(1, 0), 50.0)
    assert aligned < 0.01 < math.log(16) < shuffled


def test_logit_scale_starts_at_the_temperature_and_is_clamped():
    assert torch.isclose(LogitScale(0.07)(), torch.tensor(1 / 0.07))
    big = LogitScale(0.001)
    assert torch.isclose(big(), torch.tensor(100.0))


def test_embedding_match_zero_for_identical_and_detaches_teacher():
    t = _unit(torch.randn(4, 8))
    s = t.clone().requires_grad_(True)
    assert embedding_match(s, t).abs() < 1e-6 and embedding_match(s, t, "mse").abs() < 1e-12
    teacher = t.clone().requires_grad_(True)
    embedding_match(_unit(torch.randn(4, 8)).requires_grad_(True), teacher).backward()
    assert teacher.grad is None


def test_relational_kd_zero_when_distributions_agree_positive_otherwise():
    torch.manual_seed(1)
    anchors = _unit(torch.randn(6, 8))
    t = _unit(torch.randn(5, 8))
    assert relational_kd(t, t, anchors).abs() < 1e-6
    assert relational_kd(_unit(torch.randn(5, 8)), t, anchors) > 0.01


def test_distill_loss_weights_and_pool_mode():
    torch.manual_seed(2)
    s, t, txt = (_unit(torch.randn(4, 8)) for _ in range(3))
    terms = distill_loss(s, t, txt, match_weight=2.0, rkd_weight=0.5)
    assert torch.isclose(terms["loss"], 2.0 * terms["match"] + 0.5 * terms["rkd"])
    pool = distill_loss(s, t, None)  # unlabelled pool: teacher embeddings are the anchors
    assert pool["rkd"] > 0
