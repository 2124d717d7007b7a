import numpy as np
import pytest

from p2l3d_core.poses import generator as g
from p2l3d_core.render import RenderConfig, decode_png, encode_png, render_2d, render_3d
from p2l3d_core.skeleton import J


@pytest.fixture(scope="module")
def pose():
    rec = g.generate_records(0, 3, 1)[0]
    uv, _ = rec.project()
    return rec, uv, rec.camera.to_camera(rec.joints_3d)


def test_images_have_the_configured_size_and_are_deterministic(pose):
    _, uv, cam = pose
    for size in (64, 128, 224):
        cfg = RenderConfig(image_size=size)
        a, b = render_2d(uv, cfg), render_2d(uv, cfg)
        assert a.shape == (size, size, 3) and a.dtype == np.uint8 and np.array_equal(a, b)
        c = render_3d(cam, cfg)
        assert c.shape == (size, size, 3) and np.array_equal(c, render_3d(cam, cfg))
        assert a.any() and c.any()


def test_2d_image_ignores_position_and_scale_in_the_photo(pose):
    _, uv, _ = pose
    assert np.array_equal(render_2d(uv), render_2d(uv * 2.0 + 300.0))


def test_left_and_right_are_drawn_in_different_colours(pose):
    _, uv, _ = pose
    only_left = uv.copy()
    only_left[[J["r_shoulder"], J["r_elbow"], J["r_wrist"]]] = np.nan
    only_right = uv.copy()
    only_right[[J["l_shoulder"], J["l_elbow"], J["l_wrist"]]] = np.nan
    colours = lambda img: {tuple(c) for c in img.reshape(-1, 3)}
    assert colours(render_2d(only_left)) != colours(render_2d(only_right))


def test_missing_joints_are_left_out(pose):
    _, uv, _ = pose
    gone = uv.copy()
    gone[J["l_wrist"]] = np.nan
    assert render_2d(gone).sum() < render_2d(uv).sum()
    assert not render_2d(np.full((17, 2), np.nan)).any()


def test_mirrored_depth_gives_same_2d_but_different_3d(pose):
    _, _, cam = pose
    mirrored = cam.copy()
    pelvis_z = cam[J["pelvis"], 2]
    mirrored[:, 2] = 2 * pelvis_z - cam[:, 2]
    # Their orthographic 2D (x, y) is the same by construction; the 3D image must tell them apart.
    assert not np.array_equal(render_3d(cam), render_3d(mirrored))


def test_infinite_coordinates_count_as_missing(pose):
    _, uv, cam = pose
    bad = uv.copy()
    bad[J["l_wrist"]] = np.inf
    gone = uv.copy()
    gone[J["l_wrist"]] = np.nan
    assert np.array_equal(render_2d(bad), render_2d(gone))
    bad3 = cam.copy()
    bad3[J["l_wrist"], 2] = np.inf
    gone3 = cam.copy()
    gone3[J["l_wrist"]] = np.nan
    assert np.array_equal(render_3d(bad3), render_3d(gone3))


def test_png_round_trip_is_lossless_and_bad_bytes_are_named(pose):
    _, uv, _ = pose
    img = render_2d(uv)
    assert np.array_equal(decode_png(encode_png(img)), img)
    with pytest.raises(ValueError, match="not a decodable image"):
        decode_png(b"not a png")
