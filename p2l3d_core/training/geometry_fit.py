"""The geometry regressor fitted on every training pose before the teacher trains.

The regressor (``models/geometry.py``) learns 2D keypoints -> the pose's geometry, which every
rendered pose has: it needs 3D, not language. The teacher stage streams the labelled rows alone
(a fifth of the quickstart's), and trained inside it the regressor saw ~20k poses and ended
with 14 degrees of bend error on the test split; a plain fit on all 6,357 training poses for
40 epochs reaches 10 (``benchmarks/geometry_from_2d.py``). So the driver fits it first, here,
on the whole training split (a small MLP: about a minute on 2 CPU cores for the quickstart),
writes it beside the run's checkpoints, and the teacher starts from it with the regressor
frozen; the student then refines it on every row against the teacher's geometry.

Each training pose is also filmed from :data:`EXTRA_VIEWS` more random cameras (the
generator's own framing cameras): the geometry is the body's, the same from every side, so
every view is a free training pair. A bent knee seen end-on is the case a 2D reading gets
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
from p2l3d_core.models.geometry import GeometryRegressor, geometry_of_3d
from p2l3d_core.models.inputs import pose_inputs, pose_inputs_3d, stack_column
from p2l3d_core.models.keypoints import KEYPOINT_FEATURES, keypoint_features
from p2l3d_core.models.losses import geometry_loss
from p2l3d_core.poses.camera import framing_camera

FIT_EPOCHS = 25
EXTRA_VIEWS = 8
"""Random cameras per training pose beyond the one it was rendered with (fewer where the
poses times the views would pass :data:`MAX_POSES`)."""
FIT_BATCH = 128
FIT_LR = 1e-3
MAX_POSES = 200_000
"""Pairs the fit reads at most, views included (poses drawn at random beyond that): the
study's 60k poses fit in minutes."""
COLUMNS = [Column.KEYPOINTS_2D, Column.VISIBLE_2D, Column.KEYPOINTS_3D, Column.CAMERA]


def geometry_pairs(batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch of rendered rows -> (2D keypoint features, their geometry from the 3D)."""
    x = pose_inputs(batch, "keypoints")["keypoints"]
    y = geometry_of_3d(pose_inputs_3d(batch, "keypoints")["keypoints"])
    return x, y


def other_views(joints_3d: np.ndarray, views: int, rng: np.random.Generator) -> torch.Tensor:
    """2D keypoint features of world poses ``(N, 17, 3)`` each filmed by ``views`` random
    framing cameras, view-major: ``(views * N, KEYPOINT_FEATURES)`` (row ``v * N + i`` is pose
    ``i``). Joints outside the frame are unseen, as when the dataset is rendered."""
    out = []
    for _ in range(views):
        uv, seen = zip(*(framing_camera(j, rng).project(j) for j in joints_3d))
        uv, seen = np.stack(uv), np.stack(seen)
        out.append(keypoint_features(np.where(seen[..., None], uv, np.nan), seen))
    return (torch.from_numpy(np.concatenate(out)) if out
            else torch.zeros(0, KEYPOINT_FEATURES))


def fit_regressor(x: torch.Tensor, y: torch.Tensor, epochs: int = FIT_EPOCHS, seed: int = 0,
                  log: Callable[[str], None] = print) -> tuple[GeometryRegressor, list[float]]:
    """A :class:`GeometryRegressor` fitted to ``x -> y`` (AdamW, the geometry loss); returns it
    and each epoch's mean loss."""
    torch.manual_seed(seed)
    model = GeometryRegressor(in_features=x.shape[1])
    opt = torch.optim.AdamW(model.parameters(), lr=FIT_LR, weight_decay=1e-4)
    generator = torch.Generator().manual_seed(seed)
    losses = []
    for epoch in range(epochs):
        total, count = 0.0, 0
        for rows in torch.randperm(len(x), generator=generator).split(FIT_BATCH):
            loss = geometry_loss(model(x[rows]), y[rows])
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
    A finished fit there is reused: a resumed run does not fit again."""
    if storage.exists(destination) and storage.exists(destination + ".json"):
        log(f"geometry regressor: reusing {destination}")
        return destination
    xs, ys, worlds = [], [], []
    for batch in train.select_columns(COLUMNS).iter_batches(batch_size=4096,
                                                            batch_format="numpy"):
        x, y = geometry_pairs(batch)
        xs.append(x)
        ys.append(y)
        worlds.append(stack_column(batch[Column.KEYPOINTS_3D]).astype(np.float64))
    if not xs:
        raise ValueError("the training split has no rows: nothing to fit the geometry on")
    x, y, world = torch.cat(xs), torch.cat(ys), np.concatenate(worlds)
    rng = np.random.default_rng(seed)
    if len(x) > MAX_POSES:
        keep = rng.choice(len(x), MAX_POSES, replace=False)
        x, y, world = x[torch.from_numpy(keep)], y[torch.from_numpy(keep)], world[keep]
    views = max(0, min(views, MAX_POSES // len(x) - 1))
    poses = len(x)
    if views:
        x = torch.cat([x, other_views(world, views, rng).to(x.dtype)])
        y = y.repeat(views + 1, 1)
    log(f"geometry regressor: fitting on {poses} training poses x {views + 1} views "
        f"({epochs} epochs)")
    model, losses = fit_regressor(x, y, epochs, seed, log)
    storage.write_bytes(destination, save(model.state_dict()))
    storage.write_bytes(destination + ".json", json.dumps(
        {"poses": poses, "views": views + 1, "pairs": len(x), "epochs": epochs, "seed": seed,
         "loss": losses}).encode())
    return destination


def load_prefit(model: GeometryRegressor, uri: str) -> None:
    """Load a :func:`prefit` regressor's weights (safetensors: nothing is unpickled)."""
    model.load_state_dict(load(storage.read_bytes(uri)))

