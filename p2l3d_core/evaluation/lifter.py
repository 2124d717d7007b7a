"""The "3D pose estimator at inference" pipeline the paper argues against: a network lifts the
2D keypoints to 3D, then the rule-based describer writes the text from the lifted joints.

Lifting target: the world joints in a *viewer frame*: pelvis above the origin (height kept),
turned about the vertical so the horizontal line from camera to pelvis is +y. Heading relative
to the camera is what 2D can tell; the absolute heading is not. The describer then sees the
camera at ``(0, -VIEWER_DISTANCE, 0)``, which is all ``facing`` needs.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from p2l3d_core.models.keypoints import KEYPOINT_FEATURES, keypoint_features
from p2l3d_core.skeleton import NUM_JOINTS, J

VIEWER_DISTANCE = 10.0


def viewer_frame(joints_3d: np.ndarray, camera_positions: np.ndarray) -> np.ndarray:
    """``(N, 17, 3)`` world joints -> the same joints in each pose's viewer frame."""
    joints = np.asarray(joints_3d, dtype=np.float64)
    pelvis = joints[:, J["pelvis"]]
    d = pelvis[:, :2] - np.asarray(camera_positions, dtype=np.float64)[:, :2]
    angle = np.arctan2(d[:, 0], d[:, 1])  # rotate d onto +y
    c, s = np.cos(angle), np.sin(angle)
    x = joints[..., 0] - pelvis[:, None, 0]
    y = joints[..., 1] - pelvis[:, None, 1]
    return np.stack([c[:, None] * x - s[:, None] * y, s[:, None] * x + c[:, None] * y,
                     joints[..., 2]], axis=-1)


def viewer_cameras(n: int) -> np.ndarray:
    return np.tile([0.0, -VIEWER_DISTANCE, 0.0], (n, 1))


class Lifter(nn.Module):
    """An MLP from 2D keypoint features to viewer-frame 3D joints (a residual-free cousin of
    Martinez et al.'s baseline, sized for CPU)."""

    def __init__(self, hidden: int = 512, layers: int = 3, dropout: float = 0.1):
        super().__init__()
        blocks: list[nn.Module] = []
        width = KEYPOINT_FEATURES
        for _ in range(layers):
            blocks += [nn.Linear(width, hidden), nn.LayerNorm(hidden), nn.GELU(),
                       nn.Dropout(dropout)]
            width = hidden
        self.net = nn.Sequential(*blocks, nn.Linear(width, NUM_JOINTS * 3))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.net(features).view(-1, NUM_JOINTS, 3)

    @torch.no_grad()
    def lift(self, keypoints_2d: np.ndarray, visible: np.ndarray | None = None) -> np.ndarray:
        self.eval()
        feats = torch.from_numpy(keypoint_features(keypoints_2d, visible))
        return self(feats).double().numpy()


def train_lifter(keypoints_2d: np.ndarray, visible: np.ndarray, joints_3d: np.ndarray,
                 camera_positions: np.ndarray, epochs: int = 30, batch_size: int = 256,
                 lr: float = 1e-3, seed: int = 0, log=None) -> Lifter:
    """Fit a :class:`Lifter` on every training pose (3D is plentiful: the pool counts too).
    Missing target joints are left out of the loss."""
    torch.manual_seed(seed)
    x = torch.from_numpy(keypoint_features(keypoints_2d, visible))
    y = torch.from_numpy(viewer_frame(joints_3d, camera_positions)).float()
    seen = ~torch.isnan(y).any(-1)
    y = torch.nan_to_num(y)
    model = Lifter()
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
    gen = torch.Generator().manual_seed(seed)
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(x), generator=gen)
        total = 0.0
        for start in range(0, len(x), batch_size):
            idx = order[start:start + batch_size]
            err = (model(x[idx]) - y[idx]).norm(dim=-1)  # per-joint error, metres
            loss = err[seen[idx]].mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        sched.step()
        if log is not None and (epoch + 1) % 10 == 0:
            log(f"  lifter epoch {epoch + 1}/{epochs}: mean joint error "
                f"{100 * total / len(x):.1f} cm")
    return model.eval()
