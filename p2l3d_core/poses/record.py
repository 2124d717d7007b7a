"""PoseRecord: one person's pose as every source delivers it to the rest of the platform."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from p2l3d_core.poses.camera import Camera


@dataclass
class PoseRecord:
    """A 3D pose in the H36M-17 layout with the camera that films it.

    ``joints_3d``: ``(17, 3)`` world metres, ``+z`` up, ground at ``z = 0`` (readers that do not
    know the floor put the lowest joint on it); NaN rows are missing joints.
    ``joints_2d``: ``(17, 2)`` pixels when the source annotates them (else projected from 3D).
    ``action``: a label from the source (generator family, H36M action, mocap clip label).
    ``meta["split_group"]``: poses that must share a split (one subject, one clip, one
    sequence), so near-duplicate frames or camera views never straddle train and test; the
    pose id when absent (independent synthetic poses).
    """

    pose_id: str
    joints_3d: np.ndarray
    camera: Camera
    action: str
    source: str
    joints_2d: np.ndarray | None = None
    meta: dict = field(default_factory=dict)

    @property
    def split_group(self) -> str:
        return str(self.meta.get("split_group", self.pose_id))

    def project(self) -> tuple[np.ndarray, np.ndarray]:
        """2D joints in pixels and their visibility, from the annotation if present."""
        uv, visible = self.camera.project(self.joints_3d)
        if self.joints_2d is not None:
            uv = np.asarray(self.joints_2d, dtype=np.float64)
        return uv, visible & ~np.isnan(uv).any(axis=-1)
