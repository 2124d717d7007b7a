"""All training losses in one place (open_clip's ``loss.py`` in spirit).

* :func:`clip_loss` - symmetric InfoNCE between two batches of normalised embeddings.
* :func:`distill_loss` - student towards teacher: embedding match (cosine or MSE) plus
  relational KD, i.e. KL between the teacher's and the student's similarity distributions
  over the batch's texts (or over the batch's teacher embeddings when there is no text, as on
  the unlabelled pool).
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


def embedding_match(student: torch.Tensor, teacher: torch.Tensor, kind: str = "cosine") -> torch.Tensor:
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
