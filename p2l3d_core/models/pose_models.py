"""Teacher (2D + 3D skeleton images) and student (2D image only) in one embedding space.

The teacher encodes each image with its own encoder and fuses the two; the fused embedding and
each image alone are all aligned with the text (partial inputs, as PoseEmbroider does), so the
teacher's 2D branch already knows what 3D added. The student has only the 2D encoder and learns
the teacher's space by distillation. Both carry the text encoder (retrieval, distillation
anchors) and the decoder (captions, answers), so a saved student is all inference needs.
"""

from __future__ import annotations

import torch
from torch import nn

from p2l3d_core.models.config import PoseModelConfig
from p2l3d_core.models.decoder import PrefixDecoder
from p2l3d_core.models.encoders import ImageEncoder, TextEncoder
from p2l3d_core.models.losses import LogitScale, clip_loss, distill_loss


class _PoseLanguageModel(nn.Module):
    kind = "base"

    def __init__(self, cfg: PoseModelConfig, weights: bool = True):
        super().__init__()
        self.cfg = cfg
        self.text = TextEncoder(cfg.text, cfg.embed_dim, weights)
        self.decoder = PrefixDecoder(cfg.decoder, cfg.embed_dim, self.text.tokenizer, weights)
        self.logit_scale = LogitScale(cfg.init_temperature)

    def encode_pose(self, image_2d: torch.Tensor, image_3d: torch.Tensor | None = None) -> torch.Tensor:
        raise NotImplementedError

    def language_loss(self, pose: torch.Tensor, prompts: list[str], targets: list[str]) -> torch.Tensor:
        """Decoder cross-entropy of captions/answers given the pose embeddings."""
        return self.decoder(pose, prompts, targets)


class Teacher(_PoseLanguageModel):
    kind = "teacher"

    def __init__(self, cfg: PoseModelConfig, weights: bool = True):
        super().__init__(cfg, weights)
        self.image_2d = ImageEncoder(cfg.vision, cfg.embed_dim, weights)
        self.image_3d = ImageEncoder(cfg.vision, cfg.embed_dim, weights)
        d = cfg.embed_dim
        self.fuse = nn.Sequential(nn.Linear(2 * d, d), nn.GELU(), nn.Linear(d, d))

    def encode_all(self, image_2d: torch.Tensor, image_3d: torch.Tensor) -> dict[str, torch.Tensor]:
        """Embeddings of the 2D image, the 3D image and their fusion (all normalised)."""
        z2, z3 = self.image_2d(image_2d), self.image_3d(image_3d)
        fused = nn.functional.normalize(self.fuse(torch.cat([z2, z3], -1)) + z2 + z3, dim=-1)
        return {"z2d": z2, "z3d": z3, "fused": fused}

    def encode_pose(self, image_2d: torch.Tensor, image_3d: torch.Tensor | None = None) -> torch.Tensor:
        if image_3d is None:
            return self.image_2d(image_2d)  # partial input: 2D alone is aligned too
        return self.encode_all(image_2d, image_3d)["fused"]

    def contrastive_loss(self, image_2d: torch.Tensor, image_3d: torch.Tensor, text: torch.Tensor,
                         partial_weight: float = 0.5) -> dict[str, torch.Tensor]:
        """InfoNCE of the fused embedding with the text, plus each image alone (partial)."""
        z = self.encode_all(image_2d, image_3d)
        scale = self.logit_scale()
        terms = {name: clip_loss(z[name], text, scale) for name in ("fused", "z2d", "z3d")}
        terms["loss"] = terms["fused"] + partial_weight * (terms["z2d"] + terms["z3d"])
        return {**terms, **{f"emb_{k}": v for k, v in z.items()}}

    def forward(self, image_2d: torch.Tensor, image_3d: torch.Tensor, texts: list[str],
                prompts: list[str], targets: list[str], partial_weight: float = 0.5,
                lm_weight: float = 1.0) -> dict[str, torch.Tensor]:
        """Training step: contrastive terms plus the language-model loss on the fused embedding.
        The loss lives in ``forward`` so DeepSpeed's engine (ZeRO-3 included) wraps all of it."""
        out = self.contrastive_loss(image_2d, image_3d, self.text(texts), partial_weight)
        out["lm"] = self.language_loss(out["emb_fused"], prompts, targets)
        out["loss"] = out["loss"] + lm_weight * out["lm"]
        return out


class Student(_PoseLanguageModel):
    kind = "student"

    def __init__(self, cfg: PoseModelConfig, weights: bool = True):
        super().__init__(cfg, weights)
        self.image_2d = ImageEncoder(cfg.vision, cfg.embed_dim, weights)

    def encode_pose(self, image_2d: torch.Tensor, image_3d: torch.Tensor | None = None) -> torch.Tensor:
        return self.image_2d(image_2d)

    def adopt_language(self, teacher: Teacher) -> None:
        """Start from the teacher's text encoder (kept frozen: its embeddings are the anchors the
        student is distilled against) and its decoder (fine-tuned on the student's embeddings)."""
        self.text.load_state_dict(teacher.text.state_dict())
        self.text.requires_grad_(False)
        self.decoder.load_state_dict(teacher.decoder.state_dict())
        self.logit_scale.load_state_dict(teacher.logit_scale.state_dict())

    def forward(self, image_2d: torch.Tensor, teacher_pose: torch.Tensor, text: torch.Tensor | None,
                labelled: torch.Tensor, prompts: list[str], targets: list[str],
                match: str = "cosine", match_weight: float = 1.0, rkd_weight: float = 1.0,
                temperature: float = 0.1, contrastive_weight: float = 0.5,
                lm_weight: float = 1.0) -> dict[str, torch.Tensor]:
        """Distillation step on a batch mixing labelled rows (text known) and pool rows (only the
        teacher's embedding). ``text``: teacher text embeddings of the labelled rows, in order;
        ``prompts``/``targets``: decoder inputs of the labelled rows."""
        z = self.image_2d(image_2d)
        anchors = text if text is not None and text.shape[0] > 1 else None
        out = distill_loss(z, teacher_pose, anchors, match, match_weight, rkd_weight, temperature)
        if text is not None and text.shape[0] > 1:
            out["contrastive"] = clip_loss(z[labelled], text, self.logit_scale())
            out["loss"] = out["loss"] + contrastive_weight * out["contrastive"]
        if prompts:
            out["lm"] = self.language_loss(z[labelled], prompts, targets)
            out["loss"] = out["loss"] + lm_weight * out["lm"]
        return out


MODEL_KINDS: dict[str, type[_PoseLanguageModel]] = {"teacher": Teacher, "student": Student}
