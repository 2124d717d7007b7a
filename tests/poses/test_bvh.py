"""BVH parsing, forward kinematics, units and conversion to H36M-17 records."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from p2l3d_core.poses.bvh import (
    CMU_UNIT_M,
    bvh_to_world,
    forward_kinematics,
    parse_bvh,
    read_bvh,
    unit_scale,
)
from p2l3d_core.skeleton import J

MOCAP = "mocap/"

# A hand-written two-bone arm: root at (0, 0, 0) with position channels, a shoulder rotated by
# Zrotation, an elbow with channels in XZY order, and an End Site.
TINY = """HIERARCHY
ROOT Hips
{
  OFFSET 0 0 0
  CHANNELS 6 Xposition Yposition Zposition Zrotation Yrotation Xrotation
  JOINT Arm
  {
    OFFSET 1 0 0
    CHANNELS 3 Zrotation Yrotation Xrotation
    JOINT Fore
    {
      OFFSET 2 0 0
      CHANNELS 3 Xrotation Zrotation Yrotation
      End Site
      {
        OFFSET 0 3 0
      }
    }
  }
}
MOTION
Frames: 2
Frame Time: 0.5
0 0 0 0 0 0  0 0 0  0 0 0
10 20 30 0 0 0  90 0 0  0 90 0
"""


def test_parse_and_fk_hand_built(tmp_path: Path) -> None:
    path = tmp_path / "tiny.bvh"
    path.write_text(TINY.replace("\n", "\r\n"))  # CRLF like the CMU files
    clip = parse_bvh(path)
    assert clip.names == ["Hips", "Arm", "Fore", "Fore_end"]
    assert clip.parents == [-1, 0, 1, 2]
    assert clip.channels[2] == ["Xrotation", "Zrotation", "Yrotation"] and clip.channels[3] == []
    assert clip.motion.shape == (2, 12) and clip.frame_time == 0.5
    pos = forward_kinematics(clip)
    np.testing.assert_allclose(pos[0], [[0, 0, 0], [1, 0, 0], [3, 0, 0], [3, 3, 0]], atol=1e-12)
    # frame 1: root moved to (10, 20, 30); Arm turned Rz(+90) maps its local +x to world +y;
    # Fore's channels (X Z Y) = (0, 90, 0) add another Rz(+90), so its global rotation is
    # Rz(180) and the end offset (0, 3, 0) points to world -y.
    np.testing.assert_allclose(pos[1, 1], [11, 20, 30], atol=1e-12)
    np.testing.assert_allclose(pos[1, 2], [11, 22, 30], atol=1e-12)
    np.testing.assert_allclose(pos[1, 3], [11, 19, 30], atol=1e-12)


def test_rotation_order_matters(tmp_path: Path) -> None:
    """Channels are composed in listed order: Z then X differs from X then Z."""
    zx = TINY.replace("Xrotation Zrotation Yrotation", "Zrotation Xrotation Yrotation")
    rows = "0 0 0 0 0 0  0 0 0  90 0 0\n0 0 0 0 0 0  0 0 0  90 0 0\n"
    a, b = tmp_path / "a.bvh", tmp_path / "b.bvh"
    head = "\n".join(TINY.splitlines()[:-2]) + "\n"
    a.write_text(head + rows.replace("90 0 0\n", "90 90 0\n"))
    b.write_text("\n".join(zx.splitlines()[:-2]) + "\n" + rows.replace("90 0 0\n", "90 90 0\n"))
    # a: Fore = Rx(90) @ Rz(90): (0,3,0) -> Rz -> (-3,0,0) -> Rx -> (-3,0,0); end at (0,0,0).
    # b: Fore = Rz(90) @ Rx(90): (0,3,0) -> Rx -> (0,0,3) -> Rz -> (0,0,3); end at (3,0,3).
    pa, pb = forward_kinematics(parse_bvh(a))[0, 3], forward_kinematics(parse_bvh(b))[0, 3]
    np.testing.assert_allclose(pa, [0, 0, 0], atol=1e-12)
    np.testing.assert_allclose(pb, [3, 0, 3], atol=1e-12)


def test_units_explicit_and_errors(tmp_path: Path) -> None:
    path = tmp_path / "tiny.bvh"
    path.write_text(TINY)
    clip = parse_bvh(path)
    assert unit_scale(clip, "cm") == (0.01, "cm")
    assert unit_scale(clip, "cmu") == (pytest.approx(0.0254 / 0.45), "cmu")
    with pytest.raises(ValueError):
        unit_scale(clip, "furlong")
    with pytest.raises(ValueError, match="units"):  # no ankle; rest height 0 fits no range
        unit_scale(clip, "auto")


def test_cmu_clip_matches_its_metre_copy(shared_file) -> None:
    """131_01 (CMU units) and scaled_131_01 (metres) give the same joints within 1 mm."""
    raw = parse_bvh(shared_file(MOCAP + "131_01.bvh"))
    scaled = parse_bvh(shared_file(MOCAP + "scaled_131_01.bvh"))
    assert unit_scale(raw) == (pytest.approx(CMU_UNIT_M), "cmu")
    assert unit_scale(scaled) == (1.0, "m")
    # thigh offset: 6.85026 CMU units == 0.386656 m (the y component of LeftKnee's offset)
    assert (raw.offsets[raw.index("LeftKnee"), 1] * CMU_UNIT_M
            == pytest.approx(-0.386656, abs=1e-5))  # file rounded to 6 digits
    a, _ = bvh_to_world(raw)
    b, _ = bvh_to_world(scaled)
    n = min(len(a), len(b))  # the metre copy repeats the last frame once (995 vs 994 rows)
    assert n == 994
    assert np.abs(a[:n] - b[:n]).max() < 1e-3  # measured 1.6e-5 m (6-decimal rounding)


def test_cmu_records_plausible(shared_file) -> None:
    records = read_bvh(shared_file(MOCAP + "131_01.bvh"), every=50, seed=1)
    assert len(records) == 20 and records[0].action == "131_01"
    assert records[1].meta["frame"] == 50 and records[0].meta["units"] == "cmu"
    joints = np.stack([r.joints_3d for r in records])
    assert not np.isnan(joints).any()
    thigh = np.linalg.norm(joints[:, J["l_knee"]] - joints[:, J["l_hip"]], axis=-1)
    assert ((thigh > 0.35) & (thigh < 0.5)).all()  # measured 0.411 m
    z = joints[..., 2]
    assert (z[:, J["head"]] > z[:, J["pelvis"]]).all()
    assert (z[:, J["pelvis"]] > z[:, [J["l_ankle"], J["r_ankle"]]].max(axis=1)).all()
    assert z.min() > 0.0  # joint centres rest above the floor
    assert 0.0 < z[:, [J["l_ankle"], J["r_ankle"]]].min() < 0.15
    for r in records:
        assert r.camera.project(r.joints_3d)[1].all()  # each camera frames its pose


def test_cmu_walk_direction_and_handedness(shared_file) -> None:
    """The subject walks forward: the body's forward axis (left x up, body frame) matches the
    direction of travel, which fails if the y-up -> z-up change mirrored the scene."""
    records = read_bvh(shared_file(MOCAP + "131_01.bvh"), every=10)
    joints = np.stack([r.joints_3d for r in records])
    left = joints[:, J["l_hip"]] - joints[:, J["r_hip"]]
    up = joints[:, J["thorax"]] - joints[:, J["pelvis"]]
    forward = np.cross(left, up)[:, :2].mean(axis=0)
    travel = (joints[-1, J["pelvis"]] - joints[0, J["pelvis"]])[:2]
    assert np.linalg.norm(travel) > 1.5  # measured 2.6 m
    assert forward @ travel / (np.linalg.norm(forward) * np.linalg.norm(travel)) > 0.9


def test_seed_and_action_arguments(shared_file) -> None:
    path = shared_file(MOCAP + "131_03.bvh")
    a = read_bvh(path, every=200, seed=5, action="hop")
    b = read_bvh(path, every=200, seed=5)
    assert a[0].action == "hop" and b[0].action == "131_03"
    assert [r.camera for r in a] == [r.camera for r in b]
    assert read_bvh(path, every=200, seed=6)[0].camera != a[0].camera


@pytest.mark.timeout(60)  # issue 25: bad data never hangs
@pytest.mark.parametrize("damage, message", [
    # One '}' missing: the rest would parse with the wrong parents (joints off by up to 0.10 m).
    (lambda t: t.replace("        OFFSET 0 3 0\n      }\n", "        OFFSET 0 3 0\n", 1),
     r"tiny.bvh:20: MOTION begins with 1 joint\(s\) not closed: the '\{' of Hips at line 3"),
    (lambda t: t.replace("}\nMOTION", "}\n}\nMOTION"), r"tiny.bvh:21: '\}' closes no joint"),
    # Cut at a line boundary: fewer rows than declared (101 of 994 were read silently).
    (lambda t: t.rsplit("10 20 30", 1)[0], r"tiny.bvh:22: 'Frames: 2' but 1 frame rows follow"),
    (lambda t: t.replace("0 90 0\n", "0 90\n"), r"tiny.bvh:25: frame 1 has 11 values"),
    (lambda t: t.replace("10 20 30", "10 twenty 30"),
     r"tiny.bvh:25: a motion value is not a finite number: 'twenty'"),
    (lambda t: t.replace("OFFSET 1 0 0", "OFFSET 1 x 0"), r"tiny.bvh:8: an OFFSET must be finite"),
    # nan and inf parse as floats; a NaN joint would be read as missing, without a word.
    (lambda t: t.replace("10 20 30", "10 nan 30"),
     r"tiny.bvh:25: a motion value is not a finite number: 'nan'"),
    (lambda t: t.replace("OFFSET 1 0 0", "OFFSET 1 inf 0"),
     r"tiny.bvh:8: an OFFSET must be finite"),
    (lambda t: t.replace("Frames: 2", "Frames: 2.5"),
     r"tiny.bvh:22: the Frames: count must be a whole number, got '2.5'"),
    (lambda t: t.split("MOTION")[0], r"tiny.bvh: no MOTION section"),
])
def test_a_damaged_file_is_refused_with_its_line(tmp_path: Path, damage, message) -> None:
    path = tmp_path / "tiny.bvh"
    damaged = damage(TINY)
    assert damaged != TINY
    path.write_text(damaged)
    with pytest.raises(ValueError, match=message):
        parse_bvh(path)


def test_a_binary_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "clip.bvh"
    path.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(ValueError, match="clip.bvh: not a text BVH file"):
        parse_bvh(path)


def test_one_subjects_clips_stand_their_ankles_at_one_height(shared_file) -> None:
    """CMU 131_01/02/03 are one subject on one floor, so a flat foot's ankle must stand at one
    height in all three, the generator's 7-10 cm. With the floor at each clip's lowest point
    (any end site, any frame) it stood at 12.1 / 16.1 / 8.1 cm: one toe marker of 131_02
    dipped 6.5 cm under every other frame, and the rules' 15 cm limit fell between clips."""
    standing = []
    for clip in ("131_01", "131_02", "131_03"):
        joints = np.stack([r.joints_3d for r in read_bvh(shared_file(MOCAP + clip + ".bvh"),
                                                         every=8)])
        lower = joints[:, [J["l_ankle"], J["r_ankle"]], 2].min(axis=1)
        standing.append(np.median(lower))
    assert max(standing) - min(standing) < 0.015, standing
    assert all(0.07 < h < 0.10 for h in standing), standing
