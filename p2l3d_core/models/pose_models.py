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

from p2l3d_core.models.answers import CURRENT, AnswerHead, Asked, Vocabulary
from p2l3d_core.models.config import PoseModelConfig
from p2l3d_core.models.decoder import PrefixDecoder
from p2l3d_core.models.encoders import Pose2DEncoder, Pose3DEncoder, TextEncoder
from p2l3d_core.models.geometry import (
    GEOMETRY_FAMILIES,
    GEOMETRY_FEATURES,
    GeometryRegressor,
    family_columns,
    geometry_of_3d,
    with_geometry,
)
from p2l3d_core.models.losses import (
    LogitScale,
    answer_kd,
    answer_loss,
    clip_loss,
    distill_loss,
    geometry_loss,
)


class _PoseLanguageModel(nn.Module):
    kind = "base"

    def __init__(self, cfg: PoseModelConfig, weights: bool = True,
                 vocab: Vocabulary | None = None):
        super().__init__()
        self.cfg = cfg
        self.vocab = vocab or CURRENT
        self.text = TextEncoder(cfg.text, cfg.embed_dim, weights)
        self.decoder = PrefixDecoder(cfg.decoder, cfg.embed_dim, self.text.tokenizer, weights)
        self.logit_scale = LogitScale(cfg.init_temperature)
        self.answers = AnswerHead(cfg.embed_dim, classes=len(self.vocab.answers),
                                  geometry=GEOMETRY_FEATURES if cfg.geometry else 0)
        self.geometry = GeometryRegressor() if cfg.geometry else None
        # The families the geometry decides alone: their questions are answered blind to the
        # embedding (geometry.GEOMETRY_FAMILIES), from their own geometry columns only
        # (geometry.FAMILY_COLUMNS, a row each).
        blind = [f for f in GEOMETRY_FAMILIES if f in self.vocab.families] if cfg.geometry else []
        self._blind_index = {f: k for k, f in enumerate(blind)}
        self._blind_columns = family_columns(blind) if blind else None

    def measure_geometry(self, inputs_2d: dict[str, torch.Tensor],
                         inputs_3d: dict[str, torch.Tensor] | torch.Tensor | None = None
                         ) -> torch.Tensor | None:
        """The pose's geometry (``geometry.py``): exact from a teacher's 3D keypoints, else
        regressed from the 2D keypoints; None for a model whose head reads none."""
        if self.geometry is None:
            return None
        if isinstance(inputs_3d, dict) and "keypoints" in inputs_3d:
            return geometry_of_3d(inputs_3d["keypoints"])
        return self.geometry(inputs_2d["keypoints"])

    def pose_state(self, inputs_2d: dict[str, torch.Tensor],
                   inputs_3d: dict[str, torch.Tensor] | torch.Tensor | None = None
                   ) -> torch.Tensor:
        """What everything after the encoder reads: the pose embedding, then the pose's
        geometry for a model whose answer head reads one. The decoder and retrieval take
        :meth:`embedding_of` it; the answer head takes it whole."""
        z = self.encode_pose(inputs_2d, inputs_3d)
        geometry = self.measure_geometry(inputs_2d, inputs_3d)
        return with_geometry(z, geometry)

    def embedding_of(self, state: torch.Tensor) -> torch.Tensor:
        """The pose embedding within a :meth:`pose_state`."""
        return state[..., :self.cfg.embed_dim]

    def encode_pose(self, inputs_2d: dict[str, torch.Tensor],
                    inputs_3d: dict[str, torch.Tensor] | torch.Tensor | None = None
                    ) -> torch.Tensor:
        """Pose embedding from the 2D inputs (``Pose2DEncoder``) and, for a teacher, the 3D
        image."""
        raise NotImplementedError

    def with_every_parameter(self, loss: torch.Tensor) -> torch.Tensor:
        """``loss`` plus zero times one element of every trainable parameter. Data-parallel
        workers must reduce the same gradients each step: a term that one worker skips (a batch
        with fewer than two labelled rows has no InfoNCE, so no temperature gradient) would
        leave its buffers a different size from the others' and stall or break the all-reduce."""
        return loss + 0.0 * sum(p.reshape(-1)[0] for p in self.parameters() if p.requires_grad)

    def language_loss(self, pose: torch.Tensor, prompts: list[str],
                      targets: list[str]) -> torch.Tensor:
        """Decoder cross-entropy of captions/answers given the pose embeddings."""
        return self.decoder(pose, prompts, targets)

    def answer_logits(self, pose: torch.Tensor, asked: Asked) -> torch.Tensor:
        """``(len(asked), len(ANSWERS))`` logits of each question about its pose (rows of
        ``pose``, :meth:`pose_state` rows). Each distinct question is embedded once: a batch asks
        the same few dozen many times."""
        unique = list(dict.fromkeys(asked.questions))
        index = {q: i for i, q in enumerate(unique)}
        which = torch.tensor([index[x] for x in asked.questions], device=pose.device)
        blind = columns = None
        if self._blind_columns is not None:
            family = torch.tensor([self._blind_index.get(f, -1) for f in asked.families],
                                  device=pose.device)
            blind = family >= 0
            columns = torch.where(blind[:, None],
                                  self._blind_columns.to(pose)[family.clamp(min=0)],
                                  torch.ones((), dtype=pose.dtype, device=pose.device))
        return self.answers.pairs(pose, self.text(unique).to(pose.dtype), asked.rows, which,
                                  blind, columns)

    @torch.no_grad()
    def answer_distribution(self, pose: torch.Tensor, questions: list[str],
                            families: list[str]) -> torch.Tensor:
        """``(len(questions), len(vocab.answers))``: the probability of each answer to question
        ``i`` about pose ``i``, within its family (0 outside it)."""
        asked = Asked(torch.arange(len(questions), device=pose.device), list(questions),
                      self.vocab.mask(families).to(pose.device), tuple(families))
        logits = self.answer_logits(pose, asked).float().masked_fill(~asked.mask, float("-inf"))
        return logits.softmax(-1)

    @torch.no_grad()
    def answer(self, pose: torch.Tensor, questions: list[str], families: list[str]) -> list[str]:
        """The most likely answer of question ``i`` about pose ``i``, within its family."""
        answers = self.vocab.answers
        return [answers[i] for i in
                self.answer_distribution(pose, questions, families).argmax(-1).tolist()]


class Teacher(_PoseLanguageModel):
    kind = "teacher"

    def __init__(self, cfg: PoseModelConfig, weights: bool = True,
                 vocab: Vocabulary | None = None):
        super().__init__(cfg, weights, vocab)
        self.encoder_2d = Pose2DEncoder(cfg, weights)
        self.encoder_3d = Pose3DEncoder(cfg, weights)
        if cfg.geometry and "keypoints" not in cfg.pose_input_3d.split("+"):
            raise ValueError("a teacher with geometry reads it from its 3D keypoints: "
                             f"pose_input_3d must include keypoints (it is {cfg.pose_input_3d!r})")
        d = cfg.embed_dim
        self.fuse = nn.Sequential(nn.Linear(2 * d, d), nn.GELU(), nn.Linear(d, d))

    def encode_all(self, inputs_2d: dict[str, torch.Tensor],
                   inputs_3d: dict[str, torch.Tensor] | torch.Tensor) -> dict[str, torch.Tensor]:
        """Embeddings of the 2D inputs, the 3D inputs (a tensor: the 3D image) and their
        fusion (all normalised)."""
        if isinstance(inputs_3d, torch.Tensor):
            inputs_3d = {"image": inputs_3d}
        z2, z3 = self.encoder_2d(inputs_2d), self.encoder_3d(inputs_3d)
        fused = nn.functional.normalize(self.fuse(torch.cat([z2, z3], -1)) + z2 + z3, dim=-1)
        return {"z2d": z2, "z3d": z3, "fused": fused}

    def encode_pose(self, inputs_2d: dict[str, torch.Tensor],
                    inputs_3d: dict[str, torch.Tensor] | torch.Tensor | None = None
                    ) -> torch.Tensor:
        if inputs_3d is None:
            return self.encoder_2d(inputs_2d)  # partial input: 2D alone is aligned too
        return self.encode_all(inputs_2d, inputs_3d)["fused"]

    def contrastive_loss(self, inputs_2d: dict[str, torch.Tensor],
                         inputs_3d: dict[str, torch.Tensor] | torch.Tensor,
                         text: torch.Tensor,
                         partial_weight: float = 0.5) -> dict[str, torch.Tensor]:
        """InfoNCE of the fused embedding with the text, plus each image alone (partial)."""
        z = self.encode_all(inputs_2d, inputs_3d)
        scale = self.logit_scale()
        terms = {name: clip_loss(z[name], text, scale) for name in ("fused", "z2d", "z3d")}
        terms["loss"] = terms["fused"] + partial_weight * (terms["z2d"] + terms["z3d"])
        return {**terms, **{f"emb_{k}": v for k, v in z.items()}}

    def forward(self, inputs_2d: dict[str, torch.Tensor],
                inputs_3d: dict[str, torch.Tensor] | torch.Tensor, texts: list[str],
                prompts: list[str], targets: list[str], asked: Asked | None = None,
                partial_weight: float = 0.5, lm_weight: float = 1.0,
                answer_weight: float = 1.0, geometry_weight: float = 1.0
                ) -> dict[str, torch.Tensor]:
        """Training step: contrastive terms, the language-model loss and the answer loss (every
        question in ``asked``) on the fused embedding, which the head reads with the exact
        geometry; the 2D geometry regressor learns that geometry (the student starts from it).
        The loss lives in ``forward`` so DeepSpeed's engine wraps all of it."""
        out = self.contrastive_loss(inputs_2d, inputs_3d, self.text(texts), partial_weight)
        out["lm"] = self.language_loss(out["emb_fused"], prompts, targets)
        out["loss"] = out["loss"] + lm_weight * out["lm"]
        state = out["emb_fused"]
        if self.geometry is not None:
            exact = self.measure_geometry(inputs_2d, inputs_3d)
            out["geometry"] = geometry_loss(self.geometry(inputs_2d["keypoints"]), exact)
            out["loss"] = out["loss"] + geometry_weight * out["geometry"]
            state = with_geometry(state, exact)
        if asked is not None and len(asked):
            out["answer"] = answer_loss(self.answer_logits(state, asked), asked.answers,
                                        asked.mask)
            out["loss"] = out["loss"] + answer_weight * out["answer"]
        out["loss"] = self.with_every_parameter(out["loss"])
        return out


class Student(_PoseLanguageModel):
    kind = "student"

    def __init__(self, cfg: PoseModelConfig, weights: bool = True,
                 vocab: Vocabulary | None = None):
        super().__init__(cfg, weights, vocab)
        self.encoder_2d = Pose2DEncoder(cfg, weights)

    def encode_pose(self, inputs_2d: dict[str, torch.Tensor],
                    inputs_3d: dict[str, torch.Tensor] | torch.Tensor | None = None
                    ) -> torch.Tensor:
        return self.encoder_2d(inputs_2d)

    def adopt_language(self, teacher: Teacher) -> None:
        """Start from the teacher's text encoder (kept frozen: its embeddings are the anchors the
        student is distilled against) and its decoder (fine-tuned on the student's embeddings).
        Both frozen, the two text encoders now compute the same features, so they share one
        sentence cache: a caption met by either is embedded once (and held once). A teacher
        trained with other question families is refused: its answer classes mean other things."""
        if teacher.vocab != self.vocab:
            raise ValueError("the teacher was trained with another answer vocabulary or question "
                             "bank than this code's: retrain the teacher with this version")
        self.text.load_state_dict(teacher.text.state_dict())
        self.text.requires_grad_(False)
        if self.text.frozen and teacher.text.frozen:
            self.text.sentence_cache = teacher.text.sentence_cache
        self.decoder.load_state_dict(teacher.decoder.state_dict())
        if (self.geometry is None) != (teacher.geometry is None):
            raise ValueError("the teacher and the student differ in reading the pose's geometry "
                             f"(teacher: {teacher.cfg.geometry}, student: {self.cfg.geometry}): "
                             "train both with the same geometry setting")
        self.answers.load_state_dict(teacher.answers.state_dict())
        if self.geometry is not None:  # the teacher's regressor, kept as it is (see forward)
            self.geometry.load_state_dict(teacher.geometry.state_dict())
            self.geometry.requires_grad_(False)
        self.logit_scale.load_state_dict(teacher.logit_scale.state_dict())

    def forward(self, inputs_2d: dict[str, torch.Tensor], labelled: torch.Tensor,
                prompts: list[str], targets: list[str], teacher_pose: torch.Tensor | None = None,
                teacher_text: torch.Tensor | None = None, captions: list[str] | None = None,
                asked: Asked | None = None, bank: Asked | None = None,
                teacher_answers: torch.Tensor | None = None,
                match: str = "cosine", match_weight: float = 1.0, rkd_weight: float = 1.0,
                temperature: float = 0.1, contrastive_weight: float = 0.5,
                lm_weight: float = 1.0, answer_weight: float = 1.0,
                answer_kd_weight: float = 1.0,
                language_rows: torch.Tensor | None = None,
                teacher_geometry: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """One training step on a batch mixing labelled rows (text known) and pool rows.

        Distillation (``teacher_pose`` given, one row per sample): embedding match and
        relational KD towards the teacher on every row; ``teacher_text`` are the teacher's text
        embeddings of the labelled rows (the KD anchors and InfoNCE targets). Without a teacher
        (the ``baseline_2d`` ablations) the student's own text encoder embeds ``captions`` of the
        labelled rows. ``prompts``/``targets``: decoder inputs of the labelled rows, in order,
        or of ``language_rows`` (batch positions) when given: pool rows may learn the teacher's
        captions too.
        ``asked``: the labelled rows' questions with their answers (rows index the batch).
        ``bank``/``teacher_answers``: questions put to every row and the teacher's logits for
        them, the answer-distillation targets where no answer is known.
        ``teacher_geometry``: the teacher's exact geometry of every row, which the head learns
        its answers on (a model with geometry needs it; at inference the head reads the
        regressor's, the teacher's own, frozen)."""
        z = self.encoder_2d(inputs_2d)
        out: dict[str, torch.Tensor] = {"loss": z.new_zeros(())}
        text = teacher_text if teacher_text is not None else (
            self.text(captions) if captions else None)
        if text is not None and text.shape[0] < 2:
            text = None  # InfoNCE needs negatives
        if teacher_pose is not None:
            out.update(distill_loss(z, teacher_pose, text, match, match_weight, rkd_weight,
                                    temperature))
        state = z  # after distill_loss, whose terms start the loss
        if self.geometry is not None:
            if teacher_geometry is None:
                raise ValueError("a student with geometry learns it from a teacher: pass "
                                 "teacher_geometry (a labelled-only baseline has none)")
            # The head learns its answers on the teacher's exact geometry, and reads the
            # regressed one only at inference. Why: trained on the regressed numbers, it learned
            # the generator's prior where they are ambiguous (a bend near 150 degrees is mostly
            # "straight" there) and answered real walkers' slightly bent limbs "straight":
            # joint_bend 0.57-0.63 on the CMU clips where the same regressor's numbers, read by
            # the rules' bands, score 0.66-0.75 (benchmarks/reports/2026-12-07-bend-prior.md).
            # The regressor itself is the teacher's (the prefit on every training pose, its
            # heights from noisy keypoints: geometry_fit.py), frozen: refined here on the rows'
            # exact keypoints it read the CMU clips' ankles higher still and each foot's contact
            # 4 points worse than where it started, the synthetic split's no better
            # (benchmarks/reports/2026-12-07-ground-contact.md).
            state = with_geometry(z, teacher_geometry)
        if text is not None:
            out["contrastive"] = clip_loss(z[labelled], text, self.logit_scale())
            out["loss"] = out["loss"] + contrastive_weight * out["contrastive"]
        if prompts:
            rows = labelled if language_rows is None else language_rows
            out["lm"] = self.language_loss(z[rows], prompts, targets)
            out["loss"] = out["loss"] + lm_weight * out["lm"]
        if asked is not None and len(asked):
            out["answer"] = answer_loss(self.answer_logits(state, asked), asked.answers,
                                        asked.mask)
            out["loss"] = out["loss"] + answer_weight * out["answer"]
        if bank is not None and teacher_answers is not None:
            out["answer_kd"] = answer_kd(self.answer_logits(state, bank), teacher_answers,
                                         bank.mask)
            out["loss"] = out["loss"] + answer_kd_weight * out["answer_kd"]
        out["loss"] = self.with_every_parameter(out["loss"])
        return out


MODEL_KINDS: dict[str, type[_PoseLanguageModel]] = {"teacher": Teacher, "student": Student}
