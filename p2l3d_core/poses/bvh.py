"""BVH motion capture: parser, vectorised forward kinematics, conversion to H36M-17 records.

BVH conventions followed here (those of the CMU / cgspeed files and Blender's importer):
- a JOINT's position is its parent's position plus the parent's global rotation applied to
  its OFFSET; an ``End Site`` is a leaf joint named ``<Parent>_end`` with no channels;
- rotation channels are Euler angles in degrees, composed in the order they are listed
  (``Zrotation Yrotation Xrotation`` -> ``R = Rz @ Ry @ Rx``, column vectors), any order;
- position channels give the joint's local translation, replacing its OFFSET (root offsets
  are zero in practice, so both readings agree there);
- the file's world is y-up; ours is z-up: ``(x, y, z)_bvh -> (x, -z, y)`` (a rotation,
  determinant +1, so handedness and left/right are kept).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from p2l3d_core.poses.camera import Y_UP_TO_Z_UP, framing_camera
from p2l3d_core.poses.floor import CLIP_PERCENTILE, floor_height
from p2l3d_core.poses.record import PoseRecord
from p2l3d_core.skeleton import from_cmu31

# CMU's ASF length unit is 1/0.45 inch ("units length 0.45" in the .asf files).
CMU_UNIT_M = 0.0254 / 0.45
UNIT_SCALES: dict[str, float] = {"m": 1.0, "cm": 0.01, "inch": 0.0254, "cmu": CMU_UNIT_M}

# units='auto': hip-to-ankle chain length (thigh + shank offsets) of the rest pose, in file
# units, -> unit. An adult's chain is 0.6-1.0 m, i.e. 0.6-1.0 in m, ~11-18 in CMU units,
# ~24-39 in inches, 60-100 in cm; the bounds sit between those bands.
AUTO_UNIT_RANGES: tuple[tuple[float, float, str], ...] = (
    (0.3, 2.0, "m"), (6.0, 21.0, "cmu"), (21.0, 50.0, "inch"), (50.0, 200.0, "cm"))


@dataclass
class BvhClip:
    """A parsed BVH file. ``motion`` is ``(frames, channels)`` in file order; joint ``j``'s
    channels are ``motion[:, channel_start[j] : channel_start[j] + len(channels[j])]``."""

    names: list[str]
    parents: list[int]
    offsets: np.ndarray  # (J, 3), file units
    channels: list[list[str]]
    channel_start: list[int]
    motion: np.ndarray
    frame_time: float

    @property
    def num_frames(self) -> int:
        return int(self.motion.shape[0])

    def index(self, name: str) -> int:
        return self.names.index(name)


def _tokens(path: str | Path) -> tuple[list[str], list[int]]:
    """The file's whitespace-separated tokens and the line each is on (1-based)."""
    try:
        text = Path(path).read_text()
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not a text BVH file (binary data)") from None
    tokens: list[str] = []
    lines: list[int] = []
    for number, line in enumerate(text.splitlines(), 1):
        for token in line.split():
            tokens.append(token)
            lines.append(number)
    return tokens, lines


def _is_channel(name: str) -> bool:
    """A channel name :func:`forward_kinematics` reads: ``Xposition`` .. ``Zrotation``."""
    return name[:1].upper() in ("X", "Y", "Z") and name[1:] in ("position", "rotation")


def parse_bvh(path: str | Path) -> BvhClip:
    """Parse the HIERARCHY and MOTION sections (CRLF and tabs are fine). A damaged file is
    refused with its path and line, never read as a different motion: every ``{`` closed before
    MOTION and no ``}`` too many, one ROOT at the top and JOINTs inside it, an OFFSET in every
    joint (without one a joint sat on its parent), a CHANNELS count followed by that many
    channel names (a count too high swallowed the next joint's tokens), a number where one
    belongs, ``Frames:`` equal to the rows present (a file cut short has fewer), and each row
    as wide as the channels."""
    tokens, lines = _tokens(path)
    names: list[str] = []
    parents: list[int] = []
    offsets: list[list[float]] = []
    channels: list[list[str]] = []
    opened_at: list[int] = []  # line of each joint's "{"
    has_offset: list[bool] = []
    stack: list[int] = []
    pos = 0
    pending: tuple[str, int] | None = None

    def where(k: int) -> str:
        return f"{path}:{lines[min(k, len(lines) - 1)]}" if lines else str(path)

    def numbers(k: int, count: int, what: str) -> list[float]:
        if len(tokens) < k + count:
            raise ValueError(f"{where(k)}: {what} needs {count} number(s); the file ends")
        try:
            values = [float(v) for v in tokens[k:k + count]]
        except ValueError:
            values = [float("nan")]
        if not all(np.isfinite(values)):  # 'nan' and 'inf' parse, and would lose a joint
            raise ValueError(f"{where(k)}: {what} must be finite numbers, got "
                             f"{' '.join(tokens[k:k + count])!r}")
        return values

    def whole(k: int, what: str) -> int:
        value = numbers(k, 1, what)[0]
        if value != int(value) or value < 0:
            raise ValueError(f"{where(k)}: {what} must be a whole number, got {tokens[k]!r}")
        return int(value)

    while pos < len(tokens) and tokens[pos] != "MOTION":
        tok = tokens[pos]
        if tok in ("ROOT", "JOINT"):
            name = tokens[pos + 1] if pos + 1 < len(tokens) else "{"
            if name in ("{", "}"):
                raise ValueError(f"{where(pos)}: {tok} without a name")
            if tok == "JOINT" and not stack:
                raise ValueError(f"{where(pos)}: JOINT {name} outside any joint (the hierarchy "
                                 "begins with ROOT)")
            if tok == "ROOT" and stack:
                raise ValueError(f"{where(pos)}: ROOT {name} inside joint {names[stack[-1]]} (a "
                                 "joint within another is a JOINT)")
            pending = (name, stack[-1] if stack else -1)
            pos += 2
        elif tok == "End":  # "End Site"
            if not stack:
                raise ValueError(f"{where(pos)}: 'End Site' outside any joint")
            parent = stack[-1]
            pending = (f"{names[parent]}_end", parent)
            pos += 2
        elif tok == "{":
            if pending is None:
                raise ValueError(f"{where(pos)}: '{{' without a joint")
            names.append(pending[0])
            parents.append(pending[1])
            offsets.append([0.0, 0.0, 0.0])
            channels.append([])
            opened_at.append(lines[pos])
            has_offset.append(False)
            stack.append(len(names) - 1)
            pending = None
            pos += 1
        elif tok == "}":
            if not stack:
                raise ValueError(f"{where(pos)}: '}}' closes no joint (one too many)")
            joint = stack.pop()
            if not has_offset[joint]:
                raise ValueError(f"{path}:{opened_at[joint]}: joint {names[joint]} has no OFFSET "
                                 f"(its '}}' at line {lines[pos]})")
            pos += 1
        elif tok == "OFFSET":
            if not stack:
                raise ValueError(f"{where(pos)}: OFFSET outside any joint")
            offsets[stack[-1]] = numbers(pos + 1, 3, "an OFFSET")
            has_offset[stack[-1]] = True
            pos += 4
        elif tok == "CHANNELS":
            if not stack:
                raise ValueError(f"{where(pos)}: CHANNELS outside any joint")
            count = whole(pos + 1, "a CHANNELS count")
            listed = tokens[pos + 2 : pos + 2 + count]
            for k, channel in enumerate(listed):
                if not _is_channel(channel):
                    raise ValueError(
                        f"{where(pos + 2 + k)}: CHANNELS {count} of {names[stack[-1]]} (line "
                        f"{lines[pos]}): {channel!r} is not a channel (Xposition .. Zrotation); "
                        "the count or a name is wrong")
            if len(listed) < count:
                raise ValueError(f"{where(pos)}: CHANNELS {count} needs {count} channel names; "
                                 "the file ends")
            channels[stack[-1]] = listed
            pos += 2 + count
        elif tok == "HIERARCHY":
            pos += 1
        elif _is_channel(tok):
            raise ValueError(f"{where(pos)}: channel {tok!r} after the CHANNELS list (its count "
                             "is too low)")
        else:
            raise ValueError(f"{where(pos)}: unexpected token {tok!r} in HIERARCHY")
    if pos >= len(tokens):
        raise ValueError(f"{path}: no MOTION section (the file ends in the HIERARCHY)")
    if stack:
        joint = stack[-1]
        raise ValueError(f"{where(pos)}: MOTION begins with {len(stack)} joint(s) not closed: the "
                         f"'{{' of {names[joint]} at line {opened_at[joint]} has no '}}'")
    if not names:
        raise ValueError(f"{where(pos)}: the HIERARCHY holds no joint")
    # MOTION / Frames: N / Frame Time: dt / rows
    header = tokens[pos + 1 : pos + 6]
    if len(header) < 5 or header[0] != "Frames:" or header[2:4] != ["Frame", "Time:"]:
        raise ValueError(f"{where(pos)}: MOTION must be followed by 'Frames: N' and "
                         f"'Frame Time: T', got {' '.join(header)!r}")
    declared = whole(pos + 2, "the Frames: count")
    frame_time = numbers(pos + 5, 1, "the Frame Time")[0]
    starts = np.cumsum([0] + [len(c) for c in channels])
    width = int(starts[-1])
    first = pos + 6
    rows: list[list[str]] = []
    for k in range(first, len(tokens)):
        if k == first or lines[k] != lines[k - 1]:
            rows.append([])
        rows[-1].append(tokens[k])
    for r, row in enumerate(rows):
        if len(row) != width:
            line = lines[first + sum(len(x) for x in rows[:r])]
            raise ValueError(f"{path}:{line}: frame {r} has {len(row)} values, the channels "
                             f"need {width}")
    if len(rows) != declared:
        raise ValueError(f"{where(pos + 1)}: 'Frames: {declared}' but {len(rows)} frame rows "
                         "follow (the file is cut short, or the count is wrong)")
    try:
        motion = np.asarray(tokens[first:], dtype=np.float64).reshape(len(rows), width)
    except ValueError:
        motion = None
    if motion is None or not np.isfinite(motion).all():
        bad = next(k for k in range(first, len(tokens)) if not _is_number(tokens[k]))
        raise ValueError(f"{where(bad)}: a motion value is not a finite number: "
                         f"{tokens[bad]!r}")
    return BvhClip(names, parents, np.asarray(offsets), channels, [int(s) for s in starts[:-1]],
                   motion, frame_time)


def _is_number(text: str) -> bool:
    """A finite number (``nan`` and ``inf`` parse as floats but are not motion)."""
    try:
        return bool(np.isfinite(float(text)))
    except ValueError:
        return False


def _axis_rotations(axis: str, degrees: np.ndarray) -> np.ndarray:
    """``(F, 3, 3)`` rotations about ``axis`` ('X', 'Y' or 'Z') by ``degrees``."""
    a = np.deg2rad(degrees)
    c, s = np.cos(a), np.sin(a)
    one, zero = np.ones_like(a), np.zeros_like(a)
    if axis == "X":
        rows = [[one, zero, zero], [zero, c, -s], [zero, s, c]]
    elif axis == "Y":
        rows = [[c, zero, s], [zero, one, zero], [-s, zero, c]]
    else:
        rows = [[c, -s, zero], [s, c, zero], [zero, zero, one]]
    return np.stack([np.stack(r, axis=-1) for r in rows], axis=-2)


def forward_kinematics(clip: BvhClip, frames: np.ndarray | None = None) -> np.ndarray:
    """Global joint positions ``(F, J, 3)`` in file units and the file's (y-up) axes,
    vectorised over frames (a loop over the ~40 joints only)."""
    motion = clip.motion if frames is None else clip.motion[frames]
    n = motion.shape[0]
    positions = np.zeros((n, len(clip.names), 3))
    rotations = np.zeros((n, len(clip.names), 3, 3))
    for j, parent in enumerate(clip.parents):
        local_r = np.broadcast_to(np.eye(3), (n, 3, 3)).copy()
        local_t = np.broadcast_to(clip.offsets[j], (n, 3)).copy()
        for k, channel in enumerate(clip.channels[j]):
            values = motion[:, clip.channel_start[j] + k]
            kind, axis = channel[1:], channel[0].upper()
            if kind == "rotation":
                local_r = local_r @ _axis_rotations(axis, values)
            elif kind == "position":
                local_t[:, "XYZ".index(axis)] = values
            else:
                raise ValueError(f"unknown BVH channel {channel!r}")
        if parent < 0:
            positions[:, j] = local_t
            rotations[:, j] = local_r
        else:
            positions[:, j] = positions[:, parent] + np.einsum(
                "fij,fj->fi", rotations[:, parent], local_t)
            rotations[:, j] = rotations[:, parent] @ local_r
    return positions


def _chain_length(clip: BvhClip) -> float:
    """Hip-to-ankle length (thigh + shank offsets) of the rest pose, in file units.

    The ankle is the first joint named like an ankle ('ankle', Mixamo's 'LeftFoot'/'RightFoot',
    ASF 'foot'); its offset and its parent's (the knee's) are the shank and the thigh. Without
    such a name: the root's height above the lowest joint of the rest pose.
    """
    for j, name in enumerate(clip.names):
        low = name.lower()
        if "ankle" in low or low in ("leftfoot", "rightfoot", "lfoot", "rfoot"):
            knee = clip.parents[j]
            return float(np.linalg.norm(clip.offsets[j]) + np.linalg.norm(clip.offsets[knee]))
    rest = BvhClip(clip.names, clip.parents, clip.offsets, [[] for _ in clip.names],
                   [0] * len(clip.names), np.zeros((1, 0)), clip.frame_time)
    heights = forward_kinematics(rest)[0, :, 1]
    return float(heights[0] - heights.min())


def unit_scale(clip: BvhClip, units: str = "auto") -> tuple[float, str]:
    """Metres per file unit and the unit's name.

    ``units='auto'`` looks at the rest pose's hip-to-ankle chain (file units): 0.3-2 -> metres,
    6-21 -> CMU units (0.0254/0.45 m), 21-50 -> inches, 50-200 -> centimetres; anything else is
    an error asking for explicit ``units``.
    """
    if units != "auto":
        if units not in UNIT_SCALES:
            raise ValueError(f"units must be 'auto' or one of {sorted(UNIT_SCALES)}, not {units!r}")
        return UNIT_SCALES[units], units
    length = _chain_length(clip)
    for lo, hi, name in AUTO_UNIT_RANGES:
        if lo <= length < hi:
            return UNIT_SCALES[name], name
    raise ValueError(f"cannot guess BVH units from a hip-to-ankle length of {length:.3g}; "
                     "pass units='m'|'cm'|'cmu'|'inch'")


def bvh_to_world(clip: BvhClip, units: str = "auto", frames: np.ndarray | None = None
                 ) -> tuple[np.ndarray, str]:
    """All BVH joints ``(F, J, 3)`` in our world (metres, z up), before the floor shift."""
    scale, unit = unit_scale(clip, units)
    return forward_kinematics(clip, frames) @ Y_UP_TO_Z_UP.T * scale, unit


def read_bvh(path: str | Path, action: str | None = None, every: int = 1,
             units: str = "auto", seed: int = 0) -> list[PoseRecord]:
    """BVH clip -> one H36M-17 :class:`PoseRecord` per ``every``-th frame.

    Joints are mapped with :func:`p2l3d_core.skeleton.from_cmu31` (CMU names; other skeletons
    get NaN where names differ). One floor holds for every frame of the clip, put where the
    body rests on it as the generator's bodies do (:func:`p2l3d_core.poses.floor.floor_height`
    at :data:`~p2l3d_core.poses.floor.CLIP_PERCENTILE`): a few frames of a glitching marker do
    not sink it, and a hop's airborne frames do not lift it.
    Each record has its own random camera (``np.random.default_rng(seed)``) aimed at and
    framing the pose (:func:`p2l3d_core.poses.camera.framing_camera`). ``action`` defaults
    to the file stem.
    """
    path = Path(path)
    clip = parse_bvh(path)
    world, unit = bvh_to_world(clip, units)
    joints = from_cmu31({name: world[:, j] for j, name in enumerate(clip.names)})
    joints[..., 2] -= floor_height(joints, CLIP_PERCENTILE)
    selected = np.arange(0, clip.num_frames, every)
    joints = joints[selected]
    rng = np.random.default_rng(seed)
    label = action if action is not None else path.stem
    records = []
    for k, frame in enumerate(selected):
        camera = framing_camera(joints[k], rng)
        records.append(PoseRecord(
            pose_id=f"bvh/{path.stem}/{frame:06d}", joints_3d=joints[k], camera=camera,
            action=label, source="bvh",
            meta={"file": str(path), "split_group": f"bvh/{path.stem}", "frame": int(frame),
                  "fps": 1.0 / clip.frame_time,
                  "units": unit}))
    return records


__all__ = [
    "AUTO_UNIT_RANGES",
    "CMU_UNIT_M",
    "BvhClip",
    "bvh_to_world",
    "forward_kinematics",
    "parse_bvh",
    "read_bvh",
    "unit_scale",
]
