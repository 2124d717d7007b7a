"""What one training step feeds the model: a batch of dataset rows turned into the keyword
arguments of ``Teacher.forward`` or ``Student.forward``, the run's loss weights included.

The Ray Train loops (``loops.py``) and ``benchmarks/train_step.py`` both call these, so the
benchmark times the very step that trains.
"""

from __future__ import annotations

import numpy as np
import torch

from p2l3d_core.dataset.build import labelled_mask
from p2l3d_core.dataset.schema import Column
from p2l3d_core.models.answers import Asked
from p2l3d_core.models.decoder import CAPTION_PROMPT
from p2l3d_core.models.geometry import with_geometry
from p2l3d_core.models.inputs import pose_inputs, pose_inputs_3d
from p2l3d_core.models.pose_models import Teacher
from p2l3d_core.training.batches import (
    asked_questions,
    language_2d,
    pick_captions,
    pick_language_targets,
)
from p2l3d_core.training.config import TrainConfig


def cast_inputs(inputs: dict[str, torch.Tensor], dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """Pose inputs in a model's dtype (bf16 for a DeepSpeed model on a GPU)."""
    return {k: v.to(dtype) for k, v in inputs.items()}


def labelled_only(batch: dict, fraction: float) -> dict:
    """The batch's labelled rows. Every worker must take a step on every batch (a skipped step
    leaves the others waiting in DeepSpeed's all-reduce), so the runner streams labelled rows
    only (``runner.labelled_rows``) and a batch without two of them is an error, not a skip."""
    keep = labelled_mask(batch[Column.POSE_ID], fraction)
    if keep.sum() < 2:
        raise ValueError(f"a batch with {int(keep.sum())} labelled rows: stream the labelled rows "
                         "only (runner.labelled_rows) to stages that learn from text alone")
    return {k: v[keep] for k, v in batch.items()}


def teacher_step(batch: dict, cfg: TrainConfig, rng: np.random.Generator, device=None,
                 dtype: torch.dtype = torch.float32) -> dict:
    """``Teacher.forward`` arguments: 2D and 3D inputs, a caption per row for InfoNCE, decoder
    prompts and targets, every question with its answer. The teacher learns from text alone,
    so only labelled rows take part."""
    if cfg.labelled_fraction < 1.0:
        batch = labelled_only(batch, cfg.labelled_fraction)
    prompts, targets = pick_language_targets(batch[Column.CAPTIONS], batch[Column.QUESTIONS],
                                             batch[Column.ANSWERS], rng, cfg.qa_fraction)
    return {"inputs_2d": cast_inputs(pose_inputs(batch, cfg.model.pose_input, device), dtype),
            "inputs_3d": cast_inputs(pose_inputs_3d(batch, cfg.model.pose_input_3d, device), dtype),
            "texts": pick_captions(batch[Column.CAPTIONS], rng), "prompts": prompts,
            "targets": targets,
            "asked": asked_questions(batch, range(len(batch[Column.CAPTIONS]))).to(device),
            "partial_weight": cfg.partial_weight, "lm_weight": cfg.lm_weight,
            "answer_weight": cfg.answer_weight}


class TeacherTargets:
    """What a frozen teacher gives each training pose: its fused embedding, its answer logits
    over the question bank and the pose's geometry when it reads one, computed the first time a
    worker meets the pose and kept.

    Why: the teacher is in eval mode and reads its inputs without augmentation, so every epoch
    after the first would recompute the same numbers (to float rounding: a pose's row may sit in
    batches of other sizes). Of the logits only the answers within each question's family are
    kept, all that ``losses.answer_kd`` reads (258 of 60 x 56): ~2 KB a pose, ~40 MB for the
    quickstart's 18k training poses. The teacher reads its own inputs, in float32 like its
    weights (a student may read others, and trains in bf16 on a GPU)."""

    def __init__(self, teacher: Teacher):
        self.teacher = teacher
        self._bank_mask = Asked.bank(1).mask  # (bank questions, answers), the same for every pose
        self._poses: dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]] = {}
        self._captions: dict[str, str] = {}

    def __len__(self) -> int:
        return len(self._poses)

    @torch.no_grad()
    def __call__(self, batch: dict, device=None
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """``(fused, answers, geometry)`` for the batch's rows: ``(B, D)`` embeddings, the
        ``(B * len(QUESTION_BANK), len(ANSWERS))`` logits of ``Asked.bank(B)`` (zero outside
        each question's family) and the ``(B, GEOMETRY_FEATURES)`` geometry the teacher reads
        from the 3D keypoints (None for a teacher that reads none)."""
        ids = [str(p) for p in batch[Column.POSE_ID]]
        new = list({p: i for i, p in enumerate(ids) if p not in self._poses}.values())
        if new:
            rows = {k: v[new] for k, v in batch.items()}
            x2 = pose_inputs(rows, self.teacher.cfg.pose_input, device)
            x3 = pose_inputs_3d(rows, self.teacher.cfg.pose_input_3d, device)
            fused = self.teacher.encode_all(x2, x3)["fused"]
            geometry = self.teacher.measure_geometry(x2, x3)
            logits = self.teacher.answer_logits(with_geometry(fused, geometry),
                                                Asked.bank(len(new)).to(device))
            kept = logits.view(len(new), *self._bank_mask.shape)[:, self._bank_mask.to(device)]
            fused, kept = fused.cpu(), kept.cpu()  # one copy off a GPU, not one per pose
            geometry = None if geometry is None else geometry.cpu()
            for j, i in enumerate(new):
                self._poses[ids[i]] = (fused[j], kept[j],
                                       None if geometry is None else geometry[j])
        fused = torch.stack([self._poses[p][0] for p in ids]).to(device)
        answers = torch.zeros(len(ids), *self._bank_mask.shape, device=device)
        answers[:, self._bank_mask.to(device)] = (torch.stack([self._poses[p][1] for p in ids])
                                                  .to(device))
        geometry = (None if self.teacher.geometry is None
                    else torch.stack([self._poses[p][2] for p in ids]).to(device))
        return fused, answers.flatten(0, 1), geometry

    @torch.no_grad()
    def captions(self, batch: dict, rows, device=None) -> list[str]:
        """The teacher's caption of each of ``rows`` (positions in ``batch``, whose targets
        :meth:`__call__` has computed): its greedy decoding of the fused embedding, written in
        one batched pass the first time a worker meets the pose, and kept (a string a pose)."""
        ids = [str(batch[Column.POSE_ID][r]) for r in rows]
        new = [p for p in dict.fromkeys(ids) if p not in self._captions]
        if new:
            fused = torch.stack([self._poses[p][0] for p in new]).to(device)
            # within the caption grammar: the student learns template clauses, not the
            # teacher's malformed ones (models/grammar.py)
            self._captions.update(zip(new, self.teacher.decoder.generate(
                fused, [CAPTION_PROMPT] * len(new),
                grammar=self.teacher.decoder.caption_grammar)))
        return [self._captions[p] for p in ids]


def student_step(batch: dict, cfg: TrainConfig, rng: np.random.Generator,
                 teacher: TeacherTargets | None = None, device=None,
                 dtype: torch.dtype = torch.float32) -> dict:
    """``Student.forward`` arguments. With a frozen teacher (its :class:`TeacherTargets`):
    every row (pool included) gets the teacher's fused embedding and answer distributions over
    the question bank as targets; labelled rows add text anchors, InfoNCE, decoder and answer
    targets, and ``cfg.pool_captions`` pool rows, drawn at random, the teacher's caption as a
    decoder target. Without a teacher only the labelled rows teach, with 3D-measured text or,
    for ``cfg.language == "2d"``, text measured on the 2D keypoints."""
    labelled = labelled_mask(batch[Column.POSE_ID], cfg.labelled_fraction)
    if teacher is None:
        batch = labelled_only(batch, cfg.labelled_fraction)
        if cfg.language == "2d":
            batch = language_2d(batch, cfg.seed)
        labelled = np.ones(len(batch[Column.POSE_ID]), dtype=bool)
    rows = np.flatnonzero(labelled)
    captions = pick_captions(batch[Column.CAPTIONS][rows], rng)
    prompts, targets = pick_language_targets(batch[Column.CAPTIONS][rows],
                                             batch[Column.QUESTIONS][rows],
                                             batch[Column.ANSWERS][rows], rng, cfg.qa_fraction)
    args = {"inputs_2d": cast_inputs(pose_inputs(batch, cfg.model.pose_input, device), dtype),
            "labelled": torch.as_tensor(labelled, device=device), "prompts": prompts,
            "targets": targets, "asked": asked_questions(batch, rows).to(device),
            "contrastive_weight": cfg.contrastive_weight, "lm_weight": cfg.lm_weight,
            "answer_weight": cfg.answer_weight}
    if teacher is None:
        return {**args, "captions": captions}
    target, teacher_answers, geometry = teacher(batch, device)
    with torch.no_grad():
        text = teacher.teacher.text(captions) if len(rows) else None
    pool = np.flatnonzero(~labelled)
    if cfg.pool_captions and len(pool):
        drawn = np.sort(rng.choice(pool, min(cfg.pool_captions, len(pool)), replace=False))
        args["prompts"] = prompts + [CAPTION_PROMPT] * len(drawn)
        args["targets"] = targets + teacher.captions(batch, drawn, device)
        args["language_rows"] = torch.as_tensor(np.concatenate([rows, drawn]), device=device)
    return {**args, "teacher_pose": target.to(dtype),
            "teacher_text": None if text is None else text.to(dtype),
            "bank": Asked.bank(len(labelled)).to(device),
            "teacher_answers": teacher_answers, "answer_kd_weight": cfg.answer_kd_weight,
            "teacher_geometry": geometry,
            "match": cfg.match, "match_weight": cfg.match_weight, "rkd_weight": cfg.rkd_weight,
            "temperature": cfg.distill_temperature}
