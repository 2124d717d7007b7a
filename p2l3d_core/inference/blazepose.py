"""BlazePose (mediapipe 0.10.21's detector and full landmark model) without mediapipe: the two
``.tflite`` files run on the LiteRT runtime, and the pre- and post-processing of mediapipe's
pose graph is written here. Why: mediapipe pins numpy<2 and protobuf<5, which clash with Ray
Serve and OpenCV; its newer releases ship no models. The decoding facts (anchors, letterbox,
region of interest, heatmap refinement) are listed in ../shared/DESIGN.md and reproduce
mediapipe's own landmarks to within about a pixel.

The detector is trained for the dominant person: it finds essentially one person an image.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from p2l3d_core.inference.model_files import BLAZEPOSE_FILES, resolve

DETECTOR_SIZE = 224
LANDMARK_SIZE = 256
HEATMAP_SIZE = 64
NUM_LANDMARKS = 33  # body landmarks; the model's 34-38 are auxiliary (ROI) points
SCORE_THRESHOLD = 0.5  # the shipped graph's detection threshold
NMS_IOU = 0.3
PRESENCE_THRESHOLD = 0.5
REFINE_KERNEL = 7
REFINE_MIN_CONFIDENCE = 0.5
# BlazePose landmark -> COCO-17 keypoint order (nose, eyes, ears, shoulders, elbows, wrists,
# hips, knees, ankles; left before right).
COCO17_FROM_BLAZEPOSE33 = (0, 2, 5, 7, 8, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28)


def ssd_anchors() -> np.ndarray:
    """Anchor centres (2254, 2) of the detector, normalised to [0, 1]: mediapipe's SSD anchors
    (5 layers, strides 8, 16, 32, 32, 32, aspect ratio 1 plus the interpolated anchor, fixed
    size); layers of one stride share a grid, two anchors a layer and cell."""
    centres = []
    strides = [8, 16, 32, 32, 32]
    layer = 0
    while layer < len(strides):
        same = 1
        while layer + same < len(strides) and strides[layer + same] == strides[layer]:
            same += 1
        grid = math.ceil(DETECTOR_SIZE / strides[layer])
        ys, xs = np.meshgrid((np.arange(grid) + 0.5) / grid, (np.arange(grid) + 0.5) / grid,
                             indexing="ij")
        cells = np.stack([xs.ravel(), ys.ravel()], axis=1)
        centres.append(np.repeat(cells, 2 * same, axis=0))
        layer += same
    return np.concatenate(centres).astype(np.float32)


@dataclass
class Detection:
    """A person found by the detector, in image pixels: a (face) box, four keypoints (0 mid-hip,
    1 full-body size and rotation point, 2 mid-shoulder, 3 upper-body point) and a score."""

    box: np.ndarray  # (4,) x0, y0, x1, y1
    keypoints: np.ndarray  # (4, 2)
    score: float

    def region(self) -> tuple[float, float, float, float]:
        """The landmark model's square region: centre (mid-hip), side and rotation (radians)."""
        (x0, y0), (x1, y1) = self.keypoints[0], self.keypoints[1]
        side = 2.5 * float(math.hypot(x1 - x0, y1 - y0))
        rotation = math.pi / 2 - math.atan2(-(y1 - y0), x1 - x0)
        rotation = (rotation + math.pi) % (2 * math.pi) - math.pi
        return float(x0), float(y0), side, rotation


def detection_from_coco17(keypoints: np.ndarray, box: np.ndarray, score: float,
                          min_confidence: float = 0.2, margin: float = 1.0) -> Detection:
    """A :class:`Detection` for :meth:`BlazePose.landmarks` built from another estimator's
    person (COCO-17 ``[x, y, confidence]`` keypoints and an ``[x0, y0, x1, y1]`` box, image
    pixels), so BlazePose's landmark model can refine people its own detector misses.

    As mediapipe's full-body keypoints do: centre at mid-hip, the size/rotation point at the
    radius of the circle around the body (the farthest confident keypoint times ``margin``) in
    the direction of mid-shoulder; the region's own x1.25 leaves room for the head top. Margin
    1.0 measured best on the COCO, MPII, H36M and 3DHP samples (0.9, 1.15, 1.3 tried:
    benchmarks/pose2d.py). Without confident hips and shoulders: the box's centre, upright, half
    its longer side times ``margin``."""
    kp = np.asarray(keypoints, np.float64)
    seen = kp[:, 2] >= min_confidence
    torso = [5, 6, 11, 12]  # shoulders, hips
    if seen[torso].all():
        hip, shoulder = kp[[11, 12], :2].mean(0), kp[[5, 6], :2].mean(0)
        up = shoulder - hip
        up = up / max(float(np.linalg.norm(up)), 1e-6)
        radius = margin * float(np.linalg.norm(kp[seen, :2] - hip, axis=1).max())
    else:
        x0, y0, x1, y1 = np.asarray(box, np.float64)
        hip, up = np.array([(x0 + x1) / 2, (y0 + y1) / 2]), np.array([0.0, -1.0])
        radius = margin * max(x1 - x0, y1 - y0) / 2
        shoulder = hip + up * radius / 2
    points = np.stack([hip, hip + up * radius, shoulder, shoulder])
    return Detection(np.asarray(box, np.float64), points, float(score))


@dataclass
class PoseEstimate:
    """One person: 33 landmarks in image pixels with visibility (33, 3), COCO-17 keypoints
    ``[x, y, confidence]`` (17, 3), a box around the visible keypoints and a score."""

    landmarks: np.ndarray
    score: float
    presence: float

    @property
    def coco17(self) -> np.ndarray:
        return self.landmarks[list(COCO17_FROM_BLAZEPOSE33)]

    def bbox(self, min_confidence: float = 0.5) -> list[float]:
        points = self.coco17
        seen = points[points[:, 2] >= min_confidence, :2]
        seen = seen if len(seen) else points[:, :2]
        return [float(v) for v in (*seen.min(axis=0), *seen.max(axis=0))]


def _interpreter(path: Path, threads: int):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path), num_threads=threads)
    interpreter.allocate_tensors()
    return interpreter


def _outputs_by_shape(interpreter) -> dict[tuple[int, ...], int]:
    """Output tensor indices by shape: LiteRT's output order is not a contract."""
    return {tuple(d["shape"].tolist()): d["index"] for d in interpreter.get_output_details()}


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of box ``a`` (4,) with boxes ``b`` (N, 4)."""
    x0, y0 = np.maximum(a[0], b[:, 0]), np.maximum(a[1], b[:, 1])
    x1, y1 = np.minimum(a[2], b[:, 2]), np.minimum(a[3], b[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area_a = (a[2] - a[0]) * (a[3] - a[1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / np.maximum(area_a + area_b - inter, 1e-12)


def weighted_nms(boxes: np.ndarray, keypoints: np.ndarray, scores: np.ndarray,
                 iou: float = NMS_IOU) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """mediapipe's weighted non-maximum suppression: each kept detection is the score-weighted
    mean of the boxes (and keypoints) overlapping the best remaining one, with its score."""
    order = np.argsort(-scores)
    out = []
    while len(order):
        best = order[0]
        overlap = _iou(boxes[best], boxes[order]) > iou
        group, order = order[overlap], order[~overlap]
        w = scores[group] / scores[group].sum()
        out.append(((boxes[group] * w[:, None]).sum(0),
                    (keypoints[group] * w[:, None, None]).sum(0), float(scores[best])))
    return out


class BlazePose:
    """Detector + landmark model on LiteRT. ``estimate(image)`` takes a BGR uint8 image and
    returns the people found (the dominant one, in practice)."""

    def __init__(self, folder: str | Path | None = None, threads: int = 1):
        path = resolve(folder, BLAZEPOSE_FILES)
        self.detector = _interpreter(path / "pose_detection.tflite", threads)
        self.landmarker = _interpreter(path / "pose_landmark_full.tflite", threads)
        self.anchors = ssd_anchors()
        det = _outputs_by_shape(self.detector)
        self._det_boxes, self._det_scores = det[(1, 2254, 12)], det[(1, 2254, 1)]
        lm = _outputs_by_shape(self.landmarker)
        self._lm_points, self._lm_presence = lm[(1, 195)], lm[(1, 1)]
        self._lm_heatmap = lm[(1, HEATMAP_SIZE, HEATMAP_SIZE, 39)]

    def detect(self, image: np.ndarray,
               threshold: float = SCORE_THRESHOLD) -> list[Detection]:
        """People in ``image`` (BGR uint8), best first."""
        h, w = image.shape[:2]
        # The whole image, letterboxed about its centre into a square (as mediapipe's
        # ImageToTensorCalculator does: one affine warp, bilinear, zero padding = -1 here).
        side = float(max(h, w))
        x0, y0 = (w - side) / 2, (h - side) / 2
        src = np.float32([[x0, y0], [x0 + side, y0], [x0, y0 + side]])
        dst = np.float32([[0, 0], [DETECTOR_SIZE, 0], [0, DETECTOR_SIZE]])
        square = cv2.warpAffine(image, cv2.getAffineTransform(src, dst),
                                (DETECTOR_SIZE, DETECTOR_SIZE), flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
        canvas = cv2.cvtColor(square, cv2.COLOR_BGR2RGB).astype(np.float32) / 127.5 - 1.0
        self.detector.set_tensor(self.detector.get_input_details()[0]["index"], canvas[None])
        self.detector.invoke()
        raw = self.detector.get_tensor(self._det_boxes)[0]
        logits = self.detector.get_tensor(self._det_scores)[0, :, 0].astype(np.float64)
        scores = 1.0 / (1.0 + np.exp(-np.clip(logits, -100.0, 100.0)))
        keep = scores >= threshold
        if not keep.any():
            return []
        raw, scores, anchors = raw[keep] / DETECTOR_SIZE, scores[keep], self.anchors[keep]
        centre = raw[:, :2] + anchors
        boxes = np.concatenate([centre - raw[:, 2:4] / 2, centre + raw[:, 2:4] / 2], axis=1)
        points = raw[:, 4:12].reshape(-1, 4, 2) + anchors[:, None, :]

        def to_image(xy: np.ndarray) -> np.ndarray:  # undo the letterbox
            return xy * side + np.array([x0, y0])

        return [Detection(np.concatenate([to_image(b[:2]), to_image(b[2:])]), to_image(k), s)
                for b, k, s in weighted_nms(boxes, points, scores)]

    def landmarks(self, image: np.ndarray, detection: Detection) -> PoseEstimate | None:
        """The 33 landmarks of the person ``detection`` found; None if the model says no pose
        is there."""
        cx, cy, side, rotation = detection.region()
        if side < 1:
            return None
        c, s = math.cos(rotation), math.sin(rotation)

        def to_image(u: float, v: float) -> tuple[float, float]:  # crop [0, 1]^2 -> image px
            dx, dy = u - 0.5, v - 0.5
            return (c * dx - s * dy) * side + cx, (s * dx + c * dy) * side + cy

        src = np.float32([to_image(0, 0), to_image(1, 0), to_image(0, 1)])
        dst = np.float32([[0, 0], [LANDMARK_SIZE, 0], [0, LANDMARK_SIZE]])
        crop = cv2.warpAffine(image, cv2.getAffineTransform(src, dst),
                              (LANDMARK_SIZE, LANDMARK_SIZE), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_REPLICATE)
        tensor = cv2.cvtColor(crop, cv2.COLOR_BGR2RGB).astype(np.float32)[None] / 255.0
        self.landmarker.set_tensor(self.landmarker.get_input_details()[0]["index"], tensor)
        self.landmarker.invoke()
        presence = float(self.landmarker.get_tensor(self._lm_presence)[0, 0])
        if presence < PRESENCE_THRESHOLD:
            return None
        raw = self.landmarker.get_tensor(self._lm_points)[0].reshape(39, 5)[:NUM_LANDMARKS]
        uv = refine_with_heatmap(raw[:, :2] / LANDMARK_SIZE,
                                 self.landmarker.get_tensor(self._lm_heatmap)[0])
        visibility = 1.0 / (1.0 + np.exp(-raw[:, 3]))
        xy = np.array([to_image(u, v) for u, v in uv], dtype=np.float32)
        return PoseEstimate(np.concatenate([xy, visibility[:, None]], axis=1).astype(np.float32),
                            detection.score, presence)

    def estimate(self, image: np.ndarray) -> list[PoseEstimate]:
        """Every person the detector finds in ``image`` (BGR uint8), with landmarks."""
        people = (self.landmarks(image, d) for d in self.detect(image))
        return [p for p in people if p is not None]


def refine_with_heatmap(uv: np.ndarray, heatmap: np.ndarray) -> np.ndarray:
    """mediapipe's heatmap refinement: each landmark moves to the confidence-weighted mean of
    its 7x7 heatmap window, where the window's best confidence reaches 0.5. ``uv``: (N, 2) in
    the crop's [0, 1]; ``heatmap``: (64, 64, >=N) logits."""
    out = uv.copy()
    size = heatmap.shape[0]
    half = (REFINE_KERNEL - 1) // 2
    for i, (u, v) in enumerate(uv):
        col, row = int(u * size), int(v * size)
        if not (0 <= col < size and 0 <= row < size):
            continue
        rows = slice(max(0, row - half), min(size, row + half + 1))
        cols = slice(max(0, col - half), min(size, col + half + 1))
        conf = 1.0 / (1.0 + np.exp(-heatmap[rows, cols, i]))
        if conf.max() < REFINE_MIN_CONFIDENCE or conf.sum() <= 0:
            continue
        rr, cc = np.mgrid[rows, cols]
        out[i] = ((cc * conf).sum() / conf.sum() / size, (rr * conf).sum() / conf.sum() / size)
    return out
