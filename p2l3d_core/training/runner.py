"""Run a training stage on Ray Train: ``TorchTrainer`` around a loop of ``loops.py``.

The caller has started or joined Ray. Runs live under ``storage_path/name``; running again with
the same name resumes from the last reported checkpoint, and ``FailureConfig`` restarts the
workers after a failure (from that checkpoint too).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pyarrow.fs as pafs

from p2l3d_core.dataset.schema import Column
from p2l3d_core.models.config import PoseModelConfig
from p2l3d_core.training.config import TrainConfig


def fit(loop: Callable[[dict], None], cfg: TrainConfig, datasets: dict, *, name: str,
        storage_path: str, num_workers: int = 2, cpus_per_worker: float = 1.0,
        max_failures: int = 2, keep_best: tuple[str, int] | None = None,
        placement: str = "pack"):
    """Train and return Ray Train's ``Result`` (``.metrics`` of the last epoch, ``.checkpoint``).
    ``keep_best=(metric, n)`` keeps the ``n`` checkpoints with the highest ``metric`` plus the
    latest (for resuming); without it every epoch's checkpoint stays on disk (a DeepSpeed
    checkpoint of the quickstart models is ~200 MB). ``placement``: "pack" or "spread" (the
    workers across the cluster's nodes)."""
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    from p2l3d_core import storage

    storage_path = storage.absolute(storage_path)
    resources = {"CPU": cpus_per_worker}
    trainer = TorchTrainer(
        loop,
        train_loop_config=cfg.to_dict(),
        scaling_config=ScalingConfig(num_workers=num_workers, use_gpu=cfg.use_gpu,
                                     resources_per_worker=None if cfg.use_gpu else resources,
                                     placement_strategy=placement.upper()),
        run_config=RunConfig(name=name, storage_path=storage_path,
                             # The driver's S3 settings (endpoint, credentials) reach the workers
                             # that write checkpoints and read the teacher, as in rendering.
                             worker_runtime_env=storage.worker_runtime_env() or None,
                             failure_config=FailureConfig(max_failures=max_failures),
                             checkpoint_config=CheckpointConfig(
                                 num_to_keep=keep_best[1], checkpoint_score_attribute=keep_best[0],
                                 checkpoint_score_order="max") if keep_best else None),
        datasets=datasets,
    )
    return trainer.fit()


SELECT_METRIC = "val_vqa"


def best_epoch(result, metric: str | None = SELECT_METRIC):
    """``(checkpoint, metrics)`` of the epoch to export: the highest ``metric`` among the run's
    kept checkpoints and its latest (the earliest of equals), or the latest when ``metric`` is
    None or the run did not report it (no validation split). Picking the best validation epoch
    is what lets a model that sees few rows per epoch (the labelled-only baselines) train long
    without being judged on an over-fitted last epoch."""
    if result.checkpoint is None:
        raise RuntimeError("the run reported no checkpoint: nothing to export")
    latest = (result.checkpoint, result.metrics)
    if metric is None or metric not in result.metrics:
        return latest
    kept = [cm for cm in result.best_checkpoints if metric in cm[1]] + [latest]
    return max(kept, key=lambda cm: (cm[1][metric], -cm[1]["epoch"]))


def export_model(result, destination: str, checkpoint=None) -> str:
    """Copy the exported model of ``checkpoint`` (default: the run's last) to ``destination``
    (a local folder or ``s3://`` prefix, replaced if present)."""
    from p2l3d_core import storage

    checkpoint = checkpoint or result.checkpoint
    if checkpoint is None:
        raise RuntimeError("the run reported no checkpoint: nothing to export")
    # Only model/ is copied, straight from the run's storage: the DeepSpeed state beside it
    # (hundreds of MB at paper scale) stays where it is.
    fs, path = storage.resolve(str(destination))
    if fs.get_file_info(path).type == pafs.FileType.Directory:
        fs.delete_dir(path)
    pafs.copy_files(f"{checkpoint.path}/model", path, source_filesystem=checkpoint.filesystem,
                    destination_filesystem=fs)
    return str(destination)


def labelled_rows(dataset, fraction: float):
    """The rows of a Ray dataset that keep their language (``batches.labelled_mask``)."""
    import pyarrow as pa

    from p2l3d_core.dataset.build import labelled_mask

    def keep(batch: pa.Table) -> pa.Table:
        ids = batch.column(Column.POSE_ID).to_pylist()
        return batch.filter(pa.array(labelled_mask(ids, fraction)))

    return dataset.map_batches(keep, batch_format="pyarrow").materialize()


def run_stage(stage: str, cfg: TrainConfig, datasets: dict, output: str, *, num_workers: int,
              name: str | None = None, cpus_per_worker: float = 1.0,
              select_metric: str | None = SELECT_METRIC, placement: str = "pack",
              log: Callable[[str], None] = print) -> dict:
    """Train ``stage`` ("teacher" or "student") into ``output``: checkpoints under
    ``output/ray/<name>``, the exported model in ``output/<name>`` (``name`` defaults to the
    stage; a ``/`` in it makes subfolders): the epoch with the best ``select_metric`` on the
    validation split (``best_epoch``). Returns the model path, the exported epoch and the
    per-epoch metrics; raises Ray Train's ``TrainingFailedError`` if training fails."""
    name = name or stage
    from p2l3d_core import storage
    from p2l3d_core.training.loops import epoch_summary, read_history, train_student, train_teacher

    loops = {"teacher": train_teacher, "student": train_student}
    if stage not in loops:
        raise ValueError(f"unknown stage {stage!r}: use 'teacher' or 'student'")
    if stage == "teacher" and cfg.model.geometry and cfg.geometry_init is None:
        # Every training pose, before the labelled rows are picked out: the fit needs 3D only.
        from p2l3d_core.training.geometry_fit import prefit

        cfg = dataclasses.replace(cfg, geometry_init=prefit(
            datasets["train"], storage.join(output, "ray", f"{name.replace('/', '-')}-geometry"
                                            ".safetensors"), cfg.seed, log=log))
    if (stage == "teacher" or not cfg.teacher_path) and cfg.labelled_fraction < 1.0:
        # Without a teacher only text teaches: stream the labelled rows alone, full batches.
        datasets = {**datasets, "train": labelled_rows(datasets["train"], cfg.labelled_fraction)}
    if cfg.lr_schedule != "constant":
        cfg = dataclasses.replace(cfg, total_steps=run_steps(datasets["train"].count(), cfg,
                                                             num_workers))
    if cfg.text_features is None:
        cfg = dataclasses.replace(cfg, text_features=storage.join(output, "text_features"))
    keep_best = (select_metric, 1) if select_metric and "val" in datasets else None
    result = fit(loops[stage], cfg, datasets, name=name.replace("/", "-"),
                 storage_path=storage.join(output, "ray"), num_workers=num_workers,
                 cpus_per_worker=cpus_per_worker, keep_best=keep_best, placement=placement)
    history = read_history(result.checkpoint)
    for m in history:
        log(f"  {name} epoch {m['epoch']}: {epoch_summary(m)}")
    checkpoint, chosen = best_epoch(result, select_metric)
    path = export_model(result, storage.join(output, *name.split("/")), checkpoint)
    why = (f"best {select_metric} {chosen[select_metric]:.3f}"
           if select_metric in chosen else "the last")
    nodes = history[-1].get("worker_nodes", []) if history else []
    log(f"  {name}: epoch {chosen['epoch']} ({why}) saved to {path}; the last epoch's "
        f"{len(nodes)} workers ran on {len(set(nodes))} node(s)")
    return {"path": path, "epoch": chosen["epoch"], "select_metric": select_metric,
            "worker_nodes": nodes, "history": history}


def run_steps(rows: int, cfg: TrainConfig, num_workers: int) -> int:
    """Optimizer steps one worker takes over the run: its share of ``rows`` in full batches
    (``iter_batches(drop_last=True)``), every epoch, ``grad_accum`` batches a step."""
    per_epoch = rows // num_workers // cfg.batch_size // cfg.grad_accum
    return max(1, per_epoch * cfg.epochs)


def with_corpus_vocab(model: PoseModelConfig, dataset_uri: str) -> PoseModelConfig:
    """``model`` with its decoder restricted to the token ids of the dataset's training text
    (captions, questions, answers); a pretrained decoder keeps its own vocabulary."""
    from transformers import AutoTokenizer

    from p2l3d_core.dataset.shards import load_table
    from p2l3d_core.models.decoder import corpus_vocab
    from p2l3d_core.models.encoders import resolve_pretrained

    if model.decoder.pretrained:
        return model
    table = load_table(dataset_uri, split="train",
                       columns=[Column.SPLIT, Column.CAPTIONS, Column.QUESTIONS, Column.ANSWERS])
    texts = [t for column in (Column.CAPTIONS, Column.QUESTIONS, Column.ANSWERS)
             for row in table.column(column).to_pylist() for t in row]
    tokenizer = AutoTokenizer.from_pretrained(resolve_pretrained(model.text.pretrained))
    return dataclasses.replace(model, decoder=dataclasses.replace(
        model.decoder, vocab=corpus_vocab(tokenizer, texts)))
