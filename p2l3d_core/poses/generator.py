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
from p2l3d_core.poses.floor import CLEARANCE, NOMINAL_THIGH, floor_gaps
from p2l3d_core.poses.record import PoseRecord
from p2l3d_core.skeleton import NUM_JOINTS, J

ACTIONS: tuple[str, ...] = (
    "standing", "walking", "running", "sitting", "squatting", "kneeling", "lying", "jumping",
    "reaching_up", "waving", "pointing", "bending_forward", "lunging", "arms_crossed",
    "phoning", "taking_photo", "kicking", "balancing",
)

# Bone lengths (metres) of a 1.75 m adult, close to Human3.6M subject means.
NOMINAL_BONES: dict[str, float] = {
    "hip_half_width": 0.12, "thigh": NOMINAL_THIGH, "shin": 0.44, "lower_spine": 0.23,
    "upper_spine": 0.25, "neck": 0.11, "head": 0.115, "shoulder_half_width": 0.16,
    "upper_arm": 0.28, "forearm": 0.25,
}

# Factor on the hip width: skeletons place the hip joints anywhere from ~15 cm apart (anatomical
# hip joint centres, many mocap rigs) to ~27 cm (Human3.6M's), and the rules measure the feet's
# distance in hip widths, so the nominal 24 cm alone would tie that answer to one convention.
HIP_WIDTH_SPREAD = (0.6, 1.15)

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
    # metres the heel is off the floor (on tiptoe, rolling off at the end of a step): raises
    # the ankle above its flat-foot height where that foot carries the body
    heel_raise: dict[str, float] = field(default_factory=lambda: {s: 0.0 for s in SIDES})
    gait_phase: float | None = None  # percent of the gait cycle of the left leg (gaits only)


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
#
# Coverage (issue 27): what an action's label does not imply is sampled the same way for every
# action it applies to, over the whole anatomical range, so no posecode's answer can be read off
# the kind of pose. Walking and standing knees bend (a gait cycle's swing, a relaxed or lifted
# leg, a soft stance), relaxed elbows take any flexion from straight to closed, the torso leans
# forward, back or sideways whatever the action, and feet leave the ground or rise onto the
# toes in standing and walking too. Only what the label says is fixed: a squat's closed knees,
# a sitter's horizontal thighs, a runner's bent elbows, a jumper in the air or on the ground
# (half each: a jump's take-off and landing take as long as its flight).

# Flexion bands (degrees, 0 = straight) and their weights: straight, slightly bent, bent, fully
# bent, with the gaps between the rules' categories (their dead bands) covered as well.
FLEXION_BANDS = ((0.0, 25.0), (25.0, 60.0), (60.0, 115.0), (115.0, 145.0))
ELBOW_WEIGHTS = (0.33, 0.30, 0.25, 0.12)


def _banded(rng: np.random.Generator, weights: tuple[float, ...],
            bands: tuple[tuple[float, float], ...] = FLEXION_BANDS) -> float:
    u = rng.random() * sum(weights)  # a weighted choice without rng.choice's overhead
    k = 0
    while k < len(bands) - 1 and u >= weights[k]:
        u -= weights[k]
        k += 1
    lo, hi = bands[k]
    return float(rng.uniform(lo, hi))


def _elbow_flexion(rng: np.random.Generator) -> float:
    """A relaxed elbow: straight, slightly bent (a hanging arm's usual 20-50 degrees), bent
    (hands at the waist, carrying), or closed (hand at the shoulder)."""
    return _banded(rng, ELBOW_WEIGHTS)


def _torso_pitch(rng: np.random.Generator) -> float:
    """Torso pitch at the hips for actions whose label does not fix it: upright, leaning
    forward (stooping, walking uphill, looking down at something) or back (carrying a load in
    front, stretching). The rules see about 0.75 of the pitch (the lower spine bends half), so
    'leaning' (>= 15 degrees) starts at a pitch of ~20."""
    u = rng.random()
    if u < 0.55:
        return float(rng.uniform(-8, 9))
    if u < 0.82:
        return float(rng.uniform(20, 45))
    return float(rng.uniform(-30, -20))


def _torso_roll(rng: np.random.Generator) -> float:
    """Sideways lean: mostly posture sway, a sixth of the time a clear lean to one side."""
    if rng.random() < 0.17:
        return float(rng.choice([-1, 1]) * rng.uniform(20, 35))
    return float(rng.uniform(-8, 8))


ARM_FURTHER_BACK = 20.0
"""Degrees a hanging arm may swing further behind the torso than ahead of it (35 ahead, 55
behind by default; a jumper's 50 ahead, 60 behind: the shoulder extends to 60). Why: subject
131's upper arms hang 15-16 degrees behind the vertical (median, all three CMU clips), and more
where the elbow is slightly bent; within 35 degrees either way the regressor read the CMU
clips' forward lean and the hands' depth worse. With 55 behind, fit-only over 3 fits: the CMU
clips' forward lean +2 to +2.5 points, the front/back offsets +2 to +3, the bends level; the
synthetic split's lean +1.4, offsets -0.8 (``benchmarks/reports/2026-12-07-hanging-arms.md``)."""


def _relaxed_arm(rng: np.random.Generator, front_back: float = 35.0) -> Limb:
    """An arm the action leaves free: mostly hanging loosely, up to ``front_back`` degrees in
    front of the body plane or :data:`ARM_FURTHER_BACK` more behind it; sometimes raised
    forward or to the side (gesturing, holding something). Its elbow is anywhere from straight
    to closed."""
    if rng.random() < 0.12:
        return Limb(flex=rng.uniform(30, 100), abd=rng.uniform(0, 80), bend=_elbow_flexion(rng),
                    rot=rng.uniform(-20, 60))
    behind = max(-front_back - ARM_FURTHER_BACK, LIMITS["sh_flex"][0])  # not piled at the limit
    return Limb(flex=rng.uniform(behind, front_back), abd=rng.uniform(0, 25),
                bend=_elbow_flexion(rng), rot=rng.uniform(-20, 40))


def _standing_leg(rng: np.random.Generator, knee: float = 0.0) -> Limb:
    """A leg carrying weight, knee flexed ``knee`` degrees (+ a little): the thigh comes forward
    by half the flexion so the foot stays under the hip. Negative abduction brings the feet
    together."""
    k = knee + rng.uniform(0, 12)
    return Limb(flex=k / 2 + rng.uniform(-8, 10), abd=rng.uniform(-6, 12), bend=k)


def _other(side: str) -> str:
    return "r" if side == "l" else "l"


def _stance(rng: np.random.Generator, a: BodyAngles) -> None:
    """Legs of an upright person whose action does not say what the legs do: both feet down
    with straight or soft knees (one leg often relaxed, its heel raised), a semi-crouch, or one
    foot off the ground (standing on one leg, the other lifted in front or behind)."""
    u = rng.random()
    if u < 0.45:  # both feet down, knees near straight; one often relaxed
        a.legs = {s: _standing_leg(rng) for s in SIDES}
        if rng.random() < 0.15:  # feet together
            for s in SIDES:
                a.legs[s].abd = rng.uniform(-6, -2)
        if rng.random() < 0.45:
            s = SIDES[int(rng.integers(2))]
            a.legs[s] = _standing_leg(rng, rng.uniform(20, 50))
            a.heel_raise[s] = float(rng.uniform(0.0, 0.08))
    elif u < 0.7:  # soft knees / semi-crouch; the torso comes forward to balance
        k = rng.uniform(20, 55)
        a.legs = {s: _standing_leg(rng, k + rng.uniform(-8, 8)) for s in SIDES}
        a.bend = max(a.bend, k / 3 + rng.uniform(-5, 10))
    else:  # one foot lifted, its knee slightly bent to closed
        s = SIDES[int(rng.integers(2))]
        a.legs[_other(s)] = _standing_leg(rng, rng.uniform(0, 20))
        a.legs[s] = Limb(flex=rng.uniform(-25, 70), abd=rng.uniform(0, 20),
                         bend=_banded(rng, (0.0, 0.25, 0.5, 0.25)))
    if rng.random() < 0.1:  # on tiptoe
        for s in SIDES:
            a.heel_raise[s] = max(a.heel_raise[s], float(rng.uniform(0.04, 0.09)))


def _base(rng: np.random.Generator) -> BodyAngles:
    a = BodyAngles()
    a.arms = {s: _relaxed_arm(rng) for s in SIDES}
    a.bend, a.lean, a.twist = _torso_pitch(rng), _torso_roll(rng), rng.uniform(-15, 15)
    _stance(rng, a)
    a.head_pitch = rng.uniform(-15, 20)
    return a


def _standing(rng: np.random.Generator) -> BodyAngles:
    """Standing: upright, any arm, lean and stance (:func:`_base`)."""
    return _base(rng)


# Sagittal joint angles over one gait cycle (percent from heel strike -> degrees flexion),
# rounded from normative adult curves (walking: Winter 1991, Perry 1992; running: Novacheck
# 1998). Walking: stance 0-60 %, knee ~15-20 degrees in loading response and ~60 in swing; hip
# +30 at heel strike, -10 in terminal stance. Running: stance 0-38 %, knee ~40 in stance and
# 90-130 in swing, two flight phases.
WALK = {"hip": ((0, 30), (10, 27), (30, 10), (52, -10), (62, -2), (72, 12), (85, 32), (100, 30)),
        "knee": ((0, 5), (15, 18), (40, 4), (50, 10), (60, 38), (72, 62), (85, 30), (97, 3),
                 (100, 5)),
        "stance": 60.0}
RUN = {"hip": ((0, 35), (20, 18), (38, -10), (55, 15), (80, 55), (100, 35)),
       "knee": ((0, 20), (13, 42), (38, 22), (70, 105), (90, 35), (100, 20)),
       "stance": 38.0}


def _curve(keys: tuple, phase: float) -> float:
    x, y = zip(*keys)
    return float(np.interp(phase % 100.0, x, y))


def _gait(rng: np.random.Generator, cycle: dict, hip_scale: tuple[float, float],
          knee_scale: tuple[tuple[float, float], tuple[float, float]], arm_amp: tuple,
          elbow: tuple[float, float] | None, flexed: float = 0.0) -> BodyAngles:
    """One instant of a gait cycle: the left leg at a random phase, the right half a cycle
    later; per person and stride the hip range, the stance and the swing knee flexion vary
    (slow/fast, shuffling/bouncy), and a ``flexed`` share of strides keeps the knees bent
    throughout (stairs, uphill, carrying a load). Arms swing opposite to the legs (unless
    ``elbow`` is None and they are left to :func:`_base`, a quarter of the time). A foot
    rolling onto its toes (terminal stance, early swing) raises its ankle
    (:attr:`BodyAngles.heel_raise`)."""
    a = _base(rng)
    phase = rng.uniform(0, 100)
    hip_k = rng.uniform(*hip_scale)
    stance_k, swing_k = rng.uniform(*knee_scale[0]), rng.uniform(*knee_scale[1])
    knee_offset, hip_offset = rng.uniform(0, 6), 0.0
    if rng.random() < flexed:  # stairs, uphill, carrying, crouched: knees never straighten
        knee_offset = rng.uniform(10, 40)
        hip_offset = knee_offset / 2
        swing_k *= rng.uniform(1.15, 1.5)
    toe_off = rng.uniform(0.07, 0.15)
    arm = rng.uniform(*arm_amp)
    free_arms = elbow is None and rng.random() < 0.25  # carrying, gesturing: no arm swing
    stance = cycle["stance"]
    hips = [y for _, y in cycle["hip"]]
    hip_mid, hip_amp = (max(hips) + min(hips)) / 2, (max(hips) - min(hips)) / 2
    for s, shift in (("l", 0.0), ("r", 50.0)):
        p = (phase + shift) % 100.0
        scale = float(np.interp(p, [0, stance - 15, stance + 5, 90, 100],
                                [stance_k, stance_k, swing_k, swing_k, stance_k]))
        hip = _curve(cycle["hip"], p)
        a.legs[s] = Limb(flex=hip_offset + hip_mid + (hip - hip_mid) * hip_k,
                         abd=rng.uniform(0, 6),
                         bend=knee_offset + _curve(cycle["knee"], p) * scale)
        # heel rise from late stance to toe-off, the foot coming level again by mid-swing
        a.heel_raise[s] = toe_off * float(np.interp(p, [stance - 15, stance, stance + 8,
                                                         stance + 22], [0, 1, 1, 0]))
        if free_arms:
            continue
        other = _other(s)  # the opposite arm swings with this leg
        a.arms[other] = Limb(flex=(hip - hip_mid) / hip_amp * arm, abd=rng.uniform(3, 15),
                             bend=_elbow_flexion(rng) if elbow is None else rng.uniform(*elbow),
                             rot=rng.uniform(0, 30))
    a.gait_phase = phase
    return a


def _walking(rng: np.random.Generator) -> BodyAngles:
    return _gait(rng, WALK, (0.7, 1.2), ((0.6, 1.7), (0.8, 1.2)), (10, 35), None, flexed=0.35)


def _running(rng: np.random.Generator) -> BodyAngles:
    a = _gait(rng, RUN, (0.8, 1.2), ((0.8, 1.2), (0.8, 1.25)), (25, 50), (50, 125),
              flexed=0.1)
    a.bend = _torso_pitch(rng) + 5
    p = a.gait_phase % 50.0  # flight between one foot's toe-off and the other's strike
    stance = RUN["stance"]
    if p > stance:
        a.lift = float(rng.uniform(0.04, 0.15) * np.sin(np.pi * (p - stance) / (50 - stance)))
    return a


def _sitting(rng: np.random.Generator) -> BodyAngles:
    a = _base(rng)
    for s in SIDES:
        a.legs[s] = Limb(flex=rng.uniform(70, 100), abd=rng.uniform(0, 20),
                         bend=rng.uniform(40, 130))
        a.arms[s] = Limb(flex=rng.uniform(10, 55), abd=rng.uniform(0, 20),
                         bend=_elbow_flexion(rng), rot=rng.uniform(0, 45))
    if rng.random() < 0.25:  # one leg stretched out
        s = SIDES[int(rng.integers(2))]
        a.legs[s] = Limb(flex=rng.uniform(60, 95), abd=rng.uniform(0, 20), bend=rng.uniform(0, 40))
    a.bend = min(a.bend, 35.0)
    a.heel_raise = {s: 0.0 for s in SIDES}
    return a


def _squatting(rng: np.random.Generator) -> BodyAngles:
    a = _base(rng)
    for s in SIDES:
        a.legs[s] = Limb(flex=rng.uniform(95, 130), abd=rng.uniform(10, 30),
                         bend=rng.uniform(105, 145))
        a.arms[s] = Limb(flex=rng.uniform(20, 90), abd=rng.uniform(0, 25), bend=_elbow_flexion(rng))
    a.bend = rng.uniform(20, 50)
    a.heel_raise = {s: float(rng.uniform(0.0, 0.08)) for s in SIDES}
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
    a.bend = float(np.clip(a.bend, -15, 35))
    a.heel_raise = {s: 0.0 for s in SIDES}
    return a


def _lying(rng: np.random.Generator) -> BodyAngles:
    """Lying on the back, front or a side, legs straight or bent: knees drawn up with the feet
    on the floor on the back, shins lifted behind on the front, any way on a side. Limbs never
    point into the floor (on the front an arm lies along the body or above the head; on a side
    the lower arm and leg are not lifted outwards)."""
    a = _base(rng)
    a.lying = str(rng.choice(["back", "front", "left", "right"]))
    for s in SIDES:
        if a.lying == "front":
            flex = rng.uniform(-10, 5) if rng.random() < 0.6 else rng.uniform(150, 180)
        else:
            flex = rng.uniform(-10, 90)
        lower = a.lying == ("left" if s == "l" else "right")  # this side's limbs on the floor
        a.arms[s] = Limb(flex=flex, abd=rng.uniform(0, 10 if lower else 90),
                         bend=_elbow_flexion(rng), rot=rng.uniform(-30, 30))
        straight = rng.random() < 0.6
        if a.lying == "front":
            flex = rng.uniform(-10, 5)
            knee = rng.uniform(0, 25) if straight else rng.uniform(25, 120)
        elif a.lying == "back":
            flex = rng.uniform(-5, 20) if straight else rng.uniform(30, 85)
            knee = rng.uniform(0, 25) if straight else float(np.clip(flex + rng.uniform(-15, 10),
                                                                     25, 120))
        else:
            flex = rng.uniform(-5, 60)
            knee = rng.uniform(0, 25) if straight else rng.uniform(25, 120)
        a.legs[s] = Limb(flex=flex, abd=rng.uniform(0, 5 if lower else 20), bend=knee)
    a.bend, a.lean = rng.uniform(-5, 10), rng.uniform(-8, 8)
    a.heel_raise = {s: 0.0 for s in SIDES}
    return a


def _push_off(rng: np.random.Generator) -> float:
    """Heel height of a jumper's foot on the ground: flat (standing between jumps, a landing
    settled) or, two times in five, up on the ball of the foot (pushing off, touching down).
    Every grounded jumper's heel used to be raised 0-10 cm, which put their lower ankle at
    14 cm (median) against a stander's 8.5: a jumper's look then meant a high ankle."""
    return float(rng.uniform(0.0, 0.1)) if rng.random() < 0.4 else 0.0


def _jumping(rng: np.random.Generator) -> BodyAngles:
    """An instant of a jump, a hop or a series of them, taken at a random time: half of them
    on the ground (crouched to take off, landing, or standing between jumps: both feet down
    with the knees anywhere from nearly straight to deep, or one foot down in a hop), half in
    the air (legs tucked, extended, or one leg tucked as in a hop).

    Why half: repeated jumps and hops spend about as long on the ground as in the air, and
    the posture must not tell whether the feet are down. When two in three jumpers were in the
    air and only deep crouches stood, the geometry regressor learned that a jumper's look
    (bent knees, lifted arms) means airborne, and read a real hopper's standing ankles 5 cm
    high (``benchmarks/reports/2026-12-07-ground-contact.md``)."""
    a = _base(rng)
    a.heel_raise = {s: 0.0 for s in SIDES}
    arms_up = rng.random() < 0.5
    for s in SIDES:
        a.arms[s] = (Limb(flex=rng.uniform(110, 175), abd=rng.uniform(0, 40),
                          bend=rng.uniform(0, 30))
                     if arms_up else _relaxed_arm(rng, 50))
    u = rng.random()
    if u < 0.3:  # both feet down: crouched to take off, landing, or between jumps
        k = rng.uniform(5, 90)
        a.legs = {s: _standing_leg(rng, k + rng.uniform(-10, 10)) for s in SIDES}
        a.bend = max(a.bend, k / 3 + rng.uniform(0, 15))
        a.heel_raise = {s: _push_off(rng) for s in SIDES}
        return a
    s = SIDES[int(rng.integers(2))]
    if u < 0.62:  # a hop: one leg tucked, on the ground (take-off, landing) or in the air
        a.legs[s] = Limb(flex=rng.uniform(-10, 70), abd=rng.uniform(0, 20),
                         bend=rng.uniform(50, 140))
        a.legs[_other(s)] = _standing_leg(rng, rng.uniform(0, 50))
        if u < 0.5:
            a.heel_raise[_other(s)] = _push_off(rng)
            return a
    else:
        for s in SIDES:
            a.legs[s] = Limb(flex=rng.uniform(0, 60), abd=rng.uniform(0, 20),
                             bend=rng.uniform(0, 100))
    a.lift = rng.uniform(0.1, 0.5)
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
        knee = rng.uniform(0, 25) if rng.random() < 0.6 else rng.uniform(25, 70)
        a.legs[s] = Limb(flex=knee / 3 + rng.uniform(-5, 8), abd=rng.uniform(-4, 12), bend=knee)
        a.arms[s] = Limb(flex=a.bend + rng.uniform(-25, 20), abd=rng.uniform(0, 20),
                         bend=rng.uniform(0, 40) if rng.random() < 0.7 else _elbow_flexion(rng))
    a.heel_raise = {s: 0.0 for s in SIDES}
    return a


def _lunging(rng: np.random.Generator) -> BodyAngles:
    a = _base(rng)
    front = SIDES[int(rng.integers(2))]
    a.legs[front] = Limb(flex=rng.uniform(55, 90), abd=rng.uniform(0, 12),
                         bend=rng.uniform(65, 100))
    a.legs[_other(front)] = Limb(flex=rng.uniform(-35, -15), abd=rng.uniform(0, 10),
                                 bend=rng.uniform(0, 35))
    a.bend = float(np.clip(a.bend, -20, 30))
    a.heel_raise = {front: 0.0, _other(front): float(rng.uniform(0.0, 0.1))}
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
    a.legs[_other(s)] = _standing_leg(rng, rng.uniform(0, 30))
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
    a.legs[_other(s)] = _standing_leg(rng, rng.uniform(0, 20))
    a.bend = float(np.clip(a.bend, -15, 25))
    return a


SAMPLERS = {name: globals()[f"_{name}"] for name in ACTIONS}


# ---------------------------------------------------------------------------------------------


def sample_bones(rng: np.random.Generator, height_range: tuple[float, float] = (0.85, 1.12),
                 jitter: float = 0.05) -> dict[str, float]:
    """Bone lengths of a random person: a global size times a small per-bone variation, and
    the hip width times :data:`HIP_WIDTH_SPREAD` (where a skeleton puts its hip joints
    varies)."""
    size = rng.uniform(*height_range)
    bones = {k: v * size * rng.uniform(1 - jitter, 1 + jitter) for k, v in NOMINAL_BONES.items()}
    bones["hip_half_width"] *= rng.uniform(*HIP_WIDTH_SPREAD)
    return bones


def floor_clearance(angles: BodyAngles, size: float = 1.0) -> np.ndarray:
    """``(17,)`` heights of the joint centres above the floor where they rest on it
    (``poses/floor.py``'s ``FLOOR_CLEARANCE``), scaled by the body's ``size``; an ankle is
    higher by its heel's raise (on tiptoe, rolling off)."""
    out = CLEARANCE * size
    for s in SIDES:
        out[J[f"{s}_ankle"]] += angles.heel_raise.get(s, 0.0)
    return out


_LYING = {"back": _ry(-np.pi / 2), "front": _ry(np.pi / 2), "left": _rx(-np.pi / 2),
          "right": _rx(np.pi / 2)}


def _floor_gap(world: np.ndarray, clearance: np.ndarray | None) -> float:
    """Height of the body above the floor: the lowest joint's height above its clearance."""
    return float(floor_gaps(world, 0.0 if clearance is None else clearance))


def place_in_world(body: np.ndarray, heading_deg: float, lying: str | None,
                   lift: float, clearance: np.ndarray | None = None) -> np.ndarray:
    """Turn a body-frame pose to ``heading_deg`` (0 = facing +x), lay it down if asked, and put
    it ``lift`` metres above the ground at the world origin: its lowest joint on the floor, or
    with ``clearance`` (:func:`floor_clearance`) the joint that rests on the floor at its
    anatomical height."""
    rot = _rz(np.deg2rad(heading_deg))
    if lying is not None:
        rot = rot @ _LYING[lying]
    world = body @ rot.T
    world[:, :2] -= world[J["pelvis"], :2]
    world[:, 2] -= _floor_gap(world, clearance) - lift
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
    bones = sample_bones(rng, config.height_range)
    body = forward_kinematics(angles, bones)
    clearance = floor_clearance(angles, bones["thigh"] / NOMINAL_THIGH)
    world = place_in_world(body, rng.uniform(0, 360), angles.lying, angles.lift, clearance)
    camera = framing_camera(world, rng, config.camera)
    if rng.random() < config.twin_prob:
        chains = list(ARM_CHAINS) + [c for c, s in zip(LEG_CHAINS, SIDES)
                                     if angles.legs[s].bend < 20]
        twinned = depth_twin(world, camera, chains[int(rng.integers(len(chains)))])
        gap = _floor_gap(twinned, clearance)
        if gap >= _floor_gap(world, clearance) - 0.05:  # never push a limb through the floor
            world = twinned
            world[:, 2] -= min(0.0, gap)  # a few cm below: stand on the ground
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
