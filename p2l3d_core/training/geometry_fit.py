"""The geometry regressor fitted on every training pose before the teacher trains.

The regressor (``models/geometry.py``) learns 2D keypoints -> the pose's geometry, which every
rendered pose has: it needs 3D, not language. The teacher stage streams the labelled rows alone
(a fifth of the quickstart's), and trained inside it the regressor saw ~20k poses and ended
with 14 degrees of bend error on the test split; a plain fit on all 6,357 training poses for
40 epochs reaches 10 (``benchmarks/geometry_from_2d.py``). So the driver fits it first, here,
on the whole training split (a small MLP: about a minute on 2 CPU cores for the quickstart),
writes it beside the run's checkpoints, and the teacher starts from it with the regressor
frozen; the student then refines it on every row against the teacher's geometry.
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
from p2l3d_core.models.inputs import pose_inputs, pose_inputs_3d
from p2l3d_core.models.losses import geometry_loss

FIT_EPOCHS = 40
FIT_BATCH = 128
FIT_LR = 1e-3
MAX_POSES = 200_000
"""Poses the fit reads at most (drawn at random beyond that): the study's 60k fit in minutes."""
COLUMNS = [Column.KEYPOINTS_2D, Column.VISIBLE_2D, Column.KEYPOINTS_3D, Column.CAMERA]


def geometry_pairs(batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch of rendered rows -> (2D keypoint features, their geometry from the 3D)."""
    x = pose_inputs(batch, "keypoints")["keypoints"]
    y = geometry_of_3d(pose_inputs_3d(batch, "keypoints")["keypoints"])
    return x, y


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
           log: Callable[[str], None] = print) -> str:
    """Fit the regressor on ``train`` (a Ray dataset of rendered rows, every row) and write its
    weights to ``destination`` (a ``.safetensors`` path, local or object store) with a
    ``.json`` of the fit beside it. A finished fit there is reused: a resumed run does not fit
    again."""
    if storage.exists(destination) and storage.exists(destination + ".json"):
        log(f"geometry regressor: reusing {destination}")
        return destination
    xs, ys = [], []
    for batch in train.select_columns(COLUMNS).iter_batches(batch_size=4096,
                                                            batch_format="numpy"):
        x, y = geometry_pairs(batch)
        xs.append(x)
        ys.append(y)
    if not xs:
        raise ValueError("the training split has no rows: nothing to fit the geometry on")
    x, y = torch.cat(xs), torch.cat(ys)
    if len(x) > MAX_POSES:
        keep = torch.from_numpy(np.random.default_rng(seed).choice(len(x), MAX_POSES,
                                                                   replace=False))
        x, y = x[keep], y[keep]
    log(f"geometry regressor: fitting on {len(x)} training poses ({epochs} epochs)")
    model, losses = fit_regressor(x, y, epochs, seed, log)
    storage.write_bytes(destination, save(model.state_dict()))
    storage.write_bytes(destination + ".json", json.dumps(
        {"poses": len(x), "epochs": epochs, "seed": seed, "loss": losses}).encode())
    return destination


def load_prefit(model: GeometryRegressor, uri: str) -> None:
    """Load a :func:`prefit` regressor's weights (safetensors: nothing is unpickled)."""
    model.load_state_dict(load(storage.read_bytes(uri)))

