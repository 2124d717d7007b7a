"""Pinhole cameras: projection of world joints to pixels, and random cameras for synthetic data.

Convention (OpenCV): ``X_cam = R @ X_world + t``; camera ``x`` right, ``y`` down, ``z`` forward;
pixels ``u = fx * x / z + cx``, ``v = fy * y / z + cy``. World: metres, ``+z`` up.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class Camera:
    """Intrinsics (pixels) and extrinsics (world -> camera) of one pinhole camera."""

    fx: float
    fy: float
    cx: float
    cy: float
    R: tuple[tuple[float, float, float], ...]  # 3x3 rotation, world -> camera
    t: tuple[float, float, float]  # translation, metres
    width: int
    height: int

    @property
    def rotation(self) -> np.ndarray:
        return np.asarray(self.R, dtype=np.float64)

    @property
    def translation(self) -> np.ndarray:
        return np.asarray(self.t, dtype=np.float64)

    @property
    def position(self) -> np.ndarray:
        """Camera centre in world coordinates."""
        return -self.rotation.T @ self.translation

    def to_camera(self, points_world: np.ndarray) -> np.ndarray:
        """World points ``(..., 3)`` -> camera frame ``(..., 3)``."""
        return np.asarray(points_world, dtype=np.float64) @ self.rotation.T + self.translation

    def to_world(self, points_cam: np.ndarray) -> np.ndarray:
        """Camera-frame points ``(..., 3)`` -> world frame."""
        return (np.asarray(points_cam, dtype=np.float64) - self.translation) @ self.rotation

    def project(self, points_world: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Project world points to pixels.

        Returns ``(uv, visible)``: ``uv`` ``(..., 2)`` pixels (NaN for points behind the camera
        or missing), ``visible`` ``(...)`` True where the point is in front of the camera and
        inside the image.
        """
        cam = self.to_camera(points_world)
        z = cam[..., 2]
        in_front = z > 1e-6
        safe_z = np.where(in_front, z, np.nan)
        u = self.fx * cam[..., 0] / safe_z + self.cx
        v = self.fy * cam[..., 1] / safe_z + self.cy
        uv = np.stack([u, v], axis=-1)
        inside = (u >= 0) & (u < self.width) & (v >= 0) & (v < self.height)
        visible = in_front & np.nan_to_num(inside, nan=False).astype(bool)
        return uv, visible

    def to_dict(self) -> dict:
        return {k: (np.asarray(v).tolist() if k in ("R", "t") else v)
                for k, v in asdict(self).items()}

    def to_row(self) -> dict:
        """The ``camera`` column of a rendered dataset (``R`` flattened to 9 values)."""
        return {"fx": self.fx, "fy": self.fy, "cx": self.cx, "cy": self.cy,
                "R": self.rotation.reshape(9).tolist(), "t": list(self.t),
                "width": self.width, "height": self.height}

    @classmethod
    def from_dict(cls, d: dict) -> Camera:
        """From :meth:`to_dict` or :meth:`to_row` (``R`` as 3x3 or flattened)."""
        R = tuple(tuple(float(x) for x in row)
                  for row in np.asarray(d["R"], dtype=np.float64).reshape(3, 3))
        t = tuple(float(x) for x in np.asarray(d["t"], dtype=np.float64).reshape(3))
        return cls(float(d["fx"]), float(d["fy"]), float(d["cx"]), float(d["cy"]), R, t,
                   int(d["width"]), int(d["height"]))

    @classmethod
    def from_matrices(cls, K: np.ndarray, R: np.ndarray, t: np.ndarray, width: int,
                      height: int) -> Camera:
        K = np.asarray(K, dtype=np.float64)
        return cls.from_dict({"fx": K[0, 0], "fy": K[1, 1], "cx": K[0, 2], "cy": K[1, 2],
                              "R": np.asarray(R).tolist(), "t": np.asarray(t).reshape(3),
                              "width": width, "height": height})


_UP = np.array([0.0, 0.0, 1.0])


def look_at(position: np.ndarray, target: np.ndarray, up: np.ndarray = _UP
            ) -> tuple[np.ndarray, np.ndarray]:
    """Rotation and translation of a camera at ``position`` looking at ``target`` (world up)."""
    position = np.asarray(position, dtype=np.float64)
    forward = np.asarray(target, dtype=np.float64) - position
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, up)
    if np.linalg.norm(right) < 1e-6:  # looking straight up or down
        right = np.cross(forward, np.array([0.0, 1.0, 0.0]))
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    R = np.stack([right, down, forward])  # rows: camera axes in world coordinates
    return R, -R @ position


@dataclass(frozen=True)
class CameraRanges:
    """Ranges sampled by :func:`random_camera` (uniform). Angles in degrees, lengths in metres."""

    distance: tuple[float, float] = (3.0, 6.0)
    height: tuple[float, float] = (0.6, 2.2)
    azimuth: tuple[float, float] = (0.0, 360.0)
    focal_px: tuple[float, float] = (900.0, 1500.0)
    width: int = 1000
    height_px: int = 1000
    target_height: tuple[float, float] = (0.7, 1.1)


def random_camera(rng: np.random.Generator, ranges: CameraRanges = CameraRanges(),
                  target: np.ndarray | None = None, fit_radius: float | None = None) -> Camera:
    """A camera at a random distance, height and azimuth around ``target`` (default: the world
    origin at a random mid-body height), looking at it. Elevation follows from the camera
    height and distance (about -15..+25 degrees), as for a hand-held or tripod camera.
    ``fit_radius`` (metres): shorten the focal length where needed so that a sphere of that
    radius around the target stays inside the image, as a camera operator would frame it."""
    if target is None:
        target = np.array([0.0, 0.0, rng.uniform(*ranges.target_height)])
    target = np.asarray(target, dtype=np.float64)
    dist = rng.uniform(*ranges.distance)
    az = np.deg2rad(rng.uniform(*ranges.azimuth))
    cam_height = rng.uniform(*ranges.height)
    position = np.array([target[0] + dist * np.cos(az), target[1] + dist * np.sin(az), cam_height])
    R, t = look_at(position, target)
    f = rng.uniform(*ranges.focal_px)
    if fit_radius is not None:
        depth = np.linalg.norm(position - target) - fit_radius
        f = min(f, 0.45 * min(ranges.width, ranges.height_px) * max(depth, 0.1) / fit_radius)
    K = np.array([[f, 0, ranges.width / 2], [0, f, ranges.height_px / 2], [0, 0, 1]])
    return Camera.from_matrices(K, R, t, ranges.width, ranges.height_px)


def framing_camera(joints: np.ndarray, rng: np.random.Generator,
                   ranges: CameraRanges = CameraRanges()) -> Camera:
    """A random camera aimed at the centre of the pose's bounding box and framing it whole
    (missing joints ignored): how synthetic poses and camera-less mocap are filmed."""
    lo, hi = np.nanmin(joints, axis=0), np.nanmax(joints, axis=0)
    centre = (lo + hi) / 2
    radius = float(np.nanmax(np.linalg.norm(joints - centre, axis=1))) + 0.05
    return random_camera(rng, ranges, target=centre, fit_radius=radius)


# Right-handed axis change from a y-up world (BVH, MPI-INF-3DHP) to ours: (x, y, z) -> (x, -z, y).
Y_UP_TO_Z_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
