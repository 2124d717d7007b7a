"""Validation inside the Ray Train loops (training/loops.py) on a model in bf16, as DeepSpeed
holds it on a GPU: a CPU check of the GPU path's dtypes (CI has no GPU)."""

from __future__ import annotations

import math

import pytest
import torch

from p2l3d_core.config import DatasetConfig
from p2l3d_core.dataset.build import build_table
from p2l3d_core.models.config import preset
from p2l3d_core.models.pose_models import Student, Teacher
from p2l3d_core.poses.generator import generate_records
from p2l3d_core.training import loops
from p2l3d_core.training.config import TrainConfig

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def val_shard(ray_local):
    """A real Ray dataset of 12 rendered poses, read as a worker reads its validation shard."""
    table = build_table(generate_records(5, 0, 12),
                        DatasetConfig(num_poses=12, image_size=32)).table
    return ray_local.data.from_arrow(table)


def _finite_metrics(metrics: dict) -> None:
    assert metrics["val_size"] == 12.0
    assert 0.0 <= metrics["val_vqa"] <= 1.0
    assert all(isinstance(v, float) and math.isfinite(v) for v in metrics.values()), metrics


def test_a_bf16_teacher_is_validated(val_shard):
    torch.manual_seed(0)
    cfg = preset("tiny", 32)
    teacher = Teacher(cfg).to(torch.bfloat16)
    _finite_metrics(loops.validate_teacher(teacher, val_shard,
                                           TrainConfig(model=cfg, batch_size=8)))


def test_a_bf16_student_is_validated_beside_its_float32_teacher(val_shard):
    torch.manual_seed(0)
    cfg = preset("tiny", 32)
    teacher, student = Teacher(cfg).eval(), Student(cfg)
    student.adopt_language(teacher)
    student.to(torch.bfloat16)
    metrics = loops.validate_student(student, teacher, val_shard,
                                     TrainConfig(model=cfg, batch_size=8))
    _finite_metrics(metrics)
    assert -1.0 <= metrics["val_cosine_to_teacher"] <= 1.0
