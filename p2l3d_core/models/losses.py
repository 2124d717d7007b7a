"""All training losses in one place (open_clip's ``loss.py`` in spirit).

* :func:`clip_loss` - symmetric InfoNCE between two batches of normalised embeddings.
* :func:`distill_loss` - student towards teacher: embedding match (cosine or MSE) plus
  relational KD, i.e. KL between the teacher's and the student's similarity distributions
  over the batch's texts (or over the batch's teacher embeddings when there is no text, as on
  the unlabelled pool).
* :func:`answer_loss` - cross-entropy of closed-vocabulary answers within each question's family.
* :func:`answer_kd` - student towards teacher on answer distributions (the pool's only targets
  besides the embeddings).
* :func:`geometry_loss` - the geometry regressed from 2D towards the 3D one
  (``geometry.py``).
* The language-model loss is the decoder's own cross-entropy (see ``decoder.py``).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


class LogitScale(nn.Module):
    """CLIP's learnable temperature, stored as log(1/T) and clamped at 100. Shape (1,), not a
    0-dim tensor: DeepSpeed broadcasts parameters as byte views, which 0-dim tensors refuse."""

    def __init__(self, init_temperature: float = 0.07):
        super().__init__()
        self.value = nn.Parameter(torch.tensor([math.log(1.0 / init_temperature)]))

    def forward(self) -> torch.Tensor:
        return self.value.clamp(max=math.log(100.0)).exp().squeeze(0)


def clip_loss(a: torch.Tensor, b: torch.Tensor, logit_scale: torch.Tensor | float) -> torch.Tensor:
    """Symmetric InfoNCE: row i of ``a`` must pick row i of ``b`` and vice versa."""
    logits = logit_scale * a @ b.t()
    target = torch.arange(a.shape[0], device=a.device)
    return (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target)) / 2


def embedding_match(student: torch.Tensor, teacher: torch.Tensor,
                    kind: str = "cosine") -> torch.Tensor:
    """Pull each student embedding onto its teacher's (teacher detached)."""
    teacher = teacher.detach()
    if kind == "cosine":
        return (1.0 - F.cosine_similarity(student, teacher, dim=-1)).mean()
    if kind == "mse":
        return F.mse_loss(student, teacher)
    raise ValueError(f"unknown embedding match {kind!r}: use 'cosine' or 'mse'")


def relational_kd(student: torch.Tensor, teacher: torch.Tensor, anchors: torch.Tensor,
                  temperature: float = 0.1) -> torch.Tensor:
    """KL(teacher || student) of the softmax similarity of each pose to the ``anchors``."""
    t = F.log_softmax(teacher.detach() @ anchors.detach().t() / temperature, dim=-1)
    s = F.log_softmax(student @ anchors.detach().t() / temperature, dim=-1)
    return F.kl_div(s, t, log_target=True, reduction="batchmean")


def distill_loss(student: torch.Tensor, teacher: torch.Tensor, texts: torch.Tensor | None = None,
                 match: str = "cosine", match_weight: float = 1.0, rkd_weight: float = 1.0,
                 temperature: float = 0.1) -> dict[str, torch.Tensor]:
    """Distillation terms and their weighted sum under ``"loss"``."""
    anchors = texts if texts is not None else teacher
    terms = {"match": embedding_match(student, teacher, match),
             "rkd": relational_kd(student, teacher, anchors, temperature)}
    terms["loss"] = match_weight * terms["match"] + rkd_weight * terms["rkd"]
    return terms


def _within_family(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return logits.float().masked_fill(~mask, float("-inf"))


def answer_loss(logits: torch.Tensor, answers: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the true answer among its family's answers (``mask``, see
    ``answers.family_mask``): the head never spends capacity telling families apart."""
    return F.cross_entropy(_within_family(logits, mask), answers)


def answer_kd(student: torch.Tensor, teacher: torch.Tensor, mask: torch.Tensor,
              temperature: float = 1.0) -> torch.Tensor:
    """KL(teacher || student) of the answer distributions within each question's family, scaled
    by T^2 (Hinton et al.) so the gradient size does not depend on the temperature."""
    t = F.log_softmax(_within_family(teacher.detach(), mask) / temperature, dim=-1)
    s = F.log_softmax(_within_family(student, mask) / temperature, dim=-1)
    kl = (t.exp() * (t - s)).masked_fill(~mask, 0.0).sum(-1)
    return kl.mean() * temperature ** 2


def geometry_loss(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Smooth L1 (``geometry.geometry_of_3d``'s units: tens of degrees, decimetres), quadratic
    within half a unit: the few poses far off (a limb seen end-on) must not dominate."""
    return F.smooth_l1_loss(predicted.float(), target.float(), beta=0.5)
