"""Train-loop functions for Ray Train's ``TorchTrainer`` (one call per worker).

Each worker builds the model, hands it to ``deepspeed.initialize`` (ZeRO stage from the config;
the process group is the one Ray Train set up), streams its shard of the rendered dataset,
and at the end of every epoch reports metrics and a checkpoint: DeepSpeed's own state (for
resuming, per rank) plus, from rank 0, the model exported with ``save_pretrained`` under
``model/``. A restarted run picks up the last checkpoint through ``ray.train.get_checkpoint``.
"""

from __future__ import annotations

import json
import os
import tempfile
import time

import numpy as np
import torch

from p2l3d_core import storage
from p2l3d_core.dataset.schema import Column
from p2l3d_core.language.questions import DEPTH_FAMILIES
from p2l3d_core.models import text_features
from p2l3d_core.models.answers import ANSWERS
from p2l3d_core.models.geometry import with_geometry
from p2l3d_core.models.inputs import pose_inputs, pose_inputs_3d
from p2l3d_core.models.io import load_pretrained, save_pretrained
from p2l3d_core.models.pose_models import Student, Teacher
from p2l3d_core.models.retrieval import recall_at_k
from p2l3d_core.training.batches import asked_questions, first_captions
from p2l3d_core.training.build_locks import clear_stale_build_locks
from p2l3d_core.training.config import TrainConfig, deepspeed_config
from p2l3d_core.training.safe_checkpoint import load_checkpoint
from p2l3d_core.training.steps import TeacherTargets, cast_inputs, student_step, teacher_step

STATE_FILE = "train_state.json"
CKPT_TAG = "state"


def _restore(engine) -> tuple[int, list[dict]]:
    """Load the last reported checkpoint if this run is a restart; returns the next epoch and
    the metrics of the epochs before it."""
    import ray.train

    checkpoint = ray.train.get_checkpoint()
    if checkpoint is None:
        return 0, []
    with checkpoint.as_directory() as folder:
        # Tensors and plain data only: a pickle planted in the run's folder must not run.
        load_checkpoint(engine, os.path.join(folder, "deepspeed"), CKPT_TAG)
        with open(os.path.join(folder, STATE_FILE)) as f:
            state = json.load(f)
    return int(state["epoch"]) + 1, _history(state)


def _history(state: dict) -> list[dict]:
    """The per-epoch metrics in a state file (older files hold the last epoch's only)."""
    return state.get("history", [state["metrics"]])


def read_history(checkpoint) -> list[dict]:
    """Per-epoch metrics of a run up to ``checkpoint``: every checkpoint carries the whole
    history, so the run's folder may keep only a few checkpoints. Reads the state file alone,
    not the checkpoint's DeepSpeed state (hundreds of MB when the run lives on S3)."""
    with checkpoint.filesystem.open_input_stream(f"{checkpoint.path}/{STATE_FILE}") as f:
        return _history(json.loads(f.read()))


@torch.no_grad()
def validate_teacher(model: Teacher, shard, cfg: TrainConfig) -> dict[str, float]:
    """Retrieval recall of fused and 2D-only embeddings on this worker's validation shard. The
    model may be bf16 (DeepSpeed on a GPU): its inputs are cast to it, the metrics computed in
    float32."""
    model.eval()
    device, dtype = model.text.proj.weight.device, model.text.proj.weight.dtype
    fused, z2d, texts, answers = [], [], [], _AnswerTally()
    for batch in shard.iter_batches(batch_size=cfg.batch_size, batch_format="numpy"):
        x2 = cast_inputs(pose_inputs(batch, cfg.model.pose_input, device), dtype)
        x3 = cast_inputs(pose_inputs_3d(batch, cfg.model.pose_input_3d, device), dtype)
        z = model.encode_all(x2, x3)
        fused.append(z["fused"].float())
        z2d.append(z["z2d"].float())
        texts.append(model.text(first_captions(batch[Column.CAPTIONS])).float())
        answers.add(model, with_geometry(z["fused"], model.measure_geometry(x2, x3)), batch)
    if not fused:
        return {}
    text = torch.cat(texts)
    metrics = {f"val_{k}": v for k, v in recall_at_k(torch.cat(fused), text).items()}
    metrics.update({f"val_2d_{k}": v for k, v in recall_at_k(torch.cat(z2d), text).items()})
    metrics["val_size"] = float(text.shape[0])
    return {**metrics, **answers.metrics()}


class _AnswerTally:
    """Validation answer accuracy of the answer head, overall and on depth questions."""

    def __init__(self):
        self.right = self.total = self.depth_right = self.depth_total = 0

    def add(self, model, pose: torch.Tensor, batch: dict) -> None:
        asked = asked_questions(batch, range(len(batch[Column.CAPTIONS])))
        if not len(asked):
            return
        families = [f for r in range(len(batch[Column.CAPTIONS]))
                    for f in batch[Column.QUESTION_FAMILIES][r]]
        got = model.answer(pose[asked.rows.to(pose.device)], asked.questions, families)
        right = np.array([a == ANSWERS[i] for a, i in zip(got, asked.answers.tolist())])
        depth = np.array([f in DEPTH_FAMILIES for f in families])
        self.right, self.total = self.right + int(right.sum()), self.total + len(right)
        self.depth_right += int(right[depth].sum())
        self.depth_total += int(depth.sum())

    def metrics(self) -> dict[str, float]:
        out = {}
        if self.total:
            out["val_vqa"] = self.right / self.total
        if self.depth_total:
            out["val_vqa_depth"] = self.depth_right / self.depth_total
        return out


class _Run:
    """What both stages set up on a worker: the DeepSpeed engine around ``model``, the epoch to
    start from (after a restart), the dataset shards and a per-rank random generator."""

    def __init__(self, model: torch.nn.Module, cfg: TrainConfig, text_encoders=()):
        import deepspeed
        import ray.train

        self.cfg = cfg
        # Sentence features the run's earlier trainings computed, and what this one adds.
        # A bf16 run's features (bf16-rounded) go to a store of their own: a float32 run must
        # not read them as its own numbers.
        folder = cfg.text_features and (storage.join(cfg.text_features, "bf16") if cfg.uses_bf16
                                        else cfg.text_features)
        self.texts = text_features.stores_of(list(text_encoders), folder) if folder else []
        for shared in self.texts:
            shared.load()
        self.context = ray.train.get_context()
        clear_stale_build_locks()  # else deepspeed.initialize may wait forever on a dead build
        params = [p for p in model.parameters() if p.requires_grad]
        self.engine, _, _, _ = deepspeed.initialize(model=model, model_parameters=params,
                                                    config=deepspeed_config(cfg))
        self.device = self.engine.device
        self.dtype = torch.bfloat16 if cfg.uses_bf16 else torch.float32
        self.start, self.history = _restore(self.engine)
        self.train_shard = ray.train.get_dataset_shard("train")
        self.val_shard = ray.train.get_dataset_shard("val")
        self.rng = np.random.default_rng([cfg.seed, self.context.get_world_rank()])
        self.nodes = _worker_nodes()

    def fit(self, stage: str, step, evaluate, extra_metrics=dict) -> None:
        """Epochs from ``start``: ``step(batch)`` returns the loss terms; scalar terms are
        averaged into ``train_*`` metrics; ``evaluate()`` adds validation metrics; every epoch
        ends with a report and a checkpoint."""
        engine = self.engine
        for epoch in range(self.start, self.cfg.epochs):
            engine.train()
            t0, totals, steps = time.perf_counter(), {}, 0
            for batch in self.train_shard.iter_batches(batch_size=self.cfg.batch_size,
                                                       batch_format="numpy", drop_last=True):
                out = step(batch)
                engine.backward(out["loss"])
                engine.step()
                steps += 1
                for k, v in out.items():
                    if v.numel() == 1:
                        totals[k] = totals.get(k, 0.0) + float(v.detach())
                _progress(self.context, stage, epoch, steps, t0, out)
            metrics = {f"train_{k}": v / max(steps, 1) for k, v in totals.items()}
            metrics.update(epoch=epoch, steps=steps, seconds=time.perf_counter() - t0,
                           lr=float(engine.get_lr()[0]), worker_nodes=self.nodes,
                           **extra_metrics())
            t1 = time.perf_counter()
            if self.val_shard is not None:
                metrics.update(evaluate())
            metrics["val_seconds"] = time.perf_counter() - t1
            self.history.append(metrics)
            t2 = time.perf_counter()
            _report(engine, epoch, metrics, self.history, self.cfg)
            if epoch in (self.start, self.cfg.epochs - 1):  # the bulk, then the rest
                self.share_text_features()
            if self.context.get_world_rank() == 0:
                print(f"[{stage}] epoch {epoch}: {epoch_summary(metrics)}; train "
                      f"{metrics['seconds']:.1f} s, validation {metrics['val_seconds']:.1f} s, "
                      f"checkpoint {time.perf_counter() - t2:.1f} s", flush=True)


    def share_text_features(self) -> None:
        """Store the sentences this worker's text encoders computed beyond what they read."""
        for shared in self.texts:
            shared.save_new()


def _worker_nodes() -> list[str]:
    """The Ray node of every rank, in rank order: each epoch's metrics say where it ran (after a
    restart the workers may sit elsewhere)."""
    import ray
    import torch.distributed as dist

    node = ray.get_runtime_context().get_node_id()
    if not (dist.is_available() and dist.is_initialized()):
        return [node]
    nodes: list = [None] * dist.get_world_size()
    dist.all_gather_object(nodes, node)
    return nodes


def train_teacher(config: dict) -> None:
    """Ray Train loop of the teacher (2D + 3D images, contrastive + language losses)."""
    cfg = TrainConfig.from_dict(config)
    torch.manual_seed(cfg.seed)
    teacher = Teacher(cfg.model)
    if cfg.geometry_init:  # fitted on every training pose (geometry_fit.py): kept as it is
        from p2l3d_core.training.geometry_fit import load_prefit

        load_prefit(teacher.geometry, cfg.geometry_init)
        teacher.geometry.requires_grad_(False)
    run = _Run(teacher, cfg, [teacher.text])

    def step(batch: dict) -> dict:
        return run.engine(**teacher_step(batch, cfg, run.rng, run.device, run.dtype))

    run.fit("teacher", step, lambda: validate_teacher(run.engine.module, run.val_shard, cfg),
            lambda: {"logit_scale": float(run.engine.module.logit_scale().detach())})


def epoch_summary(metrics: dict) -> str:
    """One epoch's loss and validation retrieval and answer accuracy, as the logs show them."""
    nan = float("nan")
    return (f"loss {metrics.get('train_loss', nan):.3f}, "
            f"val pose->text R@5 {metrics.get('val_pose_to_text_R@5', nan):.3f}, "
            f"VQA {metrics.get('val_vqa', nan):.3f} "
            f"(depth {metrics.get('val_vqa_depth', nan):.3f})")


PROGRESS_EVERY_S = 30.0


def _progress(context, stage: str, epoch: int, steps: int, t0: float, out: dict) -> None:
    """A line from rank 0 about every ``PROGRESS_EVERY_S`` seconds, so long epochs show life."""
    now = time.perf_counter()
    last = getattr(_progress, "last", 0.0)
    if context.get_world_rank() == 0 and now - max(last, t0) >= PROGRESS_EVERY_S:
        _progress.last = now
        print(f"[{stage}] epoch {epoch} step {steps}: loss {float(out['loss'].detach()):.3f} "
              f"({steps / (now - t0):.2f} steps/s)", flush=True)


def _report(engine, epoch: int, metrics: dict, history: list[dict], cfg: TrainConfig) -> None:
    """Report an epoch: DeepSpeed state of every rank, the metrics of every epoch so far and,
    from rank 0, the exported model."""
    import ray.train

    with tempfile.TemporaryDirectory() as folder:
        engine.save_checkpoint(os.path.join(folder, "deepspeed"), tag=CKPT_TAG)
        # Rank 0 only: its metrics are the ones Ray records, and every rank's files land in
        # one checkpoint folder, where another rank's validation shard would overwrite them.
        if ray.train.get_context().get_world_rank() == 0:
            with open(os.path.join(folder, STATE_FILE), "w") as f:
                json.dump({"epoch": epoch, "metrics": metrics, "history": history}, f)
            save_pretrained(engine.module, os.path.join(folder, "model"),
                            extra={"train": cfg.to_dict(), "metrics": metrics})
        ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(folder))


def train_student(config: dict) -> None:
    """Ray Train loop of the 2D-only student. With ``teacher_path``: distilled from a frozen
    teacher (eval mode, beside it on each worker, as open_clip's distillation does); every
    training row gets the teacher's embedding as a target, labelled rows also give text anchors,
    InfoNCE and decoder targets. Without: the same architecture on the labelled rows alone, its
    text from the dataset (``language="3d"``) or from the 2D keypoints (``"2d"``)."""
    cfg = TrainConfig.from_dict(config)
    if cfg.language not in ("3d", "2d"):
        raise ValueError(f"language must be '3d' or '2d', got {cfg.language!r}")
    if cfg.teacher_path and cfg.language != "3d":
        raise ValueError("a distilled student learns the teacher's 3D-grounded language: "
                         "language='2d' is for runs without a teacher")
    torch.manual_seed(cfg.seed)
    student = Student(cfg.model)
    teacher = None
    if cfg.teacher_path:
        teacher = load_pretrained(cfg.teacher_path).requires_grad_(False)
        student.adopt_language(teacher)
    run = _Run(student, cfg, [student.text] + ([teacher.text] if teacher is not None else []))
    targets = None
    if teacher is not None:
        targets = TeacherTargets(teacher.to(run.device))

    def step(batch: dict) -> dict:
        return run.engine(**student_step(batch, cfg, run.rng, targets, run.device, run.dtype))

    run.fit("student", step, lambda: validate_student(run.engine.module, teacher, run.val_shard,
                                                        cfg))


@torch.no_grad()
def validate_student(student: Student, teacher: Teacher | None, shard, cfg: TrainConfig
                      ) -> dict[str, float]:
    """Retrieval of the student's 2D embeddings against text embeddings (the teacher's when
    there is one, else its own) and, when distilled, how close it sits to the teacher's fused
    embedding (cosine). On a GPU the student is bf16 (DeepSpeed) and its teacher float32: each
    reads inputs in its own dtype, the metrics are computed in float32."""
    student.eval()
    zs, zt, texts, answers = [], [], [], _AnswerTally()
    device, dtype = student.text.proj.weight.device, student.text.proj.weight.dtype
    text_encoder = teacher.text if teacher is not None else student.text
    for batch in shard.iter_batches(batch_size=cfg.batch_size, batch_format="numpy"):
        state = student.pose_state(cast_inputs(pose_inputs(batch, cfg.model.pose_input, device),
                                               dtype))
        answers.add(student, state, batch)
        z = student.embedding_of(state)
        zs.append(z.float())
        if teacher is not None:
            zt.append(teacher.encode_all(pose_inputs(batch, teacher.cfg.pose_input, device),
                                         pose_inputs_3d(batch, teacher.cfg.pose_input_3d,
                                                        device))["fused"])
        texts.append(text_encoder(first_captions(batch[Column.CAPTIONS])).float())
    if not zs:
        return {}
    z = torch.cat(zs)
    metrics = {f"val_{k}": v for k, v in recall_at_k(z, torch.cat(texts)).items()}
    if zt:
        metrics["val_cosine_to_teacher"] = float((z * torch.cat(zt)).sum(-1).mean())
    metrics["val_size"] = float(z.shape[0])
    return {**metrics, **answers.metrics()}
