"""Procedural 3D poses: a kinematic body, action families, random cameras, depth ambiguity.

Why a generator: real 3D data with language is scarce, and a generator gives unlimited poses
whose 3D truth is exact, with the ambiguities that make 2D hard (a hand in front of or behind
the torso, a leg towards or away from the camera) occurring on purpose.

The body is built in its own frame (``x`` forward, ``y`` left, ``z`` up, pelvis at the origin)
by forward kinematics from joint angles (degrees) and bone lengths, then turned to a random
heading, laid down for ``lying``, and put on the ground (``z = 0``) at the world origin.
Every pose is a pure function of ``(seed, index)``, so shards can be built in any order.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from p2l3d_core.poses.camera import Camera, CameraRanges, framing_camera
from p2l3d_core.poses.record import PoseRecord
from p2l3d_core.skeleton import NUM_JOINTS, J

ACTIONS: tuple[str, ...] = (
    "standing", "walking", "running", "sitting", "squatting", "kneeling", "lying", "jumping",
    "reaching_up", "waving", "pointing", "bending_forward", "lunging", "arms_crossed",
    "phoning", "taking_photo", "kicking", "balancing",
)

# Bone lengths (metres) of a 1.75 m adult, close to Human3.6M subject means.
NOMINAL_BONES: dict[str, float] = {
    "hip_half_width": 0.12, "thigh": 0.44, "shin": 0.44, "lower_spine": 0.23,
    "upper_spine": 0.25, "neck": 0.11, "head": 0.115, "shoulder_half_width": 0.16,
    "upper_arm": 0.28, "forearm": 0.25,
}

# Anatomical limits (degrees) applied to every sampled angle.
LIMITS: dict[str, tuple[float, float]] = {
    "hip_flex": (-45.0, 140.0), "hip_abd": (-20.0, 70.0), "knee": (0.0, 160.0),
    "sh_flex": (-60.0, 180.0), "sh_abd": (-30.0, 180.0), "elbow": (0.0, 155.0),
    "sh_rot": (-90.0, 90.0), "bend": (-30.0, 110.0), "lean": (-35.0, 35.0), "twist": (-45.0, 45.0),
}
SIDES = ("l", "r")


def _rx(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[1.0, 0, 0], [0, c, -s], [0, s, c]])


def _ry(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, 0, s], [0, 1.0, 0], [-s, 0, c]])


def _rz(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]])


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cross product of two 3-vectors (``np.cross`` costs ~40 us a call on tiny inputs)."""
    return np.array([a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2],
                     a[0] * b[1] - a[1] * b[0]])


def _rodrigues(v: np.ndarray, axis: np.ndarray, angle: float) -> np.ndarray:
    return (v * np.cos(angle) + _cross(axis, v) * np.sin(angle)
            + axis * (axis @ v) * (1 - np.cos(angle)))


_DOWN = np.array([0.0, 0.0, -1.0])
_FORWARD = np.array([1.0, 0.0, 0.0])


@dataclass
class Limb:
    """Angles of one arm or leg. ``flex`` swings it forward (+) or back (-) from hanging down,
    ``abd`` lifts it outward, ``bend`` is the elbow/knee flexion, ``rot`` the inward twist that
    picks the direction the forearm bends (arms only). ``target`` (torso frame, metres from the
    shoulder) overrides the angles with two-bone inverse kinematics."""

    flex: float = 0.0
    abd: float = 5.0
    bend: float = 5.0
    rot: float = 0.0
    target: np.ndarray | None = None
    pole: np.ndarray | None = None


@dataclass
class BodyAngles:
    """Everything that shapes one pose, in degrees (body frame)."""

    arms: dict[str, Limb] = field(default_factory=lambda: {s: Limb() for s in SIDES})
    legs: dict[str, Limb] = field(default_factory=lambda: {s: Limb(abd=3.0) for s in SIDES})
    bend: float = 0.0  # torso pitch forward at the hips
    lean: float = 0.0  # torso roll towards the person's left
    twist: float = 0.0  # torso yaw towards the left
    head_pitch: float = 0.0
    lift: float = 0.0  # metres above the ground (jumps, running flight)
    lying: str | None = None  # "back", "front", "left", "right"


def _limb_direction(flex: float, abd: float, side: str) -> tuple[np.ndarray, np.ndarray]:
    """Rotation taking a hanging limb to (flex, abd); returns the limb direction and the
    transported 'forward' direction, which is where the elbow/knee bends from by default."""
    sign = 1.0 if side == "l" else -1.0
    rot = _ry(-np.deg2rad(flex)) @ _rx(sign * np.deg2rad(abd))
    return rot @ _DOWN, rot @ _FORWARD


def _two_bone_ik(root: np.ndarray, target: np.ndarray, l1: float, l2: float,
                 pole: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Middle and end joint of a two-bone chain reaching for ``target`` (clamped to reach),
    with the middle joint pushed towards ``pole``."""
    delta = target - root
    d = float(np.linalg.norm(delta))
    d = float(np.clip(d, abs(l1 - l2) + 1e-3, l1 + l2 - 1e-3))
    axis = delta / max(np.linalg.norm(delta), 1e-9)
    a = (l1 * l1 - l2 * l2 + d * d) / (2 * d)
    h = np.sqrt(max(l1 * l1 - a * a, 0.0))
    perp = pole - axis * (pole @ axis)
    if np.linalg.norm(perp) < 1e-6:
        perp = _cross(axis, np.array([0.0, 1.0, 0.0]))
    perp /= np.linalg.norm(perp)
    middle = root + axis * a + perp * h
    return middle, root + axis * d


def _clip(name: str, value: float) -> float:
    lo, hi = LIMITS[name]
    return min(max(float(value), lo), hi)


def forward_kinematics(angles: BodyAngles, bones: dict[str, float]) -> np.ndarray:
    """Joint positions ``(17, 3)`` in the body frame (pelvis at the origin)."""
    out = np.zeros((NUM_JOINTS, 3))
    bend, lean, twist = (np.deg2rad(_clip(k, getattr(angles, k)))
                         for k in ("bend", "lean", "twist"))
    torso = _rz(twist) @ _ry(bend) @ _rx(-lean)
    half = _rz(twist / 2) @ _ry(bend / 2) @ _rx(-lean / 2)
    out[J["spine"]] = half @ np.array([0, 0, bones["lower_spine"]])
    out[J["thorax"]] = out[J["spine"]] + torso @ np.array([0, 0, bones["upper_spine"]])
    head = torso @ _ry(np.deg2rad(angles.head_pitch))
    out[J["neck"]] = out[J["thorax"]] + head @ np.array([0.04, 0, bones["neck"]])
    out[J["head"]] = out[J["neck"]] + head @ np.array([-0.03, 0, bones["head"]])

    for side in SIDES:
        sign = 1.0 if side == "l" else -1.0
        # Legs hang from the pelvis frame.
        leg = angles.legs[side]
        hip = np.array([0.0, sign * bones["hip_half_width"], -0.02])
        thigh, fwd = _limb_direction(_clip("hip_flex", leg.flex), _clip("hip_abd", leg.abd), side)
        knee_bend = np.deg2rad(_clip("knee", leg.bend))
        shin = np.cos(knee_bend) * thigh - np.sin(knee_bend) * fwd  # knees bend backwards
        out[J[f"{side}_hip"]] = hip
        out[J[f"{side}_knee"]] = hip + thigh * bones["thigh"]
        out[J[f"{side}_ankle"]] = out[J[f"{side}_knee"]] + shin * bones["shin"]

        # Arms hang from the torso frame.
        arm = angles.arms[side]
        shoulder = out[J["thorax"]] + torso @ np.array([0.0, sign * bones["shoulder_half_width"],
                                                        -0.03])
        if arm.target is not None:
            pole = arm.pole if arm.pole is not None else np.array([-0.3, sign * 0.7, -1.0])
            elbow, wrist = _two_bone_ik(shoulder, shoulder + torso @ arm.target, bones["upper_arm"],
                                        bones["forearm"], torso @ pole)
        else:
            upper, fwd = _limb_direction(_clip("sh_flex", arm.flex), _clip("sh_abd", arm.abd), side)
            upper, fwd = torso @ upper, torso @ fwd
            bend_dir = _rodrigues(fwd, upper, sign * np.deg2rad(_clip("sh_rot", arm.rot)))
            elbow_bend = np.deg2rad(_clip("elbow", arm.bend))
            fore = np.cos(elbow_bend) * upper + np.sin(elbow_bend) * bend_dir
            elbow = shoulder + upper * bones["upper_arm"]
            wrist = elbow + fore * bones["forearm"]
        (out[J[f"{side}_shoulder"]], out[J[f"{side}_elbow"]],
         out[J[f"{side}_wrist"]]) = shoulder, elbow, wrist
    return out


# ---------------------------------------------------------------------------------------------
# Action families: each samples a BodyAngles. U(a, b) ranges are in degrees.


def _relaxed_arm(rng: np.random.Generator, front_back: float = 35.0) -> Limb:
    """A loosely hanging arm that swings both in front of and behind the body plane."""
    return Limb(flex=rng.uniform(-front_back, front_back), abd=rng.uniform(0, 25),
                bend=rng.uniform(0, 45), rot=rng.uniform(-20, 40))


def _standing_leg(rng: np.random.Generator) -> Limb:
    return Limb(flex=rng.uniform(-8, 12), abd=rng.uniform(0, 12), bend=rng.uniform(0, 12))


def _other(side: str) -> str:
    return "r" if side == "l" else "l"


def _base(rng: np.random.Generator) -> BodyAngles:
    a = BodyAngles()
    a.arms = {s: _relaxed_arm(rng) for s in SIDES}
    a.legs = {s: _standing_leg(rng) for s in SIDES}
    a.bend, a.lean, a.twist = rng.uniform(-8, 10), rng.uniform(-8, 8), rng.uniform(-15, 15)
    a.head_pitch = rng.uniform(-15, 20)
    return a


def _standing(rng: np.random.Generator) -> BodyAngles:
    """Standing, a third of the time with a clear lean back or to a side (so those codes and
    answers occur in the data at all)."""
    a = _base(rng)
    u = rng.random()
    if u < 0.15:
        a.bend = rng.uniform(-30, -15)
    elif u < 0.33:
        a.lean = float(rng.choice([-1, 1])) * rng.uniform(15, 30)
    return a


def _gait(rng: np.random.Generator, hip_amp: float, arm_amp: float, knees: tuple, elbows: tuple,
          bend: tuple) -> BodyAngles:
    a = _base(rng)
    phase = rng.uniform(-1, 1)
    front = "l" if phase > 0 else "r"
    a.legs[front] = Limb(flex=abs(phase) * hip_amp, abd=rng.uniform(0, 6),
                         bend=rng.uniform(*knees[0]))
    a.legs[_other(front)] = Limb(flex=-abs(phase) * hip_amp * 0.7, abd=rng.uniform(0, 6),
                                 bend=rng.uniform(*knees[1]))
    a.arms[front] = Limb(flex=-abs(phase) * arm_amp, abd=rng.uniform(3, 15),
                         bend=rng.uniform(*elbows), rot=rng.uniform(0, 30))
    a.arms[_other(front)] = Limb(flex=abs(phase) * arm_amp, abd=rng.uniform(3, 15),
                                 bend=rng.uniform(*elbows), rot=rng.uniform(0, 30))
    a.bend = rng.uniform(*bend)
    return a


def _walking(rng: np.random.Generator) -> BodyAngles:
    return _gait(rng, 30, 35, ((0, 15), (5, 35)), (5, 35), (-3, 8))


def _running(rng: np.random.Generator) -> BodyAngles:
    a = _gait(rng, 55, 55, ((20, 70), (50, 120)), (75, 105), (5, 22))
    a.lift = rng.uniform(0.0, 0.15)
    return a


def _sitting(rng: np.random.Generator) -> BodyAngles:
    a = _base(rng)
    for s in SIDES:
        a.legs[s] = Limb(flex=rng.uniform(75, 100), abd=rng.uniform(0, 20),
                         bend=rng.uniform(65, 110))
        a.arms[s] = Limb(flex=rng.uniform(10, 55), abd=rng.uniform(0, 20),
                         bend=rng.uniform(40, 100),
                         rot=rng.uniform(0, 45))
    a.bend = rng.uniform(-12, 20)
    return a


def _squatting(rng: np.random.Generator) -> BodyAngles:
    a = _base(rng)
    for s in SIDES:
        a.legs[s] = Limb(flex=rng.uniform(95, 130), abd=rng.uniform(10, 30),
                         bend=rng.uniform(105, 145))
        a.arms[s] = Limb(flex=rng.uniform(20, 90), abd=rng.uniform(0, 25), bend=rng.uniform(0, 70))
    a.bend = rng.uniform(20, 50)
    return a


def _kneeling(rng: np.random.Generator) -> BodyAngles:
    a = _base(rng)
    if rng.random() < 0.5:  # both knees down, shins back along the floor
        for s in SIDES:
            a.legs[s] = Limb(flex=rng.uniform(-5, 15), abd=rng.uniform(0, 10),
                             bend=rng.uniform(80, 100))
    else:  # one knee down, the other foot planted in front
        up = SIDES[int(rng.integers(2))]
        a.legs[up] = Limb(flex=rng.uniform(80, 100), abd=rng.uniform(0, 15),
                          bend=rng.uniform(80, 100))
        a.legs[_other(up)] = Limb(flex=rng.uniform(-10, 5), abd=rng.uniform(0, 10),
                                  bend=rng.uniform(85, 100))
    a.bend = rng.uniform(-5, 15)
    return a


def _lying(rng: np.random.Generator) -> BodyAngles:
    a = _base(rng)
    for s in SIDES:
        a.arms[s] = Limb(flex=rng.uniform(-10, 60), abd=rng.uniform(0, 90), bend=rng.uniform(0, 60),
                         rot=rng.uniform(-30, 30))
        a.legs[s] = Limb(flex=rng.uniform(-5, 40), abd=rng.uniform(0, 20), bend=rng.uniform(0, 60))
    a.bend = rng.uniform(-5, 10)
    a.lying = str(rng.choice(["back", "front", "left", "right"]))
    return a


def _jumping(rng: np.random.Generator) -> BodyAngles:
    a = _base(rng)
    for s in SIDES:
        a.legs[s] = Limb(flex=rng.uniform(5, 60), abd=rng.uniform(0, 20), bend=rng.uniform(10, 90))
    arms_up = rng.random() < 0.6
    for s in SIDES:
        a.arms[s] = (Limb(flex=rng.uniform(110, 175), abd=rng.uniform(0, 40),
                          bend=rng.uniform(0, 30))
                     if arms_up else _relaxed_arm(rng, 50))
    a.lift = rng.uniform(0.15, 0.5)
    return a


def _reaching_up(rng: np.random.Generator) -> BodyAngles:
    a = _base(rng)
    sides = SIDES if rng.random() < 0.5 else (SIDES[int(rng.integers(2))],)
    for s in sides:
        a.arms[s] = Limb(flex=rng.uniform(145, 180), abd=rng.uniform(0, 30),
                         bend=rng.uniform(0, 20))
    return a


def _waving(rng: np.random.Generator) -> BodyAngles:
    a = _base(rng)
    s = SIDES[int(rng.integers(2))]
    a.arms[s] = Limb(target=np.array([rng.uniform(-0.05, 0.25),
                                      (1 if s == "l" else -1) * rng.uniform(0.2, 0.45),
                                      rng.uniform(0.15, 0.45)]),
                     pole=np.array([-0.2, (1 if s == "l" else -1) * 1.0, -0.8]))
    return a


def _pointing(rng: np.random.Generator) -> BodyAngles:
    a = _base(rng)
    s = SIDES[int(rng.integers(2))]
    a.arms[s] = Limb(flex=rng.uniform(55, 110), abd=rng.uniform(0, 70), bend=rng.uniform(0, 10))
    return a


def _bending_forward(rng: np.random.Generator) -> BodyAngles:
    a = _base(rng)
    a.bend = rng.uniform(50, 100)
    for s in SIDES:
        a.legs[s] = Limb(flex=rng.uniform(-5, 8), abd=rng.uniform(0, 12), bend=rng.uniform(0, 25))
        a.arms[s] = Limb(flex=a.bend + rng.uniform(-25, 20), abd=rng.uniform(0, 20),
                         bend=rng.uniform(0, 40))
    return a


def _lunging(rng: np.random.Generator) -> BodyAngles:
    a = _base(rng)
    front = SIDES[int(rng.integers(2))]
    a.legs[front] = Limb(flex=rng.uniform(55, 90), abd=rng.uniform(0, 12),
                         bend=rng.uniform(65, 100))
    a.legs[_other(front)] = Limb(flex=rng.uniform(-35, -15), abd=rng.uniform(0, 10),
                                 bend=rng.uniform(0, 35))
    a.bend = rng.uniform(-8, 10)
    return a


def _arms_crossed(rng: np.random.Generator) -> BodyAngles:
    a = _base(rng)
    for s in SIDES:
        sign = 1 if s == "l" else -1
        a.arms[s] = Limb(target=np.array([rng.uniform(0.17, 0.25), -sign * rng.uniform(0.22, 0.3),
                                          -rng.uniform(0.08, 0.18)]),
                         pole=np.array([0.2, sign * 1.0, -1.0]))
    return a


def _phoning(rng: np.random.Generator) -> BodyAngles:
    a = _base(rng)
    s = SIDES[int(rng.integers(2))]
    sign = 1 if s == "l" else -1
    a.arms[s] = Limb(target=np.array([rng.uniform(0.0, 0.08), -sign * rng.uniform(0.06, 0.1),
                                      rng.uniform(0.12, 0.2)]),
                     pole=np.array([0.3, sign * 0.6, -1.0]))
    return a


def _taking_photo(rng: np.random.Generator) -> BodyAngles:
    a = _base(rng)
    for s in SIDES:
        sign = 1 if s == "l" else -1
        a.arms[s] = Limb(target=np.array([rng.uniform(0.2, 0.3), -sign * rng.uniform(0.08, 0.13),
                                          rng.uniform(0.1, 0.18)]),
                         pole=np.array([0.0, sign * 0.8, -1.0]))
    return a


def _kicking(rng: np.random.Generator) -> BodyAngles:
    a = _base(rng)
    s = SIDES[int(rng.integers(2))]
    forward = rng.random() < 0.75
    a.legs[s] = (Limb(flex=rng.uniform(45, 100), abd=rng.uniform(0, 20), bend=rng.uniform(0, 40))
                 if forward else Limb(flex=rng.uniform(-40, -20), abd=rng.uniform(0, 10),
                                      bend=rng.uniform(30, 90)))
    for arm in SIDES:
        a.arms[arm] = Limb(flex=rng.uniform(-20, 40), abd=rng.uniform(20, 55),
                           bend=rng.uniform(10, 60))
    a.bend = rng.uniform(-15, 10)
    return a


def _balancing(rng: np.random.Generator) -> BodyAngles:
    a = _base(rng)
    for s in SIDES:
        a.arms[s] = Limb(flex=rng.uniform(-10, 15), abd=rng.uniform(70, 100),
                         bend=rng.uniform(0, 15))
    s = SIDES[int(rng.integers(2))]
    a.legs[s] = Limb(flex=rng.uniform(10, 90), abd=rng.uniform(0, 25), bend=rng.uniform(30, 100))
    return a


SAMPLERS = {name: globals()[f"_{name}"] for name in ACTIONS}


# ---------------------------------------------------------------------------------------------


def sample_bones(rng: np.random.Generator, height_range: tuple[float, float] = (0.85, 1.12),
                 jitter: float = 0.05) -> dict[str, float]:
    """Bone lengths of a random person: a global size times a small per-bone variation."""
    size = rng.uniform(*height_range)
    return {k: v * size * rng.uniform(1 - jitter, 1 + jitter) for k, v in NOMINAL_BONES.items()}


_LYING = {"back": _ry(-np.pi / 2), "front": _ry(np.pi / 2), "left": _rx(-np.pi / 2),
          "right": _rx(np.pi / 2)}


def place_in_world(body: np.ndarray, heading_deg: float, lying: str | None,
                   lift: float) -> np.ndarray:
    """Turn a body-frame pose to ``heading_deg`` (0 = facing +x), lay it down if asked, and put
    its lowest joint ``lift`` metres above the ground at the world origin."""
    rot = _rz(np.deg2rad(heading_deg))
    if lying is not None:
        rot = rot @ _LYING[lying]
    world = body @ rot.T
    world[:, :2] -= world[J["pelvis"], :2]
    world[:, 2] -= world[:, 2].min() - lift
    return world


def depth_twin(joints_world: np.ndarray, camera: Camera, chain: tuple[int, ...]) -> np.ndarray:
    """Reflect the joints of ``chain`` (e.g. elbow and wrist) across the plane through the chain's
    parent joint that faces the camera.

    The reflection keeps every bone length and, up to perspective, the 2D projection; it swaps
    'towards the camera' and 'away from it' for that limb. This is the ambiguity a 2D-only model
    cannot resolve without having learnt 3D priors.
    """
    from p2l3d_core.skeleton import PARENTS

    out = joints_world.copy()
    anchor = out[PARENTS[chain[0]]]
    normal = anchor - camera.position
    normal /= np.linalg.norm(normal)
    for j in chain:
        out[j] = out[j] - 2 * ((out[j] - anchor) @ normal) * normal
    return out


ARM_CHAINS = ((J["l_elbow"], J["l_wrist"]), (J["r_elbow"], J["r_wrist"]))
LEG_CHAINS = ((J["l_knee"], J["l_ankle"]), (J["r_knee"], J["r_ankle"]))


@dataclass(frozen=True)
class GeneratorConfig:
    """What the generator samples. ``twin_prob``: chance that one limb is replaced by its depth
    twin (see :func:`depth_twin`); legs are only twinned when nearly straight, where the twin is
    still anatomically possible (a knee never bends forwards)."""

    actions: tuple[str, ...] = ACTIONS
    twin_prob: float = 0.3
    camera: CameraRanges = CameraRanges()  # noqa: RUF009 - frozen (immutable), safe to share
    height_range: tuple[float, float] = (0.85, 1.12)


def generate_pose(rng: np.random.Generator, action: str, config: GeneratorConfig = GeneratorConfig()
                  ) -> tuple[np.ndarray, Camera]:
    """One ``(17, 3)`` world pose of ``action`` and the camera that films it."""
    if action not in SAMPLERS:
        raise ValueError(f"unknown action {action!r}; known: {', '.join(ACTIONS)}")
    angles = SAMPLERS[action](rng)
    body = forward_kinematics(angles, sample_bones(rng, config.height_range))
    world = place_in_world(body, rng.uniform(0, 360), angles.lying, angles.lift)
    camera = framing_camera(world, rng, config.camera)
    if rng.random() < config.twin_prob:
        chains = list(ARM_CHAINS) + [c for c, s in zip(LEG_CHAINS, SIDES)
                                     if angles.legs[s].bend < 20]
        twinned = depth_twin(world, camera, chains[int(rng.integers(len(chains)))])
        if twinned[:, 2].min() >= world[:, 2].min() - 0.05:  # never push a limb through the floor
            world = twinned
            world[:, 2] -= min(0.0, world[:, 2].min())  # a few cm below: stand on the ground
    return world, camera


def generate_records(seed: int, start: int, count: int, config: GeneratorConfig = GeneratorConfig()
                     ) -> list[PoseRecord]:
    """Poses ``start .. start + count - 1`` of the synthetic set ``seed``; each depends only on
    ``(seed, index)``, and actions cycle evenly so every family is equally represented."""
    records = []
    for index in range(start, start + count):
        rng = np.random.default_rng([seed, index])
        action = config.actions[index % len(config.actions)]
        joints, camera = generate_pose(rng, action, config)
        records.append(PoseRecord(pose_id=f"syn-{seed}-{index:08d}", joints_3d=joints,
                                  camera=camera,
                                  action=action, source="synthetic"))
    return records
