"""FailureConfig: a worker that dies mid-run is restarted and resumes from the last checkpoint."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
import ray.data

from p2l3d_core.config import DatasetConfig
from p2l3d_core.dataset.build import build_table
from p2l3d_core.models.config import preset
from p2l3d_core.poses.generator import generate_records
from p2l3d_core.training.config import TrainConfig
from p2l3d_core.training.loops import train_teacher
from p2l3d_core.training.runner import fit

pytestmark = pytest.mark.slow
COLS = ["image_2d", "image_3d", "captions", "questions", "answers", "question_families"]


@dataclass(frozen=True)
class CrashingConfig(TrainConfig):
    crash_marker: str = ""


def teacher_that_crashes_once(config: dict) -> None:
    """The real teacher loop, but the first attempt stops after one epoch (its checkpoint
    reported) and rank 0 raises, as a lost worker would. The restart finds the marker."""
    import ray.train

    config = dict(config)
    marker = Path(config.pop("crash_marker"))
    if not marker.exists():
        train_teacher({**config, "epochs": 1})
        if ray.train.get_context().get_world_rank() == 0:
            marker.write_text("crashed after epoch 0")
            raise RuntimeError("injected worker failure")
        return
    train_teacher(config)


def test_failed_worker_restarts_from_the_last_checkpoint(ray_local, tmp_path):
    table = build_table(generate_records(4, 0, 96),
                        DatasetConfig(num_poses=96, image_size=32)).table
    data = {"train": ray.data.from_arrow(table.slice(0, 64).select(COLS)),
            "val": ray.data.from_arrow(table.slice(64, 32).select(COLS))}
    marker = tmp_path / "crashed"
    cfg = CrashingConfig(model=preset("tiny", 32), epochs=3, batch_size=16, lr=3e-3,
                         crash_marker=str(marker))
    result = fit(teacher_that_crashes_once, cfg, data, name="flaky", storage_path=str(tmp_path),
                 max_failures=1)
    assert marker.exists(), "the injected failure never happened"
    assert result.error is None and result.metrics["epoch"] == 2
    epochs = [m["epoch"] for _, m in result.best_checkpoints]
    assert epochs.count(0) == 1 and epochs[-1] == 2, f"epoch 0 trained again: {epochs}"

    marker.unlink()  # without restarts allowed the same failure ends the run
    with pytest.raises(Exception, match="injected worker failure"):
        fit(teacher_that_crashes_once, cfg, data, name="flaky-no-retry",
            storage_path=str(tmp_path), max_failures=0)
