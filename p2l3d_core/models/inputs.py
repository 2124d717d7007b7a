"""The model-input contract: what a pose encoder reads, built from rendered-dataset columns or
from keypoints, the same way for training, evaluation and inference.

Why one module: training and the predictor must feed a model identically (the same image
scaling, the same keypoint features), or a model answers differently than it was measured. It
sits under ``models/`` so neither ``training/`` nor ``inference/`` has to import the other.
"""

from __future__ import annotations

import numpy as np
import torch

from p2l3d_core.dataset.schema import Column
from p2l3d_core.models.keypoints import keypoint_features, keypoint_features_3d
from p2l3d_core.poses.camera import Camera
from p2l3d_core.render import decode_png


def images_to_tensor(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """``(B, H, W, 3)`` uint8 RGB -> ``(B, 3, H, W)`` float in [-1, 1]."""
    x = torch.as_tensor(images)
    if x.dtype != torch.uint8 or x.ndim != 4 or x.shape[-1] != 3:
        raise ValueError(f"expected (B, H, W, 3) uint8 images, got {tuple(x.shape)} {x.dtype}")
    return x.permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


def decode_images(column) -> np.ndarray:
    """PNG bytes per row -> ``(N, H, W, 3)`` uint8 RGB."""
    return np.stack([decode_png(bytes(b)) for b in column])


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
        out["image"] = images_to_tensor(decode_images(batch[Column.IMAGE_2D])).to(device)
    if "keypoints" in pose_input:
        feats = keypoint_features(stack_column(batch[Column.KEYPOINTS_2D]),
                                  stack_column(batch[Column.VISIBLE_2D]))
        out["keypoints"] = torch.from_numpy(feats).to(device)
    return out


def features_3d_seen_by(joints_world: np.ndarray, cameras: list[Camera]) -> np.ndarray:
    """World poses ``(N, 17, 3)``, each seen by its camera -> their 3D keypoint features
    (``keypoint_features_3d``: the camera frame and the camera's centre come from the camera)."""
    return keypoint_features_3d(np.stack([c.to_camera(j) for c, j in zip(cameras, joints_world)]),
                                joints_world, np.stack([c.position for c in cameras]))


def pose_inputs_3d(batch: dict, pose_input_3d: str, device=None) -> dict[str, torch.Tensor]:
    """The teacher's 3D inputs of a batch: ``image`` (3D views) and/or ``keypoints`` (3D joint
    features in the camera and the body frame, and the geometry: each row's ``camera`` column
    gives its camera frame and the camera's direction)."""
    out: dict[str, torch.Tensor] = {}
    if "image" in pose_input_3d:
        out["image"] = images_to_tensor(decode_images(batch[Column.IMAGE_3D])).to(device)
    if "keypoints" in pose_input_3d:
        world = stack_column(batch[Column.KEYPOINTS_3D])
        feats = features_3d_seen_by(world, [Camera.from_dict(c) for c in batch[Column.CAMERA]])
        out["keypoints"] = torch.from_numpy(feats).to(device)
    return out
