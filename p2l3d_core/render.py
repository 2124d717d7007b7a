"""Skeleton images: what the encoders see.

* :func:`render_2d` draws the 2D keypoints, normalised for position and size
  (:func:`p2l3d_core.skeleton.normalize_2d`), as coloured bones on black.
* :func:`render_3d` tiles four orthographic views of the camera-frame 3D joints: front (what the
  camera sees), side (seen from the camera's right: depth runs left to right), top (seen from
  above: depth runs bottom to top) and the front view again with bones shaded by depth (near =
  bright). A pose and its depth mirror give the same 2D image but different 3D images.

Colours are fixed per bone: the person's left side warm (red/orange/yellow), right side cool
(blue/cyan/green), spine and head white/grey, so left and right are never confused. Images are
RGB ``uint8``; drawing is OpenCV only and deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from p2l3d_core.skeleton import BONES, NUM_JOINTS, J, normalize_2d

# RGB colour of each bone in BONES order (child joint names in comments).
_BONE_RGB: dict[str, tuple[int, int, int]] = {
    "r_hip": (0, 90, 255), "r_knee": (0, 170, 255), "r_ankle": (0, 255, 200),
    "l_hip": (255, 60, 0), "l_knee": (255, 150, 0), "l_ankle": (255, 230, 0),
    "spine": (235, 235, 235), "thorax": (200, 200, 200), "neck": (160, 160, 160),
    "head": (255, 255, 255),
    "l_shoulder": (255, 0, 90), "l_elbow": (255, 0, 180), "l_wrist": (255, 120, 200),
    "r_shoulder": (60, 0, 255), "r_elbow": (0, 220, 90), "r_wrist": (120, 255, 120),
}
from p2l3d_core.skeleton import JOINT_NAMES

BONE_COLOURS: np.ndarray = np.array([_BONE_RGB[JOINT_NAMES[c]] for c, _ in BONES], dtype=np.uint8)
JOINT_COLOUR = (255, 255, 255)

# Half-width (metres) of the region around the pelvis that each 3D view shows: a 2.3 m person
# stretched out still fits, and the metric scale is the same for every pose.
VIEW_HALF_EXTENT_M = 1.15


@dataclass(frozen=True)
class RenderConfig:
    """Image size in pixels (square) and line width (``0``: scale with the size)."""

    image_size: int = 128
    line_width: int = 0

    @property
    def thickness(self) -> int:
        return self.line_width or max(1, round(self.image_size / 48))


_BONE_PAIRS: list[tuple[int, int, int]] = [(b, c, p) for b, (c, p) in enumerate(BONES)]
_BONE_COLOUR_TUPLES: list[tuple[int, int, int]] = [tuple(int(v) for v in c) for c in BONE_COLOURS]


def _draw(img: np.ndarray, pts: np.ndarray, thickness: int, joint_radius: int,
          shade: np.ndarray | None = None) -> None:
    """Draw bones (and joints if ``joint_radius``) of ``pts`` (17, 2) pixels onto ``img``.

    Plain 8-connected lines: anti-aliasing costs 2.5x the time and adds nothing an encoder uses.
    """
    nan = np.isnan(pts)
    ok = (~nan.any(axis=1)).tolist()
    ipts = np.where(nan, 0.0, pts).round().astype(np.int32).tolist()
    colours = _BONE_COLOUR_TUPLES if shade is None else (
        (BONE_COLOURS * shade[:, None]).astype(np.uint8).tolist())
    for b, c, p in _BONE_PAIRS:
        if ok[c] and ok[p]:
            cv2.line(img, ipts[p], ipts[c], colours[b], thickness, cv2.LINE_8)
    if joint_radius:
        for j in range(NUM_JOINTS):
            if ok[j]:
                cv2.circle(img, ipts[j], joint_radius, JOINT_COLOUR, -1, cv2.LINE_8)


def render_2d(keypoints_2d: np.ndarray, config: RenderConfig = RenderConfig()) -> np.ndarray:
    """2D skeleton image ``(S, S, 3)`` from pixel keypoints ``(17, 2)`` (NaN = missing)."""
    size = config.image_size
    img = np.zeros((size, size, 3), dtype=np.uint8)
    kp = np.asarray(keypoints_2d, dtype=np.float64)
    kp = np.where(np.isfinite(kp).all(-1, keepdims=True), kp, np.nan)  # inf: a missing joint
    if np.isnan(kp).all():
        return img
    _draw(img, normalize_2d(kp) * (size - 1), config.thickness, max(1, config.thickness - 1))
    return img


def render_3d(joints_cam: np.ndarray, config: RenderConfig = RenderConfig()) -> np.ndarray:
    """3D skeleton image ``(S, S, 3)``: four tiled views of camera-frame joints ``(17, 3)``.

    Camera frame: ``x`` right, ``y`` down, ``z`` away from the camera (metres).
    """
    size = config.image_size
    half = size // 2
    img = np.zeros((size, size, 3), dtype=np.uint8)
    joints = np.asarray(joints_cam, dtype=np.float64)
    joints = np.where(np.isfinite(joints).all(-1, keepdims=True), joints, np.nan)
    if np.isnan(joints[J["pelvis"]]).any():
        return img
    rel = (joints - joints[J["pelvis"]]) / VIEW_HALF_EXTENT_M  # ~[-1, 1]
    to_px = (half - 1) / 2.0
    thickness = config.line_width or max(1, round(half / 48))  # each view is half the size
    x, y, z = rel[:, 0], rel[:, 1], rel[:, 2]
    views = (
        (np.stack([x, y], 1), 0, 0, None),  # front
        (np.stack([z, y], 1), half, 0, None),  # side: further from the camera -> right
        (np.stack([x, -z], 1), 0, half, None),  # top: further from the camera -> up
    )
    for pts, ox, oy, _ in views:
        _draw(img, (pts + 1.0) * to_px + (ox, oy), thickness, 0)
    mid_depth = np.array([(z[c] + z[p]) / 2 for c, p in BONES])
    shade = np.clip(0.65 - 0.6 * np.nan_to_num(mid_depth), 0.15, 1.0)  # near: bright, far: dim
    _draw(img, (np.stack([x, y], 1) + 1.0) * to_px + (half, half), thickness, 0, shade)
    return img


# No PNG row filters: adaptive filtering made encoding 4x slower (~300 us vs ~75 us at 128 px)
# for no gain on flat-coloured skeleton images, which zlib compresses to ~3 KB either way.
_PNG_PARAMS = [cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_NONE, cv2.IMWRITE_PNG_COMPRESSION, 1]


def encode_png(image_rgb: np.ndarray) -> bytes:
    """PNG bytes of an RGB image (lossless; ~3 KB for a 128 px skeleton)."""
    ok, buf = cv2.imencode(".png", cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR), _PNG_PARAMS)
    if not ok:
        raise ValueError("PNG encoding failed")
    return buf.tobytes()


def decode_png(data: bytes) -> np.ndarray:
    """RGB ``uint8`` image from PNG bytes; raises ``ValueError`` on bytes that are not an image."""
    if not data:  # OpenCV asserts on an empty buffer instead of returning None
        raise ValueError("not a decodable image (0 bytes)")
    try:
        img = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    except cv2.error:
        img = None
    if img is None:
        raise ValueError(f"not a decodable image ({len(data)} bytes)")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
