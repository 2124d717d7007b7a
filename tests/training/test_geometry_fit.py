"""The geometry regressor fitted on every training pose before the teacher (geometry_fit.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from p2l3d_core.config import DatasetConfig
from p2l3d_core.dataset.build import build_table
from p2l3d_core.models.geometry import GEOMETRY_COLUMNS, GeometryRegressor
from p2l3d_core.models.keypoints import (
    FACING_COLUMNS,
    GEOMETRY_FEATURES,
    LIMBS,
    keypoint_features,
)
from p2l3d_core.poses.generator import generate_records
from p2l3d_core.training.geometry_fit import (
    KEYPOINT_NOISE,
    fit_pairs,
    fit_regressor,
    geometry_pairs,
    load_prefit,
    noisy_features,
    other_views,
    prefit,
    view_geometry,
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
    assert meta["keypoint_noise"] == KEYPOINT_NOISE
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
    # an older version's fit (another number of outputs) is fitted again, not loaded
    meta_path = tmp_path / "teacher-geometry.safetensors.json"
    meta_path.write_text(json.dumps({k: v for k, v in meta.items() if k != "outputs"}))
    prefit(dataset, path, epochs=1, log=logs.append)
    assert any("fitting it again" in line for line in logs)
    assert json.loads(meta_path.read_text())["outputs"] == GEOMETRY_FEATURES
    load_prefit(GeometryRegressor(), path)


FACING = [GEOMETRY_COLUMNS.index(c) for c in FACING_COLUMNS]
BODY = [k for k in range(GEOMETRY_FEATURES) if k not in FACING]
"""The geometry's columns of the body, the same from every camera, and of the camera's
direction, which each view measures again."""


def test_other_views_film_each_pose_from_new_cameras_with_its_body_geometry_unchanged(table):
    """The prefit's extra pairs: the same bodies through other random framing cameras. Their
    2D differs from the rendered view's, while the body's geometry is the one every view
    shares and only the camera's direction changes; the features are those the dataset's own
    keypoints give."""
    batch = {k: v.to_numpy(zero_copy_only=False) for k, v in zip(table.column_names,
                                                                  table.columns)}
    x, y = geometry_pairs(batch)
    world = np.stack([np.stack(list(j)) for j in batch["keypoints_3d"][:50]]).astype(float)
    views, targets = other_views(world, 2, np.random.default_rng(0))
    assert views.shape == (100, x.shape[1]) and torch.isfinite(views).all()
    torch.testing.assert_close(targets[:, BODY], y[:50, BODY].repeat(2, 1))
    assert (targets[:50, FACING] - targets[50:, FACING]).abs().max() > 1.0  # other sides
    # each view's camera direction is that view's camera's, row by row (the cameras drawn
    # again: other_views draws them first from its rng, view-major)
    from p2l3d_core.language.posecodes import facing_degrees
    from p2l3d_core.poses.camera import framing_camera

    rng = np.random.default_rng(0)
    centres = np.stack([framing_camera(j, rng).position for _ in range(2) for j in world])
    angle = np.radians(facing_degrees(np.tile(world, (2, 1, 1)), centres))
    expected = 10 * np.nan_to_num(np.stack([np.cos(angle), np.sin(angle)], -1), nan=0.0)
    np.testing.assert_allclose(targets[:, FACING].numpy(), expected, atol=1e-4)
    assert not torch.allclose(views[:50], views[50:])  # two different cameras
    assert (views[:50] - x[:50]).abs().mean() > 0.05  # not the rendered view again
    # the dataset's keypoints through the same function give the same features
    rendered = np.stack([np.stack(list(k)) for k in batch["keypoints_2d"][:50]]).astype(float)
    seen = np.stack([np.asarray(v) for v in batch["visible_2d"][:50]])
    torch.testing.assert_close(torch.from_numpy(keypoint_features(rendered, seen)), x[:50])
    # bends in the image differ between views, while the 3D bend each view learns is one
    bends_2d = views[:, -len(LIMBS):]
    assert (bends_2d[:50] - bends_2d[50:]).abs().max() > 0.1


def _rendered(table):
    batch = {k: v.to_numpy(zero_copy_only=False) for k, v in zip(table.column_names,
                                                                  table.columns)}
    points = np.stack([np.stack(list(k)) for k in batch["keypoints_2d"]]).astype(float)
    seen = np.stack([np.asarray(v) for v in batch["visible_2d"]]).astype(bool)
    world = np.stack([np.stack(list(j)) for j in batch["keypoints_3d"]]).astype(float)
    return batch, points, seen, world


def test_fit_pairs_add_each_poses_other_views_and_keep_within_the_pair_cap(table, monkeypatch):
    """The rendered views first, then each pose's extra views (view-major) with the pose's own
    body geometry and each view's camera direction; past the cap, poses are drawn and the
    views cut, never the other way round."""
    from p2l3d_core.training import geometry_fit

    batch, points, seen, world = _rendered(table)
    x, y = geometry_pairs(batch)
    xs, noisy, ys, poses, views = fit_pairs(points[:40], seen[:40], world[:40], y[:40], 3,
                                            np.random.default_rng(0), noise=0.0)
    assert noisy is xs
    assert (poses, views) == (40, 4) and xs.shape == (160, x.shape[1])
    torch.testing.assert_close(xs[:40], x[:40])  # without noise: the dataset's own features
    torch.testing.assert_close(ys[:40], y[:40])
    torch.testing.assert_close(ys[40:80, BODY], y[:40, BODY])
    assert not torch.allclose(ys[40:80, FACING], y[:40, FACING])
    # a view's geometry is read as the teacher reads a rendered row's
    from p2l3d_core.poses.camera import Camera

    cameras = [Camera.from_dict(c) for c in batch["camera"][:40]]
    torch.testing.assert_close(view_geometry(world[:40], cameras), y[:40])
    monkeypatch.setattr(geometry_fit, "MAX_POSES", 100)
    xs, noisy, ys, poses, views = fit_pairs(points[:40], seen[:40], world[:40], y[:40], 8,
                                            np.random.default_rng(0))
    assert (poses, views) == (40, 2) and len(xs) == len(noisy) == len(ys) == 80  # 100 // 40 - 1
    xs, _, ys, poses, views = fit_pairs(points[:300], seen[:300], world[:300], y[:300], 8,
                                        np.random.default_rng(0))
    assert (poses, views) == (100, 1) and len(xs) == 100  # drawn down to the cap, no views


def test_the_heights_are_fitted_from_keypoints_with_a_detectors_noise(table):
    """Each pair has its exact features and, for the heights and the camera's direction (the
    NOISY columns), features of
    the same keypoints moved by the noise (a share of the pose's extent): they differ by about
    that much, unseen joints stay unseen, the geometry each pair learns is the body's; and
    the fit reads the heights from the noisy ones, the rest from the exact."""
    from p2l3d_core.training.geometry_fit import NOISY

    batch, points, seen, world = _rendered(table)
    exact = noisy_features(points, seen, 0.0, np.random.default_rng(0))
    noisy = noisy_features(points, seen, 0.02, np.random.default_rng(0))
    coords = np.arange(exact.shape[1]) < 17 * 3
    coords &= np.arange(exact.shape[1]) % 3 != 2  # x and y, not the visibility flags
    change = np.abs(noisy - exact)[:, coords].mean()
    assert 0.005 < change < 0.05, change  # ~2 % of the extent, before normalising
    np.testing.assert_array_equal(noisy[:, 2:51:3], exact[:, 2:51:3])
    _, y = geometry_pairs(batch)
    x, x_noisy, ys, _, _ = fit_pairs(points[:50], seen[:50], world[:50], y[:50], 1,
                                     np.random.default_rng(0))
    torch.testing.assert_close(ys[:, BODY], y[:50, BODY].repeat(2, 1))
    assert not torch.equal(x, x_noisy)
    assert [GEOMETRY_COLUMNS[k] for k in NOISY] == [
        "l_ankle_height", "r_ankle_height", "l_knee_height", "r_knee_height", *FACING_COLUMNS]
    # the heights are learnt from the noisy features alone: the same features twice fit as
    # a plain fit does, and noise-only ones leave the heights unlearnt while the bends learn
    x, y = x[:100], ys[:100]
    plain, _ = fit_regressor(x, y, epochs=3, log=lambda _: None)
    twice, _ = fit_regressor(x, y, epochs=3, log=lambda _: None, x_noisy=x)
    for a, b in zip(plain.parameters(), twice.parameters()):
        torch.testing.assert_close(a, b)
    learnt, _ = fit_regressor(x, y, epochs=300, log=lambda _: None)
    blind, _ = fit_regressor(x, y, epochs=300, log=lambda _: None,
                             x_noisy=torch.randn_like(x))

    @torch.no_grad()
    def error(model, columns):
        return float((model(x)[:, columns] - y[:, columns]).abs().mean())

    assert error(blind, list(NOISY)) > 2 * error(learnt, list(NOISY))
    assert error(blind, slice(0, 4)) < 2 * error(learnt, slice(0, 4)) + 0.2


def test_prefit_of_an_empty_training_split_is_a_clear_error(table, ray_local, tmp_path):
    import ray

    empty = ray.data.from_arrow(table.slice(0, 0))
    with pytest.raises(ValueError, match="training split has no rows"):
        prefit(empty, str(tmp_path / "g.safetensors"), epochs=1, log=lambda _: None)
    assert not (tmp_path / "g.safetensors").exists()


def test_the_cameras_direction_has_its_own_mlp_in_its_own_columns():
    """The regressor's second MLP gives the facing columns and nothing else; the body's MLP the
    rest, in GEOMETRY_COLUMNS' order."""
    torch.manual_seed(0)
    model = GeometryRegressor()
    x = torch.randn(5, model.net[0].in_features)
    with torch.no_grad():
        before = model(x)
        model.facing[-1].bias += 1.0
        after = model(x)
    assert before.shape == (5, GEOMETRY_FEATURES)
    changed = (after - before).abs().amax(0) > 0.5
    assert changed.nonzero().flatten().tolist() == FACING
