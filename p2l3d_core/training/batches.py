"""Rendered-dataset batches (Ray Data numpy batches or Arrow rows) -> model inputs."""

from __future__ import annotations

import numpy as np

from p2l3d_core.models.decoder import CAPTION_PROMPT, question_prompt
from p2l3d_core.render import decode_png


def decode_images(column) -> np.ndarray:
    """PNG bytes per row -> ``(N, H, W, 3)`` uint8 RGB."""
    return np.stack([decode_png(bytes(b)) for b in column])


def pick_captions(captions, rng: np.random.Generator) -> list[str]:
    """One caption per row, chosen at random (each pose has several phrasings)."""
    return [str(c[int(rng.integers(len(c)))]) if len(c) else "" for c in captions]


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


def labelled_mask(pose_ids, fraction: float) -> np.ndarray:
    """Which rows keep their language (the rest form the unlabelled pool), by a stable hash of
    the pose id so every stage and every worker agree."""
    from p2l3d_core.dataset.build import stable_unit

    if fraction >= 1.0:
        return np.ones(len(pose_ids), dtype=bool)
    return np.array([stable_unit(f"labelled:{p}") < fraction for p in pose_ids], dtype=bool)
