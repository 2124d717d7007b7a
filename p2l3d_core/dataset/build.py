"""Poses -> rows of the rendered dataset: describe in 3D, project, render, assign a split.

Pure functions on in-memory data: the Ray Data job calls :func:`build_table` once per shard.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from p2l3d_core.config import DatasetConfig, SplitFractions
from p2l3d_core.dataset.schema import SCHEMA, Column
from p2l3d_core.language import describe_batch
from p2l3d_core.poses.record import PoseRecord
from p2l3d_core.render import RenderConfig, encode_png, render_2d, render_3d


def stable_unit(text: str) -> float:
    """A number in [0, 1) fixed by ``text`` alone (same on every machine and Python run)."""
    digest = hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def labelled_mask(pose_ids, fraction: float) -> np.ndarray:
    """Which rows keep their language (the rest form the unlabelled pool), by a stable hash of
    the pose id so every stage and every worker agree."""
    if fraction >= 1.0:
        return np.ones(len(pose_ids), dtype=bool)
    return np.array([stable_unit(f"labelled:{p}") < fraction for p in pose_ids], dtype=bool)


def split_of(group: str, fractions: SplitFractions) -> str:
    """Train/val/test by hashing a pose's split group (its id, or its subject / clip /
    sequence for real data): stable when the dataset grows or is re-sharded."""
    u = stable_unit(group)
    if u < fractions.train:
        return "train"
    return "val" if u < fractions.train + fractions.val else "test"


@dataclass
class BuildResult:
    """A shard's table plus the poses that could not be rendered (id, reason)."""

    table: pa.Table
    failures: list[tuple[str, str]]


def _check(record: PoseRecord) -> None:
    joints = np.asarray(record.joints_3d)
    if joints.shape != (17, 3):
        raise ValueError(f"joints_3d has shape {joints.shape}, expected (17, 3)")
    if np.isnan(joints[0]).any():
        raise ValueError("pelvis is missing: the pose cannot be centred")
    if not np.isfinite(joints[~np.isnan(joints).any(axis=1)]).all():
        raise ValueError("joints_3d holds infinite values")
    if not np.isfinite(record.camera.position).all():
        raise ValueError("camera has non-finite extrinsics")


def build_table(records: list[PoseRecord], config: DatasetConfig) -> BuildResult:
    """Describe, render and tabulate ``records``; bad poses are reported, not fatal."""
    good, failures = [], []
    for r in records:
        try:
            _check(r)
            good.append(r)
        except ValueError as err:
            failures.append((r.pose_id, str(err)))
    if not good:
        return BuildResult(SCHEMA.empty_table(), failures)

    joints = np.stack([np.asarray(r.joints_3d, dtype=np.float64) for r in good])
    cam_pos = np.stack([r.camera.position for r in good])
    seeds = [int(stable_unit(f"{config.seed}:{r.pose_id}") * 2**31) for r in good]
    texts = describe_batch(joints, [r.action for r in good], cam_pos, seeds,
                           num_captions=config.num_captions, max_questions=config.max_questions)
    render_cfg = RenderConfig(image_size=config.image_size)
    cols: dict[str, list] = {name: [] for name in SCHEMA.names}
    for r, text in zip(good, texts):
        uv, visible = r.project()
        kp2d = np.where(visible[:, None], uv, np.nan)
        cam = r.camera
        cols[Column.POSE_ID].append(r.pose_id)
        cols[Column.SPLIT].append(split_of(r.split_group, config.splits))
        cols[Column.ACTION].append(r.action)
        cols[Column.SOURCE].append(r.source)
        cols[Column.KEYPOINTS_3D].append(np.asarray(r.joints_3d, dtype=np.float32).tolist())
        cols[Column.KEYPOINTS_2D].append(kp2d.astype(np.float32).tolist())
        cols[Column.VISIBLE_2D].append(visible.tolist())
        cols[Column.CAMERA].append(cam.to_row())
        cols[Column.IMAGE_2D].append(encode_png(render_2d(kp2d, render_cfg)))
        cols[Column.IMAGE_3D].append(encode_png(render_3d(cam.to_camera(r.joints_3d), render_cfg)))
        cols[Column.CAPTIONS].append(text.captions)
        cols[Column.QUESTIONS].append([qa.question for qa in text.qas])
        cols[Column.ANSWERS].append([qa.answer for qa in text.qas])
        cols[Column.ANSWER_SENTENCES].append([qa.sentence for qa in text.qas])
        cols[Column.QUESTION_FAMILIES].append([qa.family for qa in text.qas])
        cols[Column.NEEDS_DEPTH].append([qa.needs_depth for qa in text.qas])
    return BuildResult(pa.Table.from_pydict(cols, schema=SCHEMA), failures)
