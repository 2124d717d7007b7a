"""2D keypoint annotation readers: COCO ``person_keypoints`` JSON and MPII JSON (mmpose form).

These sources have no 3D and no camera, so they give :class:`Pose2D`, not ``PoseRecord``:
they feed the 2D side (student evaluation, estimator checks). Joints are converted to H36M-17
with :mod:`p2l3d_core.skeleton` (derived joints such as the pelvis exist only where both of
their sources do).

Visibility: COCO ``v = 0`` (not labelled) -> NaN; ``v = 1`` (labelled, occluded) keeps its
position with ``visible = False``; ``v = 2`` -> ``visible = True``. MPII (mmpose's JSON)
``joints_vis = 0`` means not annotated -> NaN; ``1`` -> position kept and ``visible = True``
(that JSON does not carry MPII's separate occlusion flag). A derived joint is visible only if
all joints it is made from are.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from p2l3d_core.skeleton import from_coco17, from_mpii16


@dataclass
class Pose2D:
    """One annotated person in one image, H36M-17 pixels (NaN = missing)."""

    image: str
    joints_2d: np.ndarray  # (17, 2) pixels
    visible: np.ndarray  # (17,) bool
    source: str
    person_id: str
    meta: dict = field(default_factory=dict)  # image size, bbox, ... when the source has them


def _convert(points: np.ndarray, labelled: np.ndarray, visible: np.ndarray, converter
             ) -> tuple[np.ndarray, np.ndarray]:
    """Convert positions (NaN where unlabelled) and a visibility flag through ``converter``."""
    points = np.where(labelled[:, None], points, np.nan)
    flag = np.where(visible, 1.0, np.nan)[:, None]  # NaN propagates through derived joints
    return converter(points), ~np.isnan(converter(flag)[:, 0])


def read_coco_keypoints(path: str | Path, min_keypoints: int = 1, include_crowd: bool = False
                        ) -> list[Pose2D]:
    """COCO ``person_keypoints`` JSON -> one :class:`Pose2D` per person annotation.

    Annotations with fewer than ``min_keypoints`` labelled keypoints (COCO keeps boxes of
    people with none) and crowd regions are skipped unless asked for.
    """
    path = Path(path)
    data = json.loads(path.read_text())
    images = {img["id"]: img for img in data.get("images", [])}
    poses = []
    for ann in data["annotations"]:
        if "keypoints" not in ann or (ann.get("iscrowd", 0) and not include_crowd):
            continue
        kp = np.asarray(ann["keypoints"], dtype=np.float64).reshape(17, 3)
        labelled = kp[:, 2] > 0
        if labelled.sum() < min_keypoints:
            continue
        joints, visible = _convert(kp[:, :2], labelled, kp[:, 2] >= 2, from_coco17)
        img = images.get(ann["image_id"], {})
        poses.append(Pose2D(
            image=img.get("file_name", str(ann["image_id"])), joints_2d=joints, visible=visible,
            source="coco", person_id=str(ann.get("id", len(poses))),
            meta={"image_id": ann["image_id"], "width": img.get("width"),
                  "height": img.get("height"), "bbox": ann.get("bbox"), "file": str(path)}))
    return poses


def read_mpii_json(path: str | Path) -> list[Pose2D]:
    """mmpose MPII JSON (a list of ``{image, joints (16, 2), joints_vis (16,), center,
    scale}``) -> one :class:`Pose2D` per entry; ``person_id`` is ``'<image>#<n>'``, n counting
    the people of that image."""
    path = Path(path)
    entries = json.loads(path.read_text())
    poses = []
    seen: dict[str, int] = {}
    for entry in entries:
        joints = np.asarray(entry["joints"], dtype=np.float64).reshape(16, 2)
        vis = np.asarray(entry["joints_vis"], dtype=np.float64).reshape(16) > 0
        h36m, visible = _convert(joints, vis, vis, from_mpii16)
        image = entry["image"]
        n = seen.get(image, 0)
        seen[image] = n + 1
        poses.append(Pose2D(
            image=image, joints_2d=h36m, visible=visible, source="mpii",
            person_id=f"{image}#{n}",
            meta={"center": entry.get("center"), "scale": entry.get("scale"), "file": str(path)}))
    return poses


__all__ = ["Pose2D", "read_coco_keypoints", "read_mpii_json"]
