"""Videos: every K-th frame decoded with OpenCV, and people kept as stable tracks across them.

Tracks: each sampled frame's people are matched to the tracks alive in the previous sampled
frame by box overlap (IoU), greedily from the best pair, and by keypoint distance when boxes
barely overlap (a fast mover between sampled frames); an unmatched person starts a new track,
and a track unseen for a few sampled frames (an occlusion) can still be picked up again.
So a video's rows group by person.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from p2l3d_core.inference.images import BadInput, check_size

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv")
MIN_IOU = 0.2
MAX_KEYPOINT_SHIFT = 0.5  # of the box's longer side, mean over joints both frames see
MAX_MISSED = 5  # sampled frames a track may go unseen (occlusion) and still continue


def read_frames(source: str | Path | bytes, stride: int = 1,
                name: str | None = None) -> Iterator[tuple[int, np.ndarray]]:
    """``(frame index, BGR image)`` for every ``stride``-th frame of a video file or its bytes;
    :class:`BadInput` when no frame can be read."""
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    name = name or (str(source) if not isinstance(source, bytes) else "video")
    temporary = None
    if isinstance(source, bytes):
        if not source:
            raise BadInput(f"{name}: empty (0 bytes)")
        handle, temporary = tempfile.mkstemp(suffix=".video")
        with os.fdopen(handle, "wb") as f:
            f.write(source)
        source = temporary
    capture = cv2.VideoCapture(str(source))
    try:
        if not capture.isOpened():
            raise BadInput(f"{name}: not a readable video (OpenCV cannot open it)")
        width = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH))
        height = int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
        if width and height:
            check_size(width, height, name)
        index = read = 0
        while True:
            ok = capture.grab()
            if not ok:
                break
            if index % stride == 0:
                ok, frame = capture.retrieve()
                if ok and frame is not None:
                    read += 1
                    yield index, frame
            index += 1
        if read == 0:
            raise BadInput(f"{name}: no readable frames")
    finally:
        capture.release()
        if temporary:
            os.unlink(temporary)


def iou(a, b) -> float:
    x0, y0 = max(a[0], b[0]), max(a[1], b[1])
    x1, y1 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _keypoint_shift(a: np.ndarray, b: np.ndarray, box) -> float:
    """Mean distance of the joints both see, over the box's longer side (inf if none shared)."""
    both = (a[:, 2] > 0.3) & (b[:, 2] > 0.3)
    if not both.any():
        return float("inf")
    side = max(box[2] - box[0], box[3] - box[1], 1.0)
    return float(np.linalg.norm(a[both, :2] - b[both, :2], axis=1).mean() / side)


class Tracker:
    """Assigns a stable ``track`` id to each person of consecutive sampled frames."""

    def __init__(self):
        self.alive: dict[int, tuple[list[float], np.ndarray]] = {}
        self.missed: dict[int, int] = {}
        self.next_id = 0

    def update(self, people: list) -> None:
        """Set ``person.track`` for each of ``people`` (objects with ``bbox`` and
        ``keypoints``), in place."""
        pairs = []
        for i, person in enumerate(people):
            kp = np.asarray(person.keypoints, dtype=np.float64)
            for track, (box, old) in self.alive.items():
                overlap = iou(person.bbox, box)
                if overlap >= MIN_IOU:
                    pairs.append((overlap, i, track))
                elif _keypoint_shift(kp, old, box) <= MAX_KEYPOINT_SHIFT:
                    pairs.append((0.0, i, track))
        pairs.sort(key=lambda p: -p[0])
        taken_people, taken_tracks = set(), set()
        for _, i, track in pairs:
            if i not in taken_people and track not in taken_tracks:
                people[i].track = track
                taken_people.add(i)
                taken_tracks.add(track)
        for i, person in enumerate(people):
            if i not in taken_people:
                person.track = self.next_id
                self.next_id += 1
        for track in list(self.alive):
            if track not in taken_tracks:
                self.missed[track] = self.missed.get(track, 0) + 1
                if self.missed[track] > MAX_MISSED:
                    del self.alive[track], self.missed[track]
        for p in people:
            self.alive[p.track] = (list(p.bbox), np.asarray(p.keypoints, dtype=np.float64))
            self.missed[p.track] = 0
