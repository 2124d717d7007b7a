"""Language grounded in 3D: posecodes measured on 3D joints, captions and question/answer pairs.

``describe_batch`` is the entry point for data pipelines: it measures the posecodes of a whole
batch at once (numpy, vectorised), then writes each pose's text in plain Python.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from p2l3d_core.language.actions import ACTION_ANSWERS, ActionText, action_text
from p2l3d_core.language.captions import describe, pose_facts
from p2l3d_core.language.posecodes import CODE_CATEGORIES, Posecodes, measure_posecodes
from p2l3d_core.language.questions import FAMILIES, FAMILY_ANSWERS, FAMILY_NEEDS_DEPTH, QA, ask


@dataclass
class PoseText:
    """All text of one pose: captions and question/answer pairs."""

    captions: list[str]
    qas: list[QA]


def describe_batch(joints_3d: np.ndarray, actions: Sequence[str],
                   camera_positions: np.ndarray | None = None,
                   seeds: Sequence[int] | None = None, num_captions: int = 3,
                   max_questions: int | None = None) -> list[PoseText]:
    """Captions and QAs for ``N`` poses.

    ``joints_3d`` ``(N, 17, 3)`` world metres; ``actions`` one label per pose;
    ``camera_positions`` ``(N, 3)`` camera centres (None: no facing statements);
    ``seeds`` one per pose (pose ``i`` uses ``np.random.default_rng(seeds[i])``, first for its
    captions, then for its questions), or None for the deterministic mode.
    """
    codes = measure_posecodes(joints_3d, camera_positions)
    if len(actions) != len(codes) or (seeds is not None and len(seeds) != len(codes)):
        raise ValueError("actions and seeds need one entry per pose")
    out = []
    for i, action in enumerate(actions):
        rng = None if seeds is None else np.random.default_rng(seeds[i])
        out.append(PoseText(describe(codes, i, action, rng, num_captions),
                            ask(codes, i, action, rng, max_questions)))
    return out


__all__ = [
    "ACTION_ANSWERS", "CODE_CATEGORIES", "FAMILIES", "FAMILY_ANSWERS", "FAMILY_NEEDS_DEPTH", "QA",
    "ActionText", "PoseText", "Posecodes", "action_text", "ask", "describe", "describe_batch",
    "measure_posecodes", "pose_facts",
]
