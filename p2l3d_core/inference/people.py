"""People in a photo: the 2D pose estimator the predictor uses.

MoveNet MultiPose (``movenet.py``) finds up to six people an image with COCO-17 keypoints; it
was chosen by measurement (``benchmarks/pose2d.py``): on the COCO sample photos it finds all 12
annotated people where BlazePose's detector finds 4. Model files come from the set-up's cache
(``model_files.py``); ``folder`` or ``P2L3D_POSE_MODELS`` points elsewhere (a path or
``s3://``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from p2l3d_core.inference.movenet import MoveNetMultiPose, PersonPose

MIN_PERSON_SCORE = 0.15


class PeopleFinder:
    """``finder(image)`` -> the people of a BGR image, best first."""

    def __init__(self, folder: str | Path | None = None, min_score: float = MIN_PERSON_SCORE):
        self.estimator = MoveNetMultiPose(folder, min_score=min_score)

    def __call__(self, image: np.ndarray) -> list[PersonPose]:
        """The people of ``image``, their boxes clipped to it (MoveNet's run onto the padding
        it adds to reach a multiple of 32 pixels)."""
        height, width = image.shape[:2]
        people = self.estimator(image)
        for person in people:
            person.bbox = np.clip(person.bbox, 0, [width, height, width, height]).astype(
                np.float32)
        return people
