"""Named scales of the full pipeline (render -> teacher -> student), litgpt-recipe style.

``quickstart`` finishes in minutes on 2 CPU cores; ``paper`` is the 80K-pose scale of the paper
for a GPU cluster. Command-line flags override single fields.
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
    batch_size: int
    lr: float
    labelled_fraction: float  # of the training split; the rest is the unlabelled pool
    num_workers: int
    use_gpu: bool = False
    zero_stage: int = 2


PRESETS: dict[str, PipelinePreset] = {
    "quickstart": PipelinePreset(num_poses=3000, image_size=64, model="small", teacher_epochs=2,
                                 student_epochs=2, batch_size=32, lr=5e-4, labelled_fraction=0.4,
                                 num_workers=2),
    "paper": PipelinePreset(num_poses=80_000, image_size=128, model="small", teacher_epochs=20,
                            student_epochs=20, batch_size=128, lr=3e-4, labelled_fraction=0.1,
                            num_workers=8, use_gpu=True),
    "smoke": PipelinePreset(num_poses=240, image_size=32, model="tiny", teacher_epochs=1,
                            student_epochs=1, batch_size=16, lr=3e-3, labelled_fraction=0.5,
                            num_workers=2),
}


def get_preset(name: str, **overrides) -> PipelinePreset:
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}: choose from {', '.join(PRESETS)}")
    return replace(PRESETS[name], **{k: v for k, v in overrides.items() if v is not None})
