"""Rendered-dataset batches (Ray Data numpy batches or Arrow rows) -> model inputs."""

from __future__ import annotations

import numpy as np
import torch

from p2l3d_core.models.answers import Asked
from p2l3d_core.models.decoder import CAPTION_PROMPT, question_prompt
from p2l3d_core.models.encoders import images_to_tensor
from p2l3d_core.models.keypoints import keypoint_features, keypoint_features_3d
from p2l3d_core.poses.camera import Camera
from p2l3d_core.render import decode_png


def decode_images(column) -> np.ndarray:
    """PNG bytes per row -> ``(N, H, W, 3)`` uint8 RGB."""
    return np.stack([decode_png(bytes(b)) for b in column])


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
        qs = batch["questions"][r]
        pos += [int(r)] * len(qs)
        questions += [str(q) for q in qs]
        families += [str(f) for f in batch["question_families"][r]]
        answers += [str(a) for a in batch["answers"][r]]
    return Asked.of(pos, questions, families, answers)


def labelled_mask(pose_ids, fraction: float) -> np.ndarray:
    """Which rows keep their language (the rest form the unlabelled pool), by a stable hash of
    the pose id so every stage and every worker agree."""
    from p2l3d_core.dataset.build import stable_unit

    if fraction >= 1.0:
        return np.ones(len(pose_ids), dtype=bool)
    return np.array([stable_unit(f"labelled:{p}") < fraction for p in pose_ids], dtype=bool)


def stack_column(column) -> np.ndarray:
    """A column of nested lists (Arrow/Ray Data give object arrays of arrays) -> one ndarray."""
    if isinstance(column, np.ndarray) and column.dtype != object:
        return column
    return np.stack([np.stack(list(row)) if isinstance(row, (list, np.ndarray)) and len(row)
                     and isinstance(row[0], (list, np.ndarray)) else np.asarray(row)
                     for row in column])


def pose_inputs(batch: dict, pose_input: str, device=None) -> dict[str, torch.Tensor]:
    """The 2D branch's inputs of a batch: ``image`` and/or ``keypoints`` (see ``Pose2DEncoder``)."""
    out: dict[str, torch.Tensor] = {}
    if "image" in pose_input:
        out["image"] = images_to_tensor(decode_images(batch["image_2d"])).to(device)
    if "keypoints" in pose_input:
        feats = keypoint_features(stack_column(batch["keypoints_2d"]),
                                  stack_column(batch["visible_2d"]))
        out["keypoints"] = torch.from_numpy(feats).to(device)
    return out


def camera_frame(joints_3d: np.ndarray, cameras) -> np.ndarray:
    """World joints ``(N, 17, 3)`` -> each row's camera frame (``camera`` column dicts)."""
    return np.stack([Camera.from_dict(c).to_camera(j) for c, j in zip(cameras, joints_3d)])


def pose_inputs_3d(batch: dict, pose_input_3d: str, device=None) -> dict[str, torch.Tensor]:
    """The teacher's 3D inputs of a batch: ``image`` (3D views) and/or ``keypoints`` (3D joint
    features in the camera and the body frame)."""
    out: dict[str, torch.Tensor] = {}
    if "image" in pose_input_3d:
        out["image"] = images_to_tensor(decode_images(batch["image_3d"])).to(device)
    if "keypoints" in pose_input_3d:
        world = stack_column(batch["keypoints_3d"])
        feats = keypoint_features_3d(camera_frame(world, batch["camera"]), world)
        out["keypoints"] = torch.from_numpy(feats).to(device)
    return out


def language_2d(batch: dict, seed: int) -> dict:
    """The batch with its text replaced by text measured from the 2D keypoints alone
    (``baseline_2d_no3d``): same pose ids, so the same rows stay labelled."""
    from p2l3d_core.dataset.build import stable_unit
    from p2l3d_core.language.from_2d import describe_batch_2d

    seeds = [int(stable_unit(f"2d:{seed}:{p}") * 2**31) for p in batch["pose_id"]]
    texts = describe_batch_2d(stack_column(batch["keypoints_2d"]),
                              [str(a) for a in batch["action"]],
                              stack_column(batch["visible_2d"]), seeds)
    out = dict(batch)
    out["captions"] = _objects([t.captions for t in texts])
    out["questions"] = _objects([[q.question for q in t.qas] for t in texts])
    out["answers"] = _objects([[q.answer for q in t.qas] for t in texts])
    out["question_families"] = _objects([[q.family for q in t.qas] for t in texts])
    return out


def _objects(rows: list[list[str]]) -> np.ndarray:
    out = np.empty(len(rows), dtype=object)
    out[:] = [np.asarray(r, dtype=object) for r in rows]
    return out
