"""Rendered-dataset batches -> what a training step learns from: language targets, the questions
asked, text measured from 2D. The model inputs themselves come from ``models/inputs.py``."""

from __future__ import annotations

import numpy as np

from p2l3d_core.dataset.schema import Column
from p2l3d_core.models.answers import Asked
from p2l3d_core.models.decoder import CAPTION_PROMPT, question_prompt
from p2l3d_core.models.inputs import stack_column


def pick_captions(captions, rng: np.random.Generator) -> list[str]:
    """One caption per row, chosen at random (each pose has several phrasings)."""
    return [str(c[int(rng.integers(len(c)))]) if len(c) else "" for c in captions]


def first_captions(captions) -> list[str]:
    """Each row's first caption: the text validation scores retrieval against. The same every
    epoch, so epochs compare, and the frozen text encoder (the costliest part of validation
    while a random phrasing kept missing its cache) embeds each once."""
    return [str(c[0]) if len(c) else "" for c in captions]


def pick_language_targets(captions, questions, answers, rng: np.random.Generator,
                          qa_fraction: float = 0.5) -> tuple[list[str], list[str]]:
    """Decoder ``(prompts, targets)``: per row either a caption or one question's answer."""
    prompts, targets = [], []
    for caps, qs, ans in zip(captions, questions, answers):
        if len(qs) and rng.random() < qa_fraction:
            k = int(rng.integers(len(qs)))
            prompts.append(question_prompt(str(qs[k])))
            targets.append(str(ans[k]))
        else:
            prompts.append(CAPTION_PROMPT)
            targets.append(str(caps[int(rng.integers(len(caps)))]) if len(caps) else "")
    return prompts, targets


def asked_questions(batch: dict, rows) -> Asked:
    """Every question of the given (labelled) rows with its family and answer; ``Asked.rows``
    are positions in the batch."""
    pos, questions, families, answers = [], [], [], []
    for r in rows:
        qs = batch[Column.QUESTIONS][r]
        pos += [int(r)] * len(qs)
        questions += [str(q) for q in qs]
        families += [str(f) for f in batch[Column.QUESTION_FAMILIES][r]]
        answers += [str(a) for a in batch[Column.ANSWERS][r]]
    return Asked.of(pos, questions, families, answers)


def language_2d(batch: dict, seed: int) -> dict:
    """The batch with its text replaced by text measured from the 2D keypoints alone
    (``baseline_2d_no3d``): same pose ids, so the same rows stay labelled."""
    from p2l3d_core.dataset.build import stable_unit
    from p2l3d_core.language.from_2d import describe_batch_2d

    seeds = [int(stable_unit(f"2d:{seed}:{p}") * 2**31) for p in batch[Column.POSE_ID]]
    texts = describe_batch_2d(stack_column(batch[Column.KEYPOINTS_2D]),
                              [str(a) for a in batch[Column.ACTION]],
                              stack_column(batch[Column.VISIBLE_2D]), seeds)
    out = dict(batch)
    out[Column.CAPTIONS] = _objects([t.captions for t in texts])
    out[Column.QUESTIONS] = _objects([[q.question for q in t.qas] for t in texts])
    out[Column.ANSWERS] = _objects([[q.answer for q in t.qas] for t in texts])
    out[Column.QUESTION_FAMILIES] = _objects([[q.family for q in t.qas] for t in texts])
    return out


def _objects(rows: list[list[str]]) -> np.ndarray:
    out = np.empty(len(rows), dtype=object)
    out[:] = [np.asarray(r, dtype=object) for r in rows]
    return out
