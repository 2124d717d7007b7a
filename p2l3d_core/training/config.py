"""Training configuration (one dataclass per run; JSON-serialisable for Ray Train)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from p2l3d_core.models.config import PoseModelConfig

ZERO_STAGES = (0, 1, 2)
LR_SCHEDULES = ("constant", "cosine")
WARMUP_FRACTION = 0.05  # of a cosine run's steps, a linear warm-up from 0
COSINE_FLOOR = 0.01  # the cosine ends at this fraction of ``lr``


def check_lr_schedule(name: str) -> None:
    """Refuse an unknown schedule name (run configs and pipeline presets both take one)."""
    if name not in LR_SCHEDULES:
        raise ValueError(f"lr_schedule must be one of {', '.join(LR_SCHEDULES)}, got {name!r}")


def check_at_least(obj: object, names: tuple[str, ...], minimum: int) -> None:
    """Refuse any of ``obj``'s fields ``names`` below ``minimum`` (counts >= 1, loss weights
    >= 0), naming the field: run configs and pipeline presets check theirs the same way."""
    for name in names:
        if getattr(obj, name) < minimum:
            raise ValueError(f"{name} must be >= {minimum}, got {getattr(obj, name)}")


def check_fraction(name: str, value: float) -> None:
    """A share of the training split: above 0 (nothing labelled leaves nothing to learn the
    language from) and at most 1."""
    if not 0.0 < value <= 1.0:
        raise ValueError(f"{name} must be in (0, 1], got {value}")


ZERO3_UNSUPPORTED = (
    "ZeRO-3 partitions every parameter, the frozen text encoder's included: the exported "
    "model would hold empty tensors (no gather on export is written), and each worker's "
    "data-dependent calls (the text encoder on sentences it has not cached, validation shards "
    "of different lengths) would become collectives the other workers never join. Stage 2 "
    "already shards gradients and optimizer state; these models (~30M parameters, 22M of them "
    "the frozen text encoder) fit on one device.")


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation and DeepSpeed settings of one training stage."""

    model: PoseModelConfig = field(default_factory=PoseModelConfig)
    epochs: int = 3
    batch_size: int = 64  # per worker, per step
    grad_accum: int = 1
    lr: float = 3e-4
    # "constant", or "cosine": a short linear warm-up, then annealed towards 0 by the last step
    # (``total_steps``: optimizer steps per worker over the whole run, set by the runner).
    lr_schedule: str = "constant"
    total_steps: int = 0
    weight_decay: float = 0.01
    zero_stage: int = 2
    use_gpu: bool = False
    # Training precision. None: bf16 on a GPU, float32 on CPU. True: bf16 on either (the tests
    # run the GPU path's precision on CPU this way; CI has no GPU).
    bf16: bool | None = None
    partial_weight: float = 0.5
    lm_weight: float = 1.0
    # Closed-vocabulary answer head: every question of every labelled row each step, and on
    # every row (pool included) the teacher's answer distributions over the question bank.
    answer_weight: float = 1.0
    answer_kd_weight: float = 1.0
    qa_fraction: float = 0.5
    seed: int = 0
    # Language is scarce, 3D is not: only this fraction of the training split keeps its text
    # (chosen by a stable hash of the pose id); the rest is the unlabelled pool.
    labelled_fraction: float = 1.0
    # Which text supervises: "3d" (measured on the 3D joints, the dataset's columns) or "2d"
    # (measured on the 2D keypoints alone: the baseline_2d_no3d ablation).
    language: str = "3d"
    # Student stage: distilled from the teacher at ``teacher_path``; without one the student's
    # architecture trains on the labelled rows alone (the baseline_2d ablations).
    teacher_path: str | None = None
    match: str = "cosine"
    match_weight: float = 1.0
    rkd_weight: float = 1.0
    distill_temperature: float = 0.1
    contrastive_weight: float = 0.5
    # Distilled student: this many unlabelled rows of each batch also learn to write the
    # teacher's caption of the pose (its greedy decoding: sequence-level distillation, Kim &
    # Rush 2016); the decoder otherwise sees the labelled rows' captions alone. 0: none.
    pool_captions: int = 0
    # Folder the run's trainings share the frozen text encoder's sentence features in
    # (models/text_features.py; runner.run_stage sets OUTPUT/text_features); None: not shared.
    text_features: str | None = None
    # A geometry regressor fitted before the teacher on every training pose (geometry_fit.py):
    # the teacher starts from it, frozen. None: the teacher trains its own (run_stage sets it).
    geometry_init: str | None = None

    def __post_init__(self) -> None:
        if self.zero_stage not in ZERO_STAGES:
            raise ValueError(f"zero_stage {self.zero_stage} is not supported: use one of "
                             f"{ZERO_STAGES}. {ZERO3_UNSUPPORTED}")
        check_lr_schedule(self.lr_schedule)
        check_at_least(self, ("epochs", "batch_size", "grad_accum"), 1)
        check_fraction("labelled_fraction", self.labelled_fraction)
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if self.language not in ("3d", "2d"):
            raise ValueError(f"language must be '3d' or '2d', got {self.language!r}")
        if self.match not in ("cosine", "mse"):
            raise ValueError(f"match must be 'cosine' or 'mse', got {self.match!r}")
        check_at_least(self, ("partial_weight", "lm_weight", "answer_weight", "answer_kd_weight",
                              "match_weight", "rkd_weight", "contrastive_weight",
                              "pool_captions"), 0)

    @property
    def uses_bf16(self) -> bool:
        """Whether the model trains in bf16: ``bf16``, else on a GPU."""
        return self.use_gpu if self.bf16 is None else self.bf16

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        d = dict(d)
        d["model"] = PoseModelConfig.from_dict(d.get("model", {}))
        return cls(**d)


def deepspeed_config(cfg: TrainConfig) -> dict:
    """DeepSpeed config: ZeRO stage from the run, bf16 on GPU and fp32 on CPU (``uses_bf16``),
    torch's AdamW (DeepSpeed's fused CPU Adam would compile an extension at run time) and, for a
    cosine run, DeepSpeed's ``WarmupCosineLR`` (its state is in the checkpoint: a resumed run goes
    on with the same learning rate)."""
    config = {
        "train_micro_batch_size_per_gpu": cfg.batch_size,
        "gradient_accumulation_steps": cfg.grad_accum,
        "optimizer": {"type": "AdamW", "params": {"lr": cfg.lr, "weight_decay": cfg.weight_decay,
                                                  "torch_adam": True}},
        "zero_optimization": {"stage": cfg.zero_stage},
        "bf16": {"enabled": cfg.uses_bf16},
        "gradient_clipping": 1.0,
        "steps_per_print": 10**9,
        "wall_clock_breakdown": False,
    }
    if cfg.lr_schedule == "cosine":
        if cfg.total_steps < 1:
            raise ValueError("a cosine learning-rate schedule needs total_steps, the run's "
                             "optimizer steps per worker (runner.run_stage sets it)")
        config["scheduler"] = {"type": "WarmupCosineLR", "params": {
            "total_num_steps": cfg.total_steps,
            "warmup_num_steps": max(2, round(WARMUP_FRACTION * cfg.total_steps)),
            "warmup_min_ratio": 0.0, "warmup_type": "linear", "cos_min_ratio": COSINE_FLOOR}}
    return config
