"""The geometry regressor fitted on every training pose before the teacher (geometry_fit.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from p2l3d_core.config import DatasetConfig
from p2l3d_core.dataset.build import build_table
from p2l3d_core.models.geometry import GeometryRegressor
from p2l3d_core.models.keypoints import LIMBS, keypoint_features
from p2l3d_core.poses.generator import generate_records
from p2l3d_core.training.geometry_fit import (
    fit_regressor,
    geometry_pairs,
    load_prefit,
    other_views,
    prefit,
)


@pytest.fixture(scope="module")
def table():
    return build_table(generate_records(5, 0, 1200), DatasetConfig(num_poses=1200,
                                                                  image_size=32)).table


def test_the_fit_learns_the_bends_from_2d_better_than_guessing_their_mean(table):
    """Fitted on 1,000 generated poses, the regressor reads the bends of 200 others closer than
    their mean angle does (in tens of degrees, as the head reads them)."""
    batch = {k: v.to_numpy(zero_copy_only=False) for k, v in zip(table.column_names,
                                                                  table.columns)}
    x, y = geometry_pairs(batch)
    model, losses = fit_regressor(x[:1000], y[:1000], epochs=40, log=lambda _: None)
    assert losses[-1] < 0.5 * losses[0]
    with torch.no_grad():
        error = (model(x[1000:])[:, :len(LIMBS)] - y[1000:, :len(LIMBS)]).abs().mean()
    spread = (y[1000:, :len(LIMBS)] - y[:1000, :len(LIMBS)].mean(0)).abs().mean()
    assert error < 0.5 * spread, (float(error), float(spread))


def test_prefit_writes_the_regressor_once_and_a_resumed_run_reuses_it(table, ray_local,
                                                                      tmp_path):
    import ray

    dataset = ray.data.from_arrow(table)
    path = str(tmp_path / "teacher-geometry.safetensors")
    logs: list[str] = []
    assert prefit(dataset, path, epochs=2, log=logs.append) == path
    meta = json.loads((tmp_path / "teacher-geometry.safetensors.json").read_text())
    assert meta["poses"] == 1200 and meta["epochs"] == 2 and len(meta["loss"]) == 2
    assert meta["views"] == 9 and meta["pairs"] == 9 * 1200  # each pose from 8 more cameras
    model = GeometryRegressor()
    load_prefit(model, path)
    batch = {k: v.to_numpy(zero_copy_only=False) for k, v in zip(table.column_names,
                                                                  table.columns)}
    x, _ = geometry_pairs(batch)
    assert np.isfinite(model(x[:4]).detach().numpy()).all()
    before = (tmp_path / "teacher-geometry.safetensors").read_bytes()
    prefit(dataset, path, epochs=2, log=logs.append)
    assert (tmp_path / "teacher-geometry.safetensors").read_bytes() == before
    assert any("reusing" in line for line in logs)


def test_other_views_film_each_pose_from_new_cameras_with_its_geometry_unchanged(table):
    """The prefit's extra pairs: the same bodies through other random framing cameras. Their
    2D differs from the rendered view's, while the geometry target (the body's) is the one
    every view shares; the features are those the dataset's own keypoints give."""
    batch = {k: v.to_numpy(zero_copy_only=False) for k, v in zip(table.column_names,
                                                                  table.columns)}
    x, _ = geometry_pairs(batch)
    world = np.stack([np.stack(list(j)) for j in batch["keypoints_3d"][:50]]).astype(float)
    views = other_views(world, 2, np.random.default_rng(0))
    assert views.shape == (100, x.shape[1]) and torch.isfinite(views).all()
    assert not torch.allclose(views[:50], views[50:])  # two different cameras
    assert (views[:50] - x[:50]).abs().mean() > 0.05  # not the rendered view again
    # the dataset's keypoints through the same function give the same features
    rendered = np.stack([np.stack(list(k)) for k in batch["keypoints_2d"][:50]]).astype(float)
    seen = np.stack([np.asarray(v) for v in batch["visible_2d"][:50]])
    torch.testing.assert_close(torch.from_numpy(keypoint_features(rendered, seen)), x[:50])
    # bends in the image differ between views, while the 3D bend each view learns is one
    bends_2d = views[:, -len(LIMBS):]
    assert (bends_2d[:50] - bends_2d[50:]).abs().max() > 0.1
