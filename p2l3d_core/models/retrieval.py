"""Cross-modal retrieval recall: does a pose find its own text among all texts, and back."""

from __future__ import annotations

import torch


def recall_at_k(pose: torch.Tensor, text: torch.Tensor, ks: tuple[int, ...] = (1, 5, 10)
                ) -> dict[str, float]:
    """``pose_to_text_R@k`` and ``text_to_pose_R@k`` for matched rows of normalised embeddings.
    Chance level is ``k / N``."""
    sim = pose @ text.t()
    target = torch.arange(sim.shape[0], device=sim.device)
    out = {}
    for name, s in (("pose_to_text", sim), ("text_to_pose", sim.t())):
        rank = (s > s[target, target][:, None]).sum(1)  # how many beat the right match
        for k in ks:
            out[f"{name}_R@{k}"] = float((rank < k).float().mean())
    return out
