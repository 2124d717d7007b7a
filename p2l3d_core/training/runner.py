"""Run a training stage on Ray Train: ``TorchTrainer`` around a loop of ``loops.py``.

The caller has started or joined Ray. Runs live under ``storage_path/name``; running again with
the same name resumes from the last reported checkpoint, and ``FailureConfig`` restarts the
workers after a failure (from that checkpoint too).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from p2l3d_core.training.config import TrainConfig


def fit(loop: Callable[[dict], None], cfg: TrainConfig, datasets: dict, *, name: str,
        storage_path: str, num_workers: int = 2, cpus_per_worker: float = 1.0,
        max_failures: int = 2):
    """Train and return Ray Train's ``Result`` (``.metrics`` of the last epoch, ``.checkpoint``)."""
    from ray.train import FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    from p2l3d_core import storage

    storage_path = storage.absolute(storage_path)
    resources = {"CPU": cpus_per_worker}
    trainer = TorchTrainer(
        loop,
        train_loop_config=cfg.to_dict(),
        scaling_config=ScalingConfig(num_workers=num_workers, use_gpu=cfg.use_gpu,
                                     resources_per_worker=None if cfg.use_gpu else resources),
        run_config=RunConfig(name=name, storage_path=storage_path,
                             failure_config=FailureConfig(max_failures=max_failures)),
        datasets=datasets,
    )
    return trainer.fit()


def export_model(result, destination: str) -> str:
    """Copy the exported model of the run's last checkpoint to ``destination`` (a local folder,
    replaced if present, or ``s3://``)."""
    from p2l3d_core import storage

    if result.checkpoint is None:
        raise RuntimeError("the run reported no checkpoint: nothing to export")
    with result.checkpoint.as_directory() as folder:
        if storage.is_s3(str(destination)):
            storage.upload_folder(str(Path(folder) / "model"), str(destination))
            return str(destination)
        destination = Path(destination)
        if destination.exists():
            shutil.rmtree(destination)
        shutil.copytree(Path(folder) / "model", destination)
    return str(destination)


def run_stage(stage: str, cfg: TrainConfig, datasets: dict, output: str, *, num_workers: int,
              cpus_per_worker: float = 1.0, log: Callable[[str], None] = print) -> dict:
    """Train ``stage`` ("teacher" or "student") into ``output``: checkpoints under
    ``output/ray/<stage>``, the exported model in ``output/<stage>``. Returns the model path and
    the per-epoch metrics; raises Ray Train's ``TrainingFailedError`` if training fails."""
    from p2l3d_core import storage
    from p2l3d_core.training.loops import train_student, train_teacher

    loops = {"teacher": train_teacher, "student": train_student}
    if stage not in loops:
        raise ValueError(f"unknown stage {stage!r}: use 'teacher' or 'student'")
    result = fit(loops[stage], cfg, datasets, name=stage, storage_path=storage.join(output, "ray"),
                 num_workers=num_workers, cpus_per_worker=cpus_per_worker)
    history = [metrics for _, metrics in result.best_checkpoints]
    for m in history:
        log(f"  {stage} epoch {m['epoch']}: loss {m['train_loss']:.3f}, val pose->text R@5 "
            f"{m.get('val_pose_to_text_R@5', float('nan')):.3f}")
    path = export_model(result, storage.join(output, stage))
    log(f"  {stage} saved to {path}")
    return {"path": path, "history": history}
