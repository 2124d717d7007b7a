import numpy as np
import pytest

from p2l3d_core.poses import generator as g
from p2l3d_core.skeleton import BONES, J


def _bone_lengths(joints):
    return np.array([np.linalg.norm(joints[c] - joints[p]) for c, p in BONES])


def test_at_least_fifteen_action_families():
    assert len(g.ACTIONS) >= 15 and len(set(g.ACTIONS)) == len(g.ACTIONS)


def test_deterministic_by_seed_and_index_independent_of_sharding():
    a = g.generate_records(7, 0, 40)
    b = g.generate_records(7, 20, 20)
    assert [r.pose_id for r in a[20:]] == [r.pose_id for r in b]
    for x, y in zip(a[20:], b):
        assert np.array_equal(x.joints_3d, y.joints_3d) and x.camera == y.camera
    c = g.generate_records(8, 20, 20)
    assert not np.allclose(a[20].joints_3d, c[0].joints_3d)


@pytest.mark.parametrize("action", g.ACTIONS)
def test_every_family_gives_plausible_bodies(action):
    for i in range(20):
        joints, camera = g.generate_pose(np.random.default_rng([1, i]), action)
        assert joints.shape == (17, 3) and np.isfinite(joints).all()
        lengths = _bone_lengths(joints)
        assert lengths.min() > 0.05 and lengths.max() < 0.65  # metres
        assert joints[:, 2].min() >= -1e-9  # nobody is below the ground
        _uv, visible = camera.project(joints)
        assert visible.mean() > 0.9  # the camera films the person


def test_bone_lengths_vary_between_people_but_pairs_stay_symmetric():
    thighs = []
    for i in range(30):
        joints, _ = g.generate_pose(np.random.default_rng([2, i]), "standing",
                                    g.GeneratorConfig(twin_prob=0))
        left = np.linalg.norm(joints[J["l_knee"]] - joints[J["l_hip"]])
        right = np.linalg.norm(joints[J["r_knee"]] - joints[J["r_hip"]])
        assert abs(left - right) < 1e-9
        thighs.append(left)
    assert np.ptp(thighs) > 0.05


def test_actions_have_their_own_shapes():
    def mean_pose(action, key):
        return np.mean([key(g.generate_pose(np.random.default_rng([3, i]), action)[0])
                        for i in range(30)])

    pelvis_height = lambda j: j[J["pelvis"], 2]
    hand_height = lambda j: max(j[J["l_wrist"], 2], j[J["r_wrist"], 2]) - j[J["head"], 2]
    assert mean_pose("standing", pelvis_height) > 0.8
    assert mean_pose("sitting", pelvis_height) < mean_pose("standing", pelvis_height) - 0.25
    assert mean_pose("lying", pelvis_height) < 0.35
    assert mean_pose("jumping", lambda j: j[:, 2].min()) > 0.1  # off the ground
    assert mean_pose("reaching_up", hand_height) > 0.1  # a hand above the head
    assert mean_pose("standing", hand_height) < -0.3


def test_random_heading_covers_all_directions():
    headings = []
    for i in range(60):
        joints, _ = g.generate_pose(np.random.default_rng([4, i]), "standing")
        left = joints[J["l_hip"]] - joints[J["r_hip"]]
        headings.append(np.arctan2(left[1], left[0]))
    hist, _ = np.histogram(headings, bins=4, range=(-np.pi, np.pi))
    assert hist.min() >= 5


def test_depth_twin_keeps_2d_and_bones_but_swaps_front_and_back():
    """The ambiguity 2D cannot resolve: same silhouette, hand in front vs behind."""
    rng = np.random.default_rng(5)
    angles = g.BodyAngles()
    angles.arms["l"] = g.Limb(flex=50, abd=10, bend=30)  # left hand well in front of the body
    body = g.forward_kinematics(angles, g.NOMINAL_BONES)
    world = g.place_in_world(body, heading_deg=0.0, lying=None, lift=0.0)  # facing +x
    from p2l3d_core.poses.camera import Camera, look_at

    R, t = look_at(np.array([5.0, 0.0, 1.2]), np.array([0.0, 0.0, 1.0]))  # camera in front
    cam = Camera.from_matrices(np.array([[1200, 0, 500], [0, 1200, 500], [0, 0, 1]]), R, t,
                               1000, 1000)
    twin = g.depth_twin(world, cam, g.ARM_CHAINS[0])
    assert np.allclose(_bone_lengths(twin), _bone_lengths(world))
    uv, _ = cam.project(world)
    uv_twin, _ = cam.project(twin)
    assert np.abs(uv - uv_twin).max() < 25  # pixels, perspective only
    assert world[J["l_wrist"], 0] > world[J["thorax"], 0] + 0.1  # in front (body faces +x)
    assert twin[J["l_wrist"], 0] < world[J["thorax"], 0]  # behind
    del rng


def test_generated_set_contains_depth_twins():
    cfg = g.GeneratorConfig(twin_prob=1.0)
    plain = g.GeneratorConfig(twin_prob=0.0)
    changed = 0
    for i in range(20):
        a, _ = g.generate_pose(np.random.default_rng([6, i]), "pointing", cfg)
        b, _ = g.generate_pose(np.random.default_rng([6, i]), "pointing", plain)
        changed += not np.allclose(a, b)
    assert changed >= 15


def test_unknown_action_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown action 'flying'"):
        g.generate_pose(np.random.default_rng(0), "flying")
