"""Typed configuration of the platform's workflows (plain dataclasses; JSON round-trip)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class SplitFractions:
    """Fractions of poses per split, assigned by a stable hash of the pose id."""

    train: float = 0.8
    val: float = 0.1
    test: float = 0.1

    def __post_init__(self) -> None:
        total = self.train + self.val + self.test
        if abs(total - 1.0) > 1e-6 or min(self.train, self.val, self.test) < 0:
            raise ValueError(f"split fractions must be >= 0 and sum to 1, got {self}")


@dataclass(frozen=True)
class DatasetConfig:
    """Everything that determines the content of a rendered dataset.

    ``source``: ``synthetic``, ``h36m:FILE`` (mmpose body3d npz beside ``cameras.pkl``, or a
    VideoPose3D ``data_3d_h36m.npz``) or ``bvh:FILE``. ``num_poses``: how many to render (for a
    file source, at most what the file holds). ``shard_size``: poses per Parquet shard, the unit
    of parallel work and of resumption.
    """

    num_poses: int = 2000
    seed: int = 0
    source: str = "synthetic"
    image_size: int = 128
    shard_size: int = 500
    num_captions: int = 3
    max_questions: int | None = None
    splits: SplitFractions = field(default_factory=SplitFractions)
    twin_prob: float = 0.3

    def __post_init__(self) -> None:
        if self.num_poses < 1:
            raise ValueError(f"num_poses must be >= 1, got {self.num_poses}")
        if not 16 <= self.image_size <= 1024:
            raise ValueError(f"image_size must be within 16..1024 px, got {self.image_size}")
        if self.shard_size < 1:
            raise ValueError(f"shard_size must be >= 1, got {self.shard_size}")
        if self.num_captions < 1:  # rows without text: a teacher would "learn" from nothing
            raise ValueError(f"num_captions must be >= 1, got {self.num_captions}")
        if not 0.0 <= self.twin_prob <= 1.0:
            raise ValueError(f"twin_prob must be within 0..1, got {self.twin_prob}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> DatasetConfig:
        d = dict(d)
        if isinstance(d.get("splits"), dict):
            d["splits"] = SplitFractions(**d["splits"])
        return cls(**d)

    def fingerprint(self) -> str:
        """Hash of the content-defining fields: equal fingerprints mean identical datasets."""
        blob = json.dumps(self.to_dict(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


@dataclass(frozen=True)
class EvalSettings:
    """How a run is evaluated: the one place these defaults live (``jobs/evaluate.py``'s flags
    and the presets' ``evaluate:`` section both read them).

    ``eval_poses``: poses drawn per evaluation set (None: every pose). ``latency_samples`` test
    poses are captioned and asked one question each, at batch 1 on one thread, in
    ``latency_rounds`` rounds with the methods interleaved (0 samples: no latency).
    ``lifter_epochs``: training of the 2D->3D lifter baseline. ``meteor``: METEOR needs Java.
    """

    eval_poses: int | None = 1000
    latency_samples: int = 30
    latency_rounds: int = 5
    lifter_epochs: int = 30
    meteor: bool = True

    def __post_init__(self) -> None:
        if self.eval_poses is not None and self.eval_poses < 1:
            raise ValueError(f"eval_poses must be >= 1, got {self.eval_poses}")
        if self.latency_samples < 0 or self.latency_rounds < 1:
            raise ValueError(f"latency_samples must be >= 0 and latency_rounds >= 1, got "
                             f"{self.latency_samples} and {self.latency_rounds}")
        if self.lifter_epochs < 1:
            raise ValueError(f"lifter_epochs must be >= 1, got {self.lifter_epochs}")

    def to_dict(self) -> dict:
        return asdict(self)
