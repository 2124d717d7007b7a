"""Named scales of the full pipeline (render -> teacher -> student), litgpt-recipe style.

``quickstart`` is the scale the README's results are measured at on 2 CPU cores (15 models, hours
there, not the minutes the issue asked for; ``--seeds 1`` and fewer stages cut it); ``paper`` is
the 80K-pose scale of the paper for a GPU cluster; ``smoke`` is the seconds-long run the tests use.
Command-line flags override single fields.
"""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class PipelinePreset:
    num_poses: int
    image_size: int
    model: str  # p2l3d_core.models.config.preset name
    teacher_epochs: int
    student_epochs: int
    # The labelled-only models (baseline_2d and its ablations) see ~1/labelled_fraction fewer
    # rows an epoch than the distilled student: they train this many epochs, and every model
    # exports its best validation epoch, so the student is compared with converged baselines.
    # The teacher learns from the labelled rows alone too; presets give it as many epochs.
    baseline_epochs: int
    batch_size: int
    lr: float
    labelled_fraction: float  # of the training split; the rest is the unlabelled pool
    num_workers: int
    use_gpu: bool = False
    zero_stage: int = 2
    lr_schedule: str = "constant"  # or "cosine" (training/config.py), for every training
    pose_input: str = "image+keypoints"  # the teacher's 2D branch, and the student's by default
    pose_input_3d: str = "image+keypoints"  # the teacher's 3D branch
    # What the student and its own-architecture baselines (baseline_2d, baseline_2d_no3d) read,
    # when not ``pose_input``: "keypoints" distils the teacher into a keypoint network (then
    # baseline_2d is that network without a teacher, which is what coords_2d is).
    student_pose_input: str | None = None
    lm_weight: float = 1.0
    # Distilled student only: weights of its teacher-matching terms (embedding match, relational
    # KD over the batch's texts, the teacher's answer distributions on every row).
    match_weight: float = 1.0
    rkd_weight: float = 1.0
    answer_kd_weight: float = 1.0
    # Unlabelled rows of each batch that learn the teacher's caption of the pose: chosen on the
    # validation split (runs/fast, 2026-12-04: student BLEU-4 0.450 -> 0.473 with 16 of 64).
    pool_captions: int = 0
    seeds: int = 3  # student and baseline_2d are trained this many times
    # Labelled fractions of the learning curve (each needs its own teacher); empty: none.
    curve: tuple[float, ...] = ()
    eval_poses: int | None = 1000  # test poses scored per method (None: the whole split)

    def __post_init__(self):
        from p2l3d_core.models.encoders import POSE_INPUTS
        from p2l3d_core.training.config import check_at_least, check_fraction, check_lr_schedule

        check_at_least(self, ("teacher_epochs", "student_epochs", "baseline_epochs", "batch_size",
                              "num_workers", "seeds"), 1)
        if self.eval_poses is not None:
            check_at_least(self, ("eval_poses",), 1)
        check_lr_schedule(self.lr_schedule)
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        check_fraction("labelled_fraction", self.labelled_fraction)
        for fraction in self.curve:
            check_fraction("each learning-curve fraction", fraction)
        check_at_least(self, ("lm_weight", "match_weight", "rkd_weight", "answer_kd_weight",
                              "pool_captions"), 0)
        for field in ("pose_input", "pose_input_3d", "student_pose_input"):
            value = getattr(self, field)
            if value is not None and value not in POSE_INPUTS:
                raise ValueError(f"{field} must be one of {', '.join(POSE_INPUTS)}, got {value!r}")

    @property
    def student_input(self) -> str:
        """What the student reads: ``student_pose_input``, else the teacher's ``pose_input``."""
        return self.student_pose_input or self.pose_input


PRESETS: dict[str, PipelinePreset] = {
    # 23,000 poses: ~18,400 train = ~2,040 labelled + ~16,300 unlabelled pool.
    "quickstart": PipelinePreset(num_poses=23_000, image_size=64, model="small", teacher_epochs=24,
                                 student_epochs=12, baseline_epochs=24, batch_size=64, lr=1e-3,
                                 labelled_fraction=0.111, num_workers=2, curve=(0.05, 0.25),
                                 pool_captions=16),
    "paper": PipelinePreset(num_poses=80_000, image_size=128, model="base", teacher_epochs=20,
                            student_epochs=20, baseline_epochs=60, batch_size=128, lr=3e-4,
                            labelled_fraction=0.1, num_workers=8, use_gpu=True,
                            curve=(0.05, 0.25, 1.0), eval_poses=8000, pool_captions=32),
    "smoke": PipelinePreset(num_poses=240, image_size=32, model="tiny", teacher_epochs=1,
                            student_epochs=1, baseline_epochs=1, batch_size=16, lr=3e-3,
                            labelled_fraction=0.5, num_workers=2, seeds=1, eval_poses=24,
                            pool_captions=4),
}


def get_preset(name: str, **overrides) -> PipelinePreset:
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}: choose from {', '.join(PRESETS)}")
    return replace(PRESETS[name], **{k: v for k, v in overrides.items() if v is not None})
