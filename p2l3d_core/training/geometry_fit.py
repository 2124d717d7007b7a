"""The geometry regressor fitted on every training pose before the teacher trains.

The regressor (``models/geometry.py``) learns 2D keypoints -> the pose's geometry, which every
rendered pose has: it needs 3D, not language. The teacher stage streams the labelled rows alone
(a fifth of the quickstart's), and trained inside it the regressor saw ~20k poses and ended
with 14 degrees of bend error on the test split; a plain fit on all 6,357 training poses for
40 epochs reaches 10 (``benchmarks/geometry_from_2d.py``). So the driver fits it first, here,
on the whole training split (a small MLP: about a minute on 2 CPU cores for the quickstart),
writes it beside the run's checkpoints, and the teacher and then the student keep it as it is
(frozen). The heights and the camera's direction are fitted from keypoints with a detector's
noise (:data:`KEYPOINT_NOISE`, :data:`NOISY`).

Each training pose is also filmed from :data:`EXTRA_VIEWS` more random cameras (the
generator's own framing cameras): the geometry is the body's, the same from every side but for
the camera's direction (``keypoints.FACING_COLUMNS``, measured again for each view), so every
view is a free training pair. A bent knee seen end-on is the case a 2D reading gets
wrong, and more views of each pose show it more of them. On the 3911533-era quickstart's data
(``benchmarks/geometry_from_2d.py``-style fit): joint_bend read by the nearest band 0.849 ->
0.872 on the synthetic test split and 0.71 / 0.70 / 0.79 -> 0.73 / 0.74 / 0.79 on cmu_hop /
cmu_walk / cmu_walk2 (``benchmarks/reports/2026-12-07-bend-prior.md``).
"""

from __future__ import annotations

import json
from collections.abc import Callable

import numpy as np
import torch
from safetensors.torch import load, save

from p2l3d_core import storage
from p2l3d_core.dataset.schema import Column
from p2l3d_core.models.geometry import GEOMETRY_COLUMNS, GeometryRegressor, geometry_of_3d
from p2l3d_core.models.inputs import (
    features_3d_seen_by,
    pose_inputs,
    pose_inputs_3d,
    stack_column,
)
from p2l3d_core.models.keypoints import (
    FACING_COLUMNS,
    GEOMETRY_FEATURES,
    KEYPOINT_FEATURES,
    keypoint_features,
)
from p2l3d_core.models.losses import geometry_loss
from p2l3d_core.poses.camera import Camera, framing_camera
from p2l3d_core.skeleton import NUM_JOINTS

FIT_EPOCHS = 25
EXTRA_VIEWS = 8
"""Random cameras per training pose beyond the one it was rendered with (fewer where the
poses times the views would pass :data:`MAX_POSES`)."""
KEYPOINT_NOISE = 0.02
"""Gaussian noise on the 2D keypoints the :data:`NOISY` columns are fitted from, per coordinate,
as a share of
the pose's 2D extent (its farthest joint from the joints' mean): 2 % is ~4 px on a person 400 px
tall, under a pose detector's error. Why: fitted on exact projections, the regressor read the
heights above the unseen floor from relations between joints that only a perfect projection of
the generator's skeleton keeps, and read every real set's knees 20-27 cm high and its ankles
4-12 cm high (CMU, Human3.6M, 3DHP); with the noise 7-9 cm and 1-3 cm on CMU, and each foot's
ground contact 0.80 / 0.73 / 0.88 -> 0.90 / 0.85 / 0.98 (cmu_hop / cmu_walk / cmu_walk2).
The bends and the torso's direction, which the image shows between neighbouring joints, are
fitted on the exact keypoints: noisy inputs pulled them towards the generator's mean (a
walker's upright torso read 9 degrees forward), and the answer head, which learned on exact
geometry, does not know where in the rules' dead bands to cut
(``benchmarks/reports/2026-12-07-ground-contact.md``)."""
NOISY = tuple(GEOMETRY_COLUMNS.index(c) for c in (
    "l_ankle_height", "r_ankle_height", "l_knee_height", "r_knee_height", *FACING_COLUMNS))
"""The geometry's columns fitted from the noisy keypoints: the ankle and knee heights, and the
camera's direction (facing: from the exact keypoints its own MLP read the CMU clips 0.89-0.92,
from the noisy ones 0.97-1.00; ``benchmarks/reports/2026-12-07-facing-as-geometry.md``). The
front/back offsets learn from exact keypoints like the bends: fitted from noisy ones they read
the CMU clips' feet no better and cmu_walk2's worse (foot_forward by rule 0.93 -> 0.81). The
feet's distance learns from exact keypoints too: so fitted, its rules read the CMU clips
0.86-0.95 (``benchmarks/reports/2026-12-07-feet-distance.md``; noisy keypoints not tried)."""
FIT_BATCH = 128
FIT_LR = 1e-3
MAX_POSES = 200_000
"""Pairs the fit reads at most, views included (poses drawn at random beyond that): the
study's 60k poses fit in minutes."""
COLUMNS = [Column.KEYPOINTS_2D, Column.VISIBLE_2D, Column.KEYPOINTS_3D, Column.CAMERA]


def geometry_targets(batch: dict) -> torch.Tensor:
    """A batch of rendered rows (3D keypoints and camera) -> their geometry from the 3D, as
    the teacher reads it."""
    return geometry_of_3d(pose_inputs_3d(batch, "keypoints")["keypoints"])


def geometry_pairs(batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch of rendered rows -> (2D keypoint features, their geometry from the 3D)."""
    return pose_inputs(batch, "keypoints")["keypoints"], geometry_targets(batch)


def noisy_features(keypoints_2d: np.ndarray, seen: np.ndarray, noise: float,
                   rng: np.random.Generator) -> np.ndarray:
    """:func:`keypoint_features` of ``(N, 17, 2)`` pixels (``seen`` ``(N, 17)``) after Gaussian
    noise of ``noise`` times each pose's 2D extent (:data:`KEYPOINT_NOISE`)."""
    seen = seen & np.isfinite(keypoints_2d).all(-1)
    uv = np.where(seen[..., None], keypoints_2d, 0.0)
    if noise > 0:
        count = np.maximum(seen.sum(1), 1)[:, None]
        centre = uv.sum(1) / count
        offset = np.where(seen[..., None], uv - centre[:, None], 0.0)
        extent = np.abs(offset).reshape(len(uv), -1).max(1)
        uv = uv + rng.normal(size=uv.shape) * (noise * extent)[:, None, None]
    return keypoint_features(np.where(seen[..., None], uv, np.nan), seen)


def view_geometry(joints_3d: np.ndarray, cameras: list[Camera]) -> torch.Tensor:
    """World poses ``(N, 17, 3)`` each seen by its camera -> their geometry as the teacher
    reads it (:func:`geometry_targets` without a dataset's rows)."""
    if not cameras:
        return torch.zeros(0, GEOMETRY_FEATURES)
    return geometry_of_3d(torch.from_numpy(features_3d_seen_by(joints_3d, cameras)))


def _framed(joints_3d: np.ndarray, views: int, rng: np.random.Generator
            ) -> tuple[np.ndarray, np.ndarray, list[Camera]]:
    """Pixels ``(views * N, 17, 2)``, seen flags and cameras of world poses each filmed by
    ``views`` random framing cameras, view-major. Joints outside the frame are unseen, as when
    the dataset is rendered."""
    cameras = [framing_camera(j, rng) for _ in range(views) for j in joints_3d]
    if not cameras:
        return np.zeros((0, NUM_JOINTS, 2)), np.zeros((0, NUM_JOINTS), bool), []
    uv, seen = zip(*(c.project(j) for c, j in zip(cameras, np.tile(joints_3d, (views, 1, 1)))))
    return np.stack(uv), np.stack(seen), cameras


def other_views(joints_3d: np.ndarray, views: int, rng: np.random.Generator,
                noise: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """World poses ``(N, 17, 3)`` each filmed by ``views`` random framing cameras, view-major
    (row ``v * N + i`` is pose ``i``): their 2D keypoint features ``(views * N,
    KEYPOINT_FEATURES)``, with ``noise`` as :func:`noisy_features`, and each view's geometry."""
    uv, seen, cameras = _framed(joints_3d, views, rng)
    x = torch.from_numpy(noisy_features(uv, seen, noise, rng)).reshape(-1, KEYPOINT_FEATURES)
    return x, view_geometry(np.tile(joints_3d, (views, 1, 1)), cameras)


def fit_pairs(keypoints_2d: np.ndarray, seen: np.ndarray, world: np.ndarray, y: torch.Tensor,
              views: int, rng: np.random.Generator, noise: float = KEYPOINT_NOISE
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int, int]:
    """The fit's pairs from rendered poses (their 2D ``keypoints_2d`` and ``seen`` flags, 3D
    ``world`` joints and geometry ``y``): at most :data:`MAX_POSES` poses (drawn at random),
    their rendered view and up to ``views`` more cameras' (fewer where the pairs would pass
    :data:`MAX_POSES`). Returns ``(x, x_noisy, y, poses, views)``: every view's features from
    the exact keypoints and from the keypoints with ``noise`` (:data:`KEYPOINT_NOISE`), every
    view's geometry (``y`` for the rendered, :func:`view_geometry` for the others), views
    counting the rendered one."""
    if len(y) > MAX_POSES:
        keep = rng.choice(len(y), MAX_POSES, replace=False)
        keypoints_2d, seen, world = keypoints_2d[keep], seen[keep], world[keep]
        y = y[torch.from_numpy(keep)]
    views = max(0, min(views, MAX_POSES // max(len(y), 1) - 1))
    more_uv, more_seen, cameras = _framed(world, views, rng)
    uv, seen = np.concatenate([keypoints_2d, more_uv]), np.concatenate([seen, more_seen])
    x = torch.from_numpy(noisy_features(uv, seen, 0.0, rng))
    x_noisy = torch.from_numpy(noisy_features(uv, seen, noise, rng)) if noise > 0 else x
    y = torch.cat([y, view_geometry(np.tile(world, (views, 1, 1)), cameras).to(y.dtype)])
    return x, x_noisy, y, len(world), views + 1


def fit_regressor(x: torch.Tensor, y: torch.Tensor, epochs: int = FIT_EPOCHS, seed: int = 0,
                  log: Callable[[str], None] = print, x_noisy: torch.Tensor | None = None
                  ) -> tuple[GeometryRegressor, list[float]]:
    """A :class:`GeometryRegressor` fitted to ``x -> y`` (AdamW, the geometry loss); with
    ``x_noisy`` (the same pairs' noisy features) the :data:`NOISY` columns are fitted from it.
    Returns the model and each epoch's mean loss."""
    torch.manual_seed(seed)
    model = GeometryRegressor(in_features=x.shape[1])
    opt = torch.optim.AdamW(model.parameters(), lr=FIT_LR, weight_decay=1e-4)
    generator = torch.Generator().manual_seed(seed)
    noisy = torch.zeros(GEOMETRY_FEATURES, dtype=torch.bool)
    noisy[list(NOISY)] = True
    losses = []
    for epoch in range(epochs):
        total, count = 0.0, 0
        for rows in torch.randperm(len(x), generator=generator).split(FIT_BATCH):
            predicted = model(x[rows])
            if x_noisy is not None:
                predicted = torch.where(noisy, model(x_noisy[rows]), predicted)
            loss = geometry_loss(predicted, y[rows])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total, count = total + float(loss) * len(rows), count + len(rows)
        losses.append(total / max(count, 1))
        if epoch == 0 or (epoch + 1) % 10 == 0 or epoch + 1 == epochs:
            log(f"  geometry regressor epoch {epoch + 1}/{epochs}: loss {losses[-1]:.3f}")
    return model.eval(), losses


def prefit(train, destination: str, seed: int = 0, epochs: int = FIT_EPOCHS,
           views: int = EXTRA_VIEWS, log: Callable[[str], None] = print) -> str:
    """Fit the regressor on ``train`` (a Ray dataset of rendered rows, every row, each also
    seen by ``views`` more cameras) and write its weights to ``destination`` (a
    ``.safetensors`` path, local or object store) with a ``.json`` of the fit beside it.
    A finished fit there is reused: a resumed run does not fit again. One of another geometry
    (an older version's, fewer outputs) is fitted again, since no model of this code loads it."""
    if storage.exists(destination) and storage.exists(destination + ".json"):
        outputs = storage.read_json(destination + ".json").get("outputs")
        if outputs == GEOMETRY_FEATURES:
            log(f"geometry regressor: reusing {destination}")
            return destination
        log(f"geometry regressor: {destination} has {outputs or 'an older version of'} "
            f"geometry outputs, this code {GEOMETRY_FEATURES}: fitting it again")
    points, seens, ys, worlds = [], [], [], []
    for batch in train.select_columns(COLUMNS).iter_batches(batch_size=4096,
                                                            batch_format="numpy"):
        points.append(stack_column(batch[Column.KEYPOINTS_2D]).astype(np.float64))
        seens.append(stack_column(batch[Column.VISIBLE_2D]).astype(bool))
        ys.append(geometry_targets(batch))
        worlds.append(stack_column(batch[Column.KEYPOINTS_3D]).astype(np.float64))
    if not ys:
        raise ValueError("the training split has no rows: nothing to fit the geometry on")
    x, x_noisy, y, poses, seen = fit_pairs(np.concatenate(points), np.concatenate(seens),
                                           np.concatenate(worlds), torch.cat(ys), views,
                                           np.random.default_rng(seed))
    log(f"geometry regressor: fitting on {poses} training poses x {seen} views "
        f"({epochs} epochs)")
    model, losses = fit_regressor(x, y, epochs, seed, log, x_noisy)
    storage.write_bytes(destination, save(model.state_dict()))
    storage.write_bytes(destination + ".json", json.dumps(
        {"outputs": GEOMETRY_FEATURES, "poses": poses, "views": seen, "pairs": len(x),
         "epochs": epochs, "seed": seed,
         "keypoint_noise": KEYPOINT_NOISE, "loss": losses}).encode())
    return destination


def load_prefit(model: GeometryRegressor, uri: str) -> None:
    """Load a :func:`prefit` regressor's weights (safetensors: nothing is unpickled)."""
    model.load_state_dict(load(storage.read_bytes(uri)))

