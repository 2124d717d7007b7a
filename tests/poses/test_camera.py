import numpy as np

from p2l3d_core.poses.camera import Camera, look_at, random_camera


def test_look_at_puts_target_on_the_optical_axis():
    R, t = look_at(np.array([4.0, 0.0, 1.5]), np.array([0.0, 0.0, 1.0]))
    cam = Camera.from_matrices(np.array([[1000, 0, 500], [0, 1000, 400], [0, 0, 1]]), R, t,
                               1000, 800)
    uv, visible = cam.project(np.array([[0.0, 0.0, 1.0], [0.0, 0.0, 2.0], [0.0, 1.0, 1.0]]))
    assert np.allclose(uv[0], [500, 400])
    assert uv[1, 1] < uv[0, 1]  # higher in the world -> higher in the image (smaller v)
    # The camera looks along -x; world +y is then on the image's right... check handedness:
    assert uv[2, 0] > 500
    assert visible.all()


def test_points_behind_the_camera_are_not_visible():
    R, t = look_at(np.array([4.0, 0.0, 1.0]), np.array([0.0, 0.0, 1.0]))
    cam = Camera.from_matrices(np.eye(3) * [1000, 1000, 1] + [[0, 0, 500], [0, 0, 500], [0, 0, 0]],
                               R, t, 1000, 1000)
    uv, visible = cam.project(np.array([[8.0, 0.0, 1.0], [0.0, 50.0, 1.0]]))
    assert np.isnan(uv[0]).all() and not visible[0]
    assert not visible[1]  # in front but outside the frame


def test_world_camera_round_trip_and_dict_round_trip():
    cam = random_camera(np.random.default_rng(3))
    pts = np.random.default_rng(0).normal(size=(17, 3))
    assert np.allclose(cam.to_world(cam.to_camera(pts)), pts)
    again = Camera.from_dict(cam.to_dict())
    assert np.allclose(again.project(pts)[0], cam.project(pts)[0], equal_nan=True)


def test_random_camera_is_deterministic_and_varied():
    a = random_camera(np.random.default_rng(1))
    b = random_camera(np.random.default_rng(1))
    c = random_camera(np.random.default_rng(2))
    assert a == b and a != c
    dist = np.linalg.norm(a.position[:2])
    assert 3.0 <= dist <= 6.0
